internal import SystemPackage
import TendSpec

/// Who holds a lock, read from /proc/locks.
public enum LockHolder {
    /// "process 1234 (apt-get)" for a lock on the file `inode`, or nil. The device is not
    /// compared: on overlayfs (test hosts, containers) /proc/locks names the layer's device, not
    /// the one stat reports; the name is only for people.
    public static func describe(inode: UInt64) -> String? {
        guard let locks = contents(of: "/proc/locks") else { return nil }
        for line in locks.split(separator: "\n") {
            // "1: FLOCK  ADVISORY  WRITE 1234 08:01:1234567 0 EOF": the pid, then major:minor:inode.
            let fields = line.split(separator: " ")
            guard fields.count >= 6, let pid = Int32(fields[4]), fields[5].split(separator: ":").last == Substring(String(inode)) else { continue }
            let name = contents(of: "/proc/\(pid)/comm").map { $0.trimmingWhitespace() }
            return "process \(pid)" + (name.map { " (\($0))" } ?? "")
        }
        return nil
    }

    private static func contents(of path: String) -> String? {
        guard let fd = try? FileDescriptor.open(path, .readOnly, options: .closeOnExec) else { return nil }
        defer { try? fd.close() }
        return (try? fd.readToEnd(sizeHint: 4096)).map { String(decoding: $0, as: UTF8.self) }
    }
}
