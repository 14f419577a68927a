internal import SystemPackage
public import TendSpec
internal import Glibc
internal import Dispatch
internal import Synchronization

/// The capability to change the host's filesystem under a root. Only the executor creates one.
///
/// Writes follow one rule: a file is never half written, even after a power cut. New content goes
/// to a temporary file in the same folder, created with its final owner and mode before any byte
/// is written, made durable, and only then renamed over the target; the folder is synced after.
/// No symbolic link is followed at the path or above it.
///
/// Durability is paid per stretch of writes, not per file. While staging (`beginStaging()`), the
/// executor's file steps only say what they would write; `commitStaged()` then writes all the
/// temporaries (a long stretch on several threads), makes them durable together (up to
/// `fsyncLimit` files an fsync each, past it one `syncfs` of the filesystem per part of
/// `partSize` files, the disk writing one part back while the next is written), renames them and
/// syncs their folders, before any of them is reported done. Outside staging, each write is
/// synced on its own. Folders are synced by `syncDirectories()` rather than after every rename,
/// by one `syncfs` where many changed: converging 10,000 files costs about a dozen journal
/// commits instead of 10,000 (bench/RESULTS.md, issue 9).
public final class HostWriter {
    /// The read side, for looking before changing.
    public let reader: HostReader
    /// The service manager, to change units with; nil when none runs for this root.
    public let services: (any ServiceManager)?
    /// Where a tool that changes the host (apt) shows its own progress lines as they come, for a
    /// person watching on a terminal; nil when nobody watches.
    public var toolOutput: (@Sendable (String) -> Void)?
    /// Jobs on tend's own units, asked for by this apply and queued only once its run has ended
    /// (`ApplyReport.jobsAfterRun`): the restart of tend.service stops the process that would
    /// wait for it, and would cut the rest of the run short.
    public private(set) var jobsAfterRun: [UnitJobRequest] = []
    /// What a person should know that did not fail a step: a tool that succeeded with warnings
    /// (apt-get update that could not fetch a source). The run says them as notes.
    public private(set) var warnings: [String] = []
    /// Folders whose entries changed since the last sync, by path, each with its own descriptor.
    private var unsyncedDirectories: [String: Int32] = [:]
    /// What fstat said of each folder in `unsyncedDirectories` when it was added, by path.
    private var folderFacts: [String: FolderFacts] = [:]
    /// The files staged since `beginStaging()`, in order, waiting for `commitStaged()` to write
    /// them; nil when not staging.
    private var staged: [StagedFile]?

    /// A file to write to a temporary name, make durable and put in place.
    private struct StagedFile: Sendable {
        var path: String
        var name: String
        var contents: [UInt8]
        var mode: UInt32
        var owner: UInt32
        var group: UInt32
        /// The folder's path, whose descriptor `unsyncedDirectories` keeps.
        var folder: String
        var replacing: AtomicFile.Replacing
        /// Whether the file gets its owner and group by being created (`AtomicFile.writeTemporary`).
        var ownedAtCreation: Bool
    }

    /// What the writes in a folder depend on: the filesystem it lies on (which `syncfs` makes it
    /// durable), and what group a file created in it gets.
    private struct FolderFacts {
        var device: UInt64
        var group: UInt32
        /// Whether a file created in it gets the folder's group (setgid) rather than the creator's.
        var setgid: Bool
    }

    /// A staged file once its temporary is written.
    private struct WrittenFile: Sendable {
        var file: StagedFile
        var temporary: String
        /// The temporary's descriptor while few enough are staged to fsync each.
        var descriptor: Int32?
    }

    /// Up to this many staged files are made durable by an fsync each; past it, by one `syncfs`
    /// per filesystem for each part of `partSize` files, which costs one journal commit however
    /// many files it covers (and also flushes whatever else is waiting on that filesystem, which a
    /// single repair should not pay).
    static let fsyncLimit = 64
    /// Past this many changed folders of one filesystem, `syncDirectories` syncs the filesystem
    /// once instead of each folder (each fsync of a folder is a journal commit of its own).
    static let folderFsyncLimit = 8
    /// A stretch that has changed this many folders should be committed before it goes on: each
    /// changed folder holds a descriptor until then, and a process may have only 1,024.
    public static let stagedFolderLimit = 256

    /// Adds a warning for the run to say (`warnings`), once.
    public func warn(_ message: String) {
        if !warnings.contains(message) { warnings.append(message) }
    }

