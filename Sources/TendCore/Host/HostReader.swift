internal import SystemPackage
public import FoundationEssentials
import TendSpec
internal import Glibc

/// A read-only view of the host's filesystem under a root, for observing.
///
/// Every path is absolute and taken under `root`. No symbolic link is ever followed, at the path
/// or above it: a link where a folder is expected is an error that names it. This type has no
/// method that changes anything; only a `HostWriter`, which the executor alone creates, does.
///
/// A reader may also record what it reads into a `HostSnapshot` (`tend snapshot`), or answer
/// every read from one instead of the host (`init(replaying:)`, `tend plan --snapshot`).
public final class HostReader {
    /// The root under which every path is taken ("/" for the host itself).
    public let root: String
    /// The service manager, read-only; nil when none runs for this root (another root, or no
    /// systemd as PID 1).
    public let services: ServiceManagerView?
    /// Why there is no service manager although systemd runs for this root (it did not answer
    /// on the bus), for what needs one to say so; nil otherwise.
    public var servicesUnreachable: String?
    /// The open root; -1 for a reader that replays a snapshot, whose every read is answered
    /// before a descriptor is used.
    private let rootDescriptor: FileDescriptor
    /// The snapshot every read is answered from, instead of the host.
    private let replay: HostSnapshot?
    /// Where what is read is recorded, for `tend snapshot`.
    public let recorder: HostSnapshot.Recorder?
    /// What a replayed snapshot holds nothing of, taken as absent: paths, `user NAME` and
    /// `group NAME` (NSS), `unit NAME`. What a preview assumed.
    public var unrecorded: Set<String> {
        unrecordedPaths.union(replayedServices?.missing.map { "unit " + $0 } ?? [])
    }
    private var unrecordedPaths: Set<String> = []
    private let replayedServices: HostSnapshot.ReplayedServices?
    /// Open folders by host path, so that observing many files in one folder walks the path once.
    private var directories: [String: FileDescriptor] = [:]
    private var accountsCache: Accounts?
    /// What providers read in bulk for a whole run (the dpkg status file), by `BulkRead` name.
    private var bulkReads: [String: Any] = [:]

