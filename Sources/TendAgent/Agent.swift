public import FoundationEssentials
public import Logging
public import ServiceLifecycle
import Synchronization
public import TendCore
import TendGit
import TendSpec
public import TendSystemd
import Glibc

/// `tend agent`: keeps the root converged to the newest good commit, forever.
///
/// Each cycle fetches and applies the newest commit. A commit that does not load, is not signed
/// as required or goes back in time is refused, and the last good commit is applied instead (so
/// drift is still repaired) until a newer commit fixes it; the same happens while the remote
/// cannot be reached, with retries backing off. Cycles run on the timer (every interval, at this
/// host's offset), at once on SIGHUP, and never two at a time. A suspended agent plans but
/// applies nothing.
///
/// The cycle runs on a thread of its own (`ThreadExecutor`), so that a unit job blocked for a
/// minute holds neither SIGTERM's handling nor the watchdog's keep-alive, which comes from a timer
/// thread of its own (`Watchdog`). The fetch that begins a cycle runs on another, and drift is
/// repaired while it lasts: a Git server that accepts and never answers holds up nothing but the
/// new commit. SIGTERM lets the step in progress finish, skips the rest and ends the cycle.
public final class Agent: Service, Sendable {
    private let settings: Mutex<AgentSettings>
    private let reload: @Sendable () throws -> AgentSettings
    private let notifier: ServiceNotifier
    private let logger: Logger
    private let wakeup = Wakeup()
    private let stopping = Atomic<Bool>(false)
    /// When the cycle in progress began (monotonic nanoseconds), or 0 between cycles.
    let cycleStarted = Atomic<UInt64>(0)
    private let metrics = AgentMetrics()
    private let executor = ThreadExecutor(label: "tend.cycle")
    private let fetcher = ThreadExecutor(label: "tend.fetch")
    private let catalogs = CatalogCache()
    private let lastFailure = Mutex<ReconcileFailure?>(nil)
    /// What the watches saw; created with the agent, watching from the first applied cycle.
    private let drift: DriftWatch
    /// The agent's record as the last cycle wrote it, which a repair updates (contested resources).
    private let record = Mutex<AgentRecord?>(nil)
    /// The stat cache of the root, loaded at the first cycle and saved after each.
    private let statCache = Mutex<StatCache?>(nil)
    /// How long a burst of events is gathered into one repair.
    static let debounce: Duration = .milliseconds(15)

    /// Why the last cycle did not converge the newest commit, if it did not: the newest commit's
    /// own failure also when the last good commit was applied instead. `tend agent --once` exits
    /// by it, as `tend apply` would have.
    public var lastCycleFailure: ReconcileFailure? { lastFailure.withLock { $0 } }

    public init(settings: AgentSettings, reload: @escaping @Sendable () throws -> AgentSettings, notifier: ServiceNotifier = ServiceNotifier(), logger: Logger) {
        self.settings = Mutex(settings)
        self.reload = reload
        self.notifier = notifier
        self.logger = logger
        drift = DriftWatch(logger: logger, wake: { [wakeup] in wakeup.fire(.watched) })
    }

    /// The services to run in one `ServiceGroup`: the agent, its SIGHUP listener and its watchdog.
    public var services: [any Service] {
        [self, HangupListener(agent: self), Watchdog(agent: self, notifier: notifier, logger: logger)]
    }

    /// A cycle at once, with agent.yaml read again first (SIGHUP).
    func hangup() { wakeup.fire(reload: true) }

    /// Whether a cycle has run longer than anything it waits for should take: the watchdog then
    /// stops its keep-alive and systemd restarts the agent.
    func isHung(limit: Duration) -> Bool {
        let started = cycleStarted.load(ordering: .relaxed)
        guard started > 0 else { return false }
        return Self.monotonicNanoseconds() - started > UInt64(limit.components.seconds) * 1_000_000_000
    }

