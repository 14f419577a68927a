public import FoundationEssentials
public import TendCore
public import TendSpec
import Glibc
import SystemPackage

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
    }

    /// The record, or nil when there is none. A record that cannot be read or decoded is reported
    /// through `problem`, and treated as missing (nothing tend keeps is worth stopping for).
    public func read<T: Decodable>(_ record: Record, as type: T.Type, problem: (String) -> Void = { _ in }) -> T? {
        let path = directory + "/" + record.rawValue
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno != ENOENT { problem("cannot read \(path): \(String(cString: strerror(errno)))") }
            return nil
        }
        let descriptor = FileDescriptor(rawValue: fd)
        defer { try? descriptor.close() }
        do {
            let bytes = try descriptor.readToEnd(sizeHint: 64 << 10, limit: 256 << 20)
            return try Self.decoder.decode(T.self, from: Data(bytes))
        } catch {
            problem("cannot use \(path): \(error); starting from no record")
            return nil
        }
    }

    /// Writes the record atomically at mode 0600, creating the private folders it goes in.
    public func write(_ record: Record, _ value: some Encodable) throws(StateStoreError) {
        try prepare()
        let data: Data
        do {
            data = try Self.encoder.encode(value)
        } catch {
            throw StateStoreError("cannot encode \(record.rawValue): \(error)")
        }
        do {
            try AtomicFile.write(Array(data) + [UInt8(ascii: "\n")], toPath: directory + "/" + record.rawValue, mode: 0o600)
        } catch {
            throw StateStoreError(error.description)
        }
    }

    /// Removes the record (`tend resume`); a missing one is not an error.
    public func remove(_ record: Record) throws(StateStoreError) {
        let path = directory + "/" + record.rawValue
        guard unlink(path) == 0 || errno == ENOENT else { throw StateStoreError("cannot remove \(path): \(String(cString: strerror(errno)))") }
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
            throw StateStoreError(error.description)
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
    init(_ description: String) { self.description = description }
}

/// A commit as people know it.
public struct CommitRecord: Codable, Sendable, Hashable {
    /// The repository URL, or the folder for a folder source.
    public var source: String
    public var ref: String?
    public var path: String?
    /// Nil for a folder source.
    public var commit: String?
    public var subject: String?
    public var author: String?
    public var date: String?
    /// When tend recorded it.
    public var recorded: Date

    public init(source: String, ref: String? = nil, path: String? = nil, commit: String? = nil, subject: String? = nil, author: String? = nil, date: String? = nil, recorded: Date) {
        self.source = source
        self.ref = ref
        self.path = path
        self.commit = commit
        self.subject = subject
        self.author = author
        self.date = date
        self.recorded = recorded
    }

    /// `1a2b3c4 "Subject" by Alice, 2026-11-28T14:03:00+01:00`, or the folder.
    public var summary: String {
        guard let commit else { return source }
        return "\(commit.prefix(7)) \"\(subject ?? "")\" by \(author ?? "?"), \(date ?? "?")"
    }

    /// Whether both name the same repository folder (the commit may differ).
    public func sameSource(as other: CommitRecord) -> Bool {
        source == other.source && path == other.path
    }
}

/// Every resource that the last apply managed, and where each was declared: what `tend blame`
/// answers from, and what `prune` compares a new commit with.
public struct Inventory: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        /// `manifests/web.yaml:12`, from the top of the repository.
        public var declaredAt: String
        /// The commit that declares it now.
        public var commit: String?
        /// The first commit it was declared in, as far as tend has seen.
        public var since: String?
        /// When tend last changed it on the host, and from which commit.
        public var changed: Date?
        public var changedBy: String?
        /// The path it manages, for `tend blame PATH`.
        public var path: String?

        public init(declaredAt: String, commit: String?, since: String?, changed: Date?, changedBy: String?, path: String?) {
            self.declaredAt = declaredAt
            self.commit = commit
            self.since = since
            self.changed = changed
            self.changedBy = changedBy
            self.path = path
        }
    }

    /// The commits the entries name, with their subject, author and date.
    public var commits: [String: CommitRecord] = [:]
    /// Keyed by resource id (`file:/etc/motd`).
    public var resources: [String: Entry] = [:]

    public init() {}

    /// Each resource's id with the position it was last declared at, for `prune:`.
    public var locations: [ResourceID: SourceLocation] {
        var result: [ResourceID: SourceLocation] = [:]
        for (key, entry) in resources {
            guard let id = ResourceID(parsing: key) else { continue }
            let colon = entry.declaredAt.lastIndex(of: ":")
            let line = colon.flatMap { Int(entry.declaredAt[entry.declaredAt.index(after: $0)...]) } ?? 1
            result[id] = SourceLocation(file: colon.map { String(entry.declaredAt[..<$0]) } ?? entry.declaredAt, line: line, column: 1)
        }
        return result
    }

    /// The entry managing `path` (a path under the root) or with id `text`.
    public func find(_ text: String) -> (id: String, entry: Entry)? {
        if let entry = resources[text] { return (text, entry) }
        var path = text
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        return resources.first { $0.value.path == path }.map { ($0.key, $0.value) }
    }
}

