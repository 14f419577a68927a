internal import SystemPackage
public import TendSpec
internal import Glibc

/// The capability to change the host's filesystem under a root. Only the executor creates one.
///
/// Writes follow one rule: a file is never half written. New content goes to a temporary file in
/// the same folder, created with its final owner and mode before any byte is written, synced,
/// renamed over the target, and the folder is synced. No symbolic link is followed at the path or
/// above it.
///
/// Folders are synced once per apply, by `syncDirectories()`, rather than after every rename: a
/// crash in between may lose a rename but never leaves a file half written, and applying 10,000
/// files in 100 folders costs 100 folder syncs instead of 10,000 (bench/RESULTS.md).
public final class HostWriter {
    /// The read side, for looking before changing.
    public let reader: HostReader
    /// The service manager, to change units with; nil when none runs for this root.
    public let services: (any ServiceManager)?
    /// Where a tool that changes the host (apt) shows its own progress lines as they come, for a
    /// person watching on a terminal; nil when nobody watches.
    public var toolOutput: (@Sendable (String) -> Void)?
    /// Folders whose entries changed since the last sync, by path, each with its own descriptor.
    private var unsyncedDirectories: [String: Int32] = [:]

    init(reader: HostReader, services: (any ServiceManager)?) {
        self.reader = reader
        self.services = services
    }

    deinit {
        for fd in unsyncedDirectories.values { close(fd) }
    }

    /// Syncs every folder whose entries changed, so that the renames and removals are durable.
    public func syncDirectories() throws(HostError) {
        defer {
            for fd in unsyncedDirectories.values { close(fd) }
            unsyncedDirectories.removeAll()
        }
        for (path, fd) in unsyncedDirectories.sorted(by: { $0.key < $1.key }) {
            try check(fsync(fd), "fsync", path)
        }
    }

    private func changed(_ directory: FileDescriptor, path: String) {
        guard unsyncedDirectories[path] == nil else { return }
        let copy = dup(directory.rawValue)
        if copy >= 0 { unsyncedDirectories[path] = copy }
    }

    /// Writes the regular file at `path` with `contents`, atomically (`AtomicFile`). `replacing`
    /// says what the plan found there: nil for nothing (the write fails if something appeared
    /// since), or the type it may replace (anything else is put back and the write fails).
    public func writeFile(_ path: String, contents: [UInt8], mode: UInt32, owner: UInt32, group: UInt32,
                          replacing: FileStatus.FileType?) throws(HostError) {
        let directory = try parentDirectory(of: path)
        let name = try reader.leaf(path)
        do {
            try AtomicFile.write(contents, as: name, in: directory, mode: mode, owner: owner, group: group, replacing: replacing.map { .only($0) } ?? .nothing)
        } catch {
            throw HostError(error, path: path)
        }
        changed(directory, path: HostPath.parent(of: path) ?? "/")
    }

    /// Sets the owner, group and mode of the existing file or folder at `path`, which must still
    /// be of `type` (so a link swapped in since it was observed is never changed through), and,
    /// unless `throughHardLinks`, have no other name (which may lie outside the root).
    public func setAttributes(_ path: String, type: FileStatus.FileType, mode: UInt32?, owner: UInt32?, group: UInt32?,
                              throughHardLinks: Bool = false) throws(HostError) {
        let fd = try reader.openFile(path, flags: O_RDONLY | (type == .directory ? O_DIRECTORY : 0))
        defer { try? fd.close() }
        var raw = stat()
        try check(fstat(fd.rawValue, &raw), "fstat", path)
        let found = FileStatus(raw)
        guard found.type == type else {
            throw HostError(path: path, message: "is now \(found.type.article); expected \(type.article)")
        }
        guard type != .regular || found.linkCount == 1 || throughHardLinks else {
            throw HostError(path: path, message: "has \(found.linkCount) hard links since it was planned; its mode and owner were left as they are")
        }
        if owner != nil || group != nil {
            try check(fchown(fd.rawValue, owner ?? UInt32.max, group ?? UInt32.max), "fchown", path)
        }
        // fchown may have cleared setuid/setgid: apply the mode after it, keeping the old one if none is asked.
        let finalMode = mode ?? found.permissions
        if finalMode != found.permissions || owner != nil || group != nil {
            try check(fchmod(fd.rawValue, mode_t(finalMode)), "fchmod", path)
        }
    }

    /// Creates the folder at `path` with its final mode and owner.
    public func makeDirectory(_ path: String, mode: UInt32, owner: UInt32, group: UInt32) throws(HostError) {
        let parent = try parentDirectory(of: path)
        let name = try reader.leaf(path)
        if mkdirat(parent.rawValue, name, mode_t(mode & 0o700)) != 0 {
            let code = Errno(rawValue: Glibc.errno)
            if code == .fileExists {
                let found = (try? reader.status(path))?.type.article ?? "something"
                throw HostError(path: path, message: "\(found) appeared here since it was planned; nothing was replaced", function: "mkdirat", errno: code)
            }
            throw .system("mkdirat", path: path, code)
        }
        changed(parent, path: HostPath.parent(of: path) ?? "/")
        try setAttributes(path, type: .directory, mode: mode, owner: owner, group: group)
    }

