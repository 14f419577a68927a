import Dispatch
import Logging
import ServiceLifecycle
import Synchronization
import TendSpec
import TendSystemd
import UnixSignals

// The services and helpers that surround the agent's loop (`Agent`).

/// Wakes the agent's wait early: the cycle's fetch ended, a watch saw drift, SIGHUP (read the
/// configuration again) or stop. A wake that comes while no one waits is kept for the next wait,
/// the more pressing reason winning (a stop outranks a reload).
final class Wakeup: Sendable {
    /// Why the agent woke, most pressing last: the cycle's fetch ended, a watch saw drift,
    /// SIGHUP, or stop.
    enum Reason: Int, Sendable, Comparable {
        case timer, fetched, watched, reload, stop

        static func < (a: Reason, b: Reason) -> Bool { a.rawValue < b.rawValue }
    }

    private struct Waiting {
        var continuation: CheckedContinuation<Reason, Never>?
        var pending: Reason?
    }

    private let state = Mutex(Waiting())

    func fire(reload: Bool) { fire(reload ? .reload : .stop) }

    /// Wakes the waiting agent, or the next wait; a pending wake keeps the more pressing reason.
    func fire(_ reason: Reason) {
        let continuation = state.withLock { waiting -> CheckedContinuation<Reason, Never>? in
            if let continuation = waiting.continuation {
                waiting.continuation = nil
                return continuation
            }
            waiting.pending = max(waiting.pending ?? reason, reason)
            return nil
        }
        continuation?.resume(returning: reason)
    }

    /// Waits until `deadline` or a wake, whichever comes first; a cancelled task stops waiting
    /// at once (`.stop`). A wake that comes as the time runs out is not lost.
    func wait(until deadline: ContinuousClock.Instant) async -> Reason {
        let reasons = await withTaskGroup(of: Reason.self) { group in
            group.addTask {
                // Cancelled: the wake came first.
                try? await Task.sleep(until: deadline, clock: .continuous)
                return .timer
            }
            group.addTask { await self.nextWake() }
            var reasons = [await group.next() ?? .timer]
            group.cancelAll()
            for await reason in group { reasons.append(reason) }
            return reasons
        }
        if Task.isCancelled { return .stop }
        return reasons.max() ?? .timer
    }

    /// The next wake; `.timer` when cancelled (the time ran out first).
    private func nextWake() async -> Reason {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { waiting -> Reason? in
                    if let pending = waiting.pending {
                        waiting.pending = nil
                        return pending
                    }
                    // Checked under the lock that the cancellation handler takes too.
                    if Task.isCancelled { return .timer }
                    waiting.continuation = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let continuation = state.withLock { waiting -> CheckedContinuation<Reason, Never>? in
                defer { waiting.continuation = nil }
                return waiting.continuation
            }
            continuation?.resume(returning: .timer)
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
        let period = max(0.1, DurationText.seconds(interval) / 2)
        timer.schedule(deadline: .now(), repeating: period)
        let agent = self.agent, notifier = self.notifier, limit = hangLimit, logger = self.logger
        let warned = Atomic<Bool>(false)
        timer.setEventHandler {
            if agent.isHung(limit: limit) {
                if !warned.exchange(true, ordering: .relaxed) {
                    logger.critical("a cycle has run for over \(DurationText.format(limit)); no longer telling the watchdog all is well")
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

/// Runs work on a thread of its own rather than on the cooperative pool: the fetch, apt and unit
/// jobs block their thread for as long as they take. The agent has two: the cycle's (plans,
/// applies and repairs, one at a time) and the fetch's, so that a fetch that hangs holds no repair.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}
