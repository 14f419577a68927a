public import TendCore
public import TendSpec
public import FoundationEssentials

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
    public var healthFailures: [HealthFailure] = []
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

    /// Every resource that did not converge, as typed failures classed by the step's own retry
    /// class: a failed step is retried on the next run, a blocked one waits for what it requires.
    public var stepFailures: [ReconcileFailure] {
        (report?.results ?? []).compactMap { result in
            var failure = switch result.outcome {
            case .done: ReconcileFailure?.none
            case .failed(let failure): ReconcileFailure(.resourceFailed, failure.cause, resource: result.id)
            case .skipped(let skip): ReconcileFailure(.resourceSkipped, skip.description, resource: result.id)
            }
            failure?.stepRetry = result.outcome.retry
            return failure
        }
    }
}
