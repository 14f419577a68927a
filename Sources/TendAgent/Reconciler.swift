public import Logging
public import TendCore
public import TendGit
public import TendSpec
import TendSystemd
import Glibc
public import FoundationEssentials

/// One run of the pipeline, Source → Load → Catalog → Observe → Plan → Apply → Report, as a
/// single call that returns a value. `tend validate`, `tend plan` and `tend apply` call it (and
/// the agent will, every cycle); they only turn the result into text and an exit code.
///
/// A run that changes the host (`apply`) holds the root's `RunLock` from before the source is
/// opened until it ends, so that the commit checked against the last applied one and the plan
/// made are the ones applied.
public struct Reconciler: Sendable {
    /// What a run does.
    public enum Mode: Sendable {
        /// Load and build the catalog; read nothing of the host but its facts.
        case validate
        /// Plan; change nothing.
        case plan
        /// Plan, then apply (after `ReconcileEvents.approve`).
        case apply
        /// Apply exactly a saved plan, refused when the host or the configuration changed since.
        case applySaved(Plan)
    }

    public var source: SourceSpec
    /// The root managed ("/" for the host itself).
    public var root: String
    /// The host's name and labels when given, instead of the machine's own.
    public var hostname: String?
    public var labels: [String: String]
    public var providers: ProviderSet
    /// How long an apply waits for another one holding the root's lock.
    public var lockTimeout: Duration
    public var tendVersion: String
    public var logger: Logger

    public init(source: SourceSpec, root: String, hostname: String? = nil, labels: [String: String] = [:], providers: ProviderSet,
                lockTimeout: Duration, tendVersion: String, logger: Logger) {
        self.source = source
        self.root = root
        self.hostname = hostname
        self.labels = labels
        self.providers = providers
        self.lockTimeout = lockTimeout
        self.tendVersion = tendVersion
        self.logger = logger
    }

    /// Prune past the budget of tend.yaml's `prune:` (`tend apply --allow-prune`).
    public var allowPrune = false
    /// Whether the host lets the repository declare tend's own control (/etc/tend, tend's units),
    /// as its agent.yaml's `self_manage:` or `--self-manage` says (`ProtectedPaths`).
    public var selfManagement = false
    /// Where the agent keeps the catalog from one cycle to the next; nil builds it every run.
    public var catalogCache: CatalogCache?

    /// Who runs it, as the state's records name it (`tend apply`, `tend agent`).
    public var runBy = "tend apply"
    /// Only these resources, and what depends on them or is notified by them, against the catalog
    /// the last full run enforced (`CatalogCache.current`), fetching and loading nothing: the
    /// agent's repair when a watch saw them change. Such a run leaves no `last-run.json`.
    public var scope: Set<ResourceID>?
    /// What the agent knows of file contents without reading them again (`StatCache`); nil reads
    /// every file, as `tend plan` and `tend apply` do.
    public var statCache: StatCache?
    /// Takes a new commit only once this host's wave of its tend.yaml's `rollout:` is due (the
    /// agent); until then the run ends with `.notDue`, and the agent keeps enforcing the last good
    /// commit. A run pinned to a commit, and one on a host where nothing was applied yet, take it
    /// at once, as `tend apply` does.
    public var followsRollout = false
    /// After the first apply of a commit new to this host, runs the catalog's `health:` checks
    /// (the agent); a check that fails ends the run with `.unhealthy`, and the commit is not
    /// recorded as applied, so that the agent puts the last good one back.
    public var checksHealth = false
    /// Commits that failed their health checks on this host, with why: refused, as a bad
    /// signature is, until a new commit comes.
    public var unhealthyCommits: [String: String] = [:]
    /// This host's machine ID, for its rollout wave; nil reads the root's /etc/machine-id.
    public var machineID: String?
    /// Records what planning reads of the host (`tend snapshot`), with the contents of the
    /// catalog's sensitive paths kept as digests.
    public var recorder: HostSnapshot.Recorder?
    /// Plans for the host this snapshot was taken of, from what it recorded, instead of for the
    /// machine tend runs on (`tend plan --snapshot`): its facts, its inventory and its machine
    /// ID; nothing of this machine is read.
    public var replaying: HostSnapshotFile?

    /// Runs the pipeline in `mode`, telling `events` as it goes. Never throws: every way it can
    /// end is in the result. An apply that got the lock leaves its record in the root's
    /// `StateStore` (`last-run.json`), whatever its end; under another root than "/", where the
    /// records are inside the root, only an apply that changed something does, so that bad input
    /// or a run with nothing to do leaves the root untouched.
    public func run(_ mode: Mode, events: ReconcileEvents = ReconcileEvents()) async -> ReconcileResult {
        var result = ReconcileResult()
        let started = Date()
        let clock = ContinuousClock.now
        do throws(ReconcileFailure) {
            try await run(mode, events: events, into: &result)
        } catch {
            result.failure = error
        }
        if mode.changesHost, scope == nil, result.failure?.code != .locked, result.failure?.code != .usage, !result.declined,
           state(for: mode).root == "/" || result.report != nil {
            let elapsed = ContinuousClock.now - clock
            let record = RunRecord(started: started, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                                   by: runBy, result: result)
            do {
                try state(for: mode).write(.lastRun, record)
            } catch {
                result.note("cannot record the run in \(state(for: mode).directory): \(error); tend status and the agent will not know of it"
                            + (error.isPermission ? " (\(PrivateDirectory.permissionAdvice))" : ""), events)
            }
        }
        return result
    }

