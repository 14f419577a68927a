internal import Glibc

/// What is at a path, as far as tend tells things apart: a regular file, a folder, a symbolic
/// link, or anything else (device, socket, FIFO). The host's view (`FileStatus`) and the atomic
/// writes (`AtomicFile`) share it.
public enum FileType: String, Sendable, Hashable, Codable {
    case regular = "file", directory, symlink, other

    /// How a person names it ("a regular file").
    public var article: String {
        switch self {
        case .regular: "a regular file"
        case .directory: "a directory"
        case .symlink: "a symbolic link"
        case .other: "a special file"
        }
    }

    /// The type of an `st_mode`.
    public init(mode: UInt32) {
        self = switch mode & S_IFMT {
        case S_IFREG: .regular
        case S_IFDIR: .directory
        case S_IFLNK: .symlink
        default: .other
        }
    }

    /// What is at `name` in the open folder `directory`, not following a link; nil if nothing.
    public init?(of name: String, in directory: Int32) {
        var raw = stat()
        guard fstatat(directory, name, &raw, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        self.init(mode: raw.st_mode)
    }
}