    public func run() async throws {
        var state = CycleState()
        // Failed fetches are counted across runs: by restarts, and by `tend agent --once` under
        // tend-apply.timer, where each run would otherwise say "1 in a row".
        let initial = settings.withLock { $0.reconciler }
        if let previous = StateStore(stateDirectory: initial.source.stateDirectory, root: initial.root).read(.agent, as: AgentRecord.self) {
            state.fetchFailures = previous.fetchFailures
        }
        var first = true
        var count = 0
        await withGracefulShutdownHandler {
            while !stopping.load(ordering: .relaxed), !Task.isCancelled {
                let current = settings.withLock { $0 }
                let next = await cycle(current, state: &state)
                count += 1
                if let limit = current.cycles, count >= limit { break }
                if first {
                    notifier.ready(status: state.status)
                    first = false
                } else {
                    notifier.status(state.status)
                }
                guard !stopping.load(ordering: .relaxed) else { break }
                // agent.yaml replaced (by this cycle, on a self-managed host, or by hand): read
                // again, and a cycle with it at once, as after SIGHUP.
                if let file = current.configFile, FileIdentity(path: file) != current.configIdentity {
                    readSettingsAgain(because: "\(file) changed", status: state.status)
                    continue
                }
                if state.reloadAsked {
                    state.reloadAsked = false
                    readSettingsAgain(because: "SIGHUP during the fetch", status: state.status)
                    continue
                }
                let reason = await waitRepairing(until: next, current)
                if reason == .reload { readSettingsAgain(because: "SIGHUP", status: state.status) }
            }
        } onGracefulShutdown: { [self] in
            stopping.store(true, ordering: .relaxed)
            notifier.stopping(status: "stopping after the step in progress")
            wakeup.fire(reload: false)
        }
        drift.stop()
        logger.notice("agent stopped")
    }

    /// Reads agent.yaml and the flags again; a file that does not read keeps the settings in
    /// use, and is not tried again until it changes once more.
    private func readSettingsAgain(because reason: String, status: String) {
        notifier.reloading(status: "reading the configuration again")
        do {
            let fresh = try reload()
            settings.withLock { $0 = fresh }
            logger.notice("configuration read again (\(reason)); checking at once")
        } catch {
            settings.withLock { $0.configIdentity = $0.configFile.flatMap { FileIdentity(path: $0) } }
            logger.error("configuration not read again (\(reason)), keeping the one in use: \(error)", metadata: ["result": "failed"])
        }
        notifier.ready(status: status)
    }

    // MARK: Repairs

    /// Waits for the next cycle (the timer, SIGHUP or stop), repairing what the watches see
    /// change meanwhile. Lost events (inotify's queue overflowed) end the wait: a full cycle then
    /// checks everything at once.
    private func waitRepairing(until next: ContinuousClock.Instant, _ settings: AgentSettings) async -> Wakeup.Reason {
        while true {
            let reason = await wakeup.wait(until: next)
            // The wake of a fetch that ended as its cycle did.
            if reason == .fetched { continue }
            guard reason == .watched, !stopping.load(ordering: .relaxed) else { return reason }
            if await repairWatched(settings) { return .timer }
        }
    }

    /// Repairs what the watches saw, a burst of writes at once; true when events were lost and
    /// everything must be checked.
    private func repairWatched(_ settings: AgentSettings) async -> Bool {
        try? await Task.sleep(for: Self.debounce)
        let (ids, missed) = drift.take()
        switch missed {
        case .overflow?:
            logger.notice("inotify's queue overflowed and events were lost: checking everything now", metadata: ["action": "watch"])
            return true
        case .watcherStopped?:
            // The watcher said why when it stopped.
            return true
        case nil:
            break
        }
        if !ids.isEmpty { await repair(ids, settings) }
        return false
    }

