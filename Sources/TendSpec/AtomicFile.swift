public import SystemPackage
internal import Glibc
import Synchronization

/// The one way tend writes a file, whether a managed file under a root or one of its own (state,
/// plan files): a temporary file in the same folder, created with its final owner and mode before
/// any byte is written, synced, and renamed into place. A reader sees the old file or the new one,
/// never a torn one, and a kill at any moment leaves at most a temporary file that the next run
/// removes (`isLeftover`).
///
/// Lives in TendSpec, the target every other one depends on, so that TendGit (which knows nothing
/// of resources) writes its records with the same primitive as the executor.
public enum AtomicFile {
    /// What the rename may replace. The check is made by the rename itself (`renameat2` with
    /// `RENAME_NOREPLACE` or `RENAME_EXCHANGE`), so nothing that appeared since it was planned is
    /// ever lost.
    public enum Replacing: Sendable, Hashable {
        /// Nothing may be at the name: the rename fails if something appeared.
        case nothing
        /// Only what is of this type; anything else is put back and the write fails.
        case only(FileType)
        /// Whatever is there (tend's own files, which no one else writes).
        case anything
    }

    /// Writes `contents` as `name` in the open folder `directory`. The temporary file is created
    /// readable by its owner only, `owner` and `group` are set, then the bytes are written, and
    /// the mode comes last: fchown and a write by a process without CAP_FSETID both clear setuid
    /// and setgid. The folder itself is not synced: callers that write many files sync each
    /// folder once.
    public static func write(_ contents: [UInt8], as name: String, in directory: FileDescriptor, mode: UInt32,
                             owner: UInt32? = nil, group: UInt32? = nil, replacing: Replacing) throws(AtomicFileError) {
        let staged = try writeTemporary(contents, for: name, in: directory, mode: mode, owner: owner, group: group, keepOpen: true)
        defer { if let fd = staged.descriptor { close(fd) } }
        do {
            try check(fsync(staged.descriptor!), "fsync")
            try place(staged.name, as: name, in: directory, replacing: replacing)
        } catch {
            if !error.placed { unlinkat(directory.rawValue, staged.name, 0) }
            throw error
        }
    }

    /// A temporary file written in full but neither synced nor renamed into place yet.
    public struct Temporary: Sendable {
        /// Its name in the folder it was written in.
        public var name: String
        /// Its descriptor, when asked to keep it open (to fsync it later); the caller closes it.
        public var descriptor: Int32?
    }

