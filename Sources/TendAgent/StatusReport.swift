public import FoundationEssentials
public import TendSpec
import TendCore
import Glibc

/// What `tend status` tells of a root: tend's records of it, the source the agent is configured
/// with, and every reason someone should look (`problems`), each with a code that scripts match
/// (docs/agent.md lists them).
public struct StatusReport: Encodable, Sendable {
    /// A reason to look, with its code.
    public struct Problem: Encodable, Sendable, Equatable {
        public var code: Code
        public var message: String

        public enum Code: String, Encodable, Sendable {
            /// The last run failed: a resource failed, or the root could not be used.
            case runFailed = "run_failed"
            /// The last run could not read its source.
            case sourceUnreachable = "source_unreachable"
            /// The newest commit is refused (invalid, unsigned, unhealthy, too large).
            case refusing
            /// The last fetches failed, at least `fetchFailureLimit` of them in a row.
            case fetchFailing = "fetch_failing"
            /// The agent is suspended: it applies nothing.
            case suspended
            /// The state folder cannot be written, or its file system is full.
            case stateUnwritable = "state_unwritable"
            /// Another process has held the lock of the root for longer than `lockLimit`.
            case lockHeld = "lock_held"
        }
    }

    /// The source as agent.yaml names it (`repo:`, `ref:`, `path:`).
    public struct ConfiguredSource: Encodable, Sendable {
        public var repo: String
        public var ref: String?
        public var path: String?
    }

    public var root: String
    public var stateDirectory: String
    /// What the agent of this root is configured to pull, when agent.yaml says.
    public var source: ConfiguredSource?
    public var applied: CommitRecord?
    public var lastGood: CommitRecord?
    public var lastRun: RunRecord?
    public var agent: AgentRecord?
    public var agentRunning: Bool
    public var suspended: Suspension?
    public var problems: [Problem]
    /// Nothing needs anyone's attention.
    public var healthy: Bool { problems.isEmpty }

    /// Fetches failed in a row from which status says so.
    public static let fetchFailureLimit = 3
    /// How long the lock may be held before status says so: as long as the watchdog lets a
    /// cycle run before it takes it as hung.
    public static let lockLimitSeconds = 3600

    enum CodingKeys: String, CodingKey {
        case root, stateDirectory, source, applied, lastGood, lastRun, agent, agentRunning, suspended, problems, healthy
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(root, forKey: .root)
        try container.encode(stateDirectory, forKey: .stateDirectory)
        try container.encodeIfPresent(source, forKey: .source)
        try container.encodeIfPresent(applied, forKey: .applied)
        try container.encodeIfPresent(lastGood, forKey: .lastGood)
        try container.encodeIfPresent(lastRun, forKey: .lastRun)
        try container.encodeIfPresent(agent, forKey: .agent)
        try container.encode(agentRunning, forKey: .agentRunning)
        try container.encodeIfPresent(suspended, forKey: .suspended)
        try container.encode(problems, forKey: .problems)
        try container.encode(healthy, forKey: .healthy)
    }

    /// Reads the records of `store`. `agentFile` is the agent's configuration, for the source it
    /// pulls now; `problem` hears of a record that cannot be used. Throws when the records cannot
    /// be read at all (another user than root), rather than telling of none.
    public static func read(_ store: StateStore, agentFile: AgentFile?, now: Date = Date(), problem: (String) -> Void = { _ in }) throws(StatusReportError) -> StatusReport {
        if let denied = store.accessProblem { throw StatusReportError(description: denied) }
        let agent = store.read(.agent, as: AgentRecord.self, problem: problem)
        let running = agent?.isRunning ?? false
        let suspension = store.read(.suspended, as: Suspension.self, problem: problem).flatMap { $0.holds(at: now) ? $0 : nil }
        let lastRun = store.read(.lastRun, as: RunRecord.self, problem: problem)
        var report = StatusReport(root: store.root, stateDirectory: store.directory,
                                  source: agentFile?.repo.map { ConfiguredSource(repo: $0, ref: agentFile?.ref, path: agentFile?.path) },
                                  applied: store.read(.applied, as: CommitRecord.self, problem: problem),
                                  lastGood: store.read(.lastGood, as: CommitRecord.self, problem: problem), lastRun: lastRun,
                                  agent: agent, agentRunning: running, suspended: suspension, problems: [])
        report.problems = report.findProblems(now: now)
        return report
    }

    /// Every reason to look, most pressing first.
    private func findProblems(now: Date) -> [Problem] {
        var problems: [Problem] = []
        if let run = lastRun, !run.healthy {
            let first = run.failures.first.map { ": " + ($0.resource.map { $0 + ": " } ?? "") + $0.message } ?? ""
            let code: Problem.Code = run.result == .unreachable ? .sourceUnreachable : run.result == .stalled ? .refusing : .runFailed
            problems.append(Problem(code: code, message: "the last run, by \(run.by) at \(run.started.formatted(.iso8601)), \(run.result.rawValue)\(first)"))
        }
        // The agent's own view, when it is as new as the last run: a running agent's, or that of
        // the last `tend agent --once`.
        if let agent, agentRunning || (agent.lastCycle ?? .distantPast) >= (lastRun?.started ?? .distantPast) {
            if let stall = agent.stalled, !problems.contains(where: { $0.code == .refusing }) {
                problems.append(Problem(code: .refusing, message: "refusing \(stall.commit.map { "commit " + $0.prefix(7) } ?? "the newest commit") since \(stall.since.formatted(.iso8601)): \(stall.reason)"))
            }
            if agent.fetchFailures >= Self.fetchFailureLimit {
                problems.append(Problem(code: .fetchFailing, message: "the last \(agent.fetchFailures) fetches failed"))
            }
        }
        if let problem = stateProblem() { problems.append(Problem(code: .stateUnwritable, message: problem)) }
        if let (holder, seconds) = RunLock.heldBy(root: root), seconds > Self.lockLimitSeconds {
            problems.append(Problem(code: .lockHeld, message: "\(holder) has held the lock of \(root) for \(DurationText.format(.seconds(seconds))), longer than \(DurationText.format(.seconds(Self.lockLimitSeconds))): no apply or repair can run"))
        }
        if let suspended {
            problems.append(Problem(code: .suspended, message: "suspended by \(suspended.by) since \(suspended.since.formatted(.iso8601))\(suspended.until.map { " until \($0.formatted(.iso8601))" } ?? ""): \(suspended.reason)"))
        }
        return problems
    }

    /// Why tend could not write its records now, if it could not: the folder refuses root, or
    /// its file system has less than a MiB left. A folder not made yet is no problem.
    private func stateProblem() -> String? {
        var folder = stateDirectory
        while access(folder, F_OK) != 0, let slash = folder.lastIndex(of: "/"), slash != folder.startIndex { folder = String(folder[..<slash]) }
        if access(folder, W_OK) != 0 { return "\(folder) cannot be written: \(String(cString: strerror(errno)))" }
        var info = statvfs()
        if statvfs(folder, &info) == 0, Int(info.f_bavail) * Int(info.f_frsize) < 1 << 20 {
            return "the file system of \(folder) is full: tend cannot record what it applies"
        }
        return nil
    }

    /// The exit code of `tend status`: 0 healthy, 10 suspended and nothing else, 9 otherwise.
    public var exitCode: Int32 {
        if problems.isEmpty { return 0 }
        return problems.allSatisfy { $0.code == .suspended } ? 10 : 9
    }
}

/// The records could not be read: another user than root, most often (`StateStore.accessProblem`).
public struct StatusReportError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