    /// Asks for `job` on `unit` once the run has ended (`jobsAfterRun`).
    public func queueAfterRun(_ job: UnitJob, unit: String) {
        if !jobsAfterRun.contains(UnitJobRequest(job: job, unit: unit)) { jobsAfterRun.append(UnitJobRequest(job: job, unit: unit)) }
    }

    /// The filesystem under the root, walked as the reader walks it.
    private let files: HostFiles

    init(reader: HostReader, services: (any ServiceManager)?) {
        guard let files = reader.files else { preconditionFailure("a HostWriter needs a reader of the host, not of a snapshot") }
        self.reader = reader
        self.files = files
        self.services = services
    }

    deinit {
        for fd in unsyncedDirectories.values { close(fd) }
    }

    // MARK: Staging

    /// From now on `writeFile` only stages each file: its temporary is written, made durable with
    /// the others, and renamed into place by `commitStaged()`. Until then the old content stays
    /// in place.
    public func beginStaging() {
        if staged == nil { staged = [] }
    }

    /// How many files wait for `commitStaged()`.
    public var stagedCount: Int { staged?.count ?? 0 }

    /// How many folders hold a descriptor until the next sync (`stagedFolderLimit`).
    public var changedFolderCount: Int { unsyncedDirectories.count }

    /// The paths of the files staged since the first `start` ones, in the order they were staged.
    public func stagedPaths(from start: Int) -> [String] {
        guard let staged, start < staged.count else { return [] }
        return staged[start...].map(\.path)
    }

    /// Writes every staged file's temporary, makes them durable, renames each into place as the
    /// plan allowed, and syncs their folders; then stops staging. Returns the paths that could
    /// not be written or placed, with why (a full disk shows here, for the step that staged the
    /// file): their temporary files are removed and what was there is left as it was.
    ///
    /// syncfs(2) reports a failed write-back only since Linux 5.8; before, a disk that failed
    /// under a large stretch goes unnoticed here, as it would for any program that syncs a
    /// filesystem.
    public func commitStaged() -> [String: HostError] {
        guard let files = staged else { return [:] }
        staged = nil
        var failures: [String: HostError] = [:]
        let durable = files.count <= Self.fsyncLimit ? commitEach(files, failures: &failures) : commitInParts(files, failures: &failures)
        do {
            try syncDirectories()
        } catch {
            // The renames happened but may not survive a power cut: none of them is reported done.
            for path in durable where failures[path] == nil { failures[path] = error }
        }
        return failures
    }

    /// Commits a few files: writes each temporary, fsyncs each, renames each. Returns the paths
    /// of those made durable (whether or not their rename then failed).
    private func commitEach(_ files: [StagedFile], failures: inout [String: HostError]) -> [String] {
        var durable: [WrittenFile] = []
        for file in writeTemporaries(files, keepOpen: true, failures: &failures) {
            if fsync(file.descriptor!) == 0 {
                durable.append(file)
            } else {
                failures[file.file.path] = .system("fsync", path: file.file.path, Errno(rawValue: Glibc.errno))
                unlinkat(unsyncedDirectories[file.file.folder]!, file.temporary, 0)
            }
            close(file.descriptor!)
        }
        for (path, error) in place(durable) { failures[path] = error }
        return durable.map(\.file.path)
    }

    /// A long stretch is committed in parts of this many files.
    static let partSize = 1_024

    /// Commits a long stretch in parts of `partSize` files, each made durable by one `syncfs` of
    /// each filesystem it lies on. The syncs run on a thread of their own, so that the disk writes
    /// one part back while the next part's temporaries are written and the part before is
    /// renamed: a part is renamed only once a sync that began after its temporaries were closed
    /// has returned. Returns the paths of the files made durable (whether or not their rename then
    /// failed).
    ///
    /// Once a filesystem's sync fails, every later part on it fails too: a sync may have written
    /// back (and failed on) the next part's data, and syncfs reports an error only once.
    private func commitInParts(_ files: [StagedFile], failures: inout [String: HostError]) -> [String] {
        var toWrite: [StagedFile] = []
        toWrite.reserveCapacity(files.count)
        for file in files {
            guard folderFacts[file.folder] != nil else {
                // Which filesystem to sync is unknown: the file is not written.
                failures[file.path] = HostError(path: file.path, message: "cannot tell which filesystem its folder is on (fstat failed); it was not written")
                continue
            }
            toWrite.append(file)
        }
        let syncQueue = DispatchQueue(label: "tend.syncfs")
        var durable: [String] = []
        var failedSyncs: [UInt64: AtomicFileError] = [:]
        var previous: (files: [WrittenFile], sync: FilesystemSync)?
        for start in stride(from: 0, to: toWrite.count, by: Self.partSize) {
            let written = writeTemporaries(Array(toWrite[start..<min(start + Self.partSize, toWrite.count)]), keepOpen: false, failures: &failures)
            var filesystems: [UInt64: Int32] = [:]
            for file in written { filesystems[folderFacts[file.file.folder]!.device] = unsyncedDirectories[file.file.folder]! }
            let sync = FilesystemSync(filesystems, on: syncQueue)
            if let previous { durable += placeOnceDurable(previous.files, previous.sync, failedSyncs: &failedSyncs, failures: &failures) }
            previous = (written, sync)
        }
        if let previous { durable += placeOnceDurable(previous.files, previous.sync, failedSyncs: &failedSyncs, failures: &failures) }
        return durable
    }

