import Foundation
import Subprocess
import SystemPackage
import Testing

/// tend on a terminal: colours, and --confirm asking before it applies. The terminal is a real
/// pseudo-terminal from script(1).
@Suite("on a terminal", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs script(1) from util-linux"))
struct TerminalTests {
    /// Runs `command` on a pseudo-terminal, typing `input`; returns what the terminal showed.
    func onTerminal(_ command: String, input: String = "") async throws -> (status: Int32, screen: String) {
        let result = try await Subprocess.run(
            .path("/usr/bin/script"), arguments: ["-q", "-e", "-c", "env -u NO_COLOR " + command, "/dev/null"],
            input: .string(input), output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        let status: Int32 = if case .exited(let code) = result.terminationStatus { code } else { -1 }
        return (status, result.standardOutput)
    }

    @Test("a plan on a terminal is coloured; --no-color and NO_COLOR turn colour off")
    func colours() async throws {
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/a\n    content: \"a\\n\"\n"])
        let root = try makeRoot()
        let coloured = try await onTerminal("\(tendBinary) plan \(repo.path) --root \(root.path)")
        #expect(coloured.screen.contains("\u{1B}[32m+ file:/etc/a\u{1B}[0m"), "\(coloured.screen)")
        let plain = try await onTerminal("\(tendBinary) plan \(repo.path) --root \(root.path) --no-color")
        #expect(plain.screen.contains("+ file:/etc/a"))
        #expect(!plain.screen.contains("\u{1B}["), "\(plain.screen)")
        let noColor = try await onTerminal("env NO_COLOR=1 \(tendBinary) plan \(repo.path) --root \(root.path)")
        #expect(!noColor.screen.contains("\u{1B}["))
    }

    @Test("--confirm shows the plan and applies only after 'yes'")
    func confirm() async throws {
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/a\n    content: \"a\\n\"\n"])
        let root = try makeRoot()
        let declined = try await onTerminal("\(tendBinary) apply \(repo.path) --root \(root.path) --confirm --no-color", input: "no\n")
        #expect(declined.screen.contains("+ file:/etc/a"), "\(declined.screen)")
        #expect(declined.screen.contains("Apply these changes? Only 'yes' is accepted:"))
        #expect(declined.screen.contains("Not applied."))
        #expect(status(root.url("etc/a")) == nil)
        let accepted = try await onTerminal("\(tendBinary) apply \(repo.path) --root \(root.path) --confirm --no-color", input: "yes\n")
        #expect(accepted.status == 0, "\(accepted.screen)")
        #expect(accepted.screen.contains("+ file:/etc/a: created"), "\(accepted.screen)")
        #expect(read(root.url("etc/a")) == "a\n")
    }

    @Test("on a terminal, an apply of many steps counts them on a line of its own and a fetch shows its objects and bytes; in a pipe, neither")
    func progress() async throws {
        let files = (1...150).map { "  - file: /srv/many/f\($0)\n    content: \"\($0)\\n\"\n" }.joined()
        let repo = try repository(["many.yaml": "resources:\n" + files])
        let root = try makeRoot()
        let shown = try await onTerminal("\(tendBinary) apply \(repo.path) --root \(root.path) --no-color")
        #expect(shown.status == 0, "\(shown.screen)")
        #expect(shown.screen.contains("applied 1 of 150 steps"), "\(shown.screen.prefix(2000))")
        #expect(shown.screen.contains("applied 149 of 150 steps"))
        #expect(shown.screen.contains("Apply: 150 created"), "the summary is printed after the line is erased")

        let git = try await GitRepo()
        try await git.commit(appConfig("fetched\n"), "First")
        let fetch = try await onTerminal("\(tendBinary) plan --repo file://\(git.path) --root \(root.path) --state-dir \(try Scratch("tend-state").path) --no-color")
        #expect(fetch.status == 0, "\(fetch.screen)")
        #expect(fetch.screen.contains("fetching: "), "\(fetch.screen)")

        let other = try makeRoot()
        let piped = try await tend(["apply", repo.path, "--root", other.path])
        #expect(piped.status == 0, "\(piped)")
        #expect(!piped.stderr.contains("applied 1 of") && !piped.stderr.contains("\u{1B}[K"), "\(piped.stderr)")
    }
}