/// How the last apply went, by the agent or by hand.
public struct RunRecord: Codable, Sendable {
    public struct Failure: Codable, Sendable {
        public var resource: String?
        public var `class`: String
        public var message: String
    }

    public var started: Date
    public var seconds: Double
    /// `tend apply`, `tend agent`.
    public var by: String
    public var source: CommitRecord?
    /// converged, changed, failed, stalled, unreachable, locked, suspended.
    public var result: String
    /// Steps by action and outcome: `create`, `update`, … done; `failed`, `skipped`.
    public var counts: [String: Int]
    public var resources: Int
    public var failures: [Failure]
    /// Changes the plan had that were not applied (a suspended agent, a declined apply).
    public var pending: Int
    /// `prune:` would have removed this many, more than its budget, so it removed none.
    public var pruneRefused: ReconcileResult.PruneRefusal?

    public init(started: Date, seconds: Double, by: String, result: ReconcileResult, suspended: Bool = false) {
        self.started = started
        self.seconds = seconds
        self.by = by
        source = result.commitInfo
        resources = result.resourceCount
        var counts: [String: Int] = [:]
        for step in result.report?.results ?? [] {
            switch step.outcome {
            case .done: counts[step.action?.rawValue ?? "done", default: 0] += 1
            case .failed: counts["failed", default: 0] += 1
            case .skipped: counts["skipped", default: 0] += 1
            }
        }
        self.counts = counts
        failures = (result.failure.map { [$0] } ?? []) .map { Failure(resource: $0.resource?.description, class: $0.class.rawValue, message: $0.message) }
            + result.stepFailures.map { Failure(resource: $0.resource?.description, class: $0.class.rawValue, message: $0.message) }
        pending = result.report == nil ? (result.plan?.steps.filter { $0.change != nil }.count ?? 0) : 0
        pruneRefused = result.pruneRefused
        self.result = if let failure = result.failure {
            switch failure.code {
            case .invalidConfiguration, .refused, .stalePlan, .usage: "stalled"
            case .sourceUnreadable: "unreachable"
            case .locked: "locked"
            default: "failed"
            }
        } else if !result.stepFailures.isEmpty || !(result.plan?.errors.isEmpty ?? true) {
            "failed"
        } else if suspended, pending > 0 {
            "suspended"
        } else if result.report?.results.isEmpty == false {
            "changed"
        } else {
            "converged"
        }
    }

    /// Whether the run left the host as declared.
    public var succeeded: Bool { result == "converged" || result == "changed" }
}

/// What the agent says about itself after each cycle.
public struct AgentRecord: Codable, Sendable {
    public var pid: Int32
    public var started: Date
    public var lastCycle: Date?
    public var nextCheck: Date?
    public var interval: Double
    public var splay: Double
    /// The commit it enforces (the last good one while a newer one is refused).
    public var enforcing: String?
    /// The newest commit it refuses, and why; nil when it applies the newest.
    public var stalled: Stall?
    /// Fetches that failed in a row.
    public var fetchFailures: Int

    public struct Stall: Codable, Sendable {
        public var commit: String?
        public var reason: String
        public var since: Date
    }

    public init(pid: Int32, started: Date, interval: Double, splay: Double) {
        self.pid = pid
        self.started = started
        self.interval = interval
        self.splay = splay
        fetchFailures = 0
    }
}

/// Why and until when the agent applies nothing (`tend suspend`).
public struct Suspension: Codable, Sendable {
    public var reason: String
    /// The user who suspended it (SUDO_USER, LOGNAME or the uid).
    public var by: String
    public var since: Date
    public var until: Date?

    public init(reason: String, by: String, since: Date, until: Date?) {
        self.reason = reason
        self.by = by
        self.since = since
        self.until = until
    }

    /// Whether it holds at `now` (one with an end that has passed no longer does).
    public func holds(at now: Date) -> Bool { until.map { now < $0 } ?? true }
}