    /// Waits for `sync`, then renames each file of `files` whose filesystem no sync of this
    /// stretch has failed on (`failedSyncs`, which it adds to); the others fail, their
    /// temporaries removed. Returns the paths of the durable files.
    private func placeOnceDurable(_ files: [WrittenFile], _ sync: FilesystemSync, failedSyncs: inout [UInt64: AtomicFileError],
                                  failures: inout [String: HostError]) -> [String] {
        for (device, error) in sync.wait() where failedSyncs[device] == nil { failedSyncs[device] = error }
        var durable: [WrittenFile] = []
        durable.reserveCapacity(files.count)
        for file in files {
            if let error = failedSyncs[folderFacts[file.file.folder]!.device] {
                failures[file.file.path] = HostError(error, path: file.file.path)
                unlinkat(unsyncedDirectories[file.file.folder]!, file.temporary, 0)
            } else {
                durable.append(file)
            }
        }
        for (path, error) in place(durable) { failures[path] = error }
        return durable.map(\.file.path)
    }

    /// Below this many staged files, one thread writes and renames them all.
    static let parallelLimit = 256

    /// Writes the temporary of each staged file, a long stretch on several threads; keeps their
    /// descriptors open if asked. A file that could not be written is in `failures`, with nothing
    /// of it left behind.
    private func writeTemporaries(_ files: [StagedFile], keepOpen: Bool, failures: inout [String: HostError]) -> [WrittenFile] {
        let folders = unsyncedDirectories
        let slices = ParallelSlices.map(files.count, minimum: Self.parallelLimit) { _, range in
            var written: [WrittenFile] = []
            var failed: [(String, HostError)] = []
            written.reserveCapacity(range.count)
            for file in files[range] {
                do throws(AtomicFileError) {
                    let temporary = try AtomicFile.writeTemporary(file.contents, for: file.name, in: FileDescriptor(rawValue: folders[file.folder]!),
                                                                  mode: file.mode, owner: file.owner, group: file.group,
                                                                  ownedAtCreation: file.ownedAtCreation, keepOpen: keepOpen)
                    written.append(WrittenFile(file: file, temporary: temporary.name, descriptor: temporary.descriptor))
                } catch {
                    failed.append((file.path, HostError(error, path: file.path)))
                }
            }
            return (written, failed)
        }
        for (_, failed) in slices { for (path, error) in failed { failures[path] = error } }
        return slices.flatMap(\.0)
    }

    /// Renames each durable temporary into place as the plan allowed, a long stretch on several
    /// threads; returns the files that could not be placed, their temporaries removed.
    private func place(_ files: [WrittenFile]) -> [(String, HostError)] {
        let folders = unsyncedDirectories
        return ParallelSlices.map(files.count, minimum: Self.parallelLimit) { _, range in
            var failed: [(String, HostError)] = []
            for written in files[range] {
                let directory = folders[written.file.folder]!
                do throws(AtomicFileError) {
                    try AtomicFile.place(written.temporary, as: written.file.name, in: FileDescriptor(rawValue: directory), replacing: written.file.replacing)
                } catch {
                    if !error.placed { unlinkat(directory, written.temporary, 0) }
                    failed.append((written.file.path, HostError(error, path: written.file.path)))
                }
            }
            return failed
        }.flatMap { $0 }
    }

    /// Forgets the files staged since the first `start` ones: a step that failed after it
    /// staged, or an apply that ends early (`start` 0). Nothing of them was written yet.
    public func discardStaged(from start: Int = 0) {
        guard let count = staged?.count, start < count else { return }
        staged!.removeSubrange(start...)
    }

