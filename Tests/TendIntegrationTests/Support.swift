import Foundation
import Subprocess
import SystemPackage
import Testing

/// What one run of the `tend` binary did.
struct TendRun: CustomStringConvertible, Sendable {
    var status: Int32
    var stdout: String
    var stderr: String

    var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
}

/// The `tend` binary that `swift build` put beside this test bundle (or $TEND_BIN).
let tendBinary: String = {
    if let path = ProcessInfo.processInfo.environment["TEND_BIN"] { return path }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("tend").path
}()

let isRoot = geteuid() == 0

/// Runs `tend` with `arguments` and collects what it printed; killed (status 137) after
/// `timeout` seconds if one is given. With `stderrCopy`, its standard error goes to that file as
/// it is written, so that a test can see what a run says while it is still running.
func tend(_ arguments: [String], in directory: String? = nil, timeout: Int? = nil, environment: [String: String] = [:],
          stderrCopy: String? = nil) async throws -> TendRun {
    var (executable, allArguments) = timeout.map { ("/usr/bin/timeout", ["-s", "KILL", String($0), tendBinary] + arguments) } ?? (tendBinary, arguments)
    var environment = ["NO_COLOR": "1"].merging(environment) { _, new in new }
    if let stderrCopy {
        (executable, allArguments) = ("/bin/sh", ["-c", "exec \"$0\" \"$@\" 2>\"$TEND_TEST_STDERR\"", executable] + allArguments)
        environment["TEND_TEST_STDERR"] = stderrCopy
    }
    let result = try await Subprocess.run(
        .path(FilePath(executable)),
        arguments: Arguments(allArguments),
        environment: .inherit.updating(Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })),
        workingDirectory: directory.map { FilePath($0) },
        input: .none,
        output: .string(limit: 16 << 20),
        error: .string(limit: 16 << 20)
    )
    // Where the copy could not be made, the shell said why on its own standard error.
    let stderr = stderrCopy.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? result.standardError
    return TendRun(status: shellStatus(result.terminationStatus), stdout: result.standardOutput, stderr: stderr)
}

/// A child's exit status as a shell gives it: its exit code, or 128 + the signal that killed it.
private func shellStatus(_ status: TerminationStatus) -> Int32 {
    switch status {
    case .exited(let code): code
    case .signaled(let signal): 128 + signal
    }
}

/// A scratch folder removed when the test ends.
final class Scratch: Sendable {
    let path: String

    init(_ name: String = "tend-test") throws {
        let template = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).XXXXXX").path
        var bytes = Array(template.utf8CString)
        guard mkdtemp(&bytes) != nil else { throw POSIXError(.EIO) }
        path = String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func url(_ relative: String) -> String { path + "/" + relative }

    /// Writes `files` (relative path → text), making folders as needed.
    func write(_ files: [String: String]) throws {
        for (relative, text) in files { try write(relative, bytes: Data(text.utf8)) }
    }

    func write(_ relative: String, bytes: Data) throws {
        let full = url(relative)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try bytes.write(to: URL(fileURLWithPath: full))
    }
}

/// A configuration repository in a scratch folder: tend.yaml applying `site`, and the files given.
func repository(_ manifests: [String: String], extra: [String: String] = [:]) throws -> Scratch {
    let repo = try Scratch("tend-repo")
    try repo.write(["tend.yaml": "hosts:\n  - apply: [site]\n"].merging(manifests.mapKeys { "site/" + $0 }) { a, _ in a }.merging(extra) { _, override in override })
    return repo
}

/// An empty root with its own user database: root, www-data (33) and app (1500), who exists
/// only in this root, so owners are resolved against the root and not the machine.
func makeRoot() throws -> Scratch {
    let root = try Scratch("tend-root")
    try root.write([
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\napp:x:1500:1500::/srv/app:/bin/false\n",
        "etc/group": "root:x:0:\nwww-data:x:33:\napp:x:1500:\n",
    ])
    return root
}

/// Every path under `root` with its type, mode, owner and content: what "unchanged" means.
func tree(_ root: String) throws -> [String: String] {
    var result: [String: String] = [:]
    let enumerator = FileManager.default.enumerator(atPath: root)
    while let relative = enumerator?.nextObject() as? String {
        let full = root + "/" + relative
        var info = stat()
        lstat(full, &info)
        var entry = "mode=\(String(info.st_mode, radix: 8)) uid=\(info.st_uid) gid=\(info.st_gid)"
        if (info.st_mode & S_IFMT) == S_IFREG {
            entry += " content=\(String(decoding: FileManager.default.contents(atPath: full) ?? Data(), as: UTF8.self))"
        } else if (info.st_mode & S_IFMT) == S_IFLNK {
            entry += " link=\((try? FileManager.default.destinationOfSymbolicLink(atPath: full)) ?? "?")"
        }
        result[relative] = entry
    }
    return result
}

func read(_ path: String) -> String? {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
}

func status(_ path: String) -> stat? {
    var info = stat()
    return lstat(path, &info) == 0 ? info : nil
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ transform: (Key) -> K) -> [K: Value] {
        Dictionary<K, Value>(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