    /// Reads, for the snapshot being recorded, what another commit's plan may need beyond what
    /// this one's read: the content or listing of every managed path (a commit may start
    /// managing a file's content or a folder's purge) and the host's account and package
    /// databases (a commit may add the first user or package).
    static func recordWhatPreviewsNeed(_ catalog: Catalog, host: HostReader) {
        let databases = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/var/lib/dpkg/status"]
        for path in databases + catalog.planContext.managedPaths.sorted() {
            switch (try? host.status(path))??.type {
            case .regular?: _ = try? host.read(path)
            case .directory?: _ = try? host.entries(of: path)
            case .symlink?: _ = try? host.readLink(path)
            default: break
            }
        }
    }

    /// The last commit of this Git source applied to the root; nil for a folder, or before any.
    public var lastAppliedCommit: String? {
        guard case .git(let url, let ref, let path) = source.location else { return nil }
        let git = GitSource(url: url, ref: ref, path: path, stateDirectory: source.stateDirectory, logger: logger)
        return AppliedCommits(source: git, root: Self.canonical(root)).last
    }

    /// The records of the root a run in `mode` works on.
    func state(for mode: Mode) -> StateStore {
        if case .applySaved(let plan) = mode { return StateStore(stateDirectory: source.stateDirectory, root: plan.root) }
        return StateStore(stateDirectory: source.stateDirectory, root: root)
    }

