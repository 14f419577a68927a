import Glibc
import Synchronization
import TendGit

/// What long work shows on a terminal: the objects and bytes of a fetch (a first clone takes a
/// while), and a count when an apply has many steps. Only when standard error is a terminal: a
/// pipe, a log file and the journal get none. The line is drawn on standard error, in place, and
/// erased before anything else is printed, so it never ends up in what was printed.
final class TerminalProgress: Sendable {
    /// Applies with fewer steps than this print each step, which is progress enough.
    static let stepThreshold = 100

    let enabled: Bool
    private let state = Mutex<State>(State())

    private struct State {
        var shown = false
        var total = 0
        var done = 0
    }

    init(enabled: Bool = TerminalProgress.onTerminal) {
        self.enabled = enabled
    }

    static var onTerminal: Bool {
        isatty(STDERR_FILENO) == 1 && getenv("TERM").map { String(cString: $0) } != "dumb"
    }

    /// A fetch's progress: objects received of those sent, and bytes.
    func fetching(_ progress: FetchProgress) {
        guard enabled else { return }
        let objects = progress.totalObjects > 0 ? "\(progress.receivedObjects)/\(progress.totalObjects) objects, " : ""
        state.withLock { draw("fetching: \(objects)\(Self.bytes(progress.receivedBytes))", &$0) }
    }

    /// What a long read is at (`tend adopt`: "reading files").
    func show(_ text: String) {
        guard enabled else { return }
        state.withLock { draw(text, &$0) }
    }

    /// An apply of `steps` steps begins.
    func begin(steps: Int) {
        state.withLock { $0.total = steps; $0.done = 0 }
    }

    /// Prints what `body` prints with the line out of the way, then counts a finished step
    /// (unless `counting` is false) and draws the line again.
    func step(counting: Bool = true, _ body: () -> Void) {
        state.withLock { state in
            erase(&state)
            body()
            if counting { state.done += 1 }
            if enabled, state.total >= Self.stepThreshold, state.done < state.total {
                draw("applied \(state.done) of \(state.total) steps", &state)
            }
        }
    }

    /// Erases the line, before a message or the end.
    func clear() {
        state.withLock { erase(&$0) }
    }

    private func draw(_ text: String, _ state: inout State) {
        write("\r\u{1B}[K" + text)
        state.shown = true
    }

    private func erase(_ state: inout State) {
        guard state.shown else { return }
        write("\r\u{1B}[K")
        state.shown = false
    }

    private func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    static func bytes(_ count: Int) -> String {
        switch count {
        case ..<1024: "\(count) B"
        case ..<(1024 * 1024): "\(count / 1024) KiB"
        default: "\(count * 10 / (1024 * 1024) / 10).\(count * 10 / (1024 * 1024) % 10) MiB"
        }
    }
}
