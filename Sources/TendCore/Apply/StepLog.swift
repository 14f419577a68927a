public import Logging

/// The journal lines of one apply's steps: each step has a line of its own up to a budget, and
/// the rest are counted and said in one line at the end ("…and 49,000 more steps: 49,000 done
/// (file create)"). journald drops a service's messages past its rate limit (10,000 in 30 s by
/// default), whatever they say: a 50,000-file apply lost 15,006 lines, "apply finished" among
/// them. With the budget, an apply of any size sends at most about 2,000 lines, and the shipped
/// units' `LogRateLimitBurst=` leaves room for its start, end and failures.
struct StepLog {
    /// Steps done with a line of their own; failed and skipped steps have a budget of their own,
    /// so that the first failures are always there.
    static let budget = 1_000

    private var shown = (done: 0, failed: 0)
    /// What was not shown, by outcome and then `kind action` (`file create`).
    private var unshown: [String: [String: Int]] = [:]

    /// Whether the step's line is sent; counts it otherwise.
    mutating func shows(_ id: ResourceID, action: String, outcome: StepResult.Outcome) -> Bool {
        let isDone = outcome == .done
        let count = isDone ? shown.done : shown.failed
        guard count >= Self.budget else {
            if isDone { shown.done += 1 } else { shown.failed += 1 }
            return true
        }
        unshown[outcome.label, default: [:]]["\(id.kind) \(action)", default: 0] += 1
        return false
    }

    /// The line for the steps not shown one by one, or nil when every step had its own.
    var summary: String? {
        guard !unshown.isEmpty else { return nil }
        let total = unshown.values.reduce(0) { $0 + $1.values.reduce(0, +) }
        let parts = unshown.sorted { $0.key < $1.key }.map { outcome, kinds in
            let count = kinds.values.reduce(0, +)
            let detail = kinds.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(5).map { "\($0.value) \($0.key)" }
            return "\(count) \(outcome) (\(detail.joined(separator: ", "))\(kinds.count > 5 ? ", …" : ""))"
        }
        return "…and \(total) more steps, not logged one by one (\(Self.budget) are, of each outcome): " + parts.joined(separator: "; ")
    }

    /// Logs the summary, if there is one.
    func logSummary(_ logger: Logger) {
        guard let summary else { return }
        logger.info("\(summary)", metadata: ["message_id": "\(LogMessageID.stepsSummarised)", "action": "apply"])
    }
}
