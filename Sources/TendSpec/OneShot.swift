import Synchronization

/// What a one-shot command (`tend plan`, `apply`, `validate`, `snapshot`) built and would free just
/// before it exits: freeing a catalog of 10,000 resources and the YAML it was read from took a
/// tenth of `tend plan`, for memory the exit gives back anyway (clang's -disable-free). The agent,
/// which lives on, never calls `start()` and frees as it goes.
public enum OneShot {
    private static let kept = Mutex<[any Sendable]?>(nil)

    /// Says that this process exits when its run ends: from now on `keep` holds what it is given.
    public static func start() {
        kept.withLock { $0 = $0 ?? [] }
    }

    /// Holds `value` until the process exits, once `start()` was called; otherwise nothing.
    public static func keep(_ value: some Sendable) {
        kept.withLock { $0?.append(value) }
    }
}