    /// Fetches the cycle's source on the fetch's own thread, repairing drift meanwhile. A
    /// SIGHUP that comes meanwhile is handed back, for after the cycle; lost events are left to
    /// the cycle, which checks everything.
    private func fetchRepairing(_ reconciler: Reconciler, _ settings: AgentSettings, reloadAsked: inout Bool) async -> ReconcileFailure? {
        let done = Flag()
        let events = ReconcileEvents(note: { [logger] in logger.notice("\($0)") })
        async let failure = withTaskExecutorPreference(fetcher) { [wakeup] () -> ReconcileFailure? in
            defer {
                done.set()
                wakeup.fire(.fetched)
            }
            do throws(ReconcileFailure) {
                try reconciler.fetch(events: events)
                return nil
            } catch {
                return error
            }
        }
        while !done.isSet {
            // A second at a time: a cancelled Task.sleep keeps its timer (about 150 bytes) until
            // its deadline, so an hour's deadline per fetch held memory for an hour.
            switch await wakeup.wait(until: .now + .seconds(1)) {
            case .watched where !stopping.load(ordering: .relaxed): _ = await repairWatched(settings)
            case .reload: reloadAsked = true
            default: break
            }
        }
        return await failure
    }

    /// A flag set once, read from another thread.
    private final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// Observes, plans and applies `ids` (and what depends on them) as a cycle would, against the
    /// commit the last cycle applied; logs what had drifted and how long the repair took.
    private func repair(_ ids: Set<ResourceID>, _ settings: AgentSettings) async {
        // A repair during a cycle's fetch leaves the cycle's start as it was, for the watchdog.
        let outer = cycleStarted.load(ordering: .relaxed)
        if outer == 0 { cycleStarted.store(Self.monotonicNanoseconds(), ordering: .relaxed) }
        defer { cycleStarted.store(outer, ordering: .relaxed) }
        let clock = ContinuousClock.now
        var reconciler = settings.reconciler
        reconciler.policy.runBy = "tend agent"
        reconciler.caches = Reconciler.Caches(catalogs: catalogs, stat: statCache.withLock { $0 })
        let store = StateStore(stateDirectory: reconciler.source.stateDirectory, root: reconciler.root)
        if let suspension = store.read(.suspended, as: Suspension.self, problem: { _ in }), suspension.holds(at: Date()) { return }
        var events = ReconcileEvents(
            lockWaiting: { [logger] holder in logger.notice("waiting for \(holder), which holds the lock of the root") },
            note: { [logger] in logger.notice("\($0)") })
        events.shouldStop = { [self] in stopping.load(ordering: .relaxed) }
        let result = await run(reconciler, .repair(ids), events)
        let elapsed = ContinuousClock.now - clock
        let tenths = Int((DurationText.seconds(elapsed) * 10_000).rounded())
        let milliseconds = "\(tenths / 10).\(tenths % 10)"
        var logger = self.logger
        if let commit = result.commit { logger[metadataKey: "commit"] = "\(commit)" }
        // Every attempt counts toward a contest, also one that failed: a unit that fails to start
        // changes on the bus each time it is tried, and must not be tried in a tight loop.
        var attempted: Set<ResourceID> = []
        var repaired: Set<ResourceID> = []
        if let failure = result.failure {
            logger.warning("repair of \(ids.sorted { $0.description < $1.description }.map(\.description).joined(separator: ", ")) failed: \(failure.message)",
                           metadata: ["action": "repair", "result": "failed"])
            attempted = ids
        }
        let changes = Dictionary((result.plan?.steps ?? []).compactMap { step in step.change.map { (step.id, $0) } }, uniquingKeysWith: { a, _ in a })
        for step in result.report?.results ?? [] where step.outcome != .skipped(.stopping) {
            var logger = logger
            logger[metadataKey: "resource"] = "\(step.id)"
            attempted.insert(step.id)
            let what = changes[step.id].map(Self.drifted) ?? ""
            if step.outcome == .done {
                repaired.insert(step.id)
                logger.notice("drift repaired in \(milliseconds) ms: \(step.id)\(what)", metadata: ["action": "repair", "result": "done", "repair_ms": "\(milliseconds)"])
            } else {
                logger.warning("drift not repaired: \(step.id)\(what): \(step.outcome.reason ?? step.outcome.label)", metadata: ["action": "repair", "result": "\(step.outcome.label)"])
            }
        }
        metrics.repaired(repaired.count, seconds: DurationText.seconds(elapsed))
        // Also after a failure: what the repair replaced is a new inode, to be watched as such.
        drift.rearm(ids, root: reconciler.root)
        let contested = drift.repaired(attempted)
        defer { if !attempted.isEmpty { writeMetrics(settings) } }
        for id in contested {
            var logger = logger
            logger[metadataKey: "resource"] = "\(id)"
            logger.warning("\(id) is contested: repaired \(DriftWatch.contestLimit) times within \(DurationText.format(DriftWatch.contestWindow)) (something keeps changing it back, or the repair does not hold); it is repaired on the timer only until the commit or its declaration changes",
                           metadata: ["action": "repair", "result": "contested"])
        }
        if !contested.isEmpty { writeRecord(store) { _ in } }
    }

