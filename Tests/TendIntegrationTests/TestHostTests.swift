import Foundation
import Testing

@Suite("test hosts", .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
struct TestHostTests {
    @Test("a test host runs its own systemd and journal, and leaves no mount, process or file behind")
    func leavesNothingBehind() async throws {
        let (pid, base) = try await withTestHost { host in
            let pid1 = try await host.run(["cat", "/proc/1/comm"])
            #expect(pid1.stdout == "systemd\n")
            let journal = try await host.run(["journalctl", "--no-pager", "-n", "1", "-u", "systemd-journald.service"])
            #expect(journal.status == 0, "\(journal)")
            try host.write(["/etc/tend-test-marker": "inside\n"])
            #expect(FileManager.default.fileExists(atPath: "/etc/tend-test-marker") == false, "writes stay in the host's overlay")
            return (host.pid, host.base)
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(kill(pid, 0) != 0, "the host's systemd is gone")
        let mounts = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
        #expect(!mounts.contains(base), "no mount of the host is left")
        #expect(!FileManager.default.fileExists(atPath: base), "its folder is removed")
    }

    @Test("two test hosts run at once, each with its own network")
    func concurrent() async throws {
        async let first = withTestHost { host in try await host.run(["hostname"]).status }
        async let second = withTestHost { host in try await host.run(["systemctl", "is-system-running"]).stdout }
        let (status, state) = try await (first, second)
        #expect(status == 0)
        #expect(["running\n", "degraded\n"].contains(state))
    }
}
