import Foundation
import Testing
@testable import TendAgent
import TendSpec

/// A health check's command runs as a real process: how it ended is what the agent says. Each
/// try (`attempt`) is given far more time than it needs where the limit is not what is tested,
/// so that a busy machine cannot turn an exit into a timeout.
@Suite("health probe")
struct HealthProbeTests {
    func attempt(_ arguments: [String], within limit: Duration = .seconds(60)) async -> String? {
        await HealthProbe.attempt(.command(arguments), within: limit, services: nil)
    }

    @Test("a command that exits 0 passes; one that fails says its exit status and its last line, from either stream")
    func exitStatus() async {
        #expect(await attempt(["/bin/true"]) == nil)
        let stderr = await attempt(["/bin/sh", "-c", "echo checking; echo 'port 80 refused' >&2; exit 3"])
        #expect(stderr == "exited 3: port 80 refused", "\(stderr ?? "passed")")
        let stdout = await attempt(["/bin/sh", "-c", "echo 'warming up' >&2; echo 'HTTP 503 from :8080'; exit 1"])
        #expect(stdout == "exited 1: HTTP 503 from :8080", "\(stdout ?? "passed")")
    }

    @Test("a check that never passes is tried until its timeout and says so, with the last reason")
    func triedUntilTimeout() async {
        let check = HealthCheck(probe: .command(["/nonexistent/probe"]), timeout: .seconds(1), location: SourceLocation(file: "tend.yaml", line: 3, column: 5))
        let failures = await HealthProbe.failures(of: [check], services: nil)
        #expect(failures.count == 1 && failures.first?.check == check)
        let said = failures.first?.description ?? "passed"
        #expect(said.hasPrefix("command /nonexistent/probe (tend.yaml:3:5): cannot run /nonexistent/probe") && said.hasSuffix(" (for 1s)"), "\(said)")
    }

    @Test("a command still running at the limit is killed with what it started, and the check does not wait for them")
    func timeout() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("tend-probe-\(UUID().uuidString)").path
        // The background sleep holds standard output open: only killing the group ends the wait.
        let failed = await attempt(["/bin/sh", "-c", "(sleep 30; touch \(marker)) & sleep 30"], within: .seconds(1))
        #expect(failed?.hasPrefix("still running after ") == true && failed?.hasSuffix("; killed") == true, "\(failed ?? "passed")")
        try await Task.sleep(for: .milliseconds(200))
        let stray = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) }.filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains(marker)
        } ?? []
        #expect(stray.isEmpty, "the check's background process survived: \(stray)")
    }

    @Test("a command that closes its output and runs on is still killed at the limit")
    func silentTimeout() async {
        // Left alone it would pass after 30 s: killed, it fails as still running.
        let failed = await attempt(["/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 30"], within: .seconds(1))
        #expect(failed?.hasPrefix("still running after ") == true, "\(failed ?? "passed")")
    }

    @Test("a command killed by a signal says which")
    func signal() async {
        let failed = await attempt(["/bin/sh", "-c", "kill -TERM $$"])
        #expect(failed == "killed by signal 15", "\(failed ?? "passed")")
    }
}
