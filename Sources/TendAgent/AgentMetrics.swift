import CoreMetrics
import FoundationEssentials
import Metrics
import Prometheus
import Synchronization
import TendSpec
import Glibc

/// The agent's metrics, through swift-metrics into a Prometheus registry of its own, written after
/// each cycle as a text file for node_exporter's textfile collector (docs/agent.md lists them).
public final class AgentMetrics: Sendable {
    public static let defaultFile = "/var/lib/prometheus/node-exporter/tend.prom"

    /// Whether to write `file`: a file chosen in agent.yaml or with --metrics-file always (its
    /// folder is made), the default only where node_exporter's package made its folder, so that a
    /// host without node_exporter gets no folders of node_exporter's from tend.
    static func shouldWrite(_ file: String) -> Bool {
        guard file == defaultFile else { return true }
        var info = stat()
        return stat("/var/lib/prometheus/node-exporter", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private let registry = PrometheusCollectorRegistry()
    private let lastRun: CoreMetrics.Gauge
    private let lastDuration: CoreMetrics.Gauge
    private let resources: [String: CoreMetrics.Gauge]
    private let changes: CoreMetrics.Counter
    private let drift: CoreMetrics.Counter
    private let fetchFailures: CoreMetrics.Counter
    private let suspended: CoreMetrics.Gauge
    private let stalled: CoreMetrics.Gauge
    private let failed: CoreMetrics.Gauge
    private let pruneRefused: CoreMetrics.Gauge
    private let repairs: CoreMetrics.Counter
    private let repairSeconds: CoreMetrics.Timer
    private let contestedCount: CoreMetrics.Gauge
    private let waitingRollout: CoreMetrics.Gauge
    private let unhealthy: CoreMetrics.Counter
    /// The info metric of the commit applied, and its labels, replaced when the commit changes.
    private let commitInfo = Mutex<(gauge: Prometheus.Gauge, labels: [String])?>(nil)

    init() {
        let factory = PrometheusMetricsFactory(registry: registry)
        lastRun = CoreMetrics.Gauge(label: "tend_last_run_timestamp_seconds", factory: factory)
        lastDuration = CoreMetrics.Gauge(label: "tend_last_run_duration_seconds", factory: factory)
        resources = Dictionary(uniqueKeysWithValues: ["converged", "changed", "failed", "skipped"].map {
            ($0, CoreMetrics.Gauge(label: "tend_resources", dimensions: [("result", $0)], factory: factory))
        })
        changes = CoreMetrics.Counter(label: "tend_changes_applied_total", factory: factory)
        drift = CoreMetrics.Counter(label: "tend_drift_repaired_total", factory: factory)
        fetchFailures = CoreMetrics.Counter(label: "tend_fetch_failures_total", factory: factory)
        suspended = CoreMetrics.Gauge(label: "tend_suspended", factory: factory)
        stalled = CoreMetrics.Gauge(label: "tend_stalled", factory: factory)
        failed = CoreMetrics.Gauge(label: "tend_last_run_failed", factory: factory)
        pruneRefused = CoreMetrics.Gauge(label: "tend_prune_refused", factory: factory)
        repairs = CoreMetrics.Counter(label: "tend_watch_repairs_total", factory: factory)
        repairSeconds = CoreMetrics.Timer(label: "tend_watch_repair_duration_seconds", factory: factory)
        contestedCount = CoreMetrics.Gauge(label: "tend_contested_resources", factory: factory)
        waitingRollout = CoreMetrics.Gauge(label: "tend_rollout_waiting", factory: factory)
        unhealthy = CoreMetrics.Counter(label: "tend_unhealthy_commits_total", factory: factory)
        // Present from the start, so a dashboard sees 0 rather than nothing.
        fetchFailures.increment(by: 0)
        changes.increment(by: 0)
        drift.increment(by: 0)
        repairs.increment(by: 0)
        contestedCount.record(0)
        unhealthy.increment(by: 0)
    }

    /// A commit failed this host's health checks and was put back.
    func unhealthyCommit() { unhealthy.increment() }

    /// A repair between cycles changed `count` resources, in `seconds`.
    func repaired(_ count: Int, seconds: Double) {
        guard count > 0 else { return }
        repairs.increment(by: count)
        drift.increment(by: count)
        repairSeconds.recordNanoseconds(Int64(seconds * 1e9))
    }

    func contested(_ count: Int) { contestedCount.record(count) }

    func fetchFailed() { fetchFailures.increment() }

    /// Sets every metric from the cycle that just ended.
    func update(run: RunRecord, result: ReconcileResult, record: AgentRecord, suspended isSuspended: Bool) {
        lastRun.record(run.started.timeIntervalSince1970 + run.seconds)
        lastDuration.record(run.seconds)
        let done = run.counts.filter { $0.key != "failed" && $0.key != "skipped" }.values.reduce(0, +)
        let failedCount = run.counts["failed"] ?? 0, skipped = run.counts["skipped"] ?? 0
        resources["changed"]?.record(done)
        resources["failed"]?.record(failedCount)
        resources["skipped"]?.record(skipped)
        resources["converged"]?.record(max(0, run.resources - done - failedCount - skipped))
        if done > 0 {
            changes.increment(by: done)
            // The same commit as before: what was changed had drifted.
            if let commit = result.commit, commit == record.enforcing, commit == previousCommit.withLock({ $0 }) { drift.increment(by: done) }
        }
        previousCommit.withLock { $0 = result.commit ?? $0 }
        suspended.record(isSuspended ? 1 : 0)
        stalled.record(record.stalled == nil ? 0 : 1)
        waitingRollout.record(record.waiting == nil ? 0 : 1)
        pruneRefused.record(result.pruneRefused?.wanted ?? 0)
        failed.record(run.healthy ? 0 : 1)
        let labels = [record.enforcing ?? "", run.source?.source ?? "", run.source?.ref ?? ""]
        commitInfo.withLock { info in
            guard info?.labels != labels else { return }
            if let old = info?.gauge { registry.unregisterGauge(old) }
            let gauge = registry.makeGauge(name: "tend_applied_commit_info",
                                           labels: [("commit", labels[0]), ("source", labels[1]), ("ref", labels[2])],
                                           help: "The commit the agent enforces (value 1)")
            gauge.set(1.0)
            info = (gauge, labels)
        }
    }

    private let previousCommit = Mutex<String?>(nil)

    /// Writes the registry as Prometheus text, atomically (node_exporter never reads half a file),
    /// readable by all (node_exporter runs as its own user); the folder is made if missing.
    func write(to path: String) throws(AtomicFileError) {
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try PrivateDirectory.makeParents(String(path[..<slash]))
        }
        try AtomicFile.write(registry.emitToBuffer(), toPath: path, mode: 0o644)
    }
}
