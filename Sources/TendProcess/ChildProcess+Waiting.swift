import Glibc

/// pipe2(2), which Glibc's module map leaves out: a pipe whose ends are close-on-exec from the
/// start, so that a child another thread spawns meanwhile does not inherit them.
@_silgen_name("pipe2")
private func pipe2(_ ends: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

extension ChildProcess {
    /// How `runWaiting` ended, with its standard output as bytes.
    public struct Waited: Sendable {
        public var finished: Finished
        public var output: [UInt8]
        /// Whether the output was cut at `kept`.
        public var truncated: Bool
    }

    /// Runs it to its end or its `limit`, with `input` on its standard input and its standard
    /// output kept as bytes (at most `kept`), not as lines of text. For callers that cannot
    /// `await`: building a catalog, which is synchronous, decrypts secrets with it. It blocks the
    /// calling thread on `poll` and `waitpid`, never on a Swift task, so it cannot wait for the
    /// very pool it runs on. `environment` and `limit` are as in `run`; its standard error is
    /// kept in `Finished.error`. With `ownGroup` false, the child stays in tend's process group,
    /// in the foreground of a terminal, where a program that asks for a passphrase can.
    public func runWaiting(input: [UInt8], ownGroup: Bool = true) -> Waited {
        func failed(_ why: String) -> Waited {
            Waited(finished: Finished(status: 127, signal: nil, output: "", error: "cannot run \(arguments[0]): \(why)", timedOut: false),
                   output: [], truncated: false)
        }
        var stdin: [Int32] = [0, 0], stdout: [Int32] = [0, 0], stderr: [Int32] = [0, 0]
        func pipeClosedOnExec(_ ends: inout [Int32]) -> Int32 {
            ends.withUnsafeMutableBufferPointer { pipe2($0.baseAddress!, O_CLOEXEC) }
        }
        guard pipeClosedOnExec(&stdin) == 0 else { return failed(String(cString: strerror(errno))) }
        guard pipeClosedOnExec(&stdout) == 0 else {
            close(stdin[0]); close(stdin[1])
            return failed(String(cString: strerror(errno)))
        }
        guard pipeClosedOnExec(&stderr) == 0 else {
            for fd in stdin + stdout { close(fd) }
            return failed(String(cString: strerror(errno)))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdout[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderr[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, to be killed whole at the limit; signals as a program expects
        // them (tend ignores SIGPIPE, which a child would otherwise inherit).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16((ownGroup ? POSIX_SPAWN_SETPGROUP : 0) | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var settings: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let pair = String(cString: pointer)
            if let equals = pair.firstIndex(of: "=") { settings[String(pair[..<equals])] = String(pair[pair.index(after: equals)...]) }
            entry += 1
        }
        settings.merge(environment) { _, given in given }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = settings.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        close(stdin[0]); close(stdout[1]); close(stderr[1])
        guard spawned == 0 else {
            close(stdin[1]); close(stdout[0]); close(stderr[0])
            return failed(String(cString: strerror(spawned)))
        }
        let deadline = limit.map { ContinuousClock.now + $0 }
        var output: [UInt8] = [], error: [UInt8] = []
        var written = 0
        var open = (input: input.isEmpty ? -1 : stdin[1], output: stdout[0], error: stderr[0])
        if input.isEmpty { close(stdin[1]) } else { _ = fcntl(stdin[1], F_SETFL, O_NONBLOCK) }
        var truncated = false
        let kill = { (pid: pid_t) in _ = Glibc.kill(ownGroup ? -pid : pid, SIGKILL) }
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while open.output >= 0 || open.error >= 0 {
            var fds = [pollfd(fd: open.input, events: Int16(POLLOUT), revents: 0), pollfd(fd: open.output, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: open.error, events: Int16(POLLIN), revents: 0)]
            var wait: Int32 = -1
            if let deadline {
                let left = deadline - ContinuousClock.now
                if left <= .zero {
                    timedOut = true
                    kill(pid)
                    break
                }
                wait = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            }
            guard poll(&fds, 3, wait) >= 0 || errno == EINTR else { break }
            if fds[0].revents != 0 {
                let n = input.withUnsafeBytes { write(open.input, $0.baseAddress! + written, input.count - written) }
                if n > 0 { written += n }
                if n < 0, errno != EAGAIN, errno != EINTR || written == input.count || n == 0 { written = input.count }
                if written == input.count {
                    close(open.input)
                    open.input = -1
                }
            }
            for (index, fd) in [(1, open.output), (2, open.error)] where fd >= 0 && fds[index].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if index == 1 {
                        if output.count + n > kept { truncated = true }
                        if output.count < kept { output += buffer.prefix(min(n, kept - output.count)) }
                    } else if error.count < 64 << 10 {
                        error += buffer.prefix(n)
                    }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(fd)
                    if index == 1 { open.output = -1 } else { open.error = -1 }
                }
            }
        }
        for fd in [open.input, open.output, open.error] where fd >= 0 { close(fd) }
        // A child that closed its outputs and runs on is still held to the limit.
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0, errno != EINTR {
                return failed("it could not be waited for: \(String(cString: strerror(errno)))")
            }
            if let deadline, ContinuousClock.now >= deadline, !timedOut {
                timedOut = true
                kill(pid)
            }
            usleep(timedOut ? 1000 : 5000)
        }
        let signal = status & 0x7f
        let exit: Int32 = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        return Waited(finished: Finished(status: exit, signal: signal == 0 ? nil : signal, output: "", error: String(decoding: error, as: UTF8.self), timedOut: timedOut),
                      output: output, truncated: truncated)
    }
}
