internal import Glibc
internal import SystemPackage

/// A folder only its owner may enter (0700): tend's state directory and Git caches, which hold
/// every file of the configuration, `sensitive` ones included.
public enum PrivateDirectory {
    /// What helps when a state folder refuses this process (`AtomicFileError.isPermission`).
    public static let permissionAdvice = "run as root, or give a folder tend may create with --state-dir"

    /// Creates the folder at `path` with mode 0700 (its missing parents 0755, as `mkdir -p`
    /// would), or tightens an existing one to 0700. Returns what it tightened, for the log: a
    /// folder that others could enter was readable by every user of the host until now.
    @discardableResult
    public static func prepare(_ path: String) throws(AtomicFileError) -> String? {
        var path = path
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        var fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0, errno == ENOENT {
            if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex {
                try makeParents(String(path.utf8[..<slash])!)
            }
            if mkdir(path, 0o700) != 0, errno != EEXIST { throw .system("mkdir", errno, detail: path) }
            fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP || code == ENOTDIR {
                throw AtomicFileError(function: "open", errno: Errno(rawValue: code), message: "\(path): is not a directory (a link or a file); tend keeps its state only in a folder of its own")
            }
            throw .system("open", code, detail: path)
        }
        defer { close(fd) }
        // Checked on the folder opened, so a link or another folder swapped in meanwhile is not it.
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system("fstat", errno, detail: path) }
        guard info.st_uid == geteuid() else {
            throw AtomicFileError(function: "fstat", errno: nil, message: "\(path): is owned by uid \(info.st_uid), not by this process's uid \(geteuid()); whoever owns it could change tend's state")
        }
        let mode = info.st_mode & 0o7777
        guard mode & 0o077 != 0 else { return nil }
        if fchmod(fd, 0o700) != 0 { throw .system("fchmod", errno, detail: path) }
        return "tightened \(path) from mode \(String(mode, radix: 8)) to 700: others could read what tend keeps there"
    }

    /// Creates `path` and its missing parents with mode 0755, as `mkdir -p` would: the folders
    /// above a private one, or one that others must read (node_exporter's textfile folder).
    public static func makeParents(_ path: String) throws(AtomicFileError) {
        var info = stat()
        if stat(path, &info) == 0 { return }
        if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex {
            try makeParents(String(path.utf8[..<slash])!)
        }
        if mkdir(path, 0o755) != 0, errno != EEXIST { throw .system("mkdir", errno, detail: path) }
    }
}