    private func run(_ mode: Mode, events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) {
        var saved: Plan?
        if case .applySaved(let plan) = mode { saved = plan }
        let changes = mode.changesHost
        let rootPath = saved?.root ?? root
        var lock: RunLock?
        if changes {
            do {
                lock = try await RunLock.acquire(root: rootPath, timeout: lockTimeout, waiting: events.lockWaiting)
            } catch {
                throw ReconcileFailure(error.timedOut ? .locked : .unusableHost, error.message)
            }
        }
        defer { withExtendedLifetime(lock) {} }
        if let scope {
            return try await repair(scope, events: events, into: &result)
        }

        // A preview from a snapshot is not held to this machine's own last commit.
        let opened = try await open(saved: saved, root: rootPath, checkRewind: mode.checksRewind && replaying == nil, events: events, into: &result)
        result.sourceDescription = opened.snapshot.description
        var logger = self.logger
        if let commit = opened.snapshot.origin.commit { logger[metadataKey: "commit"] = "\(commit)" }
        var services: (any ServiceManager)?
        var unreachable: String?
        if mode.readsHost, replaying == nil {
            (services, unreachable) = await Self.serviceManager(for: rootPath)
            if let unreachable { result.note(unreachable, events) }
        }
        let host: HostReader
        do {
            if let replaying {
                host = HostReader(replaying: replaying.observed)
            } else {
                host = try HostReader(root: rootPath, services: services, recorder: recorder)
            }
            host.statCache = statCache
            if let unreachable { host.servicesUnreachable = unreachable }
        } catch {
            throw ReconcileFailure(.unusableHost, error.description)
        }
        let facts = saved?.facts ?? replaying?.facts ?? Facts.gather(host: host, hostname: hostname, labels: labels)
        // What the last apply managed: `prune:` removes what is no longer declared. An apply reads
        // it (it records the next one); a plan only when tend.yaml says `prune:` (decoding 10,000
        // entries is a fifth of a no-op plan).
        let inventoryRecord = LazyRecord(enabled: mode.readsHost) { [state = state(for: mode), replaying] problems in
            if let replaying { return replaying.inventory }
            return state.read(.inventory, as: Inventory.self) { problems.append($0) }
        }
        defer { for problem in inventoryRecord.problems { result.note(problem, events) } }
        let inventory = changes ? inventoryRecord.value : nil
        let catalog: Catalog
        do {
            let build = { () throws(ConfigurationError) -> Catalog in
                try Configuration.catalog(from: opened.snapshot, providers: self.providers, facts: facts, protected: protectedPaths(root: rootPath),
                                          managed: { inventoryRecord.value?.retirable ?? [:] })
            }
            if let catalogCache {
                let key = CatalogCache.Key(origin: opened.snapshot.origin, facts: facts, managed: Set(inventory?.resources.keys ?? [:].keys),
                                           selfManagement: selfManagement)
                catalog = try catalogCache.catalog(for: key, description: opened.snapshot.description, build: build)
            } else {
                catalog = try build()
            }
            if let problem = catalog.pruneProblem { result.note(problem, events) }
        } catch {
            throw ReconcileFailure(.invalidConfiguration, "\(opened.snapshot.description) is invalid: \(error.diagnostics.count) problem\(error.diagnostics.count == 1 ? "" : "s"); nothing was changed",
                                   diagnostics: error.shown.map { $0.displayed(under: opened.snapshot.displayPrefix) })
        }
        result.resourceCount = catalog.entries.count
        OneShot.keep(catalog)
        recorder?.hide(catalog.sensitivePaths)
        if let rollout = catalog.rollout, let git = opened.snapshot as? GitSnapshot {
            try checkRollout(rollout, commit: git, applied: opened.applied, host: host, into: &result)
        }
        guard mode.readsHost else { return }

        let planner = Planner(catalog: catalog, snapshot: opened.snapshot, facts: facts, tendVersion: tendVersion)
        var executor = Executor(catalog: catalog, logger: logger)
        executor.replans = saved == nil
        let plan: Plan
        if let saved {
            let stale = await planner.staleSteps(of: saved, host: host)
            guard stale.isEmpty else {
                throw ReconcileFailure(.stalePlan, "the saved plan no longer matches; nothing was changed", staleSteps: stale.map(\.description))
            }
            plan = saved
        } else {
            if changes {
                // Caches the plan reads (apt's package lists) are refreshed first, so that the plan
                // applied is made from them; a saved plan is applied as it was made.
                do {
                    for warning in try await executor.refresh(root: rootPath, services: services, toolOutput: events.toolOutput) {
                        result.note(warning, events)
                    }
                } catch {
                    result.note("\(error); planning with what is there", events)
                }
            }
            let planned = await planner.plan(host: host)
            result.assumedAbsent = host.unrecorded.sorted()
            if recorder != nil { Self.recordWhatPreviewsNeed(catalog, host: host) }
            plan = prune(planned, catalog: catalog, inventory: catalog.retired.isEmpty ? Inventory() : inventoryRecord.value ?? Inventory(), into: &result, events: events)
        }
        result.plan = plan
        guard changes else { return }

        if plan.hasChanges || !plan.errors.isEmpty, !(await events.approve(plan)) {
            result.declined = true
            return
        }
        do {
            result.removedLeftovers = try executor.removeLeftovers(root: rootPath)
        } catch {
            throw ReconcileFailure(.unusableHost, error.description)
        }
        for path in result.removedLeftovers {
            result.note("removed \(path), a temporary file an interrupted run left", events)
        }
        if plan.hasChanges || !plan.errors.isEmpty {
            events.applying(plan)
            do {
                result.report = try await executor.apply(plan, services: services, stop: events.shouldStop, toolOutput: events.toolOutput, progress: events.step)
                result.interrupted = result.report?.results.contains { $0.outcome == .skipped(Executor.stoppingReason) } ?? false
                for warning in result.report?.warnings ?? [] { result.note(warning, events) }
            } catch {
                throw ReconcileFailure(.unusableHost, error.description)
            }
        }
        // Once everything else, records included, is done: a restart of tend may stop this process.
        defer { Self.queueJobsAfterRun(&result, services: services, events: events) }
        // A commit new to this host is checked once, after its first apply, before it is recorded
        // as applied: a check that failed or never ran (tend stopped between the apply and the
        // verdict) leaves it unrecorded, so the next run checks it again. Later runs of the same
        // commit (drift repairs) are not checked.
        if checksHealth, source.pinnedCommit == nil, !catalog.health.isEmpty, let git = opened.snapshot as? GitSnapshot,
           let applied = opened.applied, applied.last != git.commit.id.description {
            result.healthFailures = await HealthProbe.failures(of: catalog.health, services: services)
        }
        guard result.healthFailures.isEmpty else {
            // What is on the host now is recorded (the inventory, for the put-back and blame), but
            // not the commit: the agent's next run puts the last good one back.
            if state(for: mode).root == "/" || result.report != nil {
                try? record(catalog: catalog, plan: plan, result: result, prefix: opened.snapshot.displayPrefix, state: state(for: mode),
                            previous: inventory ?? Inventory(), inventoryOnly: true)
            }
            throw ReconcileFailure(.unhealthy, Self.unhealthyMessage(result.commit ?? "", reason: result.healthFailures.joined(separator: "; ")))
        }
        catalogCache?.enforce(opened.snapshot.origin)
        // The commit was good enough to apply: a failed apply still records it for the rewind
        // check (which is about history) and as the last good commit (the agent keeps applying
        // it), but only one that converged is recorded as applied.
        if let git = opened.snapshot as? GitSnapshot, let applied = opened.applied {
            do {
                try applied.record(git)
            } catch {
                throw ReconcileFailure(.unusableHost, "applied, but cannot record commit \(git.commit.id.short) as the last applied: \(error)")
            }
        }
        // Another root keeps its records inside it: a run that changed nothing there leaves it
        // exactly as it was (an image built twice is the same image).
        guard state(for: mode).root == "/" || result.report != nil else { return }
        do {
            try record(catalog: catalog, plan: plan, result: result, prefix: opened.snapshot.displayPrefix, state: state(for: mode), previous: inventory ?? Inventory())
        } catch {
            throw ReconcileFailure(.unusableHost, "applied, but cannot record it in the state directory: \(error)")
        }
    }

