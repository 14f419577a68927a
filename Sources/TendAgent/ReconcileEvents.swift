public import TendCore
public import TendGit

/// What a caller hears while a run goes on.
public struct ReconcileEvents: Sendable {
    /// Another run holds the root's lock; called once, with who.
    public var lockWaiting: @Sendable (String) -> Void
    /// Something a person should know that does not stop the run, when it happens (also kept in
    /// `ReconcileResult.notes`).
    public var note: @Sendable (String) -> Void
    /// Asked before a plan with changes is applied; false leaves everything as it is.
    public var approve: @Sendable (Plan) async -> Bool
    /// The apply begins.
    public var applying: @Sendable (Plan) -> Void
    /// A step starts or ends.
    public var step: @Sendable (ApplyEvent) -> Void
    /// How a fetch goes, at most ten times a second.
    public var fetching: (@Sendable (FetchProgress) -> Void)?
    /// The progress lines of a tool that changes the host (apt), as they come.
    public var toolOutput: (@Sendable (String) -> Void)?
    /// Asked before each step; true leaves the steps not yet started for the next run.
    public var shouldStop: @Sendable () -> Bool = { false }

    public init(lockWaiting: @escaping @Sendable (String) -> Void = { _ in }, note: @escaping @Sendable (String) -> Void = { _ in }, approve: @escaping @Sendable (Plan) async -> Bool = { _ in true },
                applying: @escaping @Sendable (Plan) -> Void = { _ in }, step: @escaping @Sendable (ApplyEvent) -> Void = { _ in }) {
        self.lockWaiting = lockWaiting
        self.note = note
        self.approve = approve
        self.applying = applying
        self.step = step
    }
}
