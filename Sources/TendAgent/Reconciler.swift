public import Logging
public import TendCore
public import TendGit
public import TendSpec
public import FoundationEssentials

/// One run of the pipeline, Source → Load → Catalog → Observe → Plan → Apply → Report, as a
/// single call that returns a value. `tend validate`, `plan`, `apply`, `snapshot` and the agent
/// call it; they only turn the result into text, an exit code or a record.
///
/// Each stage takes the last one's value: the source gives a snapshot (`open`), loading gives the
/// catalog of this host (`load`), observing and planning give the plan (`makePlan`), and the
/// apply gives its report and the records (`apply`). What a run is for is its `Mode`, never a flag
/// beside it.
///
/// A run that changes the host holds the root's `RunLock` from before the source is opened until
/// it ends, so that the commit checked against the last applied one and the plan made are the
/// ones applied.
public struct Reconciler: Sendable {
    /// What a run does.
    public enum Mode: Sendable {
        /// Load and build the catalog; read nothing of the host but its facts.
        case validate
        /// Plan; change nothing.
        case plan
        /// Plan, recording what planning reads of the host (`tend snapshot`), with the contents of
        /// the catalog's sensitive paths kept as digests.
        case record(HostSnapshot.Recorder)
        /// Plan for the host this snapshot was taken of, from what it recorded, instead of for the
        /// machine tend runs on (`tend plan --snapshot`): its facts, its inventory and its machine
        /// ID; nothing of this machine is read.
        case preview(HostSnapshotFile)
        /// Plan, then apply (after `ReconcileEvents.approve`).
        case apply
        /// Apply exactly a saved plan, refused when the host or the configuration changed since.
        case applySaved(Plan)
        /// Only these resources, and what depends on them or is notified by them, against the
        /// catalog the last full run enforced (`CatalogCache.current`), fetching and loading
        /// nothing: the agent's repair when a watch saw them change. With nil, every resource of
        /// it: the agent enforcing the last good commit when the newest is refused or cannot be
        /// fetched, from what it already loaded. It leaves no `last-run.json`.
        case repair(Set<ResourceID>?)
    }

    public var source: SourceSpec
    /// The root managed ("/" for the host itself).
    public var root: String
    /// Who the host is, when not the machine's own (`Identity`).
    public var identity: Identity
    public var providers: ProviderSet
    /// How a run may go (`Policy`).
    public var policy: Policy
    /// What the agent keeps from one run to the next (`Caches`); empty for one-shot commands.
    public var caches = Caches()
    public var tendVersion: String
    public var logger: Logger

    public init(source: SourceSpec, root: String, identity: Identity = Identity(), providers: ProviderSet, policy: Policy,
                tendVersion: String, logger: Logger) {
        self.source = source
        self.root = root
        self.identity = identity
        self.providers = providers
        self.policy = policy
        self.tendVersion = tendVersion
        self.logger = logger
    }

    /// Runs the pipeline in `mode`, telling `events` as it goes. Never throws: every way it can
    /// end is in the result. An apply that got the lock leaves its record in the root's
    /// `StateStore` (`last-run.json`), whatever its end; under another root than "/", where the
    /// records are inside the root, only an apply that changed something does, so that bad input
    /// or a run with nothing to do leaves the root untouched. A repair leaves none.
    public func run(_ mode: Mode, events: ReconcileEvents = ReconcileEvents()) async -> ReconcileResult {
        var result = ReconcileResult()
        let started = Date()
        let clock = ContinuousClock.now
        do throws(ReconcileFailure) {
            try await run(mode, events: events, into: &result)
        } catch {
            result.failure = error
        }
        if mode.recordsRun, policy.recordsRun, result.failure?.code != .locked, result.failure?.code != .usage, !result.declined,
           state(for: mode).root == "/" || result.report != nil {
            let record = RunRecord(started: started, seconds: DurationText.seconds(ContinuousClock.now - clock), by: policy.runBy, result: result)
            do {
                try state(for: mode).write(.lastRun, record)
            } catch {
                result.note("cannot record the run in \(state(for: mode).directory): \(error); tend status and the agent will not know of it"
                            + (error.isPermission ? " (\(PrivateDirectory.permissionAdvice))" : ""), events)
            }
        }
        return result
    }

