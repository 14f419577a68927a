internal import Glibc

/// A folder only its owner may enter (0700): tend's state directory and Git caches, which hold
/// every file of the configuration, `sensitive` ones included.
public enum PrivateDirectory {
    /// Creates the folder at `path` with mode 0700 (its missing parents 0755, as `mkdir -p`
    /// would), or tightens an existing one to 0700. Returns what it tightened, for the log: a
    /// folder that others could enter was readable by every user of the host until now.
    @discardableResult
    public static func prepare(_ path: String) throws(AtomicFileError) -> String? {
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT else { throw .system("lstat", errno, detail: path) }
            if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex {
                try makeParents(String(path.utf8[..<slash])!)
            }
            if mkdir(path, 0o700) != 0, errno != EEXIST { throw .system("mkdir", errno, detail: path) }
            return nil
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw AtomicFileError(function: "lstat", errno: nil, message: "\(path): is not a directory")
        }
        let mode = info.st_mode & 0o7777
        guard mode & 0o077 != 0 else { return nil }
        if chmod(path, 0o700) != 0 { throw .system("chmod", errno, detail: path) }
        return "tightened \(path) from mode \(String(mode, radix: 8)) to 700: others could read what tend keeps there"
    }

    private static func makeParents(_ path: String) throws(AtomicFileError) {
        var info = stat()
        if stat(path, &info) == 0 { return }
        if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex {
            try makeParents(String(path.utf8[..<slash])!)
        }
        if mkdir(path, 0o755) != 0, errno != EEXIST { throw .system("mkdir", errno, detail: path) }
    }
}
