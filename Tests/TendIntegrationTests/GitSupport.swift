import Foundation
import Subprocess
import SystemPackage
import Testing

/// Runs a command to completion; fails the test if it exits non-zero. Returns its stdout.
@discardableResult
func sh(_ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]) async throws -> String {
    let result = try await Subprocess.run(
        .path(FilePath(executable)), arguments: Arguments(arguments),
        environment: .inherit.updating(Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })),
        workingDirectory: directory.map { FilePath($0) },
        input: .none, output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
    guard result.terminationStatus.isSuccess else {
        throw CommandFailed(command: ([executable] + arguments).joined(separator: " "), output: result.standardOutput + result.standardError)
    }
    return result.standardOutput
}

struct CommandFailed: Error, CustomStringConvertible {
    var command: String
    var output: String
    var description: String { "\(command) failed: \(output)" }
}

/// A repository made by the `git` command in a scratch folder, with a fixed author.
final class GitRepo {
    let folder: Scratch
    var path: String { folder.path }

    init() async throws {
        folder = try Scratch("tend-git")
        try await git("init", "-q", "-b", "main")
    }

    @discardableResult
    func git(_ arguments: String..., environment: [String: String] = [:]) async throws -> String {
        try await sh("/usr/bin/git", ["-c", "user.name=Alice Admin", "-c", "user.email=alice@example.com", "-c", "safe.directory=*"] + arguments,
                     in: path, environment: ["GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"].merging(environment) { _, new in new })
    }

    /// Writes `files` and commits them (with any extra `git commit` arguments); returns the commit id.
    @discardableResult
    func commit(_ files: [String: String], _ message: String, extra: [String] = [], environment: [String: String] = [:]) async throws -> String {
        try folder.write(files)
        try await git("add", "-A")
        _ = try await sh("/usr/bin/git", ["-c", "user.name=Alice Admin", "-c", "user.email=alice@example.com"] + extra + ["commit", "-q", "-m", message],
                         in: path, environment: ["GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"].merging(environment) { _, new in new })
        return try await head()
    }

    func head() async throws -> String {
        try await git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A tend configuration that applies `site/` and writes `/etc/app.conf` with `text`.
func appConfig(_ text: String) -> [String: String] {
    ["tend.yaml": "hosts:\n  - apply: [site]\n",
     "site/app.yaml": "resources:\n  - file: /etc/app.conf\n    source: files/app.conf\n",
     "site/files/app.conf": text]
}

/// A TCP port that was free a moment ago on 127.0.0.1.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
func waitForPort(_ port: Int, seconds: Double = 10) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        close(fd)
        if connected { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw POSIXError(.ETIMEDOUT)
}

/// Runs `body` with the git:// URL of the repository at `path`, served by git daemon on
/// 127.0.0.1 at `port` (a free one unless given) while `body` runs.
func withGitDaemon<T: Sendable>(serving path: String, port: Int? = nil, _ body: @Sendable @escaping (String) async throws -> T) async throws -> T {
    let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
    let name = URL(fileURLWithPath: path).lastPathComponent
    let port = try port ?? freePort()
    return try await withServer("/usr/lib/git-core/git-daemon", ["--export-all", "--reuseaddr", "--base-path=\(base)", "--listen=127.0.0.1", "--port=\(port)", base],
                                port: port) { port in
        try await body("git://127.0.0.1:\(port)/\(name)")
    }
}

/// Runs `body` while a server runs in the background, then kills the server by its own pid.
/// With `printsPort`, the server's first line of output is its port; otherwise `port` is used.
func withServer<T: Sendable>(_ executable: String, _ arguments: [String], port: Int? = nil, printsPort: Bool = false,
                             _ body: @Sendable @escaping (Int) async throws -> T) async throws -> T {
    let result = try await Subprocess.run(.path(FilePath(executable)), arguments: Arguments(arguments),
                                          input: .none, output: .sequence, error: .discarded) { execution in
        var listening = port ?? 0
        if printsPort {
            for try await line in execution.standardOutput.strings() {
                listening = Int(line.trimmingCharacters(in: .whitespaces)) ?? 0
                break
            }
        }
        do {
            try await waitForPort(listening)
            let value = try await body(listening)
            try? execution.send(signal: .kill)
            return value
        } catch {
            try? execution.send(signal: .kill)
            throw error
        }
    }
    return result.closureResult
}

/// The path of the HTTP server script that fronts `git http-backend`.
let gitHTTPServer: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../scripts/git-http-server.py").standardized.path
