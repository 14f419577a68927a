public import FoundationEssentials
public import TendCore
public import TendSpec
import Glibc
public import SystemPackage
import Synchronization

/// tend's own records of one root, kept in the state directory: the last applied and last good
/// commits, the inventory of managed resources, the last apply's result, the agent's status and
/// its suspension. Every record is one JSON file written with `AtomicFile` at mode 0600 in a
/// folder only root enters, so a kill at any moment leaves the old record or the new one.
///
/// The records of the host itself (root "/") are in the state directory. Those of another root (an
/// image being built) are in that root's own `/var/lib/tend`, where the agent of the booted image
/// finds them: provisioning hands its inventory to the host, and says nothing about the machine
/// that built the image. The Git cache stays in the state directory either way.
public struct StateStore: Sendable {
    /// The folder of this root's records.
    public let directory: String
    /// The root, links resolved.
    public let root: String

    /// The records of the root's own state directory when it is not "/".
    public static let defaultDirectory = "/var/lib/tend"

    public init(stateDirectory: String, root: String) {
        var top = stateDirectory
        while top.count > 1, top.hasSuffix("/") { top.removeLast() }
        let canonical = Reconciler.canonical(root)
        self.root = canonical
        directory = canonical == "/" ? top : canonical + Self.defaultDirectory
    }

    public enum Record: String, Sendable, CaseIterable {
        /// The last commit whose apply converged every resource (`CommitRecord`).
        case applied = "applied.json"
        /// The last commit that loaded, validated, was signed as required and did not go back in
        /// time, and was applied; the agent enforces it while newer commits are refused.
        case lastGood = "last-good.json"
        /// Every resource the last apply managed (`Inventory`).
        case inventory = "inventory.json"
        /// The last apply, by the agent or by hand (`RunRecord`).
        case lastRun = "last-run.json"
        /// The agent's own view: its schedule, what it refuses and why (`AgentRecord`).
        case agent = "agent.json"
        /// Set by `tend suspend` (`Suspension`).
        case suspended = "suspended.json"
        /// Commits that failed this host's health checks (`UnhealthyCommits`): the agent refuses
        /// them until a new commit.
        case unhealthy = "unhealthy-commits.json"
    }