    /// Makes `path` a symbolic link to `target`, atomically; `replacing` as for `writeFile`.
    public func makeSymlink(_ path: String, target: String, replacing: FileStatus.FileType?) throws(HostError) {
        let directory = try parentDirectory(of: path)
        let name = try reader.leaf(path)
        do {
            try AtomicFile.symlink(target, as: name, in: directory, replacing: replacing.map { .only($0) } ?? .nothing)
        } catch {
            throw HostError(error, path: path)
        }
        changed(directory, path: HostPath.parent(of: path) ?? "/")
    }

    /// Removes what is at `path`, which must still be of type `expected` (checked at the moment of
    /// removing). A folder is removed with everything in it only when `recursive`; otherwise it
    /// must be empty. Links are removed, never followed. Nothing there is not an error.
    public func remove(_ path: String, expected: FileStatus.FileType, recursive: Bool) throws(HostError) {
        let name = try reader.leaf(path)
        guard let parent = try reader.directory(HostPath.parent(of: path) ?? "/") else { return }
        var raw = stat()
        if fstatat(parent.rawValue, name, &raw, AT_SYMLINK_NOFOLLOW) != 0 {
            if Glibc.errno == ENOENT { return }
            throw .system("fstatat", path: path, Errno(rawValue: Glibc.errno))
        }
        let found = FileStatus(raw).type
        guard found == expected else {
            throw HostError(path: path, message: "is now \(found.article), not \(expected.article) as planned; it was left as it is")
        }
        changed(parent, path: HostPath.parent(of: path) ?? "/")
        defer { reader.forget(path) }
        if found == .directory, !recursive {
            if unlinkat(parent.rawValue, name, AT_REMOVEDIR) != 0 {
                let code = Errno(rawValue: Glibc.errno)
                if code == .directoryNotEmpty {
                    throw HostError(path: path, message: "is no longer empty; it was left as it is (force: true removes a folder with its contents)", function: "unlinkat", errno: code)
                }
                throw .system("unlinkat", path: path, code)
            }
            return
        }
        try removeTree(in: parent, name: name, path: path)
    }

    /// Removes every temporary file that an interrupted tend left in the folders `paths` lie in
    /// (`AtomicFile.isLeftover`), and returns their paths.
    public func removeLeftovers(inFoldersOf paths: [String]) -> [String] {
        var folders = Set<String>()
        for path in paths { if let parent = HostPath.parent(of: path) { folders.insert(parent) } }
        var removed: [String] = []
        for folder in folders.sorted() {
            guard let fd = try? reader.directory(folder), let names = try? HostReader.entries(ofDescriptor: fd, path: folder) else { continue }
            for name in names where AtomicFile.isLeftover(name) {
                let type = FileType(of: name, in: fd.rawValue)
                guard type == .regular || type == .symlink else { continue }
                if unlinkat(fd.rawValue, name, 0) == 0 {
                    removed.append(HostPath.join(folder, name))
                    changed(fd, path: folder)
                }
            }
        }
        return removed
    }

    /// Creates the missing folders above `path` (mode 0755, owned by root), as `mkdir -p` would.
    public func makeParentDirectories(of path: String) throws(HostError) {
        guard let parent = HostPath.parent(of: path), try reader.status(parent) == nil else { return }
        try makeParentDirectories(of: parent)
        try makeDirectory(parent, mode: 0o755, owner: 0, group: 0)
    }

    private func removeTree(in directory: FileDescriptor, name: String, path: String) throws(HostError) {
        var raw = stat()
        if fstatat(directory.rawValue, name, &raw, AT_SYMLINK_NOFOLLOW) != 0 {
            if Glibc.errno == ENOENT { return }
            throw .system("fstatat", path: path, Errno(rawValue: Glibc.errno))
        }
        if FileStatus(raw).type == .directory {
            let fd = openat(directory.rawValue, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw .system("openat", path: path, Errno(rawValue: Glibc.errno)) }
            defer { close(fd) }
            for entry in try HostReader.entries(ofDescriptor: FileDescriptor(rawValue: fd), path: path) {
                try removeTree(in: FileDescriptor(rawValue: fd), name: entry, path: HostPath.join(path, entry))
            }
            try check(unlinkat(directory.rawValue, name, AT_REMOVEDIR), "unlinkat", path)
        } else {
            try check(unlinkat(directory.rawValue, name, 0), "unlinkat", path)
        }
    }

    private func parentDirectory(of path: String) throws(HostError) -> FileDescriptor {
        guard let parent = HostPath.parent(of: path) else { throw HostError(path: path, message: "cannot replace the root") }
        guard let fd = try reader.directory(parent) else {
            throw HostError(path: path, message: "its folder \(parent) does not exist")
        }
        return fd
    }

    private func check(_ result: Int32, _ function: String, _ path: String) throws(HostError) {
        if result != 0 { throw .system(function, path: path, Errno(rawValue: Glibc.errno)) }
    }
}
