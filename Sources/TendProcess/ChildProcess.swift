public import SystemPackage
import Dispatch
import Glibc
import Subprocess
import Synchronization

/// A program tend runs and waits for: apt, dpkg and the shadow tools, `systemctl --root`, gpg and
/// ssh-keygen for signatures, a health check's command. The one way tend starts a process.
///
/// Its exit status is a result to inspect, not an error: one that cannot be started finishes
/// with status 127 and says why in `error`. Its outputs are read line by line (standard output's
/// handed over as they come, if asked), and at most `kept` bytes of each are kept: the rest is
/// read and dropped, so a tool that says much is neither stopped nor cut off.
public struct ChildProcess: Sendable {
    /// What the program reads on its standard input.
    public enum Input: Sendable {
        /// Nothing: /dev/null.
        case none
        case text(String)
        /// The file at this path.
        case file(FilePath)
    }

    /// Where its standard error goes.
    public enum Errors: Sendable {
        /// Kept apart, in `Finished.error`.
        case kept
        /// Into standard output, as a terminal would show them: the last line says why.
        case withOutput
    }

    /// The program (a path, or a name looked up in `PATH`) and its arguments.
    public var arguments: [String]
    /// Set in its environment, on top of tend's own.
    public var environment: [String: String]
    public var input: Input
    public var errors: Errors
    /// How long it may run: at the limit it is killed, with every process it started in its own
    /// process group, whether or not it still writes; and tend stops waiting for its output then,
    /// so that nothing that left the group and keeps the output open keeps tend waiting.
    public var limit: Duration?
    /// At most this many bytes of each output are kept.
    public var kept: Int

    public init(_ arguments: [String], environment: [String: String] = [:], input: Input = .none, errors: Errors = .kept,
                limit: Duration? = nil, kept: Int = 8 << 20) {
        precondition(!arguments.isEmpty, "a child process needs a program")
        self.arguments = arguments
        self.environment = environment
        self.input = input
        self.errors = errors
        self.limit = limit
        self.kept = kept
    }

    /// How it ended.
    public struct Finished: Sendable {
        /// Its exit code; 128 + the signal that killed it; 127 when it could not be started.
        public var status: Int32
        /// The signal that killed it, if one did.
        public var signal: Int32?
        public var output: String
        /// Its standard error, with `Errors.kept`; why it could not be started, at status 127.
        public var error: String
        /// Whether it was killed at `limit`.
        public var timedOut: Bool
    }

    /// Runs it to its end (or its limit), handing each line of its standard output to `lines`.
    public func run(lines: (@Sendable (String) -> Void)? = nil) async -> Finished {
        do {
            switch input {
            case .none: return try await run(.none, lines: lines)
            case .text(let text): return try await run(.string(text), lines: lines)
            case .file(let path):
                return try await run(.fileDescriptor(try FileDescriptor.open(path, .readOnly, options: .closeOnExec), closeAfterSpawningProcess: true), lines: lines)
            }
        } catch {
            return Finished(status: 127, signal: nil, output: "", error: "cannot run \(arguments[0]): \(error)", timedOut: false)
        }
    }

    private func run<In: InputProtocol>(_ input: In, lines: (@Sendable (String) -> Void)?) async throws -> Finished {
        let kept = kept
        return switch errors {
        case .kept:
            try await run(input, .sequence, lines: lines) { execution in try await Self.collect(execution.standardError.strings(), kept: kept, each: nil) }
        case .withOutput:
            try await run(input, .combinedWithOutput, lines: lines) { _ in "" }
        }
    }

    /// What one output said, its lines each handed to `each`, at most `kept` bytes of it kept.
    private static func collect<Lines: AsyncSequence>(_ lines: Lines, kept: Int, each: (@Sendable (String) -> Void)?) async throws -> String
        where Lines.Element == String {
        var said = ""
        for try await line in lines {
            each?(line)
            if said.utf8.count < kept { said += line + "\n" }
        }
        return said
    }