    /// The removals of resources no longer declared, checked against the prune budget: each says
    /// why it goes; one that cannot be planned (a folder that still holds files) waits for a later
    /// run; and when more would go than the budget allows, none goes. What stays on the host is
    /// kept in `result.retiredKept`, so that the inventory still lists it.
    private func prune(_ plan: Plan, catalog: Catalog, inventory: Inventory, into result: inout ReconcileResult, events: ReconcileEvents) -> Plan {
        guard !catalog.retired.isEmpty, let prune = catalog.prune else { return plan }
        var plan = plan
        let now = result.commit.map { String($0.prefix(7)) } ?? "this configuration"
        var going: [ResourceID] = []
        var kept: Set<ResourceID> = []
        plan.steps = plan.steps.compactMap { step in
            guard catalog.retired.contains(step.id) else { return step }
            if let error = step.error {
                kept.insert(step.id)
                result.note("\(step.id) is no longer declared, but is kept for now: \(error)", events)
                return nil
            }
            guard var change = step.change else { return nil }
            let last = inventory.resources[step.id.description]
            change.notes.append("no longer declared since \(now)" + (last.map { "; last declared at \($0.declaredAt)" + ($0.commit.map { " in \($0.prefix(7))" } ?? "") } ?? ""))
            going.append(step.id)
            var pruned = step
            pruned.change = change
            return pruned
        }
        let limit = prune.limit(managed: inventory.resources.count)
        if going.count > limit, !allowPrune {
            let gone = Set(going)
            plan.steps.removeAll { gone.contains($0.id) }
            kept.formUnion(gone)
            result.pruneRefused = ReconcileResult.PruneRefusal(wanted: going.count, limit: limit)
            result.note("refusing to prune \(going.count) resources no longer declared: more than the budget of \(limit) (prune: {max: N} in tend.yaml); "
                        + "nothing is pruned. If that is meant, run tend apply --allow-prune once. The first: "
                        + going.prefix(5).map(\.description).joined(separator: ", "), events)
        }
        result.retiredKept = kept
        return plan
    }

    /// A run limited to `scope` (`Reconciler.scope`), under the lock already taken: the same
    /// Observe, Plan and Apply as a full run, with the enforced catalog and facts.
    private func repair(_ scope: Set<ResourceID>, events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) {
        guard let kept = catalogCache?.current else {
            throw ReconcileFailure(.usage, "no configuration applied yet to repair against")
        }
        result.sourceDescription = kept.sourceDescription
        result.commit = kept.origin.commit
        result.resourceCount = kept.catalog.entries.count
        var logger = self.logger
        if let commit = kept.origin.commit { logger[metadataKey: "commit"] = "\(commit)" }
        let (services, unreachable) = await Self.serviceManager(for: root)
        if let unreachable { result.note(unreachable, events) }
        let host: HostReader
        do {
            host = try HostReader(root: root, services: services)
            host.statCache = statCache
            host.servicesUnreachable = unreachable
        } catch {
            throw ReconcileFailure(.unusableHost, error.description)
        }
        let planner = Planner(catalog: kept.catalog, origin: kept.origin, sourceDescription: kept.sourceDescription, facts: kept.facts, tendVersion: tendVersion)
        let executor = Executor(catalog: kept.catalog, logger: logger)
        let plan = await planner.plan(host: host, scope: scope)
        result.plan = plan
        do {
            result.removedLeftovers = try executor.removeLeftovers(root: root, scope: scope)
            if plan.hasChanges || !plan.errors.isEmpty {
                events.applying(plan)
                result.report = try await executor.apply(plan, services: services, stop: events.shouldStop, toolOutput: events.toolOutput, progress: events.step)
            }
        } catch {
            throw ReconcileFailure(.unusableHost, error.description)
        }
        defer { Self.queueJobsAfterRun(&result, services: services, events: events) }
        let done = Set((result.report?.results ?? []).filter { $0.outcome == .done }.map(\.id))
        guard !done.isEmpty, let commit = kept.origin.commit else { return }
        // What tend changed, and when: `tend blame` names the repair.
        let state = state(for: .apply)
        var inventory = state.read(.inventory, as: Inventory.self) { result.note($0, events) } ?? Inventory()
        let now = Date()
        for id in done where inventory.resources[id.description] != nil {
            inventory.resources[id.description]?.changed = now
            inventory.resources[id.description]?.changedBy = commit
        }
        do {
            try state.writeInventory(inventory)
        } catch {
            throw ReconcileFailure(.unusableHost, "repaired, but cannot record it in the state directory: \(error)")
        }
    }