    /// Writes the metrics file, when there is one to write.
    private func writeMetrics(_ settings: AgentSettings) {
        guard let file = settings.metricsFile, !file.isEmpty, AgentMetrics.shouldWrite(file) else { return }
        do {
            try metrics.write(to: file)
        } catch {
            logger.warning("cannot write the metrics to \(file): \(error)")
        }
    }

    /// What had drifted, for the journal: the attributes, old → new, and a few lines of the diff
    /// of text content (never sensitive content).
    static func drifted(_ change: Change) -> String {
        var parts = change.attributes.map(\.summary)
        switch change.content {
        case .text(let diff)?:
            let lines = diff.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { ($0.hasPrefix("+") || $0.hasPrefix("-")) && !$0.hasPrefix("+++") && !$0.hasPrefix("---") }
            let shown = lines.prefix(6).map { String($0.prefix(100)) }
            parts.append("content: " + shown.joined(separator: " ⏎ ") + (lines.count > 6 ? " ⏎ … \(lines.count - 6) more lines" : ""))
        case .binary?: parts.append("content (binary)")
        case .sensitive?: parts.append("content (sensitive, not shown)")
        case nil: break
        }
        if change.action == .create { parts.insert("was missing", at: 0) }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")"
    }

    /// Writes the agent's record with the contested resources as they are now, `change`d first.
    private func writeRecord(_ store: StateStore, _ change: (inout AgentRecord) -> Void) {
        let contested = drift.contested
        let updated = record.withLock { record -> AgentRecord? in
            guard var current = record else { return nil }
            change(&current)
            current.contested = contested.isEmpty ? nil : contested.map { AgentRecord.Contest(resource: $0.key.description, since: $0.value) }
                .sorted { $0.resource < $1.resource }
            record = current
            return current
        }
        guard let updated else { return }
        do {
            try store.write(.agent, updated)
        } catch {
            logger.error("cannot record the agent's status: \(error)", metadata: ["result": "failed"])
        }
        metrics.contested(contested.count)
    }

    // MARK: One cycle

    /// What carries over from one cycle to the next.
    struct CycleState {
        var fetchFailures = 0
        var stall: AgentRecord.Stall?
        var waiting: AgentRecord.Waiting?
        var enforcing: String?
        var status = "starting"
        var started = Date()
        /// SIGHUP came while the cycle fetched: read the settings again once it ends.
        var reloadAsked = false
    }