    /// Runs it with `error` as its standard error, which `readErrors` reads while it runs.
    private func run<In: InputProtocol, Err: ErrorOutputProtocol>(_ input: In, _ error: Err, lines: (@Sendable (String) -> Void)?,
                                                                   readErrors: @escaping @Sendable (Execution<In, SequenceOutput, Err>) async throws -> String) async throws -> Finished {
        var options = PlatformOptions()
        if limit != nil { options.processGroupID = 0 }
        var settings: [Environment.Key: String?] = [:]
        for (key, value) in environment { settings[Environment.Key(stringLiteral: key)] = value }
        let executable: Executable = arguments[0].contains("/") ? .path(FilePath(arguments[0])) : .name(arguments[0])
        let kept = kept, limit = limit
        let deadline = Deadline()
        defer { deadline.cancel() }
        let result = try await Subprocess.run(executable, arguments: Arguments(Array(arguments.dropFirst())), environment: .inherit.updating(settings),
                                              platformOptions: options, input: input, output: .sequence, error: error) { execution -> (output: String, error: String) in
            if let limit { deadline.start(limit, group: execution.processIdentifier.value) }
            let read = { @Sendable () async throws -> (output: String, error: String) in
                try await withThrowingTaskGroup(of: (Bool, String).self) { readers in
                    readers.addTask { (true, try await Self.collect(execution.standardOutput.strings(), kept: kept, each: lines)) }
                    readers.addTask { (false, try await readErrors(execution)) }
                    var said = (output: "", error: "")
                    for try await (isOutput, text) in readers {
                        if isOutput { said.output = text } else { said.error = text }
                    }
                    return said
                }
            }
            guard let limit else { return try await read() }
            // Past the limit (and a moment for the kill to end the group), what was read is what
            // there is: a process that left the group may hold the output open for ever.
            return try await withThrowingTaskGroup(of: (output: String, error: String)?.self) { race in
                race.addTask { try await read() }
                race.addTask {
                    try await Task.sleep(for: limit + .milliseconds(500))
                    return nil
                }
                let first = try await race.next() ?? nil
                race.cancelAll()
                return first ?? ("", "")
            }
        }
        let (status, signal): (Int32, Int32?) = switch result.terminationStatus {
        case .exited(let code): (code, nil)
        case .signaled(let signal): (128 + signal, signal)
        }
        return Finished(status: status, signal: signal, output: result.closureResult.output, error: result.closureResult.error,
                        timedOut: deadline.passed)
    }
}

/// The limit's timer, started once the process is: at the limit it kills the process group even
/// when the program closed its output and runs on; cancelled once the program has ended. A
/// program that ended before the limit but was not reaped yet (its parent, busy, had not looked)
/// is not killed, nor said to have run out of time.
///
/// The timer runs on a Dispatch queue, not as a Swift task: when every thread of the concurrency
/// pool is busy (a full test suite, an agent applying in parallel), a task's sleep can end long
/// after its time, and a check once waited out a 30 s command with a 1 s limit that way.
private final class Deadline: Sendable {
    private let cancelled = Atomic(false)
    private let killed = Atomic(false)

    var passed: Bool { killed.load(ordering: .relaxed) }

    func start(_ limit: Duration, group: pid_t) {
        let (seconds, attoseconds) = limit.components
        let nanoseconds = Int(clamping: seconds) &* 1_000_000_000 &+ Int(attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(max(0, nanoseconds))) { [self] in
            guard !cancelled.load(ordering: .relaxed), !Self.hasEnded(group) else { return }
            killed.store(true, ordering: .relaxed)
            kill(-group, SIGKILL)
        }
    }

    func cancel() {
        cancelled.store(true, ordering: .relaxed)
    }

    /// Whether the process `pid` has exited, looked at without reaping it (`waitid` with
    /// `WNOWAIT`, which leaves that to Subprocess).
    private static func hasEnded(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return true }
        return info._sifields._kill.si_pid == pid
    }
}
