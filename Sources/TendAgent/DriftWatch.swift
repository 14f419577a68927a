import FoundationEssentials
import Logging
import Synchronization
import TendCore
import TendSpec
import TendSystemd

/// The agent's watches: what wakes it between cycles, and which resources it stops repairing at
/// once because something keeps changing them back.
///
/// It follows the catalog the last full cycle applied (`CatalogCache.current`): its paths are
/// watched with inotify (`PathWatcher`), its units on the bus (`UnitWatcher`). An event only adds
/// the resources it names to `pending` and wakes the agent, which repairs them with a run limited
/// to them (`Reconciler.Mode.repair`). A resource repaired `contestLimit` times within `contestWindow`
/// (whether the repairs held or failed) is *contested*: it is left to the timer's full cycles,
/// reported in the journal, in `tend status` and in a metric, until the commit or its declaration
/// changes.
final class DriftWatch: Sendable {
    /// Repairs within `contestWindow` that make a resource contested.
    static let contestLimit = 5
    static let contestWindow: Duration = .seconds(600)

    private struct State {
        var paths: PathWatcher?
        var units: UnitWatcher?
        /// The catalog watched: its build (`CatalogCache.Kept.generation`), where it came from,
        /// and the catalog itself; nil before the first, or once a watcher stopped.
        var generation: Int?
        var origin: SnapshotOrigin?
        var catalog: Catalog?
        var unitResources: [String: [ResourceID]] = [:]
        var pathResources: [String: [ResourceID]] = [:]
        var pathsOf: [ResourceID: [String]] = [:]
        var pending: Set<ResourceID> = []
        /// Why events may have been missed since the last `take`, if they may.
        var missed: Missed?
        var watchCount = 0
        /// Monotonic times of recent repairs, by resource.
        var repairs: [ResourceID: [ContinuousClock.Instant]] = [:]
        var contested: [ResourceID: Contest] = [:]
        var started = false
    }

    /// Why events may have been missed, so that everything must be checked: inotify's queue
    /// overflowed, or a watcher stopped (the bus restarted; said when it happens).
    enum Missed: Sendable {
        case overflow, watcherStopped
    }

    /// A contested resource: since when, and as it was declared then.
    struct Contest: Sendable {
        var since: Date
        var digest: String
    }

    private let state = Mutex(State())
    private let wake: @Sendable () -> Void
    private let logger: Logger

    init(logger: Logger, wake: @escaping @Sendable () -> Void) {
        self.logger = logger
        self.wake = wake
    }

    /// Watches what `kept` declares under `root`, if it is not the catalog watched already (each
    /// build of a catalog is watched anew: a folder source, or new facts, change it under the same
    /// commit). A new commit ends every contest; a new declaration of a resource ends its own.
    func follow(_ kept: CatalogCache.Kept, root: String, units watchUnits: Bool) {
        let (paths, units, generation) = state.withLock { ($0.paths, $0.units, $0.generation) }
        guard generation != kept.generation else { return }
        var pathResources: [String: [ResourceID]] = [:]
        var unitResources: [String: [ResourceID]] = [:]
        var pathsOf: [ResourceID: [String]] = [:]
        for (watch, ids) in kept.catalog.watches {
            switch watch {
            case .path(let path):
                pathResources[path, default: []].append(contentsOf: ids)
                for id in ids { pathsOf[id, default: []].append(path) }
            case .unit(let unit):
                unitResources[unit, default: []].append(contentsOf: ids)
            }
        }
        let pathWatcher = paths ?? startPaths()
        pathWatcher?.unwatchAll()
        let (count, problem) = pathWatcher?.watch(pathResources, root: root) ?? (0, nil)
        if let problem { logger.warning("\(problem)", metadata: ["action": "watch"]) }
        let unitWatcher = watchUnits ? (units ?? startUnits()) : nil
        unitWatcher?.watch(Array(unitResources.keys))
        state.withLock { state in
            let newCommit = state.origin != kept.origin
            let ended = state.contested.filter { id, contest in newCommit || kept.catalog[id]?.desiredDigest != contest.digest }
            if state.origin != nil, !ended.isEmpty {
                logger.notice("\(newCommit ? "a new commit" : "a new declaration"): \(ended.count) contested resources are repaired at once again",
                              metadata: ["action": "watch"])
            }
            for id in ended.keys {
                state.contested[id] = nil
                state.repairs[id] = nil
            }
            if newCommit { state.repairs = [:] }
            state.paths = pathWatcher
            state.units = unitWatcher
            state.generation = kept.generation
            state.origin = kept.origin
            state.catalog = kept.catalog
            state.pathResources = pathResources
            state.unitResources = unitResources
            state.pathsOf = pathsOf
            state.watchCount = count
        }
        logger.info("watching \(pathResources.count) paths with \(count) inotify watches\(unitWatcher == nil ? "" : " and \(unitResources.count) units on the bus")",
                    metadata: ["action": "watch"])
    }

