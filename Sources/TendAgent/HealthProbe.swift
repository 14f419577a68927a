internal import Foundation
import Glibc
import TendProcess
import SystemPackage
import TendCore
public import TendSpec

/// Runs `health:` checks on the host itself, as the agent does after an apply that changed
/// something. Each check is tried once a second until it passes or its timeout has gone by.
enum HealthProbe {
    /// The checks that did not pass, each with why; empty when the host is healthy.
    static func failures(of checks: [HealthCheck], services: (any ServiceManager)?) async -> [HealthFailure] {
        var failures: [HealthFailure] = []
        for check in checks {
            if let reason = await failure(of: check, services: services) {
                failures.append(HealthFailure(check: check, reason: reason))
            }
        }
        return failures
    }

    /// Why `check` did not pass within its timeout, or nil once it passes.
    static func failure(of check: HealthCheck, services: (any ServiceManager)?) async -> String? {
        let deadline = ContinuousClock.now + check.timeout
        var reason = "not tried"
        while true {
            let left = deadline - ContinuousClock.now
            guard let problem = await attempt(check.probe, within: max(left, .milliseconds(100)), services: services) else { return nil }
            reason = problem
            guard ContinuousClock.now + .seconds(1) < deadline else { break }
            try? await Task.sleep(for: .seconds(1))
        }
        return reason + " (for \(DurationText.format(check.timeout)))"
    }

    /// One try of `probe`: why it failed, or nil when it passed.
    static func attempt(_ probe: HealthCheck.Probe, within limit: Duration, services: (any ServiceManager)?) async -> String? {
        switch probe {
        case .unit(let name):
            guard let services else { return "no service manager to ask (systemd is not PID 1 here)" }
            do {
                guard let status = try services.status(of: [name])[name] else { return "systemd does not know it" }
                return status.activeState == "active" ? nil : "\(status.activeState) (\(status.subState))"
            } catch {
                return error.description
            }
        case .command(let arguments):
            return await run(arguments, within: limit)
        case .http(let host, let port, let path):
            return get(host: host, port: port, path: path, within: limit)
        }
    }

    /// Runs the command with no shell and nothing on its standard input; nil when it exits 0.
    /// It runs in a process group of its own, which is killed whole at the limit, so that
    /// nothing it started keeps its output open and the check waiting.
    private static func run(_ arguments: [String], within limit: Duration) async -> String? {
        let finished = await ChildProcess(arguments, environment: ["LC_ALL": "C.UTF-8"], errors: .withOutput, limit: limit, kept: 4096).run()
        // What it printed, its errors with it (the last line says why it failed).
        if finished.timedOut { return "still running after \(DurationText.format(limit)); killed" }
        if let signal = finished.signal { return "killed by signal \(signal)" }
        if finished.status == 127, !finished.error.isEmpty { return finished.error }
        guard finished.status != 0 else { return nil }
        return "exited \(finished.status)" + (finished.output.split(separator: "\n").last.map { ": " + $0 } ?? "")
    }

    /// A GET over plain HTTP/1.0 to the host itself; nil when the answer's status is 200.
    private static func get(host: String, port: Int, path: String, within limit: Duration) -> String? {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        // The timeouts bound connect, send and each receive (Linux applies SO_SNDTIMEO to connect).
        var timeout = timeval(tv_sec: Int(limit.components.seconds), tv_usec: Int(limit.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected: Int32
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET6, host, &address.sin6_addr)
            connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host, &address.sin_addr)
            connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard connected == 0 else { return "cannot connect to \(host) port \(port): \(String(cString: strerror(errno)))" }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(v6 ? "[\(host)]" : host):\(port)\r\nUser-Agent: tend-health\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return "cannot send the request: \(String(cString: strerror(errno)))" }
            sent += count
        }
        // Only the status line matters: `HTTP/1.1 200 OK`.
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        let deadline = ContinuousClock.now + limit
        while !answer.contains(UInt8(ascii: "\n")), answer.count < 4096 {
            // The limit is for the whole answer, not for each piece of it.
            let left = deadline - ContinuousClock.now
            guard left > .zero else { break }
            var remaining = timeval(tv_sec: Int(left.components.seconds), tv_usec: max(1, Int(left.components.attoseconds / 1_000_000_000_000)))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &remaining, socklen_t(MemoryLayout<timeval>.size))
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            answer += buffer[..<count]
        }
        let line = String(decoding: answer.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/") else {
            return answer.isEmpty ? "no answer within \(DurationText.format(limit))" : "not an HTTP answer: \(Printable.escaped(String(line.prefix(80))))"
        }
        return parts[1] == "200" ? nil : "answered \(Printable.escaped(parts.dropFirst().joined(separator: " ")))"
    }
}

/// A health check that did not pass within its timeout, and why.
public struct HealthFailure: Sendable, Hashable, CustomStringConvertible {
    public var check: HealthCheck
    /// The last try's reason: `exited 1: …`, `inactive (dead)`, `still running after 5s; killed`.
    public var reason: String

    /// `command nginx -t (tend.yaml:12:7): exited 1: … (for 30s)`.
    public var description: String { "\(check) (\(check.location)): \(reason)" }

    /// Several, as one line for a log entry or a record.
    public static func line(_ failures: [HealthFailure]) -> String {
        failures.map(\.description).joined(separator: "; ")
    }
}
