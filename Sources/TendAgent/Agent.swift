import Dispatch
public import FoundationEssentials
public import Logging
public import ServiceLifecycle
import UnixSignals
import Synchronization
public import TendCore
import TendGit
import TendSpec
public import TendSystemd
import Glibc

/// What the agent runs with; made again from agent.yaml and the flags on SIGHUP.
public struct AgentSettings: Sendable {
    /// The run of each cycle: source, root, providers and timeouts.
    public var reconciler: Reconciler
    public var interval: Duration
    /// The greatest offset of this host's checks within the interval; the offset itself comes
    /// from the machine-id, so a fleet started at once does not fetch at once.
    public var splay: Duration
    /// The Prometheus text file written after each cycle, or nil for none.
    public var metricsFile: String?
    /// Stop after this many cycles (benchmarks); nil runs until stopped.
    public var cycles: Int?

    public init(reconciler: Reconciler, interval: Duration, splay: Duration? = nil, metricsFile: String?) {
        self.reconciler = reconciler
        self.interval = interval
        self.splay = min(splay ?? interval, interval)
        self.metricsFile = metricsFile
    }

    /// This host's offset within the interval: a stable hash of /etc/machine-id, modulo the splay.
    public var offset: Duration {
        guard splay > .zero else { return .zero }
        let machineID = (try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8))?.trimmingWhitespace() ?? ""
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in machineID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let splayMilliseconds = UInt64(max(1, splay.components.seconds * 1000 + splay.components.attoseconds / 1_000_000_000_000_000))
        return .milliseconds(Int64(hash % splayMilliseconds))
    }
}