    /// Opens `root`, which must be an existing folder.
    public init(root: String, services: (any ServiceManager)? = nil, recorder: HostSnapshot.Recorder? = nil) throws(HostError) {
        self.root = root
        self.recorder = recorder
        replay = nil
        replayedServices = nil
        let services = recorder.flatMap { recorder in services.map { HostSnapshot.RecordingServices($0, recorder: recorder) } } ?? services
        self.services = services.map(ServiceManagerView.init)
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = Errno(rawValue: Glibc.errno)
            throw HostError(path: root, message: "cannot open the root folder: \(code)", function: "open", errno: code)
        }
        rootDescriptor = FileDescriptor(rawValue: fd)
    }

    /// A reader of the host `snapshot` recorded, at the root "/": it never reads this machine.
    public init(replaying snapshot: HostSnapshot) {
        root = "/"
        replay = snapshot
        recorder = nil
        replayedServices = snapshot.services ? HostSnapshot.ReplayedServices(snapshot.units) : nil
        services = replayedServices.map(ServiceManagerView.init)
        rootDescriptor = FileDescriptor(rawValue: -1)
        if !snapshot.services {
            servicesUnreachable = "no service manager ran where the snapshot was taken (a root, or a host without systemd): its units are not planned from it"
        }
    }

    deinit {
        forgetDirectories()
        if replay == nil { try? rootDescriptor.close() }
    }

    /// Whether reads go to the host and nothing records them: only such a reader may be joined
    /// by others over the same root (the planner's observing threads).
    public var isPlain: Bool { replay == nil && recorder == nil }

    /// The recorded entry of `path` in the replayed snapshot; nil (noted in `unrecorded`) when
    /// the snapshot does not hold it.
    private func replayed(_ path: String, in snapshot: HostSnapshot) -> HostSnapshot.Path? {
        guard let entry = snapshot.paths[path] else {
            unrecordedPaths.insert(path)
            return nil
        }
        return entry
    }

    private func notInSnapshot(_ path: String, _ what: String) -> HostError {
        HostError(path: path, message: "\(what) is not in the snapshot")
    }

    /// `lstat` of `path`; nil when it or one of its folders does not exist.
    public func status(_ path: String) throws(HostError) -> FileStatus? {
        if let replay { return replayed(path, in: replay)?.status }
        let found = try liveStatus(path)
        recorder?.status(path, found)
        return found
    }

    private func liveStatus(_ path: String) throws(HostError) -> FileStatus? {
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

    /// The bytes of the regular file at `path`.
    public func read(_ path: String) throws(HostError) -> [UInt8] {
        if let replay {
            guard let entry = replayed(path, in: replay), entry.status != nil else { throw HostError(path: path, message: "no such file or directory") }
            guard let text = entry.text else { throw notInSnapshot(path, entry.digest == nil ? "its content" : "its content (only its digest)") }
            return Array(text)
        }
        let fd = try openFile(path, flags: O_RDONLY)
        defer { try? fd.close() }
        let (bytes, status) = try readAll(fd, path: path)
        recorder?.content(path, bytes, status: status, othersMayRead: othersMayRead(path, status: status))
        return bytes
    }

    /// Whether anyone on the host may read the file at `path`: it is readable by others, and
    /// every folder above it lets others through (a 0644 file in /root, 0700, is private).
    private func othersMayRead(_ path: String, status: FileStatus) -> Bool {
        guard status.permissions & 0o004 != 0 else { return false }
        var folder = HostPath.parent(of: path)
        while let current = folder {
            guard let found = try? liveStatus(current), found.permissions & 0o001 != 0 else { return false }
            folder = current == "/" ? nil : HostPath.parent(of: current)
        }
        return true
    }

    /// The digest (`StatCache.digest(of:)`) a replayed snapshot holds instead of the content of
    /// the file at `path`, which may not be shown; nil when it holds the content, or on a host.
    public func recordedDigest(_ path: String) -> String? {
        guard let entry = replay?.paths[path], entry.text == nil else { return nil }
        return entry.digest
    }

    /// What a provider kept of a tool's answer under `key` in the replayed snapshot (apt's
    /// candidate versions); nil when it kept none or on a host.
    public func recordedValue(_ key: String) -> String? {
        replay?.values[key]
    }

    /// Now, for what ages (apt's lists): when the replayed snapshot was taken, or the clock.
    public var now: Date { replay?.taken ?? Date() }

    /// Whether reads are answered from a snapshot: providers then run no tools.
    public var replaysSnapshot: Bool { replay != nil }

    /// Keeps a tool's answer in the snapshot being recorded, for `recordedValue`.
    public func record(_ key: String, value: String) {
        recorder?.update { $0.values[key] = value }
    }

    /// The target of the symbolic link at `path`.
    public func readLink(_ path: String) throws(HostError) -> String {
        if let replay {
            guard let link = replayed(path, in: replay)?.link else { throw notInSnapshot(path, "the link's target") }
            return link
        }
        let target = try liveReadLink(path)
        recorder?.path(path) { $0.link = target }
        return target
    }

    private func liveReadLink(_ path: String) throws(HostError) -> String {
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

    /// The names in the folder at `path`, sorted, without `.` and `..`.
    public func entries(of path: String) throws(HostError) -> [String] {
        if let replay {
            guard let entries = replayed(path, in: replay)?.entries else { throw notInSnapshot(path, "the folder's listing") }
            return entries
        }
        guard let fd = try directory(path) else { throw HostError(path: path, message: "no such directory") }
        let names = try Self.entries(ofDescriptor: fd, path: path)
        recorder?.path(path) { $0.entries = names }
        return names
    }

    // MARK: Bulk reads

    /// What a provider read in bulk (one read of the dpkg status file for every package), kept
    /// for the life of this reader, which is one run: planning and applying share it. The
    /// provider that changes what it read sets it again (apt ran: dpkg's status is read anew).
    public subscript<Value>(_ read: BulkRead<Value>) -> Value? {
        get { bulkReads[read.name] as? Value }
        set { bulkReads[read.name] = newValue }
    }

    /// Forgets every bulk read and open folder: the host may have changed since they were read
    /// (a person took time to read the plan before approving it).
    public func forgetReads() {
        bulkReads.removeAll()
        accountsCache = nil
        forgetDirectories()
    }

    // MARK: Accounts

    /// The uid of `name` in the root's user database.
    public func userID(named name: String) throws(HostError) -> UInt32? {
        try accounts().users[name] ?? (root == "/" ? nss(name, user: true) : nil)
    }

    /// The gid of `name` in the root's group database.
    public func groupID(named name: String) throws(HostError) -> UInt32? {
        try accounts().groups[name] ?? (root == "/" ? nss(name, user: false) : nil)
    }

    /// The id NSS gives `name`, as the snapshot recorded it when replaying one.
    private func nss(_ name: String, user: Bool) -> UInt32? {
        if let replay {
            guard let recorded = user ? replay.nssUsers[name] : replay.nssGroups[name] else {
                unrecordedPaths.insert((user ? "user " : "group ") + name)
                return nil
            }
            return recorded
        }
        let id = user ? Accounts.systemUserID(name) : Accounts.systemGroupID(name)
        recorder?.update { snapshot in
            if user { snapshot.nssUsers.updateValue(id, forKey: name) } else { snapshot.nssGroups.updateValue(id, forKey: name) }
        }
        return id
    }

    /// The name of uid `id`, for showing; nil if it has none.
    public func userName(_ id: UInt32) -> String? {
        (try? accounts())?.userNames[id]
    }

    /// The name of gid `id`, for showing; nil if it has none.
    public func groupName(_ id: UInt32) -> String? {
        (try? accounts())?.groupNames[id]
    }

    /// What the catalog being planned or applied declares present (not `state: absent`). A
    /// provider may take such a resource as in place by the time its own step runs: the implicit
    /// edges put it first (a file owned by `app` after `user:app`). docs/writing-a-provider.md
    /// states the rule.
    public var declaredResources: Set<ResourceID> = []
    /// The resources the step being planned comes after (`Catalog.Entry.dependencies`), set by
    /// the planner before it observes each resource: what they make by the time that step runs
    /// (a group a required package's installation adds) may be taken as made.
    public var stepDependencies: [ResourceID] = []
    /// The agent's record of file contents it need not read again while their status is
    /// unchanged; nil reads every file (`tend plan` and `tend apply` trust nothing).
    public var statCache: StatCache?

    /// Whether the catalog declares `id`.
    public func declares(_ id: ResourceID) -> Bool { declaredResources.contains(id) }

    /// Forgets the user and group databases read so far: a step changed them (useradd).
    public func forgetAccounts() {
        accountsCache = nil
    }

    private func accounts() throws(HostError) -> Accounts {
        if let accountsCache { return accountsCache }
        let passwd = (try? status("/etc/passwd")) != nil ? try read("/etc/passwd") : []
        let group = (try? status("/etc/group")) != nil ? try read("/etc/group") : []
        let accounts = Accounts(passwd: passwd, group: group)
        accountsCache = accounts
        return accounts
    }

    // MARK: Walking without following links

    /// Whether the folder at `path` is open already (so it existed when last looked at).
    func holdsDirectory(_ path: String) -> Bool {
        replay == nil && directories[path] != nil
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

/// What a provider reads in bulk and keeps for a run (`HostReader[_:]`), named once and typed by
/// what it holds: `BulkRead<[String: DpkgPackage]>("package.dpkg-status")`.
public struct BulkRead<Value>: Sendable {
    public let name: String

    public init(_ name: String) {
        self.name = name
    }
}

/// The user and group databases of a root, read from its /etc/passwd and /etc/group.
struct Accounts {
    var users: [String: UInt32] = [:]
    var groups: [String: UInt32] = [:]
    var userNames: [UInt32: String] = [:]
    var groupNames: [UInt32: String] = [:]

    init(passwd: [UInt8], group: [UInt8]) {
        for (name, id) in Self.entries(passwd) {
            users[name] = id
            if userNames[id] == nil { userNames[id] = name }
        }
        for (name, id) in Self.entries(group) {
            groups[name] = id
            if groupNames[id] == nil { groupNames[id] = name }
        }
    }

    /// `name:x:id:…` lines.
    private static func entries(_ bytes: [UInt8]) -> [(String, UInt32)] {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 3, let id = UInt32(fields[2]) else { return nil }
            return (String(fields[0]), id)
        }
    }

    /// Through NSS, for users that are not in /etc/passwd (LDAP, sssd); only for the root "/".
    static func systemUserID(_ name: String) -> UInt32? {
        var entry = passwd(), result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.pw_uid
    }

    static func systemGroupID(_ name: String) -> UInt32? {
        var entry = group(), result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }
}
