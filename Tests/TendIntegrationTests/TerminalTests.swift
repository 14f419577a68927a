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
}
