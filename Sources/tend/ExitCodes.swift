import ArgumentParser

/// Every exit code of tend, documented in the README and in `tend --help`.
enum TendExit {
    static let unusableHost = ExitCode(1)
    static let changesPending = ExitCode(2)
    static let invalidConfiguration = ExitCode(3)
    static let sourceUnreadable = ExitCode(4)
    static let failures = ExitCode(5)
    static let stalePlan = ExitCode(6)
    static let refused = ExitCode(7)
    static let locked = ExitCode(8)
    /// `tend status`: the last run failed, or the agent refuses the newest commit.
    static let unhealthy = ExitCode(9)
    /// `tend blame`: nothing tend manages is at that path or has that id.
    static let notManaged = ExitCode(1)
    static let usage = ExitCode(64)
}
