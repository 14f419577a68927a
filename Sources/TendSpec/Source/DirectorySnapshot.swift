public import SystemPackage
internal import Glibc

/// The files of a local folder, read as they are when asked for.
///
/// Every read walks from the folder's own descriptor one name at a time with `O_NOFOLLOW`, as
/// `HostReader` walks a root: a symbolic link inside the folder is listed but never followed, at
/// the file or at any folder above it, just as a Git tree holds a link as a name and a target. So
/// `files/etc -> /etc` cannot make `source: files/etc/shadow` read the host's /etc/shadow, and an
/// `apply:` cannot load a manifest from outside. Only regular files are read (a FIFO would block
/// forever), each of at most `SnapshotLimits.fileSize` bytes.
public struct DirectorySnapshot: Snapshot {
    /// The folder as the user named it (used in messages).
    public let displayPath: String
    /// The folder's absolute path.
    public let absolutePath: FilePath
    private let root: OpenFolder

    /// Opens the folder at `path` (following a link there: the user named it); fails if it is
    /// missing or not a folder.
    public init(path: String) throws(SnapshotError) {
        displayPath = path
        var absolute = FilePath(path)
        if !absolute.isAbsolute {
            absolute = FilePath(Self.currentDirectory()).pushing(absolute)
        }
        absolutePath = absolute.lexicallyNormalized()
        let fd = Glibc.open(absolutePath.string, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            throw SnapshotError(.notFound, path: "", message: "\(path): \(Errno(rawValue: errno))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            close(fd)
            throw SnapshotError(.notADirectory, path: "", message: "\(path): not a directory")
        }
        root = OpenFolder(fd)
    }

    public var description: String { displayPath }

    public var origin: SnapshotOrigin { SnapshotOrigin(type: "directory", location: absolutePath.string) }

    public var displayPrefix: String { displayPath == "." ? "" : displayPath }

    public func entries(in directory: String) throws(SnapshotError) -> [SnapshotEntry] {
        guard !directory.utf8.contains(0) else { throw SnapshotError(.notFound, path: directory, message: "\(Printable.escaped(directory)): contains a NUL byte") }
        let folder = try open(folder: directory, for: directory)
        defer { if folder != root.fd { close(folder) } }
        // A descriptor of its own: a duplicate would share the read position of the cached one.
        let copy = openat(folder, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard copy >= 0, let handle = fdopendir(copy) else {
            let code = errno
            if copy >= 0 { close(copy) }
            throw SnapshotError(.unreadable, path: directory, message: "\(directory): \(Errno(rawValue: code))")
        }
        defer { closedir(handle) }
        var result: [SnapshotEntry] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let kind: SnapshotEntry.Kind = switch Int32(entry.pointee.d_type) {
            case Int32(DT_REG): .file
            case Int32(DT_DIR): .directory
            case Int32(DT_LNK): .symlink
            case Int32(DT_UNKNOWN): Self.kind(of: name, in: folder)
            default: .other
            }
            result.append(SnapshotEntry(name: name, kind: kind))
        }
        return result.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    public func read(_ path: String) throws(SnapshotError) -> [UInt8] {
        guard !path.utf8.contains(0) else { throw SnapshotError(.notFound, path: path, message: "\(Printable.escaped(path)): contains a NUL byte") }
        let (parent, name) = RepositoryPath.split(path)
        let folder = try open(folder: parent, for: path)
        defer { if folder != root.fd { close(folder) } }
        let fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error(errno, path: path, in: folder, name: name) }
        let file = FileDescriptor(rawValue: fd)
        defer { try? file.close() }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SnapshotError(.unreadable, path: path, message: "\(path): \(Errno(rawValue: errno))") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw SnapshotError(.notAFile, path: path, message: "\(path): not a regular file")
        }
        guard info.st_size <= SnapshotLimits.fileSize else { throw .tooLarge(path, size: Int(info.st_size)) }
        do {
            return try file.readToEnd(sizeHint: Int(info.st_size), limit: SnapshotLimits.fileSize)
        } catch {
            throw SnapshotError(.unreadable, path: path, message: "\(path): \(error)")
        }
    }

    /// The folder `directory` (relative, "" for the top), walked from the top without following
    /// a link; the caller closes it unless it is the top's own descriptor.
    private func open(folder directory: String, for requested: String) throws(SnapshotError) -> Int32 {
        var current = root.fd
        for component in directory.split(separator: "/") {
            let name = String(component)
            guard name != "..", name != "." else {
                if current != root.fd { close(current) }
                throw SnapshotError(.notFound, path: requested, message: "\(requested): leaves the repository")
            }
            let next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            let error = next < 0 ? Self.error(code, path: requested, in: current, name: name) : nil
            if current != root.fd { close(current) }
            if let error { throw error }
            current = next
        }
        return current
    }

    private static func error(_ code: Int32, path: String, in folder: Int32, name: String) -> SnapshotError {
        if code == ENOENT { return SnapshotError(.notFound, path: path, message: "\(path): not found") }
        if code == ELOOP || code == ENOTDIR {
            if kind(of: name, in: folder) == .symlink {
                return SnapshotError(.symbolicLink, path: path, message: "\(path): '\(name)' is a symbolic link, which tend never follows in a configuration (as in a Git tree)")
            }
            return SnapshotError(.notADirectory, path: path, message: "\(path): '\(name)' is not a directory")
        }
        return SnapshotError(.unreadable, path: path, message: "\(path): \(Errno(rawValue: code))")
    }

    private static func kind(of name: String, in folder: Int32) -> SnapshotEntry.Kind {
        var info = stat()
        guard fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return .other }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    private static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The descriptor of the snapshot's folder, closed when the last copy of the snapshot goes.
private final class OpenFolder: Sendable {
    let fd: Int32

    init(_ fd: Int32) {
        self.fd = fd
    }

    deinit { close(fd) }
}
