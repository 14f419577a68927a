import Foundation
import Testing
@testable import TendAgent
import TendSpec

/// A health check's command runs as a real process: how it ended is what the agent says.
@Suite("health probe")
struct HealthProbeTests {
    func check(_ arguments: [String], timeout: Duration = .seconds(5)) -> HealthCheck {
        HealthCheck(probe: .command(arguments), timeout: timeout, location: SourceLocation(file: "tend.yaml", line: 3, column: 5))
    }

    @Test("a command that exits 0 passes; one that fails says its exit status and its last line, from either stream")
    func exitStatus() async {
        #expect(await HealthProbe.failure(of: check(["/bin/true"]), services: nil) == nil)
        let failed = await HealthProbe.failure(of: check(["/bin/sh", "-c", "echo checking; echo 'port 80 refused' >&2; exit 3"], timeout: .seconds(3)), services: nil)
        #expect(failed == "exited 3: port 80 refused (for 3s)", "\(failed ?? "passed")")
        let stdout = await HealthProbe.failure(of: check(["/bin/sh", "-c", "echo 'warming up' >&2; echo 'HTTP 503 from :8080'; exit 1"], timeout: .seconds(3)), services: nil)
        #expect(stdout == "exited 1: HTTP 503 from :8080 (for 3s)", "\(stdout ?? "passed")")
        let missing = await HealthProbe.failure(of: check(["/nonexistent/probe"], timeout: .seconds(3)), services: nil)
        #expect(missing?.hasPrefix("cannot run /nonexistent/probe") == true, "\(missing ?? "passed")")
    }

    @Test("a command still running at the timeout is killed with what it started, and the check does not wait for them")
    func timeout() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("tend-probe-\(UUID().uuidString)").path
        // The background sleep holds standard output open: only killing the group ends the wait.
        let failed = await HealthProbe.failure(of: check(["/bin/sh", "-c", "(sleep 30; touch \(marker)) & sleep 30"], timeout: .seconds(1)), services: nil)
        #expect(failed?.hasPrefix("still running after ") == true && failed?.hasSuffix("; killed (for 1s)") == true, "\(failed ?? "passed")")
        try await Task.sleep(for: .milliseconds(200))
        let stray = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) }.filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains(marker)
        } ?? []
        #expect(stray.isEmpty, "the check's background process survived: \(stray)")
    }

    @Test("a command that closes its output and runs on is still killed at the timeout")
    func silentTimeout() async {
        // Left alone it would pass after 30 s: killed, it fails as still running.
        let failed = await HealthProbe.failure(of: check(["/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 30"], timeout: .seconds(1)), services: nil)
        #expect(failed?.hasPrefix("still running after ") == true, "\(failed ?? "passed")")
    }

    @Test("a command killed by a signal says which")
    func signal() async {
        let failed = await HealthProbe.failure(of: check(["/bin/sh", "-c", "kill -TERM $$"], timeout: .seconds(3)), services: nil)
        #expect(failed == "killed by signal 15 (for 3s)", "\(failed ?? "passed")")
    }
}
