import TendSpec
internal import SystemPackage
internal import Glibc

/// The filesystem under a root, read without ever following a symbolic link, at the path or
/// above it: a link where a folder is expected is an error that names it. What a live
/// `HostReader` reads, and what the executor's `HostWriter` writes through (it walks the same
/// open folders).
final class HostFiles: HostReads {
    let root: String
    /// The open root.
    private let rootDescriptor: FileDescriptor
    /// Open folders by host path, so that observing many files in one folder walks the path once.
    private var directories: [String: FileDescriptor] = [:]

    /// Opens `root`, which must be an existing folder.
    init(root: String) throws(HostError) {
        self.root = root
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = Errno(rawValue: Glibc.errno)
            throw HostError(path: root, message: "cannot open the root folder: \(code)", function: "open", errno: code)
        }
        rootDescriptor = FileDescriptor(rawValue: fd)
    }

    deinit {
        forgetDirectories()
        try? rootDescriptor.close()
    }

    // MARK: Reads

    func status(_ path: String) throws(HostError) -> FileStatus? {
        if path == "/" { return try statusOfDescriptor(rootDescriptor, path: path) }
        let name = try leaf(path)
        guard let parent = try directory(HostPath.parent(of: path) ?? "/") else { return nil }
        var raw = stat()
        if fstatat(parent.rawValue, name, &raw, AT_SYMLINK_NOFOLLOW) != 0 {
            let code = Errno(rawValue: Glibc.errno)
            if code == .noSuchFileOrDirectory { return nil }
            throw .system("fstatat", path: path, code)
        }
        return FileStatus(raw)
    }

    func read(_ path: String) throws(HostError) -> [UInt8] {
        try readWithStatus(path).bytes
    }

    /// The bytes of the regular file at `path`, and its status from the same descriptor.
    func readWithStatus(_ path: String) throws(HostError) -> (bytes: [UInt8], status: FileStatus) {
        let fd = try openFile(path, flags: O_RDONLY)
        defer { try? fd.close() }
        return try readAll(fd, path: path)
    }

    func readLink(_ path: String) throws(HostError) -> String {
        let name = try leaf(path)
        guard let parent = try directory(HostPath.parent(of: path) ?? "/") else {
            throw HostError(path: path, message: "no such file or directory")
        }
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = buffer.withUnsafeMutableBytes { raw in
            readlinkat(parent.rawValue, name, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
        }
        guard count >= 0 else { throw .system("readlinkat", path: path, Errno(rawValue: Glibc.errno)) }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    func entries(of path: String) throws(HostError) -> [String] {
        guard let fd = try directory(path) else { throw HostError(path: path, message: "no such directory") }
        return try Self.entries(ofDescriptor: fd, path: path)
    }

    func nssID(_ name: String, user: Bool) -> UInt32? {
        user ? Accounts.systemUserID(name) : Accounts.systemGroupID(name)
    }

    /// Whether anyone on the host may read the file at `path`: it is readable by others, and
    /// every folder above it lets others through (a 0644 file in /root, 0700, is private).
    func othersMayRead(_ path: String, status: FileStatus) -> Bool {
        guard status.permissions & 0o004 != 0 else { return false }
        var folder = HostPath.parent(of: path)
        while let current = folder {
            guard let found = try? self.status(current), found.permissions & 0o001 != 0 else { return false }
            folder = current == "/" ? nil : HostPath.parent(of: current)
        }
        return true
    }

    // MARK: Walking without following links

    /// Whether the folder at `path` is open already (so it existed when last looked at).
    func holdsDirectory(_ path: String) -> Bool {
        directories[path] != nil
    }

    /// The open folder at `path`, found by walking from the root one component at a time with
    /// `O_NOFOLLOW`; nil when a component does not exist.
    func directory(_ path: String) throws(HostError) -> FileDescriptor? {
        if path == "/" { return rootDescriptor }
        if let cached = directories[path] { return cached }
        let name = try leaf(path)
        guard let parent = try directory(HostPath.parent(of: path) ?? "/") else { return nil }
        let fd = openat(parent.rawValue, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            let code = Errno(rawValue: Glibc.errno)
            if code == .noSuchFileOrDirectory { return nil }
            if code == .tooManySymbolicLinkLevels || code == .notDirectory {
                var raw = stat()
                if fstatat(parent.rawValue, name, &raw, AT_SYMLINK_NOFOLLOW) == 0 {
                    let found = FileStatus(raw)
                    if found.type == .symlink {
                        throw HostError(path: path, message: "is a symbolic link; tend never writes or reads through links", function: "openat", errno: code)
                    }
                    throw HostError(path: path, message: "is \(found.type.article), not a directory", function: "openat", errno: code)
                }
            }
            throw .system("openat", path: path, code)
        }
        if directories.count >= 256 { forgetDirectories() }
        let descriptor = FileDescriptor(rawValue: fd)
        directories[path] = descriptor
        return descriptor
    }

    /// Opens the existing non-directory at `path` with `flags`, refusing links and special files.
    func openFile(_ path: String, flags: Int32) throws(HostError) -> FileDescriptor {
        let name = try leaf(path)
        guard let parent = try directory(HostPath.parent(of: path) ?? "/") else {
            throw HostError(path: path, message: "no such file or directory", function: "openat", errno: .noSuchFileOrDirectory)
        }
        let fd = openat(parent.rawValue, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let code = Errno(rawValue: Glibc.errno)
            if code == .tooManySymbolicLinkLevels {
                throw HostError(path: path, message: "is a symbolic link; tend never writes or reads through links", function: "openat", errno: code)
            }
            throw .system("openat", path: path, code)
        }
        return FileDescriptor(rawValue: fd)
    }

    /// The last component of `path`, refused when walking the path could leave the root: a
    /// relative path, or an empty, `.` or `..` component, or a NUL. Validation refuses such paths
    /// long before; this is the last line, checked at every step of every walk.
    func leaf(_ path: String) throws(HostError) -> String {
        let name = HostPath.name(of: path)
        guard path.utf8.first == UInt8(ascii: "/"), !name.isEmpty, name != ".", name != "..", !name.utf8.contains(0) else {
            throw HostError(path: path, message: "is not a clean absolute path; tend never walks '..', '.' or empty components")
        }
        return name
    }

    /// Drops cached folders at or below `path` (after it was removed or replaced).
    func forget(_ path: String) {
        let prefix = path == "/" ? "/" : path + "/"
        for (key, fd) in directories where key == path || key.hasPrefix(prefix) {
            try? fd.close()
            directories[key] = nil
        }
    }

    /// Closes every open folder: the next walk starts from the root.
    func forgetDirectories() {
        for fd in directories.values { try? fd.close() }
        directories.removeAll()
    }

    private func statusOfDescriptor(_ fd: FileDescriptor, path: String) throws(HostError) -> FileStatus {
        var raw = stat()
        guard fstat(fd.rawValue, &raw) == 0 else { throw .system("fstat", path: path, Errno(rawValue: Glibc.errno)) }
        return FileStatus(raw)
    }

    /// The bytes of the open regular file, and its status from the same descriptor.
    func readAll(_ fd: FileDescriptor, path: String) throws(HostError) -> (bytes: [UInt8], status: FileStatus) {
        let info = try statusOfDescriptor(fd, path: path)
        guard info.type == .regular else { throw HostError(path: path, message: "is \(info.type.article), not a regular file") }
        do {
            return (try fd.readToEnd(sizeHint: info.size, sizeFromFstat: true), info)
        } catch {
            throw .system("read", path: path, error)
        }
    }

    static func entries(ofDescriptor fd: FileDescriptor, path: String) throws(HostError) -> [String] {
        do {
            return try AtomicFile.entries(of: fd).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        } catch {
            throw HostError(path: path, message: error.message, function: error.function, errno: error.errno)
        }
    }
}