    /// Runs one cycle and returns when the next is due.
    private func cycle(_ settings: AgentSettings, state: inout CycleState) async -> ContinuousClock.Instant {
        if let (count, since) = JournalLogHandler.takeLost() {
            logger.warning("\(count) log entries could not be sent to the journal since \(Date(timeIntervalSince1970: Double(since)).formatted(.iso8601)) (journald was stopped or its socket full); what runs did is in last-run.json and tend status")
        }
        cycleStarted.store(Self.monotonicNanoseconds(), ordering: .relaxed)
        defer { cycleStarted.store(0, ordering: .relaxed) }
        let clock = ContinuousClock.now
        let started = Date()
        var reconciler = settings.reconciler
        reconciler.policy.runBy = "tend agent"
        reconciler.policy.followsRollout = true
        reconciler.policy.checksHealth = true
        // One record a cycle, of the run that ended it, written below.
        reconciler.policy.recordsRun = false
        let store = StateStore(stateDirectory: reconciler.source.stateDirectory, root: reconciler.root)
        var unhealthy = store.read(.unhealthy, as: UnhealthyCommits.self) { logger.warning("\($0)") } ?? UnhealthyCommits()
        reconciler.policy.unhealthyCommits = unhealthy.reasons
        reconciler.caches = Reconciler.Caches(catalogs: catalogs, stat: statCache.withLock { cache in
            if cache == nil { cache = store.loadStatCache() }
            return cache
        })
        let suspension = store.read(.suspended, as: Suspension.self) { logger.warning("\($0)") }.flatMap { $0.holds(at: started) ? $0 : nil }
        var events = ReconcileEvents(
            lockWaiting: { [logger] holder in logger.notice("waiting for \(holder), which holds the lock of the root") },
            note: { [logger] in logger.notice("\($0)") })
        events.shouldStop = { [self] in stopping.load(ordering: .relaxed) }
        let mode: Reconciler.Mode = suspension == nil ? .apply : .plan
        var result = ReconcileResult()
        let fetchFailure = await fetchRepairing(reconciler, settings, reloadAsked: &state.reloadAsked)
        // SIGTERM during the fetch: nothing is planned, let alone applied.
        if stopping.load(ordering: .relaxed) { return ContinuousClock.now }
        if let fetchFailure {
            result.failure = fetchFailure
        } else {
            // The commit just fetched, from the cache.
            var offline = reconciler
            offline.source.offline = true
            result = await run(offline, mode, events)
        }
        let newestFailure = result.failure
        var fetchFailed = false
        var fellBack = false
        var waitsForWave = false

        if let failure = result.failure {
            if failure.code == .unhealthy, !result.healthFailures.isEmpty, let commit = result.commit {
                // Found now, after its apply: kept, so that it is refused until a new commit.
                unhealthy.add(commit, reason: HealthFailure.line(result.healthFailures), at: started)
                do {
                    try store.write(.unhealthy, unhealthy)
                } catch {
                    logger.error("cannot record commit \(commit.prefix(7)) as unhealthy (it will be tried again): \(error)", metadata: ["result": "failed"])
                }
                metrics.unhealthyCommit()
                logger.error("commit \(commit.prefix(7)) failed its health checks on this host; putting back the last good commit: \(HealthFailure.line(result.healthFailures))",
                             metadata: ["result": "failed", "action": "health"])
            }
            switch failure.class {
            case .waiting where failure.code == .notDue:
                waitsForWave = true
                // The newest commit is not refused, only not due: a refusal of an older one is over.
                state.stall = nil
                if let timing = result.rollout, state.waiting?.commit != result.commit {
                    logger.notice("\(failure.message)", metadata: ["action": "rollout"])
                    state.waiting = AgentRecord.Waiting(commit: result.commit, due: timing.due, wave: timing.wave, waves: timing.waves, share: timing.share)
                }
            case .stalled where failure.code != .usage:
                let stall = AgentRecord.Stall(commit: result.commit, reason: failure.message + failure.diagnostics.prefix(5).map { "; " + $0.description }.joined(), since: started)
                // A health failure found now was just told, with the put-back.
                let told = failure.code == .unhealthy && !result.healthFailures.isEmpty
                if state.stall?.commit != stall.commit || state.stall?.reason != stall.reason {
                    if !told {
                        logger.error("refusing \(result.commit.map { "commit " + $0.prefix(7) } ?? "the newest commit"): \(stall.reason)",
                                     metadata: ["result": "failed", "action": "refuse"])
                    }
                    state.stall = stall
                }
            default:
                if failure.code == .sourceUnreadable {
                    fetchFailed = true
                    state.fetchFailures += 1
                    metrics.fetchFailed()
                    logger.warning("fetch failed (\(state.fetchFailures) in a row): \(failure.message)", metadata: ["result": "failed", "action": "fetch"])
                } else {
                    logger.error("cycle failed: \(failure.message)", metadata: ["result": "failed"])
                }
            }
            // The run record already says stalled or waiting; the record says why before the
            // fallback's apply, so that `tend status` never shows the one without the other.
            let (stall, waiting) = (state.stall, waitsForWave ? state.waiting : nil)
            if record.withLock({ $0 != nil && ($0?.stalled != stall || $0?.waiting != waiting) }) {
                writeRecord(store) { $0.stalled = stall; $0.waiting = waiting }
            }
            // The newest commit cannot be applied: enforce the last good one. As the last cycle
            // loaded it when it is the catalog enforced (nothing is fetched or loaded again);
            // else from the cache, a run of its own.
            if [.invalidConfiguration, .refused, .sourceUnreadable, .unhealthy, .notDue].contains(failure.code),
               !stopping.load(ordering: .relaxed), let good = lastGood(reconciler), good != result.commit {
                let fallback: ReconcileResult
                if case .apply = mode, let kept = catalogs.current, kept.origin.commit == good, kept.facts == reconciler.facts() {
                    logger.info("enforcing the last good commit \(good.prefix(7)) as an earlier cycle loaded it", metadata: ["action": "enforce"])
                    fallback = await run(reconciler, .repair(nil), events)
                } else {
                    logger.info("enforcing the last good commit \(good.prefix(7)), loaded again from the cache: no cycle of this agent applied it yet", metadata: ["action": "enforce"])
                    var pinned = reconciler
                    pinned.source.pinnedCommit = good
                    fallback = await run(pinned, mode, events)
                }
                if let problem = fallback.failure {
                    logger.error("cannot apply the last good commit \(good.prefix(7)) either: \(problem.message)", metadata: ["result": "failed"])
                } else {
                    result = fallback
                    fellBack = true
                }
            }
        }
        // A fetch that worked ends the count, whatever the run did after it.
        if !fetchFailed { state.fetchFailures = 0 }
        if result.failure == nil {
            state.enforcing = result.commit
            // The newest commit itself applied: whatever was refused before is behind it.
            if !fellBack, !fetchFailed, let stall = state.stall {
                logger.notice("commit \(result.commit?.prefix(7) ?? "") applies; no longer refusing \(stall.commit?.prefix(7) ?? "the commit before")")
                state.stall = nil
            }

        }
        let elapsed = ContinuousClock.now - clock
        let run = RunRecord(started: started, seconds: DurationText.seconds(elapsed), by: "tend agent", result: result, suspended: suspension != nil)
        lastFailure.withLock { $0 = newestFailure ?? result.failure }
        if let suspension, run.pending > 0 {
            logger.notice("suspended by \(suspension.by) (\(suspension.reason)): \(run.pending) changes not applied")
        }
        // As `Reconciler.run` records a run: not one that could not take the lock, and under
        // another root only one that changed something there.
        if result.failure?.code != .locked, result.failure?.code != .usage, store.root == "/" || result.report != nil {
            do {
                try store.write(.lastRun, run)
            } catch {
                logger.error("cannot record the run in \(store.directory): \(error)", metadata: ["result": "failed"])
            }
        }

        // Only a cycle that found the newest commit not due keeps waiting for it.
        if !waitsForWave { state.waiting = nil }
        var next = nextCheck(settings, after: ContinuousClock.now, failures: fetchFailed ? state.fetchFailures : 0)
        // A commit waiting for this host's wave is taken when the wave is due, not a cycle later.
        if let due = state.waiting?.due, due > Date() {
            next = min(next, ContinuousClock.now + .milliseconds(Int64(max(0, due.timeIntervalSinceNow) * 1000) + 100))
        }
        var record = AgentRecord(pid: getpid(), started: state.started, interval: DurationText.seconds(settings.interval), splay: DurationText.seconds(settings.splay))
        record.lastCycle = started
        record.nextCheck = Date(timeIntervalSinceNow: DurationText.seconds(next - ContinuousClock.now))
        record.enforcing = state.enforcing
        record.stalled = state.stall
        record.waiting = state.waiting
        record.fetchFailures = state.fetchFailures
        if settings.watch, settings.cycles == nil, result.failure == nil || result.report != nil, let kept = catalogs.current {
            drift.follow(kept, root: reconciler.root, units: Reconciler.canonical(reconciler.root) == "/" && SystemdManager.isBooted)
            // What the cycle replaced is a new inode, to be watched as such.
            drift.rearm(Set((result.report?.results ?? []).filter { $0.outcome == .done }.map(\.id)), root: reconciler.root)
        }
        self.record.withLock { $0 = record }
        writeRecord(store) { _ in }
        if let cache = reconciler.caches.stat, store.root == "/" || result.report != nil {
            do {
                try store.save(cache)
            } catch {
                logger.warning("cannot save the stat cache (the next start reads every file once): \(error)")
            }
        }
        state.status = Self.status(run: run, record: record, suspension: suspension)
        // A cycle of a large catalog leaves much freed memory in malloc's arenas: hand it back,
        // so that the agent's resident size between cycles is what it keeps, not what it used.
        Self.mallocTrim?(0)
        metrics.update(run: run, result: result, record: record, suspended: suspension != nil)
        writeMetrics(settings)
        return next
    }