    /// Watches the paths of `ids` again: a repaired file is a new inode.
    func rearm(_ ids: Set<ResourceID>, root: String) {
        let (watcher, paths) = state.withLock { state in
            (state.paths, ids.flatMap { id in (state.pathsOf[id] ?? []).map { ($0, state.pathResources[$0] ?? []) } })
        }
        guard let watcher, !paths.isEmpty else { return }
        let (count, _) = watcher.watch(Dictionary(paths, uniquingKeysWith: { a, _ in a }), root: root)
        state.withLock { $0.watchCount = count }
    }

    /// What woke the agent since the last call: the resources to repair (never the contested ones)
    /// and why events were lost, if they were.
    func take() -> (ids: Set<ResourceID>, missed: Missed?) {
        state.withLock { state in
            defer {
                state.pending = []
                state.missed = nil
            }
            return (state.pending.filter { state.contested[$0] == nil }, state.missed)
        }
    }

    /// Counts a repair of each of `ids` (one that changed it, or tried and failed); returns those
    /// that just became contested.
    func repaired(_ ids: Set<ResourceID>) -> [ResourceID] {
        let now = ContinuousClock.now
        return state.withLock { state in
            var contested: [ResourceID] = []
            for id in ids {
                var times = state.repairs[id, default: []].filter { now - $0 < Self.contestWindow }
                times.append(now)
                state.repairs[id] = times
                if times.count >= Self.contestLimit, state.contested[id] == nil {
                    state.contested[id] = Contest(since: Date(), digest: state.catalog?[id]?.desiredDigest ?? "")
                    contested.append(id)
                }
            }
            return contested.sorted { $0.description < $1.description }
        }
    }

    /// The contested resources, with when they became so.
    var contested: [ResourceID: Date] { state.withLock { $0.contested.mapValues(\.since) } }

    var watchCount: Int { state.withLock { $0.watchCount } }

    func stop() {
        state.withLock { state in
            state.paths?.stop()
            state.units?.stop()
            state.paths = nil
            state.units = nil
        }
    }

    /// Why the unit watcher stopped: a full check now, and the next cycle watches anew.
    private func unitsFailed(_ error: SystemdError) {
        logger.warning("the unit watcher stopped (\(error)); checking everything, and watching again after it", metadata: ["action": "watch"])
        state.withLock { state in
            state.units = nil
            state.generation = nil
            state.missed = .watcherStopped
        }
        wake()
    }

    // MARK: Watchers

    private func startPaths() -> PathWatcher? {
        do {
            return try PathWatcher.start(deliver: { [weak self] event in self?.received(event) })
        } catch {
            logger.warning("cannot watch paths, drift is repaired on the timer only: \(error)", metadata: ["action": "watch"])
            return nil
        }
    }

    private func startUnits() -> UnitWatcher? {
        do {
            return try UnitWatcher.start(deliver: { [weak self] units in self?.received(units: units) },
                                         failed: { [weak self] error in self?.unitsFailed(error) })
        } catch {
            logger.warning("cannot watch units on the bus, their drift is repaired on the timer only: \(error)", metadata: ["action": "watch"])
            return nil
        }
    }

    private func received(_ event: PathWatcher.Event) {
        state.withLock { state in
            switch event {
            case .changed(let ids): state.pending.formUnion(ids)
            case .overflow: state.missed = state.missed ?? .overflow
            case .failed(let errno):
                // Events may have been missed: a full check now, and the next cycle watches anew.
                logger.warning("the path watcher stopped (poll: \(errno)); checking everything, and watching again after it", metadata: ["action": "watch"])
                state.paths = nil
                state.generation = nil
                state.missed = .watcherStopped
            }
        }
        wake()
    }

    private func received(units: [String]) {
        let any = state.withLock { state -> Bool in
            let ids = units.flatMap { state.unitResources[$0] ?? [] }
            state.pending.formUnion(ids)
            return !ids.isEmpty
        }
        if any { wake() }
    }
}