/// `tend agent`: keeps the root converged to the newest good commit, forever.
///
/// Each cycle fetches and applies the newest commit. A commit that does not load, is not signed
/// as required or goes back in time is refused, and the last good commit is applied instead (so
/// drift is still repaired) until a newer commit fixes it; the same happens while the remote
/// cannot be reached, with retries backing off. Cycles run on the timer (every interval, at this
/// host's offset), at once on SIGHUP, and never two at a time. A suspended agent plans but
/// applies nothing.
///
/// The cycle runs on a thread of its own (`CycleExecutor`), so that a fetch or a unit job blocked
/// for a minute holds neither SIGTERM's handling nor the watchdog's keep-alive, which comes from
/// a timer thread of its own (`Watchdog`). SIGTERM lets the step in progress finish, skips the rest
/// and ends the cycle.
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
    private let executor = CycleExecutor()

    public init(settings: AgentSettings, reload: @escaping @Sendable () throws -> AgentSettings, notifier: ServiceNotifier = ServiceNotifier(), logger: Logger) {
        self.settings = Mutex(settings)
        self.reload = reload
        self.notifier = notifier
        self.logger = logger
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
        var first = true
        var count = 0
        await withGracefulShutdownHandler {
            while !stopping.load(ordering: .relaxed) {
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
                let reason = await wakeup.wait(until: next)
                if reason == .reload {
                    notifier.reloading(status: "reading the configuration again")
                    do {
                        let fresh = try reload()
                        settings.withLock { $0 = fresh }
                        logger.notice("configuration read again (SIGHUP); checking at once")
                    } catch {
                        logger.error("configuration not read again, keeping the one in use: \(error)", metadata: ["result": "failed"])
                    }
                    notifier.ready(status: state.status)
                }
            }
        } onGracefulShutdown: { [self] in
            stopping.store(true, ordering: .relaxed)
            notifier.stopping(status: "stopping after the step in progress")
            wakeup.fire(reload: false)
        }
        logger.notice("agent stopped")
    }

    // MARK: One cycle

    /// What carries over from one cycle to the next.
    struct CycleState {
        var fetchFailures = 0
        var stall: AgentRecord.Stall?
        var enforcing: String?
        var status = "starting"
        var started = Date()
    }

    /// Runs one cycle and returns when the next is due.
    private func cycle(_ settings: AgentSettings, state: inout CycleState) async -> ContinuousClock.Instant {
        cycleStarted.store(Self.monotonicNanoseconds(), ordering: .relaxed)
        defer { cycleStarted.store(0, ordering: .relaxed) }
        let clock = ContinuousClock.now
        let started = Date()
        var reconciler = settings.reconciler
        reconciler.runBy = "tend agent"
        let store = StateStore(stateDirectory: reconciler.source.stateDirectory, root: reconciler.root)
        let suspension = store.read(.suspended, as: Suspension.self) { logger.warning("\($0)") }.flatMap { $0.holds(at: started) ? $0 : nil }
        var events = ReconcileEvents(
            lockWaiting: { [logger] holder in logger.notice("waiting for \(holder), which holds the lock of the root") },
            note: { [logger] in logger.notice("\($0)") })
        events.shouldStop = { [self] in stopping.load(ordering: .relaxed) }
        let mode: Reconciler.Mode = suspension == nil ? .apply : .plan
        var result = await run(reconciler, mode, events)
        var fetchFailed = false
        var fellBack = false

        if let failure = result.failure {
            switch failure.class {
            case .stalled where failure.code != .usage:
                let stall = AgentRecord.Stall(commit: result.commit, reason: failure.message + failure.diagnostics.prefix(5).map { "; " + $0.description }.joined(), since: started)
                if state.stall?.commit != stall.commit || state.stall?.reason != stall.reason {
                    logger.error("refusing \(result.commit.map { "commit " + $0.prefix(7) } ?? "the newest commit"): \(stall.reason)",
                                 metadata: ["result": "failed", "action": "refuse"])
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
            // The newest commit cannot be applied: enforce the last good one, from the cache.
            if failure.code == .invalidConfiguration || failure.code == .refused || failure.code == .sourceUnreadable,
               case .git = reconciler.source.location,
               let good = lastGood(store, reconciler.source), good != result.commit {
                var pinned = reconciler
                pinned.source.pinnedCommit = good
                let fallback = await run(pinned, mode, events)
                if let problem = fallback.failure {
                    logger.error("cannot apply the last good commit \(good.prefix(7)) either: \(problem.message)", metadata: ["result": "failed"])
                } else {
                    result = fallback
                    fellBack = true
                }
            }
        }
        if result.failure == nil {
            state.enforcing = result.commit
            // The newest commit itself applied: whatever was refused before is behind it.
            if !fellBack, !fetchFailed, let stall = state.stall {
                logger.notice("commit \(result.commit?.prefix(7) ?? "") applies; no longer refusing \(stall.commit?.prefix(7) ?? "the commit before")")
                state.stall = nil
            }
            if !fetchFailed { state.fetchFailures = 0 }
        }
        let elapsed = ContinuousClock.now - clock
        let run = RunRecord(started: started, seconds: AgentDuration.seconds(elapsed), by: "tend agent", result: result, suspended: suspension != nil)
        if let suspension {
            if run.pending > 0 { logger.notice("suspended by \(suspension.by) (\(suspension.reason)): \(run.pending) changes not applied") }
            try? store.write(.lastRun, run)
        }

        let next = nextCheck(settings, after: ContinuousClock.now, failures: fetchFailed ? state.fetchFailures : 0)
        var record = AgentRecord(pid: getpid(), started: state.started, interval: AgentDuration.seconds(settings.interval), splay: AgentDuration.seconds(settings.splay))
        record.lastCycle = started
        record.nextCheck = Date(timeIntervalSinceNow: AgentDuration.seconds(next - ContinuousClock.now))
        record.enforcing = state.enforcing
        record.stalled = state.stall
        record.fetchFailures = state.fetchFailures
        do {
            try store.write(.agent, record)
        } catch {
            logger.error("cannot record the agent's status: \(error)", metadata: ["result": "failed"])
        }
        state.status = Self.status(run: run, record: record, suspension: suspension)
        if let file = settings.metricsFile, !file.isEmpty {
            metrics.update(run: run, result: result, record: record, suspended: suspension != nil)
            do {
                try metrics.write(to: file)
            } catch {
                logger.warning("cannot write the metrics to \(file): \(error)")
            }
        }
        return next
    }

    private func run(_ reconciler: Reconciler, _ mode: Reconciler.Mode, _ events: ReconcileEvents) async -> ReconcileResult {
        await withTaskExecutorPreference(executor) {
            await reconciler.run(mode, events: events)
        }
    }

    /// The last good commit of this source, if it is the same repository and folder.
    private func lastGood(_ store: StateStore, _ source: SourceSpec) -> String? {
        guard case .git(let url, _, let path) = source.location,
              let record = store.read(.lastGood, as: CommitRecord.self),
              record.source == url, record.path == path else { return nil }
        return record.commit
    }

    /// The next check: the next multiple of the interval after `now`, shifted by this host's
    /// offset (on the wall clock, so that hosts started together still spread); after failed
    /// fetches, sooner, backing off exponentially with jitter.
    func nextCheck(_ settings: AgentSettings, after now: ContinuousClock.Instant, failures: Int) -> ContinuousClock.Instant {
        let interval = AgentDuration.seconds(settings.interval)
        guard interval > 0 else { return now }
        if failures > 0 {
            let backoff = min(interval, 5 * pow(2, Double(min(failures - 1, 16))))
            return now + .milliseconds(Int64(backoff * Double.random(in: 0.5...1.0) * 1000))
        }
        let wall = Date().timeIntervalSince1970
        let offset = AgentDuration.seconds(settings.offset)
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

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

/// Wakes the agent's wait early: SIGHUP (read the configuration again) or stop. A wake that
/// comes while no one waits is kept for the next wait (a stop outranks a reload).
final class Wakeup: Sendable {
    enum Reason: Sendable { case timer, reload, stop }

    private struct Waiting {
        var continuation: CheckedContinuation<Reason, Never>?
        var pending: Reason?
        /// Which wait a timer belongs to, so that a late timer of an earlier wait wakes nothing.
        var generation = 0
    }

    private let state = Mutex(Waiting())

    func fire(reload: Bool) {
        fire(reload ? .reload : .stop, generation: nil)
    }

    private func fire(_ reason: Reason, generation: Int?) {
        let continuation = state.withLock { waiting -> CheckedContinuation<Reason, Never>? in
            if let generation, generation != waiting.generation { return nil }
            if let continuation = waiting.continuation {
                waiting.continuation = nil
                return continuation
            }
            if reason != .timer, waiting.pending != .stop { waiting.pending = reason }
            return nil
        }
        continuation?.resume(returning: reason)
    }

    /// Waits until `deadline` or until fired, whichever comes first.
    func wait(until deadline: ContinuousClock.Instant) async -> Reason {
        let generation = state.withLock { waiting -> Int in
            waiting.generation += 1
            return waiting.generation
        }
        let timer = Task { [self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            fire(.timer, generation: generation)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready = state.withLock { waiting -> Reason? in
                if let pending = waiting.pending {
                    waiting.pending = nil
                    return pending
                }
                if ContinuousClock.now >= deadline { return .timer }
                waiting.continuation = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// SIGHUP: read agent.yaml again and check at once.
struct HangupListener: Service {
    let agent: Agent

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            agent.hangup()
        }
    }
}

/// Sends systemd's watchdog keep-alive from a timer thread of its own, at half the watchdog
/// interval, as long as no cycle has run for longer than `hangLimit`.
struct Watchdog: Service {
    let agent: Agent
    let notifier: ServiceNotifier
    let logger: Logger
    /// Longer than a cycle can legitimately take: a fetch, a lock wait and unit jobs of minutes.
    var hangLimit: Duration = .seconds(3600)

    func run() async throws {
        guard let interval = notifier.watchdogInterval else {
            try? await gracefulShutdown()
            return
        }
        let queue = DispatchQueue(label: "tend.watchdog")
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let period = max(0.1, AgentDuration.seconds(interval) / 2)
        timer.schedule(deadline: .now(), repeating: period)
        let agent = self.agent, notifier = self.notifier, limit = hangLimit, logger = self.logger
        let warned = Atomic<Bool>(false)
        timer.setEventHandler {
            if agent.isHung(limit: limit) {
                if !warned.exchange(true, ordering: .relaxed) {
                    logger.critical("a cycle has run for over \(AgentDuration.format(limit)); no longer telling the watchdog all is well")
                }
            } else {
                notifier.watchdog()
            }
        }
        timer.resume()
        try? await gracefulShutdown()
        timer.cancel()
    }
}

/// Runs the cycle's work on a thread of its own rather than on the cooperative pool: the fetch,
/// apt and unit jobs block their thread for as long as they take.
final class CycleExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "tend.cycle")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}