    /// Writes what an apply leaves on record: the last good commit, the applied one when every
    /// resource converged, and the inventory of what is managed now.
    /// With `inventoryOnly` (a commit that failed its health checks), only what is on the host
    /// now: the commit is neither good nor applied.
    private func record(catalog: Catalog, plan: Plan, result: ReconcileResult, prefix: String, state: StateStore, previous: Inventory,
                        inventoryOnly: Bool = false) throws(StateStoreError) {
        let now = Date()
        guard var commit = result.commitInfo else { return }
        commit.recorded = now
        if !inventoryOnly {
            try state.write(.lastGood, commit)
            if result.report?.succeeded ?? plan.errors.isEmpty {
                try state.write(.applied, commit)
            }
        }
        var inventory = Inventory()
        let changed = Set((result.report?.results ?? []).filter { $0.outcome == .done }.map(\.id))
        let unfinished = Set((result.report?.results ?? []).filter { $0.outcome != .done }.map(\.id))
        for entry in catalog.entries {
            let key = entry.id.description
            // A removal that was done, or had nothing left to do, leaves the inventory; one
            // refused, kept for later or failed stays in it.
            if catalog.retired.contains(entry.id) {
                if result.retiredKept.contains(entry.id) || unfinished.contains(entry.id), let before = previous.resources[key] {
                    inventory.resources[key] = before
                }
                continue
            }
            let before = previous.resources[key]
            let file = prefix.isEmpty ? entry.location.file : (prefix.hasSuffix("/") ? prefix : prefix + "/") + entry.location.file
            inventory.resources[key] = Inventory.Entry(
                declaredAt: "\(file):\(entry.location.line)", commit: commit.commit, since: before?.since ?? commit.commit,
                changed: changed.contains(entry.id) ? now : before?.changed, changedBy: changed.contains(entry.id) ? commit.commit : before?.changedBy,
                path: entry.path)
        }
        for id in Set(inventory.resources.values.flatMap { [$0.commit, $0.since, $0.changedBy] }.compactMap { $0 }) {
            inventory.commits[id] = previous.commits[id] ?? (id == commit.commit ? commit : nil)
        }
        // A no-op run of the same commit writes nothing.
        if inventory != previous { try state.writeInventory(inventory) }
    }

    /// The same words when the checks fail and on each later refusal, so the agent says it once.
    static func unhealthyMessage(_ commit: String, reason: String) -> String {
        "commit \(commit.prefix(7)) failed its health checks on this host (\(reason)); waiting for a new commit"
    }

    /// Where `commit` stands in its `rollout` for this host; with `followsRollout`, ends the run
    /// with `.notDue` while this host's wave is not due and there is a commit to keep enforcing.
    private func checkRollout(_ rollout: Rollout, commit: GitSnapshot, applied: AppliedCommits?, host: HostReader,
                              into result: inout ReconcileResult) throws(ReconcileFailure) {
        let machine = machineID ?? (try? host.read("/etc/machine-id")).map { String(decoding: $0, as: UTF8.self).trimmingWhitespace() } ?? ""
        let position = Rollout.position(machineID: machine)
        let wave = rollout.wave(at: position)
        let committed = Date(timeIntervalSince1970: Double(commit.commit.committed))
        let due = committed + DurationText.seconds(rollout.waves[wave].after)
        result.rolloutPolicy = (rollout, committed)
        result.rollout = ReconcileResult.RolloutTiming(wave: wave + 1, waves: rollout.waves.count, share: rollout.waves[wave].share, due: due)
        guard followsRollout, source.pinnedCommit == nil, Date() < due, !machine.isEmpty,
              let last = applied?.last, last != commit.commit.id.description else { return }
        throw ReconcileFailure(.notDue, "commit \(commit.commit.id.short) reaches this host at \(due.formatted(Date.ISO8601FormatStyle())) (wave \(wave + 1) of \(rollout.waves.count): \(Rollout.format(share: rollout.waves[wave].share)) of the fleet, \(DurationText.format(rollout.waves[wave].after)) after the commit); enforcing \(last.prefix(7)) until then")
    }

    /// The snapshot and, for Git, the record of applied commits.
    private struct Opened {
        var snapshot: any Snapshot
        var applied: AppliedCommits?
    }