    /// The records of the root a run in `mode` works on.
    func state(for mode: Mode) -> StateStore {
        if case .applySaved(let plan) = mode { return StateStore(stateDirectory: source.stateDirectory, root: plan.root) }
        return StateStore(stateDirectory: source.stateDirectory, root: root)
    }

    /// The stages, one after the other, as far as `mode` goes.
    private func run(_ mode: Mode, events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) {
        let rootPath = mode.saved?.root ?? root
        var lock: RunLock?
        if mode.changesHost {
            do {
                lock = try await RunLock.acquire(root: rootPath, timeout: policy.lockTimeout, waiting: events.lockWaiting)
            } catch {
                throw ReconcileFailure(error.timedOut ? .locked : .unusableHost, error.message)
            }
        }
        defer { withExtendedLifetime(lock) {} }
        if case .repair(let scope) = mode { return try await repair(scope, events: events, into: &result) }

        // Source: one commit (or folder), trusted.
        let opened = try await open(mode, root: rootPath, events: events, into: &result)
        // The host as this run reads it: live, recorded, or replayed from a snapshot.
        let observing = try await observe(mode, root: rootPath, events: events, into: &result)
        // Load and Catalog: this host's resources.
        let loaded = try load(mode, opened, observing: observing, root: rootPath, events: events, into: &result)
        defer { for problem in loaded.inventory.problems { result.note(problem, events) } }
        guard mode.readsHost else { return }
        // Observe and Plan.
        var executor = Executor(catalog: loaded.catalog, logger: logger(for: opened))
        executor.replans = mode.saved == nil
        let plan = try await makePlan(mode, loaded, opened, observing: observing, executor: executor, root: rootPath, events: events, into: &result)
        result.plan = plan
        guard mode.changesHost else { return }
        // Apply, then Report.
        try await apply(plan, mode, loaded, opened, observing: observing, executor: executor, root: rootPath, events: events, into: &result)
    }

    /// The logger of a run of `opened`: its commit in every entry.
    func logger(for opened: Opened) -> Logger {
        var logger = self.logger
        if let commit = opened.snapshot.origin.commit { logger[metadataKey: "commit"] = "\(commit)" }
        return logger
    }
}

extension Reconciler.Mode {
    /// Whether the run observes the host (everything but validate).
    var readsHost: Bool {
        if case .validate = self { return false }
        return true
    }

    /// Whether the run may change the host (and so takes the lock).
    var changesHost: Bool {
        switch self {
        case .apply, .applySaved, .repair: true
        case .validate, .plan, .record, .preview: false
        }
    }

    /// Whether the run leaves its record (`last-run.json`): applies, not a repair between them.
    var recordsRun: Bool {
        switch self {
        case .apply, .applySaved: true
        case .validate, .plan, .record, .preview, .repair: false
        }
    }

    /// Whether a commit older than the last applied one is refused: validate only reads it, and a
    /// preview is not held to this machine's own last commit.
    var checksRewind: Bool {
        switch self {
        case .validate, .preview: false
        case .plan, .record, .apply, .applySaved, .repair: true
        }
    }

    /// The saved plan a run applies, if it does.
    var saved: Plan? {
        if case .applySaved(let plan) = self { return plan }
        return nil
    }

    /// The snapshot a preview plans for, if it does.
    var replaying: HostSnapshotFile? {
        if case .preview(let file) = self { return file }
        return nil
    }

    /// What records the host's answers, for a snapshot.
    var recorder: HostSnapshot.Recorder? {
        if case .record(let recorder) = self { return recorder }
        return nil
    }
}
