import Foundation
import Testing

/// The agent as its own: attacked on a booted test host as a local user, as a committer and as the
/// network, and put through the host's faults (journald stopped, dbus restarted, systemd
/// re-executed), it keeps enforcing the last good commit and says what is true.
@Suite("the agent's trust boundary", .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
struct TrustBoundaryTests {
    typealias Remote = AgentTests.Remote

    /// Declarations of what a commit may never take over, beside the message file.
    static let takeover = """
          - file: /var/lib/tend/suspended.json
            content: '{"reason": "taken", "by": "a commit", "since": "2026-01-01T00:00:00Z"}'
          - file: /var/lib/tend/agent.json
            content: "{}"
          - file: /etc/tend/agent.yaml
            content: "repo: /srv/elsewhere.git\\n"
          - file: /etc/systemd/system/tend.service.d/exec.conf
            content: "[Service]\\nExecStart=\\nExecStart=/bin/sleep infinity\\n"
          - unit: tend.service
            enabled: false
          - file: /proc/sys/kernel/hostname
            content: "taken\\n"
          - file: /sys/kernel/mm/ksm/run
            content: "1\\n"

        """

    /// tend's journal, one message a line, for a failing expectation to show.
    static func messages(_ host: TestHost) async throws -> String {
        try await host.run(["journalctl", "--no-pager", "-o", "cat", "SYSLOG_IDENTIFIER=tend", "+", "_SYSTEMD_UNIT=tend.service"]).stdout
    }

    /// Runs `command` in the host's own network namespace (that of its PID 1).
    static func inNetwork(_ host: TestHost, _ command: [String]) async throws -> TendRun {
        try await host.run(["nsenter", "-t", "1", "-n", "--"] + command)
    }

    static func pid(_ host: TestHost) async throws -> String {
        try await host.unit("tend.service", ["MainPID"])["MainPID"] ?? ""
    }

    @Test("locks that user nobody holds on /, a managed file and agent.yaml delay neither drift repair nor an apply; a commit declaring the state folder, agent.yaml, tend.service, a drop-in, /proc or /sys is refused and never becomes last good; resume ends a suspension")
    func nobodyAndCommitsCannotTakeOver() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            let good = try await remote.push(Remote.message("v1"), "good")
            try AgentTests.install(host)
            try await host.run(["systemctl", "daemon-reload"])
            #expect(try await host.run(["systemctl", "start", "tend.service"]).status == 0)
            #expect(AgentTests.message(host) == "v1\n")

            // User nobody holds every lock it can open, for as long as the test runs.
            for path in ["/", "/etc/app/message", "/etc/tend/agent.yaml"] {
                try await host.run(["sh", "-c", "runuser -u nobody -- flock -o \"$0\" sleep 600 </dev/null >/dev/null 2>&1 &", path])
            }
            #expect(try await AgentTests.eventually(20) { try await host.run(["pgrep", "-c", "-u", "nobody", "-x", "sleep"]).stdout == "3\n" },
                    "nobody's three locks are not all held")
            let own = try await host.run(["runuser", "-u", "nobody", "--", "flock", "-n", "/run/tend/locks/-.lock", "true"])
            #expect(own.status != 0, "nobody could open tend's own lock: \(own)")
            try host.write(["/etc/app/message": "drifted\n"])
            #expect(try await AgentTests.eventually(15) { AgentTests.message(host) == "v1\n" }, "drift was not repaired while nobody holds locks")
            let manual = try await host.tend(["apply", "--repo", "/srv/config.git", "--lock-timeout", "30"])
            #expect(manual.status == 0, "a manual apply waited on nobody's locks: \(manual)")

            // A commit that declares tend's own files, and the kernel's.
            let agentYAML = try String(contentsOfFile: host.outside("/etc/tend/agent.yaml"), encoding: .utf8)
            let enablement = try await host.unit("tend.service", ["UnitFileState"])["UnitFileState"]
            let bad = try await remote.push(Remote.message("v2", extra: Self.takeover), "takes tend over")
            #expect(try await AgentTests.eventually(20) { try await host.tendJournal().text.contains("refusing commit \(bad.prefix(7))") },
                    "the agent did not refuse the commit")
            let validate = try await host.tend(["validate", "--repo", "/srv/config.git"])
            #expect(validate.status == 3, "\(validate)")
            for rule in ["state", "control", "units", "kernel"] {
                #expect(validate.stderr.contains("(rule '\(rule)' of docs/security.md)"), "no refusal names the rule \(rule): \(validate)")
            }
            let status = try await host.tend(["status", "--json"])
            #expect(status.status == 9 && status.stdout.contains("\"refusing\""), "\(status)")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/var/lib/tend/suspended.json")), "the commit suspended the agent")
            #expect(try String(contentsOfFile: host.outside("/etc/tend/agent.yaml"), encoding: .utf8) == agentYAML, "the commit rewrote agent.yaml")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/etc/systemd/system/tend.service.d/exec.conf")), "the commit replaced ExecStart")
            #expect(try await host.unit("tend.service", ["UnitFileState"])["UnitFileState"] == enablement, "the commit changed tend.service's enablement")
            #expect(AgentTests.message(host) == "v1\n", "the refused commit was applied")
            let lastGood = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: host.outside("/var/lib/tend/last-good.json")))) as? [String: Any]
            #expect(lastGood?["commit"] as? String == good, "the refused commit became last good: \(lastGood ?? [:])")
            try host.write(["/etc/app/message": "drifted again\n"])
            #expect(try await AgentTests.eventually(15) { AgentTests.message(host) == "v1\n" }, "the last good commit is no longer enforced")
            // The last good commit is enforced as the agent loaded it before, not loaded again.
            #expect(try await host.tendJournal().text.contains("enforcing the last good commit \(good.prefix(7)) as an earlier cycle loaded it"))

            // resume always ends a suspension: no commit can write one back.
            #expect(try await host.tend(["suspend", "--reason", "by hand"]).status == 0)
            #expect(try await host.tend(["resume"]).status == 0)
            #expect(try await AgentTests.eventually(10) { !FileManager.default.fileExists(atPath: host.outside("/var/lib/tend/suspended.json")) })
            let after = try await host.tend(["status", "--json"])
            #expect(!after.stdout.contains("\"suspended\""), "\(after)")

            // The next good commit applies.
            try await remote.push(Remote.message("v3"), "good again")
            #expect(try await AgentTests.eventually(20) { AgentTests.message(host) == "v3\n" })
            try await host.run(["pkill", "-u", "nobody", "-x", "sleep"])
        }
    }

    @Test("self-managed: a commit that changes agent.yaml's interval takes effect within a cycle without a restart; one that adds a drop-in to tend.service restarts it once its run is done, never waited for")
    func selfManaged() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            try await remote.push(Remote.message("v1"), "v1")
            try AgentTests.install(host, settings: "self_manage: true\n")
            try await host.run(["systemctl", "daemon-reload"])
            #expect(try await host.run(["systemctl", "start", "tend.service"]).status == 0)
            let before = try await Self.pid(host)
            let agentYAML = """
                  - file: /etc/tend/agent.yaml
                    content: "repo: /srv/config.git\\nref: main\\ninterval: 3s\\nself_manage: true\\n"

                """
            // agent.yaml alone: read again once the cycle ends, by the same process.
            try await remote.push(Remote.message("v2", extra: agentYAML), "a new interval")
            let newInterval = try await AgentTests.eventually(30) {
                let record = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: host.outside("/var/lib/tend/agent.json")))) as? [String: Any]
                return record?["interval"] as? Double == 3
            }
            let first = try await Self.messages(host)
            #expect(newInterval, "agent.yaml's interval did not take effect: \(first)")
            #expect(try await Self.pid(host) == before, "tend.service restarted for a change of agent.yaml")
            #expect(try await Self.messages(host).contains("configuration read again (/etc/tend/agent.yaml changed)"))

            // A drop-in of tend.service: the run ends, then systemd restarts tend with it.
            let dropIn = agentYAML + """
                  - unit: tend.service
                    dropins:
                      zz-mark.conf: "[Service]\\nEnvironment=TEND_MARK=from-the-repository\\n"

                """
            let started = Date()
            let commit = try await remote.push(Remote.message("v3", extra: dropIn), "tend manages itself")
            let restarted = try await AgentTests.eventually(60) {
                let after = try await Self.pid(host)
                let state = try await host.unit("tend.service")["ActiveState"]
                let environment = try await host.unit("tend.service", ["Environment"])["Environment"] ?? ""
                return after != before && after != "0" && state == "active" && environment.contains("TEND_MARK=from-the-repository")
            }
            let log = try await Self.messages(host)
            #expect(restarted, "tend.service was not restarted with the drop-in: \(log)")
            #expect(Date().timeIntervalSince(started) < 50, "the agent waited on its own restart (a job waited for times out after 90 s): \(log)")
            #expect(AgentTests.message(host) == "v3\n")
            #expect(log.contains("restart of tend.service queued: it takes effect now that this run has ended"), "\(log)")
            #expect(!log.contains("restart timeout") && !log.contains("restart failed"), "the agent waited on itself: \(log)")
            let lastGood = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: host.outside("/var/lib/tend/last-good.json")))) as? [String: Any]
            #expect(lastGood?["commit"] as? String == commit, "the run was cut short before it recorded its commit: \(lastGood ?? [:])")
            let run = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: host.outside("/var/lib/tend/last-run.json")))) as? [String: Any]
            #expect(run?["result"] as? String != "interrupted", "\(run ?? [:])")
        }
    }

    @Test("while the Git server accepts and never answers, drift is still repaired at once, and the fetch gives up later, saying it timed out")
    func hungServer() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            try await remote.push(Remote.message("v1"), "v1")
            try await Self.inNetwork(host, ["git", "daemon", "--export-all", "--base-path=/srv", "--listen=127.0.0.1", "--port=9418", "--reuseaddr", "--detach", "--pid-file=/run/git-daemon.pid"])
            try AgentTests.install(host)
            try host.write(["/etc/tend/agent.yaml": "repo: git://127.0.0.1:9418/config.git\nref: main\ninterval: 1h\nfetch_timeout: 30s\n"])
            try await host.run(["systemctl", "daemon-reload"])
            #expect(try await host.run(["systemctl", "start", "tend.service"]).status == 0)
            #expect(AgentTests.message(host) == "v1\n")

            // The server now accepts and never answers.
            try await host.run(["sh", "-c", "kill $(cat /run/git-daemon.pid)"])
            let silent = "import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', 9418))\ns.listen()\nc = []\nwhile True:\n    c.append(s.accept())\n"
            try host.write(["/srv/silent.py": silent])
            try await Self.inNetwork(host, ["sh", "-c", "python3 /srv/silent.py </dev/null >/dev/null 2>&1 &"])
            #expect(try await AgentTests.eventually(10) { try await Self.inNetwork(host, ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9418"]).status == 0 })
            try await host.run(["systemctl", "reload", "tend.service"])
            #expect(try await AgentTests.eventually(10) {
                try await Self.inNetwork(host, ["sh", "-c", "ss -tn state established '( dport = :9418 )' | grep -c 9418"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "0"
            }, "the agent never connected to the silent server")
            try host.write(["/etc/app/message": "drifted\n"])
            #expect(try await AgentTests.eventually(10) { AgentTests.message(host) == "v1\n" }, "drift waited for the hung fetch")
            let during = try await host.tendJournal().text
            #expect(during.contains("drift repaired in"), "no repair was logged")
            #expect(!during.contains("fetch failed"), "the repair came only after the fetch gave up")
            #expect(try await AgentTests.eventually(60) { try await host.tendJournal().text.contains("timed out after 30 s") }, "the fetch never gave up")
            // A failed fetch is retried: a warning, as docs/agent.md says, not an error.
            let failed = try await host.tendJournal().entries.first { ($0["MESSAGE"] as? String)?.hasPrefix("fetch failed") == true }
            #expect(failed?["PRIORITY"] as? String == "4", "\(failed ?? [:])")
        }
    }

    @Test("a 50,000-file apply leaves its start, a summary of its steps and its end in the journal, nothing of tend's suppressed; entries lost while journald was stopped are counted at the next cycle")
    func journalPolicy() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            var manifest = "resources:\n"
            for index in 0..<50_000 { manifest += "  - file: /srv/many/\(index / 1000)/\(index)\n    content: \"\(index)\\n\"\n" }
            try await remote.push(Remote.message("v1").merging(["site/many.yaml": manifest]) { a, _ in a }, "many files")
            try AgentTests.install(host)
            try host.write(["/etc/tend/agent.yaml": "repo: /srv/config.git\nref: main\ninterval: 1h\n"])
            try await host.run(["systemctl", "daemon-reload"])
            let start = try await host.run(["systemctl", "start", "tend.service"])
            #expect(start.status == 0, "\(start)")
            #expect(try await AgentTests.eventually(20) { try await host.tendJournal().text.contains("apply finished: 50001 done") }, "no end")
            let journal = try await host.tendJournal()
            let apply = journal.entries.filter { $0["TEND_ACTION"] as? String == "apply" }
            #expect(apply.contains { ($0["MESSAGE"] as? String)?.hasPrefix("apply started: 50001 steps") == true }, "no start")
            #expect(apply.contains { ($0["MESSAGE"] as? String)?.hasPrefix("…and 49001 more steps, not logged one by one") == true }, "no summary")
            #expect(apply.contains { ($0["MESSAGE"] as? String)?.hasPrefix("apply finished: 50001 done, 0 failed") == true }, "no end")
            let steps = journal.entries.filter { $0["MESSAGE_ID"] as? String == "11342b278b194f0183efb57fe08b2f13" }
            #expect(steps.count == 1000, "steps logged one by one: \(steps.count)")
            let suppressed = try await host.run(["journalctl", "--no-pager", "-o", "cat", "_COMM=systemd-journal"])
            #expect(!suppressed.stdout.split(separator: "\n").contains { $0.contains("Suppressed") && $0.contains("tend.service") },
                    "journald suppressed tend's entries: \(suppressed.stdout)")

            // journald stopped with its sockets: a repair's entries are lost, and counted.
            try await host.run(["systemctl", "stop", "systemd-journald-dev-log.socket", "systemd-journald.socket", "systemd-journald.service"])
            try host.write(["/etc/app/message": "drifted\n"])
            #expect(try await AgentTests.eventually(10) { AgentTests.message(host) == "v1\n" }, "drift was not repaired while journald was stopped")
            try await host.run(["systemctl", "start", "systemd-journald.socket", "systemd-journald-dev-log.socket", "systemd-journald.service"])
            try await host.run(["systemctl", "reload", "tend.service"])
            #expect(try await AgentTests.eventually(30) { try await host.tendJournal().text.contains("log entries could not be sent to the journal since") },
                    "the lost entries were not counted")
        }
    }

    @Test("dbus restarted and systemd re-executed: no false notice of a lost inotify queue, nor of systemd not being PID 1")
    func truthfulMessages() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            let unit = """
                  - unit: tend-probe.service
                    content: "[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n"
                    state: running

                """
            try await remote.push(Remote.message("v1", extra: unit), "a unit")
            try AgentTests.install(host)
            try await host.run(["systemctl", "daemon-reload"])
            let start = try await host.run(["systemctl", "start", "tend.service"])
            let log = try await Self.messages(host)
            #expect(start.status == 0, "\(start)\n\(log)")
            #expect(try await host.unit("tend-probe.service")["ActiveState"] == "active")
            try await host.run(["systemctl", "restart", "dbus.service"])
            // The agent cycles every 2 s: some of its cycles meet systemd re-executing.
            for _ in 0..<8 {
                try await host.run(["systemctl", "daemon-reexec"])
                try await Task.sleep(for: .milliseconds(700))
            }
            try await Task.sleep(for: .seconds(6))
            let journal = try await host.tendJournal().text
            #expect(journal.contains("the unit watcher stopped"), "the agent never saw dbus restart")
            #expect(!journal.contains("inotify's queue overflowed"), "a false overflow notice")
            #expect(!journal.contains("not running as PID 1"), "a false PID 1 error")
            #expect(try await host.unit("tend.service")["ActiveState"] == "active")
            #expect(try await host.unit("tend-probe.service")["ActiveState"] == "active")
        }
    }
}
