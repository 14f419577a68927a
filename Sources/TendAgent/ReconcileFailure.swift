public import TendCore
public import TendSpec

/// Why a run, or one resource of it, did not converge, classed as controller-runtime classes
/// errors: retry later, waiting on something, or stalled until the source changes.
public struct ReconcileFailure: Error, Sendable, CustomStringConvertible {
    /// The raw value is the code as `--json` and docs/json-output.md give it.
    public enum Code: String, Sendable, Hashable {
        /// The configuration does not load (`diagnostics` say where).
        case invalidConfiguration = "invalid_configuration"
        /// The folder or the remote cannot be read.
        case sourceUnreadable = "source_unreadable"
        /// The commit is unsigned, badly signed, or goes back in time.
        case refused
        /// Another run held the root's lock for too long.
        case locked
        /// The root or the state directory cannot be used.
        case unusableHost = "unusable_host"
        /// A saved plan no longer matches the host or the configuration.
        case stalePlan = "stale_plan"
        /// The request contradicts itself (a saved plan and another source).
        case usage
        /// One resource failed.
        case resourceFailed = "resource_failed"
        /// One resource was skipped because something it depends on failed.
        case resourceSkipped = "resource_skipped"
        /// The commit's rollout has not reached this host's wave yet (`ReconcileResult.rollout`).
        case notDue = "not_due"
        /// The commit failed this host's health checks, now or before.
        case unhealthy

        /// What a code means everywhere it matters, in one table: its class, what the run's record
        /// says of a run that ended with it, and the exit status a command ends with (the list in
        /// `tend --help` and the README). The one place codes are told apart.
        public var meaning: (class: Class, result: RunResult, exitStatus: Int32) {
            switch self {
            case .invalidConfiguration: (.stalled, .stalled, 3)
            case .sourceUnreadable: (.retryLater, .unreachable, 4)
            case .refused: (.stalled, .stalled, 7)
            case .locked: (.retryLater, .failed, 8)
            case .unusableHost: (.retryLater, .failed, 1)
            case .stalePlan: (.stalled, .stalled, 6)
            case .usage: (.stalled, .stalled, 64)
            case .resourceFailed: (.retryLater, .failed, 5)
            case .resourceSkipped: (.waiting, .failed, 5)
            case .notDue: (.waiting, .failed, 7)
            case .unhealthy: (.stalled, .stalled, 7)
            }
        }
    }

    public enum Class: String, Sendable, Hashable {
        case retryLater = "retry later"
        case waiting
        case stalled = "stalled until the source changes"

        /// The class of a step that did not converge: its own retry class, told the agent's way.
        public init(_ retry: StepRetry) {
            self = switch retry {
            case .nextRun: .retryLater
            case .afterDependency: .waiting
            case .afterSourceChange: .stalled
            }
        }
    }

    public var code: Code
    public var message: String
    /// The resource, for a failure of one resource.
    public var resource: ResourceID?
    /// When the step of a failed or skipped resource may converge (`StepResult.Outcome.retry`),
    /// which its class follows.
    public var stepRetry: StepRetry?
    /// Every problem of an invalid configuration, at its position.
    public var diagnostics: [Diagnostic]
    /// What changed since a saved plan, one line each.
    public var staleSteps: [String]

    public init(_ code: Code, _ message: String, resource: ResourceID? = nil, diagnostics: [Diagnostic] = [], staleSteps: [String] = []) {
        self.code = code
        self.message = message
        self.resource = resource
        self.diagnostics = diagnostics
        self.staleSteps = staleSteps
    }

    public var `class`: Class { stepRetry.map(Class.init) ?? code.meaning.class }

    public var description: String { resource.map { "\($0): \(message)" } ?? message }
}
