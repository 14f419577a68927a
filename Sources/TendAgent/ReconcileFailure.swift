public import TendCore
public import TendSpec

/// Why a run, or one resource of it, did not converge, classed as controller-runtime classes
/// errors: retry later, waiting on something, or stalled until the source changes.
public struct ReconcileFailure: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The configuration does not load (`diagnostics` say where).
        case invalidConfiguration
        /// The folder or the remote cannot be read.
        case sourceUnreadable
        /// The commit is unsigned, badly signed, or goes back in time.
        case refused
        /// Another run held the root's lock for too long.
        case locked
        /// The root or the state directory cannot be used.
        case unusableHost
        /// A saved plan no longer matches the host or the configuration.
        case stalePlan
        /// The request contradicts itself (a saved plan and another source).
        case usage
        /// One resource failed.
        case resourceFailed
        /// One resource was skipped because something it depends on failed.
        case resourceSkipped
        /// The commit's rollout has not reached this host's wave yet (`ReconcileResult.rollout`).
        case notDue
        /// The commit failed this host's health checks, now or before.
        case unhealthy
    }

    public enum Class: String, Sendable, Hashable {
        case retryLater = "retry later"
        case waiting
        case stalled = "stalled until the source changes"
    }

    public var code: Code
    public var message: String
    /// The resource, for a failure of one resource.
    public var resource: ResourceID?
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

    public var `class`: Class {
        switch code {
        case .invalidConfiguration, .refused, .stalePlan, .usage, .unhealthy: .stalled
        case .resourceSkipped, .notDue: .waiting
        case .sourceUnreadable, .locked, .unusableHost, .resourceFailed: .retryLater
        }
    }

    public var description: String { resource.map { "\($0): \(message)" } ?? message }
}