    /// Opens the source (or exactly the one a saved plan was made from): fetches, verifies the
    /// commit's signature and checks that it does not go back in time.
    private func open(saved: Plan?, root: String, checkRewind: Bool, events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) -> Opened {
        var location = source.location
        var pinned = source.pinnedCommit
        if let saved {
            switch saved.source.type {
            case "directory":
                // A folder named that opens and is another folder; one that does not open is reported below.
                if case .folder(let given) = location, let named = try? DirectorySnapshot(path: given), named.origin != saved.source {
                    throw ReconcileFailure(.usage, "the plan was made from \(saved.sourceDescription), not \(given)")
                }
                location = .folder(saved.source.location)
            case "git":
                location = .git(url: saved.source.location, ref: nil, path: saved.source.path)
                pinned = saved.source.commit
            default:
                throw ReconcileFailure(.usage, "the plan was made from a \(saved.source.type) source, which this tend cannot open")
            }
        }
        switch location {
        case .folder(let folder):
            do {
                let snapshot = try DirectorySnapshot(path: folder)
                result.commitInfo = CommitRecord(source: snapshot.origin.location, recorded: Date())
                return Opened(snapshot: snapshot)
            } catch {
                throw ReconcileFailure(.sourceUnreadable, "cannot read the source: \(error.message)")
            }
        case .git(let url, let ref, let path):
            let git = try gitSource(url: url, ref: pinned ?? ref, path: path, events: events, into: &result)
            let applied = AppliedCommits(source: git, root: Self.canonical(root))
            let snapshot: GitSnapshot
            do {
                snapshot = try git.snapshot(offline: source.offline || pinned != nil)
            } catch {
                throw ReconcileFailure(error.kind == .refused ? .refused : .sourceUnreadable, error.message)
            }
            // Known before it is trusted, so that a refusal names it.
            result.commit = snapshot.commit.id.description
            if pinned == nil, let reason = unhealthyCommits[snapshot.commit.id.description] {
                throw ReconcileFailure(.unhealthy, Self.unhealthyMessage(snapshot.commit.id.description, reason: reason))
            }
            do {
                if let allowedSigners = source.allowedSigners { try await snapshot.verifySignature(.ssh(allowedSigners: allowedSigners)) }
                if let keyring = source.openPGPKeyring { try await snapshot.verifySignature(.openPGP(keyring: keyring)) }
                if checkRewind, !source.allowRewind { try applied.checkForward(snapshot) }
                result.commitInfo = CommitRecord(source: url, ref: ref, path: path, commit: snapshot.commit.id.description, subject: snapshot.commit.summary,
                                                 author: snapshot.commit.author, date: snapshot.commit.date, recorded: Date())
                return Opened(snapshot: snapshot, applied: applied)
            } catch {
                throw ReconcileFailure(error.kind == .refused ? .refused : .sourceUnreadable, error.message)
            }
        }
    }

    /// What no configuration may declare on `root`, and what only a self-managed host may.
    func protectedPaths(root: String) -> ProtectedPaths {
        let binary = Self.canonical("/proc/self/exe")
        return ProtectedPaths(root: Self.canonical(root), stateDirectory: Self.canonical(source.stateDirectory),
                              binary: binary == "/proc/self/exe" ? nil : binary, selfManagement: selfManagement)
    }

    /// Queues the jobs on tend's own units that the apply asked for (`ApplyReport.jobsAfterRun`),
    /// now that the run is done: systemd restarts tend once this process has ended.
    private static func queueJobsAfterRun(_ result: inout ReconcileResult, services: (any ServiceManager)?, events: ReconcileEvents) {
        guard let services else { return }
        for request in result.report?.jobsAfterRun ?? [] {
            do {
                try services.queue(request.job, unit: request.unit)
                result.note("\(request.job.rawValue) of \(request.unit) queued: it takes effect now that this run has ended", events)
            } catch {
                result.note("cannot queue the \(request.job.rawValue) of \(request.unit): \(error)", events)
            }
        }
    }

    /// Fetches the Git source into its cache and resolves its ref, and nothing else: the agent
    /// fetches beside its drift repairs, so that a server that never answers holds none of them,
    /// then runs with `source.offline`. Does nothing for a folder source.
    public func fetch(events: ReconcileEvents = ReconcileEvents()) throws(ReconcileFailure) {
        guard case .git(let url, let ref, let path) = source.location, !source.offline, source.pinnedCommit == nil else { return }
        var result = ReconcileResult()
        let git = try gitSource(url: url, ref: ref, path: path, events: events, into: &result)
        do {
            _ = try git.snapshot(offline: false)
        } catch {
            throw ReconcileFailure(error.kind == .refused ? .refused : .sourceUnreadable, error.message)
        }
    }

    /// The Git source of `url`, its state folder prepared (a folder others could enter is
    /// tightened, and said so).
    private func gitSource(url: String, ref: String?, path: String?, events: ReconcileEvents,
                           into result: inout ReconcileResult) throws(ReconcileFailure) -> GitSource {
        do {
            if let tightened = try PrivateDirectory.prepare(source.stateDirectory) { result.note(tightened, events) }
        } catch {
            throw ReconcileFailure(.unusableHost, "cannot prepare the state directory: \(error)"
                                   + (error.isPermission ? "; " + PrivateDirectory.permissionAdvice : ""))
        }
        var git = GitSource(url: url, ref: ref, path: path, stateDirectory: source.stateDirectory,
                            credentials: source.credentials, timeout: source.fetchTimeout, maximumFetchBytes: source.fetchMaxBytes, logger: logger)
        git.progress = events.fetching
        return git
    }

