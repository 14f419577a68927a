import Foundation
import Subprocess
import SystemPackage
import Testing

/// A private network for test hosts (../shared/TESTING.md, "Fleets of test hosts"): a named
/// network namespace with a bridge at 10.231.0.1/24, where the test's servers listen, and one
/// veth pair per host joined to it. Nothing of the machine's own network is touched. Made by
/// `withTestNetwork`, which deletes the namespace (and every veth with it) at the end.
struct TestNetwork: Sendable {
    /// The namespace's name, unique to this process and network.
    let name: String
    /// Where the hosts reach the test's servers.
    let gateway = "10.231.0.1"

    /// Joins `host` to the bridge as eth0 with address 10.231.0.`number` and returns that address.
    @discardableResult
    func join(_ host: TestHost, number: Int) async throws -> String {
        precondition((2...254).contains(number), "a host number is 2 to 254")
        let address = "10.231.0.\(number)"
        try await ip(["-n", name, "link", "add", "vh\(number)", "type", "veth", "peer", "name", "eth0", "netns", "\(host.pid)"])
        try await ip(["-n", name, "link", "set", "vh\(number)", "master", "br0", "up"])
        for command in [["ip", "addr", "add", address + "/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"]] {
            let run = try await Subprocess.run(.path("/usr/bin/nsenter"), arguments: Arguments(["-t", "\(host.pid)", "-n", "--"] + command),
                                               output: .discarded, error: .string(limit: 1 << 16))
            guard run.terminationStatus.isSuccess else { throw CommandFailed(command: command.joined(separator: " "), output: run.standardError) }
        }
        return address
    }

    /// Runs `git daemon` for the bare repositories in `folder` on the gateway while `body` runs,
    /// then kills it by its own PID; `body` gets the URL prefix (`git://10.231.0.1/`).
    func withGitDaemon<T: Sendable>(serving folder: String, _ body: @Sendable @escaping (String) async throws -> T) async throws -> T {
        // git-daemon itself, not `git daemon`, which would run it as a child that outlives the kill.
        try await withServer(["/usr/lib/git-core/git-daemon", "--export-all", "--reuseaddr", "--base-path=" + folder, "--listen=" + gateway], port: 9418) {
            try await body("git://\(gateway)/")
        }
    }

    /// Runs systemd-journal-remote on the gateway (port 19532, plain HTTP) while `body` runs,
    /// writing what the hosts' systemd-journal-upload sends into the folder `output`, which
    /// `journalctl -D` reads; then kills it by its own PID.
    func withJournalCollector<T: Sendable>(output: String, _ body: @Sendable @escaping () async throws -> T) async throws -> T {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        return try await withServer(["/lib/systemd/systemd-journal-remote", "--listen-http=\(gateway):19532", "--output=" + output + "/"], port: 19532, body)
    }

    /// Runs `command` in the namespace (`ip netns exec` becomes it, so its PID is the server's)
    /// while `body` runs, once it accepts connections on the gateway's `port`; then kills it.
    private func withServer<T: Sendable>(_ command: [String], port: Int, _ body: @Sendable @escaping () async throws -> T) async throws -> T {
        let result = try await Subprocess.run(.path("/usr/sbin/ip"), arguments: Arguments(["netns", "exec", name] + command),
                                              input: .none, output: .sequence, error: .discarded) { execution in
            defer { try? execution.send(signal: .kill) }
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let probe = try await Subprocess.run(.path("/usr/sbin/ip"), arguments: ["netns", "exec", name, "bash", "-c", "exec 3<>/dev/tcp/\(gateway)/\(port)"],
                                                     output: .discarded, error: .discarded)
                if probe.terminationStatus.isSuccess { return try await body() }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw CommandFailed(command: "\(command[0]) in \(name)", output: "it did not listen on \(gateway):\(port) within 10 s")
        }
        return result.closureResult
    }

    fileprivate func ip(_ arguments: [String]) async throws {
        let run = try await Subprocess.run(.path("/usr/sbin/ip"), arguments: Arguments(arguments), output: .discarded, error: .string(limit: 1 << 16))
        guard run.terminationStatus.isSuccess else { throw CommandFailed(command: "ip " + arguments.joined(separator: " "), output: run.standardError) }
    }
}

private let networkCount = Counter()

/// Makes a `TestNetwork`, runs `body` with it, and deletes it whatever `body` did.
func withTestNetwork<T: Sendable>(_ body: @Sendable @escaping (TestNetwork) async throws -> T) async throws -> T {
    let network = TestNetwork(name: "tend-test-\(getpid())-\(networkCount.next())")
    try await network.ip(["netns", "add", network.name])
    do {
        try await network.ip(["-n", network.name, "link", "add", "br0", "type", "bridge"])
        try await network.ip(["-n", network.name, "addr", "add", network.gateway + "/24", "dev", "br0"])
        try await network.ip(["-n", network.name, "link", "set", "br0", "up"])
        try await network.ip(["-n", network.name, "link", "set", "lo", "up"])
        let value = try await body(network)
        try? await network.ip(["netns", "del", network.name])
        return value
    } catch {
        try? await network.ip(["netns", "del", network.name])
        throw error
    }
}

/// A number that goes up by one at each call, from any thread.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