    /// Syncs every folder whose entries changed, so that the renames and removals are durable:
    /// an fsync each, or, where more than `folderFsyncLimit` folders of one filesystem changed, one
    /// `syncfs` of it (each fsync of a folder is a journal commit of its own).
    public func syncDirectories() throws(HostError) {
        defer {
            for fd in unsyncedDirectories.values { close(fd) }
            unsyncedDirectories.removeAll()
            folderFacts.removeAll()
        }
        var byDevice: [UInt64: [(path: String, fd: Int32)]] = [:]
        for (path, fd) in unsyncedDirectories {
            // The filesystem as `changed` found it; asked again only where its fstat had failed.
            var device = folderFacts[path]?.device
            if device == nil {
                var raw = stat()
                try check(fstat(fd, &raw), "fstat", path)
                device = UInt64(raw.st_dev)
            }
            byDevice[device!, default: []].append((path, fd))
        }
        for folders in byDevice.values {
            if folders.count > Self.folderFsyncLimit {
                do {
                    try AtomicFile.syncFilesystem(of: folders[0].fd)
                } catch {
                    throw HostError(error, path: folders[0].path)
                }
                continue
            }
            for (path, fd) in folders.sorted(by: { $0.path < $1.path }) {
                try check(fsync(fd), "fsync", path)
            }
        }
    }

    private func changed(_ directory: FileDescriptor, path: String) {
        guard unsyncedDirectories[path] == nil else { return }
        let copy = dup(directory.rawValue)
        guard copy >= 0 else { return }
        unsyncedDirectories[path] = copy
        var raw = stat()
        if fstat(copy, &raw) == 0 {
            folderFacts[path] = FolderFacts(device: UInt64(raw.st_dev), group: raw.st_gid, setgid: raw.st_mode & S_ISGID != 0)
        }
    }

    /// This process's effective user and group, asked once (tend never changes them).
    private static let identity = (user: geteuid(), group: getegid())

    /// Writes the regular file at `path` with `contents`, atomically (`AtomicFile`). `replacing`
    /// says what the plan found there: nil for nothing (the write fails if something appeared
    /// since), or the type it may replace (anything else is put back and the write fails).
    public func writeFile(_ path: String, contents: [UInt8], mode: UInt32, owner: UInt32, group: UInt32,
                          replacing: FileStatus.FileType?) throws(HostError) {
        let directory = try parentDirectory(of: path)
        let name = try files.leaf(path)
        let replace: AtomicFile.Replacing = replacing.map { .only($0) } ?? .nothing
        if staged != nil {
            try stage(contents, path: path, name: name, in: directory, mode: mode, owner: owner, group: group, replacing: replace)
            return
        }
        do {
            try AtomicFile.write(contents, as: name, in: directory, mode: mode, owner: owner, group: group, replacing: replace)
        } catch {
            throw HostError(error, path: path)
        }
        changed(directory, path: HostPath.parent(of: path) ?? "/")
    }

    /// Writes `contents` as `writeFile` does, never staged, but asks `check` about the temporary
    /// (its path as this machine sees it, under the root) once it is written and durable, and
    /// renames it into place only if `check` returns: a file's `validate:` command. When `check`
    /// throws, the temporary is removed and the old file stays.
    public func writeFile(_ path: String, contents: [UInt8], mode: UInt32, owner: UInt32, group: UInt32,
                          replacing: FileStatus.FileType?, checkedBy check: (String) async throws(HostError) -> Void) async throws(HostError) {
        let directory = try parentDirectory(of: path)
        let name = try files.leaf(path)
        let folder = HostPath.parent(of: path) ?? "/"
        let temporary: AtomicFile.Temporary
        do {
            temporary = try AtomicFile.writeTemporary(contents, for: name, in: directory, mode: mode, owner: owner, group: group, keepOpen: true)
        } catch {
            throw HostError(error, path: path)
        }
        var placed = false
        defer {
            if let fd = temporary.descriptor { close(fd) }
            if !placed { unlinkat(directory.rawValue, temporary.name, 0) }
        }
        if let fd = temporary.descriptor, fsync(fd) != 0 { throw .system("fsync", path: path, Errno(rawValue: Glibc.errno)) }
        let seen = (reader.root == "/" ? "" : reader.root) + (folder == "/" ? "" : folder) + "/" + temporary.name
        try await check(seen)
        do {
            try AtomicFile.place(temporary.name, as: name, in: directory, replacing: replacing.map { .only($0) } ?? .nothing)
            placed = true
        } catch {
            placed = error.placed
            throw HostError(error, path: path)
        }
        changed(directory, path: folder)
    }

