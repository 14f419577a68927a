internal import Crypto

/// A SHA-256 digest built from labelled fields, shown as hex.
///
/// Used for the desired-state digests and observed-state fingerprints recorded in plan files.
public struct Digest {
    private var hasher = SHA256()

    public init() {}

    /// Adds a labelled text field; labels keep `a=bc` and `ab=c` apart.
    public mutating func add(_ label: String, _ value: String?) {
        add(label, Array((value ?? "\u{0}nil").utf8))
    }

    /// Adds a labelled field of bytes, length-prefixed.
    public mutating func add(_ label: String, _ bytes: [UInt8]) {
        hasher.update(data: Array(label.utf8) + [0])
        withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { hasher.update(bufferPointer: $0) }
        hasher.update(data: bytes)
    }

    /// The hex digest.
    public func finalize() -> String {
        hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
