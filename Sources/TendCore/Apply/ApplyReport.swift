/// What the executor reports while it works.
public enum ApplyEvent: Sendable {
    case started(ResourceID, Change.Action)
    case finished(StepResult)
}

/// The results of one apply.
public struct ApplyReport: Sendable {
    public var results: [StepResult] = []
    /// Jobs on tend's own units to queue once the run has ended (`HostWriter.queueAfterRun`).
    public var jobsAfterRun: [UnitJobRequest] = []
    /// What the steps' tools warned of without failing (`HostWriter.warn`).
    public var warnings: [String] = []

    public init() {}

    public var failures: [StepResult] { results.filter { if case .failed = $0.outcome { true } else { false } } }
    public var skipped: [StepResult] { results.filter { if case .skipped = $0.outcome { true } else { false } } }
    public var succeeded: Bool { failures.isEmpty && skipped.isEmpty }
    /// Whether a step was left because the run was told to stop.
    public var interrupted: Bool { results.contains { $0.outcome == .skipped(.stopping) } }

    /// How many steps of each action were done.
    public var done: [Change.Action: Int] {
        var counts: [Change.Action: Int] = [:]
        for result in results where result.outcome == .done {
            if let action = result.action { counts[action, default: 0] += 1 }
        }
        return counts
    }
}