    private func run(_ reconciler: Reconciler, _ mode: Reconciler.Mode, _ events: ReconcileEvents) async -> ReconcileResult {
        await withTaskExecutorPreference(executor) {
            await reconciler.run(mode, events: events)
        }
    }

    /// The last good commit of this source (repository and folder) for this root: the one the
    /// rewind check records, whoever applied it.
    private func lastGood(_ reconciler: Reconciler) -> String? {
        reconciler.lastAppliedCommit
    }

    /// The next check: the next multiple of the interval after `now`, shifted by this host's
    /// offset (on the wall clock, so that hosts started together still spread); after failed
    /// fetches, sooner, backing off exponentially with jitter.
    func nextCheck(_ settings: AgentSettings, after now: ContinuousClock.Instant, failures: Int) -> ContinuousClock.Instant {
        let interval = DurationText.seconds(settings.interval)
        guard interval > 0 else { return now }
        if failures > 0 {
            let backoff = min(interval, 5 * pow(2, Double(min(failures - 1, 16))))
            return now + .milliseconds(Int64(backoff * Double.random(in: 0.5...1.0) * 1000))
        }
        let wall = Date().timeIntervalSince1970
        let offset = DurationText.seconds(settings.offset)
        var due = (((wall - offset) / interval).rounded(.down) + 1) * interval + offset
        if due - wall < 1 { due += interval }
        return now + .milliseconds(Int64((due - wall) * 1000))
    }

    static func status(run: RunRecord, record: AgentRecord, suspension: Suspension?) -> String {
        var parts: [String] = []
        if let commit = record.enforcing { parts.append("enforcing \(commit.prefix(7))") }
        parts.append("\(run.result), \(run.resources) resources")
        if let stall = record.stalled { parts.append("refusing \(stall.commit.map { String($0.prefix(7)) } ?? "newest commit")") }
        if record.fetchFailures > 0 { parts.append("\(record.fetchFailures) fetches failed") }
        if let suspension { parts.append("suspended by \(suspension.by)") }
        return parts.joined(separator: "; ")
    }

    /// glibc's `malloc_trim`, which Swift's Glibc module does not declare (malloc.h); looked up
    /// as AtomicFile looks up renameat2. Nil with another C library: memory is then kept.
    private typealias MallocTrim = @convention(c) (Int) -> Int32
    private static let mallocTrim: MallocTrim? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim")
        .map { unsafeBitCast($0, to: MallocTrim.self) }

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

