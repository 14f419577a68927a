/// How one step of an apply ended.
public struct StepResult: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        case done
        case failed(StepFailure)
        case skipped(StepSkip)

        /// `done`, `failed` or `skipped`, as logs and `--json` give it.
        public var label: String {
            switch self {
            case .done: "done"
            case .failed: "failed"
            case .skipped: "skipped"
            }
        }

        /// Why the step did not converge, for people.
        public var reason: String? {
            switch self {
            case .done: nil
            case .failed(let failure): failure.cause
            case .skipped(let skip): skip.description
            }
        }

        /// What a step that did not converge is, as `--json` gives it (`change_failed`, `blocked`…).
        public var code: String? {
            switch self {
            case .done: nil
            case .failed(let failure): failure.code.rawValue
            case .skipped(let skip): skip.code
            }
        }

        /// When trying the step again can help; nil for a done step.
        public var retry: StepRetry? {
            switch self {
            case .done: nil
            case .failed(let failure): failure.retry
            case .skipped(.stopping): .nextRun
            case .skipped(.blocked): .afterDependency
            }
        }
    }

    public var id: ResourceID
    public var action: Change.Action?
    public var outcome: Outcome
}

/// Why a step failed: what went wrong (`code`), in words (`cause`), and the host's own error (its
/// C function and errno) when a system call refused.
public struct StepFailure: Sendable, Hashable, CustomStringConvertible {
    /// The raw value is the code as `--json` gives it.
    public enum Code: String, Sendable, Hashable {
        /// The resource could not be observed or planned (`Plan.Step.error`).
        case unobservable
        /// The host refused the change: a system call, a tool or the service manager failed.
        case changeFailed = "change_failed"
        /// The change was made, but the resource observed again still differs.
        case inconsistent
        /// A saved plan names a resource the catalog does not hold.
        case notInCatalog = "not_in_catalog"
    }

    public var code: Code
    public var cause: String
    /// The host's error, with the C function that failed and its errno, when one refused.
    public var hostError: HostError?

    public init(_ code: Code, _ cause: String) {
        self.code = code
        self.cause = cause
    }

    /// A change the host refused.
    public init(_ error: HostError) {
        self.init(.changeFailed, error.description)
        hostError = error
    }

    /// A step that cannot run again to any use until the configuration changes is one whose
    /// resource the catalog does not hold; the rest may converge on the next run (a lock released,
    /// a mirror back, a file unlocked).
    public var retry: StepRetry { code == .notInCatalog ? .afterSourceChange : .nextRun }

    public var description: String { cause }
}

/// Why a step was not started.
public enum StepSkip: Sendable, Hashable, CustomStringConvertible {
    /// The run was told to stop before the step (SIGTERM): a step is never cut in half.
    case stopping
    /// A resource it requires did not converge.
    case blocked(by: ResourceID)

    /// `stopping` or `blocked`, as `--json` gives it.
    public var code: String {
        switch self {
        case .stopping: "stopping"
        case .blocked: "blocked"
        }
    }

    public var description: String {
        switch self {
        case .stopping: "tend is stopping; the next run applies it"
        case .blocked(let blocker): "requires \(blocker), which did not converge"
        }
    }
}

/// When a step that did not converge may converge if tried again. The raw value is as `--json`
/// gives it.
public enum StepRetry: String, Sendable, Hashable, Encodable {
    /// On the next run, as the agent's next cycle does.
    case nextRun = "next_run"
    /// Once what it requires converged.
    case afterDependency = "after_dependency"
    /// Only once the configuration changes.
    case afterSourceChange = "after_source_change"
}