    /// The service manager for `root`: systemd over D-Bus when the root is "/" and systemd runs as
    /// PID 1; none otherwise (units are then managed through links, as `systemctl --root` does).
    /// `root` with links and `..` resolved, so that one root has one record however it is written.
    static func canonical(_ root: String) -> String {
        guard let resolved = realpath(root, nil) else { return root }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// With the problem to tell when systemd runs but cannot be reached. Tried for up to five
    /// seconds where the system bus is there: systemd does not answer while it re-executes
    /// (`systemctl daemon-reexec`, an upgrade of systemd), nor the bus while dbus restarts. A host
    /// without the bus is told at once.
    static func serviceManager(for root: String) async -> ((any ServiceManager)?, problem: String?) {
        guard root == "/", SystemdManager.isBooted else { return (nil, nil) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        while true {
            do {
                return (try SystemdManager.connectSystem(), nil)
            } catch {
                guard clock.now < deadline, SystemdManager.hasSystemBus else {
                    return (nil, "systemd runs, but did not answer on the bus (\(error)); units cannot be managed in this run")
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

extension Reconciler.Mode {
    /// Whether the run observes the host (everything but validate).
    var readsHost: Bool {
        if case .validate = self { return false }
        return true
    }

    /// Whether the run may change the host (and so takes the lock and leaves records).
    var changesHost: Bool {
        switch self {
        case .apply, .applySaved: true
        case .validate, .plan: false
        }
    }

    /// Whether a commit older than the last applied one is refused (validate only reads it).
    var checksRewind: Bool { readsHost }
}

/// Where the configuration comes from, and how to trust it.
public struct SourceSpec: Sendable {
    public enum Location: Sendable {
        case folder(String)
        case git(url: String, ref: String?, path: String?)
    }

    public var location: Location
    /// Where the Git caches and the records of applied commits live.
    public var stateDirectory: String
    public var credentials: GitCredentials
    public var fetchTimeout: Duration
    /// The most bytes one fetch may bring.
    public var fetchMaxBytes: Int
    /// Use the commit in the cache; fetch nothing.
    public var offline: Bool
    /// Refuse a commit without a good SSH signature by a key of this allowed-signers file.
    public var allowedSigners: String?
    /// Refuse a commit without a good OpenPGP signature by a key of this keyring.
    public var openPGPKeyring: String?
    /// Apply a commit that does not descend from the last applied one.
    public var allowRewind: Bool
    /// Use exactly this commit from the cache, fetching nothing (the agent's last good commit
    /// while a newer one is refused or the remote cannot be reached).
    public var pinnedCommit: String?

    public init(location: Location, stateDirectory: String, credentials: GitCredentials = GitCredentials(), fetchTimeout: Duration = .seconds(60),
                fetchMaxBytes: Int = GitSource.defaultMaximumFetchBytes, offline: Bool = false, allowedSigners: String? = nil,
                openPGPKeyring: String? = nil, allowRewind: Bool = false) {
        self.location = location
        self.stateDirectory = stateDirectory
        self.credentials = credentials
        self.fetchTimeout = fetchTimeout
        self.fetchMaxBytes = fetchMaxBytes
        self.offline = offline
        self.allowedSigners = allowedSigners
        self.openPGPKeyring = openPGPKeyring
        self.allowRewind = allowRewind
    }
}

extension SourceSpec: CustomStringConvertible {
    /// The folder, or `URL (ref) //path`.
    public var description: String {
        switch location {
        case .folder(let folder): folder
        case .git(let url, let ref, let path): "\(url) (\(ref ?? "default branch"))\(path.map { " //" + $0 } ?? "")"
        }
    }
}

/// What a caller hears while a run goes on.
public struct ReconcileEvents: Sendable {
    /// Another run holds the root's lock; called once, with who.
    public var lockWaiting: @Sendable (String) -> Void
    /// Something a person should know that does not stop the run, when it happens (also kept in
    /// `ReconcileResult.notes`).
    public var note: @Sendable (String) -> Void
    /// Asked before a plan with changes is applied; false leaves everything as it is.
    public var approve: @Sendable (Plan) async -> Bool
    /// The apply begins.
    public var applying: @Sendable (Plan) -> Void
    /// A step starts or ends.
    public var step: @Sendable (ApplyEvent) -> Void
    /// How a fetch goes, at most ten times a second.
    public var fetching: (@Sendable (FetchProgress) -> Void)?
    /// The progress lines of a tool that changes the host (apt), as they come.
    public var toolOutput: (@Sendable (String) -> Void)?
    /// Asked before each step; true leaves the steps not yet started for the next run.
    public var shouldStop: @Sendable () -> Bool = { false }

    public init(lockWaiting: @escaping @Sendable (String) -> Void = { _ in }, note: @escaping @Sendable (String) -> Void = { _ in }, approve: @escaping @Sendable (Plan) async -> Bool = { _ in true },
                applying: @escaping @Sendable (Plan) -> Void = { _ in }, step: @escaping @Sendable (ApplyEvent) -> Void = { _ in }) {
        self.lockWaiting = lockWaiting
        self.note = note
        self.approve = approve
        self.applying = applying
        self.step = step
    }
}

/// How a run ended: what it planned and did, and why it stopped if it did.
public struct ReconcileResult: Sendable {
    /// The configuration as people name it: the folder, or the URL, ref and commit.
    public var sourceDescription = ""
    /// The commit applied, planned or refused, for Git sources.
    public var commit: String?
    /// The source and commit as the state records them, once it was opened and trusted.
    public var commitInfo: CommitRecord?
    public var resourceCount = 0
    public var plan: Plan?
    /// What the apply did; nil when nothing was applied.
    public var report: ApplyReport?
    /// Temporary files of interrupted runs that this one removed.
    public var removedLeftovers: [String] = []
    /// Things a person should know that did not stop the run.
    public var notes: [String] = []
    /// The plan was not approved: nothing was applied.
    public var declined = false
    /// Why the run stopped before its end.
    public var failure: ReconcileFailure?
    /// `prune:` would have removed more than its budget, so nothing was pruned.
    public var pruneRefused: PruneRefusal?
    /// Resources no longer declared that stay on the host for now: over the budget, or not
    /// removable yet (a folder that still holds files).
    public var retiredKept: Set<ResourceID> = []
    /// The agent was told to stop during the apply: the steps not started were skipped.
    public var interrupted = false
    /// When the commit reaches this host, by tend.yaml's `rollout:`; set whenever it has one.
    public var rollout: RolloutTiming?
    /// The commit's `rollout:` and its commit time, for `tend rollout status`.
    public var rolloutPolicy: (rollout: Rollout, committed: Date)?
    /// The health checks that failed after this run's apply, each with why.
    public var healthFailures: [String] = []
    /// Paths a replayed snapshot did not hold, which the plan took as absent.
    public var assumedAbsent: [String] = []

    /// Where a commit's rollout stands for this host.
    public struct RolloutTiming: Sendable, Codable {
        /// The commit's wave for this host, from 1, and how many there are.
        public var wave: Int
        public var waves: Int
        /// The share of the fleet that has the commit once this host's wave is due.
        public var share: Double
        /// When this host's wave is due.
        public var due: Date
    }

    public struct PruneRefusal: Sendable, Codable {
        public var wanted: Int
        public var limit: Int
    }

    public init() {}

    mutating func note(_ text: String, _ events: ReconcileEvents) {
        notes.append(text)
        events.note(text)
    }

    /// Every resource that did not converge, as typed failures: a failed step is to be retried
    /// later, a skipped one waits for what it depends on.
    public var stepFailures: [ReconcileFailure] {
        (report?.results ?? []).compactMap { result in
            switch result.outcome {
            case .done: nil
            case .failed(let reason): ReconcileFailure(.resourceFailed, reason, resource: result.id)
            case .skipped(let reason): ReconcileFailure(.resourceSkipped, reason, resource: result.id)
            }
        }
    }
}

/// Why a run, or one resource of it, did not converge, classed as controller-runtime classes
/// errors: retry later, waiting on something, or stalled until the source changes.
public struct ReconcileFailure: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The configuration does not load (`diagnostics` say where).
        case invalidConfiguration
        /// The folder or the remote cannot be read.
        case sourceUnreadable
        /// The commit is unsigned, badly signed, or goes back in time.
        case refused
        /// Another run held the root's lock for too long.
        case locked
        /// The root or the state directory cannot be used.
        case unusableHost
        /// A saved plan no longer matches the host or the configuration.
        case stalePlan
        /// The request contradicts itself (a saved plan and another source).
        case usage
        /// One resource failed.
        case resourceFailed
        /// One resource was skipped because something it depends on failed.
        case resourceSkipped
        /// The commit's rollout has not reached this host's wave yet (`ReconcileResult.rollout`).
        case notDue
        /// The commit failed this host's health checks, now or before.
        case unhealthy
    }

    public enum Class: String, Sendable, Hashable {
        case retryLater = "retry later"
        case waiting
        case stalled = "stalled until the source changes"
    }

    public var code: Code
    public var message: String
    /// The resource, for a failure of one resource.
    public var resource: ResourceID?
    /// Every problem of an invalid configuration, at its position.
    public var diagnostics: [Diagnostic]
    /// What changed since a saved plan, one line each.
    public var staleSteps: [String]

    public init(_ code: Code, _ message: String, resource: ResourceID? = nil, diagnostics: [Diagnostic] = [], staleSteps: [String] = []) {
        self.code = code
        self.message = message
        self.resource = resource
        self.diagnostics = diagnostics
        self.staleSteps = staleSteps
    }

    public var `class`: Class {
        switch code {
        case .invalidConfiguration, .refused, .stalePlan, .usage, .unhealthy: .stalled
        case .resourceSkipped, .notDue: .waiting
        case .sourceUnreadable, .locked, .unusableHost, .resourceFailed: .retryLater
        }
    }

    public var description: String { resource.map { "\($0): \(message)" } ?? message }
}

/// A record read the first time it is asked for, if ever. Unchecked Sendable without a lock: a
/// run asks for it on its own task only, one call after another (the catalog's build closure, then
/// the prune); it crosses no thread boundary while in use.
private final class LazyRecord<Value>: @unchecked Sendable {
    private let read: (inout [String]) -> Value?
    private let enabled: Bool
    private var loaded: Value??
    /// What reading it said, for the run's notes.
    private(set) var problems: [String] = []

    init(enabled: Bool, read: @escaping (inout [String]) -> Value?) {
        self.enabled = enabled
        self.read = read
    }

    var value: Value? {
        if let loaded { return loaded }
        let value = enabled ? read(&problems) : nil
        loaded = .some(value)
        return value
    }
}
