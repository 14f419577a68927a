public import SystemPackage
internal import Glibc

/// The files of a local folder, read as they are when asked for.
///
/// Symbolic links inside the folder are listed but never followed, as in a Git tree, so a
/// `source:` cannot reach outside the repository through a link.
public struct DirectorySnapshot: Snapshot {
    /// The folder as the user named it (used in messages).
    public let displayPath: String
    /// The folder's absolute path.
    public let absolutePath: FilePath

    /// Opens the folder at `path`; fails if it is missing or not a folder.
    public init(path: String) throws(SnapshotError) {
        displayPath = path
        var absolute = FilePath(path)
        if !absolute.isAbsolute {
            absolute = FilePath(Self.currentDirectory()).pushing(absolute)
        }
        absolutePath = absolute.lexicallyNormalized()
        let info: Stat
        do {
            info = try Stat(absolutePath)
        } catch {
            throw SnapshotError(.notFound, path: "", message: "\(path): \(error)")
        }
        guard info.type == .directory else {
            throw SnapshotError(.notADirectory, path: "", message: "\(path): not a directory")
        }
    }

    public var description: String { displayPath }

    public var origin: SnapshotOrigin { SnapshotOrigin(type: "directory", location: absolutePath.string) }

    public var displayPrefix: String { displayPath == "." ? "" : displayPath }

    public func entries(in directory: String) throws(SnapshotError) -> [SnapshotEntry] {
        let full = absolutePath.appending(directory).string
        guard let handle = opendir(full) else {
            let code = errno
            throw SnapshotError(code == ENOENT ? .notFound : code == ENOTDIR ? .notADirectory : .unreadable,
                                path: directory, message: "\(directory): \(Errno(rawValue: code))")
        }
        defer { closedir(handle) }
        var result: [SnapshotEntry] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            let kind: SnapshotEntry.Kind = switch Int32(entry.pointee.d_type) {
            case Int32(DT_REG): .file
            case Int32(DT_DIR): .directory
            case Int32(DT_LNK): .symlink
            default: lstatKind(full + "/" + name)
            }
            result.append(SnapshotEntry(name: name, kind: kind))
        }
        return result.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    public func read(_ path: String) throws(SnapshotError) -> [UInt8] {
        let full = absolutePath.appending(path)
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(full, .readOnly, options: [.noFollow, .closeOnExec])
        } catch {
            let code: SnapshotError.Code = switch error {
            case .noSuchFileOrDirectory: .notFound
            case .tooManySymbolicLinkLevels: .notAFile
            default: .unreadable
            }
            let reason = code == .notAFile ? "is a symbolic link" : "\(error)"
            throw SnapshotError(code, path: path, message: "\(path): \(reason)")
        }
        defer { try? fd.close() }
        do {
            let info = try fd.stat()
            guard info.type == .regular else {
                throw SnapshotError(.notAFile, path: path, message: "\(path): not a regular file")
            }
            return try fd.readToEnd(sizeHint: Int(info.size))
        } catch let error as SnapshotError {
            throw error
        } catch {
            throw SnapshotError(.unreadable, path: path, message: "\(path): \(error)")
        }
    }

    private func lstatKind(_ path: String) -> SnapshotEntry.Kind {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .other }
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