    /// The record, or nil when there is none. A record that cannot be read or decoded is reported
    /// through `problem`, and treated as missing (nothing tend keeps is worth stopping for).
    ///
    /// What was decoded is kept for as long as the file is the same one (device, inode, size and
    /// change time): the agent reads the inventory of 10,000 resources every cycle, and decoding
    /// it would cost more than the rest of a cycle's bookkeeping. Records are replaced by
    /// renaming, so a new record is a new inode.
    public func read<T: Decodable & Sendable>(_ record: Record, as type: T.Type, problem: (String) -> Void = { _ in }) -> T? {
        let path = directory + "/" + record.rawValue
        // Under another root, a records folder that leads outside it (a link planted in the
        // image) is not read: an inventory from elsewhere would steer prune.
        if root != "/", access(directory, F_OK) == 0, !Reconciler.canonical(directory).hasPrefix(root + "/") {
            problem("\(directory) leads outside the root \(root); its records are not read")
            return nil
        }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno != ENOENT { problem("cannot read \(path): \(String(cString: strerror(errno)))") }
            return nil
        }
        let descriptor = FileDescriptor(rawValue: fd)
        defer { try? descriptor.close() }
        let identity = FileIdentity(descriptor: fd)
        if let identity, let kept = Self.decoded.withLock({ $0[path] }), kept.identity == identity, let value = kept.value as? T {
            return value
        }
        do {
            var info = stat()
            let bytes = try descriptor.readToEnd(sizeHint: fstat(fd, &info) == 0 ? Int(info.st_size) : 4096, limit: 256 << 20)
            let value = try Self.decoder.decode(T.self, from: Data(bytes))
            if let identity { Self.decoded.withLock { $0[path] = (identity, value) } }
            return value
        } catch {
            problem("cannot use \(path): \(error); starting from no record")
            return nil
        }
    }

    /// Why this process cannot read the records, if it cannot: run by another user than root,
    /// most often. A folder not made yet is none (nothing was recorded).
    public var accessProblem: String? {
        guard access(directory, F_OK) == 0, access(directory, R_OK | X_OK) != 0 else { return nil }
        let code = errno
        return code == EACCES || code == EPERM
            ? "permission denied reading \(directory): run as root (tend's records are root's alone)"
            : "cannot read \(directory): \(String(cString: strerror(code)))"
    }

    /// Records decoded by this process, by path, with the identity of the file they came from.
    private static let decoded = Mutex<[String: (identity: FileIdentity, value: any Sendable)]>([:])

    /// Writes the record atomically at mode 0600, creating the private folders it goes in.
    public func write(_ record: Record, _ value: some Encodable) throws(StateStoreError) {
        let data: Data
        do {
            data = try Self.encoder.encode(value)
        } catch {
            throw StateStoreError("cannot encode \(record.rawValue): \(error)")
        }
        try write(record, bytes: Array(data))
    }

    /// Writes the inventory, the largest record, without JSONEncoder (`Inventory.json`).
    public func writeInventory(_ inventory: Inventory) throws(StateStoreError) {
        try write(.inventory, bytes: inventory.json)
    }

    private func write(_ record: Record, bytes: [UInt8]) throws(StateStoreError) {
        try prepare()
        do {
            try AtomicFile.write(bytes + [UInt8(ascii: "\n")], toPath: directory + "/" + record.rawValue, mode: 0o600)
        } catch {
            throw StateStoreError(error)
        }
    }

    /// The agent's stat cache, kept beside the records as `stat-cache` (a text format of its own,
    /// not JSON: 10,000 entries load in milliseconds); empty when missing, unreadable, or in a
    /// records folder that leads outside the root.
    public func loadStatCache() -> StatCache {
        if root != "/", access(directory, F_OK) == 0, !Reconciler.canonical(directory).hasPrefix(root + "/") { return StatCache() }
        return StatCache.load(from: directory + "/" + Self.statCacheName)
    }

    /// Saves the stat cache atomically at mode 0600, when it changed.
    public func save(_ cache: StatCache) throws(StateStoreError) {
        try prepare()
        do {
            try cache.save(to: directory + "/" + Self.statCacheName)
        } catch {
            throw StateStoreError(error)
        }
    }

    static let statCacheName = "stat-cache"

    /// Removes the record (`tend resume`); a missing one is not an error.
    public func remove(_ record: Record) throws(StateStoreError) {
        let path = directory + "/" + record.rawValue
        guard unlink(path) == 0 || errno == ENOENT else {
            let code = Errno(rawValue: errno)
            throw StateStoreError("cannot remove \(path): \(code)", errno: code)
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// The records' folder, 0700, owned by this process's user (its missing parents 0755).
    /// Under another root, the folder must resolve to a folder inside that root, checked before
    /// anything is created: a link planted in the image (`var/lib` → `/etc`) would otherwise have
    /// tend write outside it.
    public func prepare() throws(StateStoreError) {
        if root != "/" {
            var existing = directory
            while access(existing, F_OK) != 0, let slash = existing.lastIndex(of: "/") { existing = String(existing[..<slash]) }
            let resolved = Reconciler.canonical(existing.isEmpty ? "/" : existing)
            guard resolved == root || resolved.hasPrefix(root + "/") else {
                throw StateStoreError("\(existing) leads to \(resolved), outside the root \(root); tend keeps a root's records only inside it")
            }
        }
        do {
            try PrivateDirectory.prepare(directory)
        } catch {
            throw StateStoreError(error)
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    /// JSON as the records are written (snake_case keys, ISO 8601 dates), for `tend status --json`.
    public static func json(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// Why a record could not be written.
public struct StateStoreError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The system's error, where a call failed: what advice fits depends on it.
    public var errno: Errno?
    init(_ description: String, errno: Errno? = nil) {
        self.description = description
        self.errno = errno
    }
    init(_ error: AtomicFileError) { self.init(error.description, errno: error.errno) }

    /// Whether the records' folder is closed to this process, where running as root or giving
    /// another `--state-dir` helps (`Errno.isPermission`); a full disk is not.
    public var isPermission: Bool { errno?.isPermission ?? false }
}
