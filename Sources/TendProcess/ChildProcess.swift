public import SystemPackage
import Subprocess

/// A program tend runs and waits for: apt, dpkg and the shadow tools, `systemctl --root`, gpg and
/// ssh-keygen for signatures, a health check's command. The one way tend starts a process.
///
/// Its exit status is a result to inspect, not an error: one that cannot be started finishes
/// with status 127 and says why in `error`. Standard output is read line by line, each line
/// handed over as it comes if asked; at most `kept` bytes of each output are kept.
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
    /// process group, so that nothing it left behind keeps its output open and tend waiting.
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
        switch errors {
        case .kept:
            let (status, signal, output, timedOut, error) = try await run(input, .string(limit: kept), lines: lines)
            return Finished(status: status, signal: signal, output: output, error: error, timedOut: timedOut)
        case .withOutput:
            let (status, signal, output, timedOut, _) = try await run(input, .combinedWithOutput, lines: lines)
            return Finished(status: status, signal: signal, output: output, error: "", timedOut: timedOut)
        }
    }

    private func run<In: InputProtocol, Err: ErrorOutputProtocol>(_ input: In, _ error: Err, lines: (@Sendable (String) -> Void)?)
        async throws -> (status: Int32, signal: Int32?, output: String, timedOut: Bool, error: Err.OutputType) {
        var options = PlatformOptions()
        if limit != nil { options.processGroupID = 0 }
        var settings: [Environment.Key: String?] = [:]
        for (key, value) in environment { settings[Environment.Key(stringLiteral: key)] = value }
        let executable: Executable = arguments[0].contains("/") ? .path(FilePath(arguments[0])) : .name(arguments[0])
        let kept = kept, limit = limit
        let result = try await Subprocess.run(executable, arguments: Arguments(Array(arguments.dropFirst())), environment: .inherit.updating(settings),
                                              platformOptions: options, input: input, output: .sequence, error: error) { execution -> (String, Bool) in
            let read = { @Sendable () async throws -> String in
                var output = ""
                for try await line in execution.standardOutput.strings() {
                    lines?(line)
                    if output.utf8.count < kept { output += line + "\n" }
                }
                return output
            }
            guard let limit else { return (try await read(), false) }
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask { try await read() }
                group.addTask {
                    try await Task.sleep(for: limit)
                    return nil
                }
                let first = try await group.next() ?? nil
                if first == nil { try? execution.send(signal: .kill, toProcessGroup: true) }
                group.cancelAll()
                return (first ?? "", first == nil)
            }
        }
        let (status, signal): (Int32, Int32?) = switch result.terminationStatus {
        case .exited(let code): (code, nil)
        case .signaled(let signal): (128 + signal, signal)
        }
        return (status, signal, result.closureResult.0, result.closureResult.1, result.standardError)
    }
}
