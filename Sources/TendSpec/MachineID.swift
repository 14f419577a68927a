/// A host's machine ID (machine-id(5)), and the stable numbers tend draws from it: the offset of
/// its agent's checks within the interval, and its place in a rollout's waves.
public enum MachineID {
    /// The file that holds it, under a root.
    public static let path = "/etc/machine-id"

    /// The ID in the file's bytes: its one line, without the newline; "" for an empty file.
    public static func parse(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
    }

    /// A stable 64-bit hash (FNV-1a) of `salt` followed by `id`: the same on every run and every
    /// build, and another for each salt, so that the hosts one draw puts first another does not
    /// (the first wave of a rollout is not also the first to fetch).
    public static func hash(_ id: String, salt: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (salt + id).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
