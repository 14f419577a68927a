public import FoundationEssentials
public import TendCore
public import TendSpec
import Glibc

// The records `StateStore` keeps, one JSON file each (docs/agent.md lists them).

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
        /// The component instance it came from (`nginx-site[shop]`), and the loop item, as the
        /// position's `via` says them.
        public var instance: String?
        public var via: String?

        public init(declaredAt: String, commit: String?, since: String?, changed: Date?, changedBy: String?, path: String?,
                    instance: String? = nil, via: String? = nil) {
            self.declaredAt = declaredAt
            self.instance = instance
            self.via = via
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

    /// Each resource with the position it was last declared at and its path, for `prune:`.
    public var retirable: [ResourceID: Configuration.Retirable] {
        var result: [ResourceID: Configuration.Retirable] = [:]
        for (key, entry) in resources {
            guard let id = ResourceID(parsing: key) else { continue }
            let colon = entry.declaredAt.lastIndex(of: ":")
            let line = colon.flatMap { Int(entry.declaredAt[entry.declaredAt.index(after: $0)...]) } ?? 1
            let location = SourceLocation(file: colon.map { String(entry.declaredAt[..<$0]) } ?? entry.declaredAt, line: line, column: 1)
            result[id] = Configuration.Retirable(location: location, path: entry.path)
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
    public var result: RunResult
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
            failure.code.meaning.result
        } else if result.interrupted {
            .interrupted
        } else if !result.stepFailures.isEmpty || !(result.plan?.errors.isEmpty ?? true) {
            .failed
        } else if suspended, pending > 0 {
            .suspended
        } else if result.report?.results.isEmpty == false {
            .changed
        } else {
            .converged
        }
    }

    /// Whether the run needs no one's attention: it converged, or it was stopped or suspended
    /// on purpose.
    public var healthy: Bool { ![.failed, .stalled, .unreachable].contains(result) }
}

/// How a run ended, as `last-run.json` and `tend status` say it.
public enum RunResult: String, Codable, Sendable {
    /// Nothing to do: the host already matched.
    case converged
    /// Changes were applied, and every resource converged.
    case changed
    /// A resource failed or could not be planned, or the root could not be used.
    case failed
    /// The commit is invalid, unsigned or goes back in time.
    case stalled
    /// The source could not be read.
    case unreachable
    /// Suspended: changes are pending, not applied.
    case suspended
    /// The agent was told to stop during the apply; the steps left are for the next run.
    case interrupted
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
    /// Resources something else keeps changing back, repaired on the timer only for now.
    public var contested: [Contest]?
    /// A newer commit whose rollout has not reached this host's wave yet, and when it will.
    public var waiting: Waiting?

    public struct Waiting: Codable, Sendable, Equatable {
        public var commit: String?
        public var due: Date
        /// This host's wave, from 1, of `waves`, and the share of the fleet it completes.
        public var wave: Int
        public var waves: Int
        public var share: Double
    }

    public struct Contest: Codable, Sendable {
        public var resource: String
        public var since: Date
    }

    public struct Stall: Codable, Sendable, Equatable {
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

    /// Whether the agent that wrote it still runs: its pid is a tend (and not a process that got
    /// the number since).
    public var isRunning: Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { return false }
        return comm.trimmingWhitespace() == "tend"
    }
}

/// The commits that failed this host's health checks, newest last (at most 20 kept).
public struct UnhealthyCommits: Codable, Sendable {
    public var commits: [Entry]

    public struct Entry: Codable, Sendable {
        public var commit: String
        public var reason: String
        public var since: Date
    }

    public init(commits: [Entry] = []) { self.commits = commits }

    /// By commit, for `Reconciler.Policy.unhealthyCommits`.
    public var reasons: [String: String] {
        Dictionary(commits.map { ($0.commit, $0.reason) }) { first, _ in first }
    }

    public mutating func add(_ commit: String, reason: String, at date: Date) {
        commits.removeAll { $0.commit == commit }
        commits.append(Entry(commit: commit, reason: reason, since: date))
        if commits.count > 20 { commits.removeFirst(commits.count - 20) }
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