    /// The first half of `write`: writes `contents` to a new temporary file for `name` in
    /// `directory`, with its owner, group and mode, and returns its name, without syncing it. A
    /// caller that writes many files makes them durable together (one `syncfs`, or an `fsync` of
    /// each kept descriptor) and then `place`s each: the data is on disk before any name points
    /// at it, so no file is ever seen half written, even after a power cut.
    ///
    /// `ownedAtCreation` says that a file this process creates in `directory` gets `owner` and
    /// `group` (they are its effective IDs, and the folder is not setgid or is of its group). The
    /// file is then created with its final mode, which exposes nothing its final owner and mode
    /// would not, and the fchown and fchmod (two more updates of the inode) are skipped where
    /// fstat shows the creation gave exactly them; a mode that the umask narrowed is set after
    /// the write. If fstat shows another owner or group (a mount with rules of its own), that
    /// file is removed unwritten and the content written again as `write` says: readable by its
    /// owner only until its owner and mode are set.
    public static func writeTemporary(_ contents: [UInt8], for name: String, in directory: FileDescriptor, mode: UInt32,
                                      owner: UInt32? = nil, group: UInt32? = nil, ownedAtCreation: Bool = false,
                                      keepOpen: Bool) throws(AtomicFileError) -> Temporary {
        let temporary = temporaryName(for: name)
        // Setuid, setgid and sticky bits are always set last, by fchmod.
        let direct = ownedAtCreation && mode & 0o7000 == 0
        let fd = openat(directory.rawValue, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(direct ? mode : mode & 0o700))
        guard fd >= 0 else { throw .system("openat", errno) }
        var settled = (owner: false, mode: false)
        if direct {
            var raw = stat()
            guard fstat(fd, &raw) == 0, owner.map({ raw.st_uid == $0 }) ?? true, group.map({ raw.st_gid == $0 }) ?? true else {
                // Created for someone else than foreseen, and open to them: start again the careful way.
                close(fd)
                unlinkat(directory.rawValue, temporary, 0)
                return try writeTemporary(contents, for: name, in: directory, mode: mode, owner: owner, group: group, keepOpen: keepOpen)
            }
            settled = (true, UInt32(raw.st_mode) & 0o7777 == mode)
        }
        var written = false
        defer {
            if !written {
                close(fd)
                unlinkat(directory.rawValue, temporary, 0)
            } else if !keepOpen {
                close(fd)
            }
        }
        if !settled.owner, owner != nil || group != nil {
            try check(fchown(fd, owner ?? UInt32.max, group ?? UInt32.max), "fchown")
        }
        var offset = 0
        while offset < contents.count {
            let n = contents.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .system("write", errno)
            }
            offset += n
        }
        if !settled.mode {
            try check(fchmod(fd, mode_t(mode)), "fchmod")
        }
        written = true
        return Temporary(name: temporary, descriptor: keepOpen ? fd : nil)
    }

    /// Makes `name` in `directory` a symbolic link to `target`, through a temporary link renamed
    /// into place as `replacing` allows.
    public static func symlink(_ target: String, as name: String, in directory: FileDescriptor, replacing: Replacing) throws(AtomicFileError) {
        let temporary = temporaryName(for: name)
        try check(symlinkat(target, directory.rawValue, temporary), "symlinkat")
        do {
            try place(temporary, as: name, in: directory, replacing: replacing)
        } catch {
            if !error.placed { unlinkat(directory.rawValue, temporary, 0) }
            throw error
        }
    }

    /// Writes the file at `path` (an absolute or relative path on this machine, links followed as
    /// the user named it) with `mode`, replacing whatever file is there, and syncs its folder. For
    /// tend's own files: state and plan files. A file that exists keeps no other mode.
    public static func write(_ contents: [UInt8], toPath path: String, mode: UInt32) throws(AtomicFileError) {
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let folder = slash.map { $0 == path.utf8.startIndex ? "/" : String(path.utf8[..<$0])! } ?? "."
        let name = slash.map { String(path.utf8[path.utf8.index(after: $0)...])! } ?? path
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("open", errno, detail: "the folder \(folder)") }
        let directory = FileDescriptor(rawValue: fd)
        defer { try? directory.close() }
        removeLeftovers(of: name, in: directory)
        try write(contents, as: name, in: directory, mode: mode, replacing: .anything)
        try check(fsync(fd), "fsync")
    }

    // MARK: Leftovers

    /// Removes the temporary files of `name` that killed runs left in `directory`.
    static func removeLeftovers(of name: String, in directory: FileDescriptor) {
        guard let names = try? entries(of: directory) else { return }
        let prefix = temporaryName(for: name, serial: nil)
        for entry in names where entry.hasPrefix(prefix) && isLeftover(entry) && FileType(of: entry, in: directory.rawValue) == .regular {
            unlinkat(directory.rawValue, entry, 0)
        }
    }

    /// The names in the open folder `directory`, without `.` and `..`, read through a descriptor
    /// of its own (a duplicate would share the folder's read position).
    public static func entries(of directory: FileDescriptor) throws(AtomicFileError) -> [String] {
        let fd = openat(directory.rawValue, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("openat", errno) }
        guard let handle = fdopendir(fd) else {
            let code = errno
            close(fd)
            throw .system("fdopendir", code)
        }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The name of the temporary file for `name`: `.NAME.tend-PID-N`, kept under 255 bytes;
    /// without a serial, the part every process's temporaries of `name` start with.
    static func temporaryName(for name: String, serial: Int? = next()) -> String {
        var prefix = Substring(name)
        while prefix.utf8.count > 200 { prefix = prefix.dropLast() }
        guard let serial else { return ".\(prefix).tend-" }
        return ".\(prefix).tend-\(processID)-\(serial)"
    }

    /// This process's ID, asked once (tend never forks without exec'ing).
    private static let processID = getpid()

    private static func next() -> Int {
        counter.withLock { value in
            value += 1
            return value
        }
    }

    /// Whether `name` is a temporary file that a tend process other than this one left behind
    /// (killed between creating it and renaming it): `.NAME.tend-PID-N` whose PID is not a
    /// running process.
    public static func isLeftover(_ name: String) -> Bool {
        guard name.hasPrefix("."), let marker = name.ranges(of: ".tend-").last else { return false }
        let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = Int32(parts[0]), Int(parts[1]) != nil, pid > 0 else { return false }
        if pid == processID { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    // MARK: Placing

    /// The second half of `write`: renames the temporary file into place as `replacing` allows.
    /// On failure the temporary is left for the caller to remove, unless the error says it now
    /// holds what was there (`placed`).
    public static func place(_ temporary: String, as name: String, in directory: FileDescriptor, replacing: Replacing) throws(AtomicFileError) {
        let dir = directory.rawValue
        switch replacing {
        case .anything:
            try check(renameat(dir, temporary, dir, name), "renameat")
        case .nothing:
            if renameat2(dir, temporary, dir, name, renameNoReplace) == 0 { return }
            let code = errno
            if code == EEXIST {
                let found = FileType(of: name, in: dir).map { " (\($0.article))" } ?? ""
                throw AtomicFileError(function: "renameat2", errno: Errno(rawValue: code),
                                      message: "something appeared here since it was planned\(found); nothing was replaced")
            }
            guard cannotExchange(code) else { throw .system("renameat2", code) }
            // The filesystem cannot rename without replacing: look, then rename (a short race).
            if let found = FileType(of: name, in: dir) {
                throw AtomicFileError(function: "fstatat", errno: .fileExists, message: "something appeared here since it was planned (\(found.article)); nothing was replaced")
            }
            try check(renameat(dir, temporary, dir, name), "renameat")
        case .only(let expected):
            if renameat2(dir, temporary, dir, name, renameExchange) == 0 {
                // The old entry now has the temporary name: keep it only if it is what was planned.
                let found = FileType(of: temporary, in: dir)
                if found == expected, unlinkat(dir, temporary, expected == .directory ? AT_REMOVEDIR : 0) == 0 { return }
                let code = errno
                guard renameat2(dir, temporary, dir, name, renameExchange) == 0 else {
                    // The new content is in place; what was there is kept under a name that no
                    // later run takes for a leftover of its own, and that name is said.
                    let code = errno
                    let kept = ".\(name.prefix(200)).tend-kept-\(processID)-\(next())"
                    let keptName = renameat2(dir, temporary, dir, kept, renameNoReplace) == 0 ? kept : temporary
                    throw AtomicFileError(function: "renameat2", errno: Errno(rawValue: code), placed: true,
                                          message: "what was here (\(found?.article ?? "gone")) could not be put back; it is kept as \(keptName)")
                }
                if found == expected { throw .system("unlinkat", code, detail: "cannot remove what was there; it was left as it is") }
                throw AtomicFileError(function: "renameat2", errno: nil,
                                      message: "is now \(found?.article ?? "gone"), not \(expected.article) as planned; it was left as it is")
            }
            let code = errno
            if code == ENOENT {
                // Gone since it was planned: nothing is lost by creating it.
                return try place(temporary, as: name, in: directory, replacing: .nothing)
            }
            guard cannotExchange(code) else { throw .system("renameat2", code) }
            let found = FileType(of: name, in: dir)
            guard found == expected || found == nil else {
                throw AtomicFileError(function: "fstatat", errno: nil, message: "is now \(found!.article), not \(expected.article) as planned; it was left as it is")
            }
            try check(renameat(dir, temporary, dir, name), "renameat")
        }
    }

    /// Whether renameat2 failed because the filesystem (or the kernel) cannot do it, rather than
    /// because of what is at the names: EINVAL where the flags are not supported, EXDEV on
    /// overlayfs when an entry of a lower layer would be exchanged.
    private static func cannotExchange(_ code: Int32) -> Bool {
        code == EINVAL || code == EXDEV || code == ENOSYS
    }

    // renameat2 is declared by glibc only under _GNU_SOURCE, which Swift's Glibc module does not
    // set, and syscall(2) is variadic: so it is looked up by name, once. The flags are those of
    // linux/fs.h. Without it (glibc before 2.28) every rename reports EINVAL and takes the
    // look-then-rename path below.
    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    private static let renameat2Function: RenameAt2? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2")
        .map { unsafeBitCast($0, to: RenameAt2.self) }
    private static let renameNoReplace: UInt32 = 1
    private static let renameExchange: UInt32 = 2

    @discardableResult
    private static func renameat2(_ fromDirectory: Int32, _ from: String, _ toDirectory: Int32, _ to: String, _ flags: UInt32) -> Int32 {
        guard let function = renameat2Function else {
            errno = EINVAL
            return -1
        }
        return function(fromDirectory, from, toDirectory, to, flags)
    }

    /// Syncs the whole filesystem that the open `descriptor` lies on (`syncfs(2)`): one call makes
    /// every temporary file written there durable, where an fsync each would cost a journal
    /// commit each.
    public static func syncFilesystem(of descriptor: Int32) throws(AtomicFileError) {
        guard let syncfs = syncfsFunction else {
            Glibc.sync()
            return
        }
        try check(syncfs(descriptor), "syncfs")
    }

    // Like renameat2, syncfs is declared only under _GNU_SOURCE. Without it, sync(2).
    private typealias SyncFS = @convention(c) (Int32) -> Int32
    private static let syncfsFunction: SyncFS? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "syncfs")
        .map { unsafeBitCast($0, to: SyncFS.self) }

    private static func check(_ result: Int32, _ function: String) throws(AtomicFileError) {
        if result != 0 { throw .system(function, errno) }
    }

    /// A process-wide counter for temporary names, so that two writers never pick the same one.
    private static let counter = Mutex(0)
}

/// A write that did not happen: the C function, its errno and what it means.
public struct AtomicFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var function: String
    public var errno: Errno?
    /// Whether the new content is in place all the same (the temporary name then holds what was
    /// there before, and must not be removed).
    public var placed = false
    public var message: String

    static func system(_ function: String, _ code: Int32, detail: String? = nil) -> AtomicFileError {
        let errno = Errno(rawValue: code)
        return AtomicFileError(function: function, errno: errno, message: (detail.map { "\($0): " } ?? "") + "\(errno) (\(function))")
    }

    public var description: String { message }

    /// Whether the call was refused for lack of permission (not this process's folder, a
    /// read-only filesystem), where running as root or choosing another folder helps; a full
    /// disk or a folder owned by someone else is not.
    public var isPermission: Bool { errno?.isPermission ?? false }
}

extension Errno {
    /// EACCES, EPERM or EROFS: see `AtomicFileError.isPermission`.
    public var isPermission: Bool { self == .permissionDenied || self == .notPermitted || self == .readOnlyFileSystem }
}
