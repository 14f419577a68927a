internal import Crypto

/// A SHA-256 digest built from labelled fields, shown as hex.
///
/// Used for the desired-state digests and observed-state fingerprints recorded in plan files.
/// Planning takes two of them for each resource, so fields go to the hasher without copies.
public struct Digest {
    private var hasher = SHA256()

    public init() {}

    /// Adds a labelled text field; labels keep `a=bc` and `ab=c` apart.
    public mutating func add(_ label: String, _ value: String?) {
        guard var value else { return add(label, Array("\u{0}nil".utf8)) }
        addLabel(label)
        value.withUTF8 { addLengthPrefixed(UnsafeRawBufferPointer($0)) }
    }

    /// Adds a labelled field of bytes, length-prefixed.
    public mutating func add(_ label: String, _ bytes: [UInt8]) {
        addLabel(label)
        bytes.withUnsafeBytes { addLengthPrefixed($0) }
    }

    /// The label's bytes and a NUL.
    private mutating func addLabel(_ label: String) {
        var label = label
        label.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
    }

    /// The bytes' count (8 bytes, little-endian), then the bytes.
    private mutating func addLengthPrefixed(_ bytes: UnsafeRawBufferPointer) {
        withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: bytes)
    }

    /// The hex digest, in lowercase.
    public func finalize() -> String {
        hasher.finalize().withUnsafeBytes { Self.hex($0) }
    }

    /// The MD5 of `bytes` in hex: dpkg's digest of a conffile as its package shipped it, which
    /// `tend adopt` compares with the file; never used to trust anything.
    public static func md5(_ bytes: [UInt8]) -> String {
        hex(Array(Insecure.MD5.hash(data: bytes)))
    }

    /// `bytes` in lowercase hex, two digits each.
    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { text in
            var index = 0
            for byte in bytes {
                text[index] = hexDigit(byte >> 4)
                text[index + 1] = hexDigit(byte & 0x0f)
                index += 2
            }
            return index
        }
    }

    /// The ASCII of a hex digit, 0 to 15, in lowercase.
    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
