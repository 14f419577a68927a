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
/// Its answers come from the host (`HostFiles`), from the host while they are recorded into a
/// `HostSnapshot` (`tend snapshot`), or from a snapshot instead of the host
/// (`init(replaying:)`, `tend plan --snapshot`): one `HostReads` chosen when it is made.
public final class HostReader {
    /// The root under which every path is taken ("/" for the host itself).
    public let root: String
    /// The service manager, read-only; nil when none runs for this root (another root, or no
    /// systemd as PID 1).
    public let services: ServiceManagerView?
    /// Why there is no service manager although systemd runs for this root (it did not answer
    /// on the bus), for what needs one to say so; nil otherwise.
    public var servicesUnreachable: String?
    /// Where every read is answered from.
    private let reads: any HostReads
    /// The filesystem under the root, which a `HostWriter` writes through; nil for a reader that
    /// replays a snapshot.
    let files: HostFiles?
    /// The snapshot replayed, if this reader replays one.
    private let replayed: ReplayedReads?
    /// Where what is read is recorded, for `tend snapshot`.
    public let recorder: HostSnapshot.Recorder?
    /// What a replayed snapshot holds nothing of, taken as absent: paths, `user NAME` and
    /// `group NAME` (NSS), `unit NAME`. What a preview assumed.
    public var unrecorded: Set<String> {
        (replayed?.unrecorded ?? []).union(replayedServices?.missing.map { "unit " + $0 } ?? [])
    }
    private let replayedServices: HostSnapshot.ReplayedServices?
    private var accountsCache: Accounts?
    /// What providers read in bulk for a whole run (the dpkg status file), by `BulkRead` name.
    private var bulkReads: [String: Any] = [:]

    /// Starts with what `other` read in bulk so far: a reader that joins it over the same root
    /// (the planner's observing threads) does not read it again.
    func shareBulkReads(of other: HostReader) {
        bulkReads = other.bulkReads
    }

    /// Opens `root`, which must be an existing folder.
    public init(root: String, services: (any ServiceManager)? = nil, recorder: HostSnapshot.Recorder? = nil) throws(HostError) {
        self.root = root
        self.recorder = recorder
        let files = try HostFiles(root: root)
        self.files = files
        reads = recorder.map { RecordingReads(files, recorder: $0) } ?? files
        replayed = nil
        replayedServices = nil
        let services = recorder.flatMap { recorder in services.map { HostSnapshot.RecordingServices($0, recorder: recorder) } } ?? services
        self.services = services.map(ServiceManagerView.init)
    }

    /// A reader of the host `snapshot` recorded, at the root "/": it never reads this machine.
    public init(replaying snapshot: HostSnapshot) {
        root = "/"
        let replayed = ReplayedReads(snapshot)
        self.replayed = replayed
        reads = replayed
        files = nil
        recorder = nil
        replayedServices = snapshot.services ? HostSnapshot.ReplayedServices(snapshot.units) : nil
        services = replayedServices.map(ServiceManagerView.init)
        if !snapshot.services {
            servicesUnreachable = "no service manager ran where the snapshot was taken (a root, or a host without systemd): its units are not planned from it"
        }
    }

    /// Whether reads go to the host and nothing records them: only such a reader may be joined
    /// by others over the same root (the planner's observing threads).
    public var isPlain: Bool { replayed == nil && recorder == nil }

    /// `lstat` of `path`; nil when it or one of its folders does not exist.
    public func status(_ path: String) throws(HostError) -> FileStatus? {
        try reads.status(path)
    }

    /// The bytes of the regular file at `path`.
    public func read(_ path: String) throws(HostError) -> [UInt8] {
        try reads.read(path)
    }

    /// The target of the symbolic link at `path`.
    /// Whether every user on the host may read the file at `path`: it is readable by others and
    /// every folder above it lets them through. A reader that replays a snapshot says no.
    public func othersMayRead(_ path: String, status: FileStatus) -> Bool {
        files?.othersMayRead(path, status: status) ?? false
    }

    public func readLink(_ path: String) throws(HostError) -> String {
        try reads.readLink(path)
    }

    /// The names in the folder at `path`, sorted, without `.` and `..`.
    public func entries(of path: String) throws(HostError) -> [String] {
        try reads.entries(of: path)
    }

    /// The root's machine ID (`MachineID`), read without following a link; "" when it has none.
    public var machineID: String {
        (try? read(MachineID.path)).map(MachineID.parse) ?? ""
    }

    // MARK: Snapshots

    /// The digest (`StatCache.digest(of:)`) a replayed snapshot holds instead of the content of
    /// the file at `path`, which may not be shown; nil when it holds the content, or on a host.
    public func recordedDigest(_ path: String) -> String? {
        guard let entry = replayed?.snapshot.paths[path], entry.text == nil else { return nil }
        return entry.digest
    }

    /// What a provider kept of a tool's answer under `key` in the replayed snapshot (apt's
    /// candidate versions); nil when it kept none or on a host.
    public func recordedValue(_ key: String) -> String? {
        replayed?.snapshot.values[key]
    }

    /// Now, for what ages (apt's lists): when the replayed snapshot was taken, or the clock.
    public var now: Date { replayed?.snapshot.taken ?? Date() }

    /// Whether reads are answered from a snapshot: providers then run no tools.
    public var replaysSnapshot: Bool { replayed != nil }

    /// Keeps a tool's answer in the snapshot being recorded, for `recordedValue`.
    public func record(_ key: String, value: String) {
        recorder?.update { $0.values[key] = value }
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

    /// Closes every open folder: the next walk starts from the root.
    func forgetDirectories() {
        files?.forgetDirectories()
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

    /// The id NSS gives `name` (as the snapshot recorded it, when replaying one).
    private func nss(_ name: String, user: Bool) -> UInt32? {
        reads.nssID(name, user: user)
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
