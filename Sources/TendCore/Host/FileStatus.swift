internal import Glibc
public import TendSpec

/// What `lstat` says about one path on the host.
public struct FileStatus: Sendable, Hashable, Codable {
    public typealias FileType = TendSpec.FileType

    public var type: FileType
    /// Permission bits including setuid, setgid and sticky (`st_mode & 07777`).
    public var permissions: UInt32
    public var owner: UInt32
    public var group: UInt32
    public var size: Int
    /// How many names the file has (`st_nlink`); above 1 for a regular file, other hard links
    /// share its content, owner and mode.
    public var linkCount: Int
    public var device: UInt64
    public var inode: UInt64
    /// Change time in nanoseconds; any write or attribute change moves it.
    public var changeTime: Int64
    public var modificationTime: Int64

    init(_ raw: stat) {
        type = FileType(mode: raw.st_mode)
        permissions = raw.st_mode & 0o7777
        owner = raw.st_uid
        group = raw.st_gid
        size = Int(raw.st_size)
        linkCount = Int(raw.st_nlink)
        device = UInt64(raw.st_dev)
        inode = UInt64(raw.st_ino)
        changeTime = Int64(raw.st_ctim.tv_sec) * 1_000_000_000 + Int64(raw.st_ctim.tv_nsec)
        modificationTime = Int64(raw.st_mtim.tv_sec) * 1_000_000_000 + Int64(raw.st_mtim.tv_nsec)
    }

    /// Adds what identifies this exact state of the file to a fingerprint.
    public func fingerprint(into digest: inout Digest) {
        digest.add("type", type.rawValue)
        digest.add("mode", String(permissions, radix: 8))
        digest.add("owner", String(owner))
        digest.add("group", String(group))
        digest.add("size", String(size))
        digest.add("inode", "\(device):\(inode)")
        digest.add("ctime", String(changeTime))
        digest.add("mtime", String(modificationTime))
    }
}

/// Permission bits as people write them: `0644`, `2755`.
public enum FileMode {
    public static func format(_ mode: UInt32) -> String {
        let text = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }

    /// Reads `644`, `0644` or `2755`: three or four octal digits and nothing else (no sign).
    public static func parse(_ text: String) -> UInt32? {
        guard (3...4).contains(text.utf8.count), text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }),
              let value = UInt32(text, radix: 8) else { return nil }
        return value
    }
}