    private func stage(_ contents: [UInt8], path: String, name: String, in directory: FileDescriptor, mode: UInt32,
                       owner: UInt32, group: UInt32, replacing: AtomicFile.Replacing) throws(HostError) {
        let folder = HostPath.parent(of: path) ?? "/"
        changed(directory, path: folder)
        guard unsyncedDirectories[folder] != nil else { throw .system("dup", path: path, Errno(rawValue: Glibc.errno)) }
        // A file created in a folder gets the creator's group, or the folder's where it is setgid
        // (fstat at creation catches a mount with rules of its own, such as grpid).
        let ownedAtCreation = owner == Self.identity.user && group == Self.identity.group
            && folderFacts[folder].map { !$0.setgid || $0.group == group } ?? false
        staged!.append(StagedFile(path: path, name: name, contents: contents, mode: mode, owner: owner, group: group,
                                  folder: folder, replacing: replacing, ownedAtCreation: ownedAtCreation))
    }

    /// Sets the owner, group and mode of the existing file or folder at `path`, which must still
    /// be of `type` (so a link swapped in since it was observed is never changed through), and,
    /// unless `throughHardLinks`, have no other name (which may lie outside the root).
    public func setAttributes(_ path: String, type: FileStatus.FileType, mode: UInt32?, owner: UInt32?, group: UInt32?,
                              throughHardLinks: Bool = false) throws(HostError) {
        let fd = try files.openFile(path, flags: O_RDONLY | (type == .directory ? O_DIRECTORY : 0))
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
        let name = try files.leaf(path)
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
        let name = try files.leaf(path)
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
        let name = try files.leaf(path)
        guard let parent = try files.directory(HostPath.parent(of: path) ?? "/") else { return }
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
        defer { files.forget(path) }
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
            // Unsorted: a folder of thousands of managed files is listed on every check.
            guard let fd = try? files.directory(folder), let names = try? AtomicFile.entries(of: fd) else { continue }
            for name in names where name.utf8.first == UInt8(ascii: ".") && AtomicFile.isLeftover(name) {
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
        // A folder the reader holds open exists: no lstat for each of 10,000 files in 100 folders.
        guard let parent = HostPath.parent(of: path), !files.holdsDirectory(parent), try reader.status(parent) == nil else { return }
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
            for entry in try HostFiles.entries(ofDescriptor: FileDescriptor(rawValue: fd), path: path) {
                try removeTree(in: FileDescriptor(rawValue: fd), name: entry, path: HostPath.join(path, entry))
            }
            try check(unlinkat(directory.rawValue, name, AT_REMOVEDIR), "unlinkat", path)
        } else {
            try check(unlinkat(directory.rawValue, name, 0), "unlinkat", path)
        }
    }

    private func parentDirectory(of path: String) throws(HostError) -> FileDescriptor {
        guard let parent = HostPath.parent(of: path) else { throw HostError(path: path, message: "cannot replace the root") }
        guard let fd = try files.directory(parent) else {
            throw HostError(path: path, message: "its folder \(parent) does not exist")
        }
        return fd
    }

    private func check(_ result: Int32, _ function: String, _ path: String) throws(HostError) {
        if result != 0 { throw .system(function, path: path, Errno(rawValue: Glibc.errno)) }
    }
}

/// A `syncfs` of some filesystems, running on a queue of its own while the caller goes on.
private final class FilesystemSync: Sendable {
    /// Each filesystem whose sync failed, by device; complete once `done` is signalled.
    private let failures = Mutex<[UInt64: AtomicFileError]>([:])
    private let done = DispatchSemaphore(value: 0)

    /// Starts syncing each filesystem (a descriptor of a folder on it, by device) on `queue`.
    init(_ filesystems: [UInt64: Int32], on queue: DispatchQueue) {
        queue.async {
            for (device, descriptor) in filesystems {
                do throws(AtomicFileError) {
                    try AtomicFile.syncFilesystem(of: descriptor)
                } catch {
                    self.failures.withLock { $0[device] = error }
                }
            }
            self.done.signal()
        }
    }

    /// Waits for the syncs to return; gives the filesystems whose sync failed.
    func wait() -> [UInt64: AtomicFileError] {
        done.wait()
        return failures.withLock { $0 }
    }
}
