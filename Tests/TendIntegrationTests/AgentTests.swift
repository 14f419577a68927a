import Foundation
import Testing

/// `tend agent` as a systemd service in real test hosts, installed with the shipped unit
/// (examples/systemd/tend.service), pulling a Git repository that a test pushes to.
@Suite("the agent as a service", .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
struct AgentTests {
    /// A bare repository at /srv/config.git in the host, and a clone at /srv/work to push from.
    struct Remote {
        let host: TestHost

        static func make(in host: TestHost) async throws -> Remote {
            let remote = Remote(host: host)
            try await remote.git(["init", "-q", "--bare", "-b", "main", "/srv/config.git"])
            try await remote.git(["init", "-q", "-b", "main", "/srv/work"])
            try await remote.git(["-C", "/srv/work", "remote", "add", "origin", "/srv/config.git"])
            return remote
        }

        @discardableResult
        func git(_ arguments: [String]) async throws -> String {
            let run = try await host.run(["git", "-c", "user.name=Alice", "-c", "user.email=alice@example.com"] + arguments)
            guard run.status == 0 else { throw CommandFailed(command: "git \(arguments.joined(separator: " "))", output: run.stderr) }
            return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Commits `files` (paths in the repository → text) and pushes; returns the commit id.
        /// `signing` are git options that sign the commit.
        @discardableResult
        func push(_ files: [String: String], _ message: String, signing: [String] = []) async throws -> String {
            try host.write(Dictionary(uniqueKeysWithValues: files.map { ("/srv/work/" + $0.key, $0.value) }))
            try await git(["-C", "/srv/work", "add", "-A"])
            try await git(signing + ["-C", "/srv/work", "commit", "-q", "-m", message])
            try await git(["-C", "/srv/work", "push", "-q", "origin", "main"])
            return try await git(["-C", "/srv/work", "rev-parse", "HEAD"])
        }

        /// A configuration of one file, /etc/app/message, with `text`.
        static func message(_ text: String, extra: String = "") -> [String: String] {
            [
                "tend.yaml": "hosts:\n  - apply: [site]\n",
                "site/app.yaml": "resources:\n  - file: /etc/app/message\n    content: \"\(text)\\n\"\n" + extra,
            ]
        }
    }

    /// Installs the shipped unit with ExecStart pointing at the test's tend, plus `dropIn` lines,
    /// and agent.yaml with `settings`.
    static func install(_ host: TestHost, settings: String = "", dropIn: String = "") throws {
        let unit = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../examples/systemd/tend.service").standardized.path, encoding: .utf8)
        try host.write([
            "/etc/systemd/system/tend.service": unit,
            "/etc/systemd/system/tend.service.d/test.conf": "[Service]\nExecStart=\nExecStart=/usr/local/bin/tend agent\n" + dropIn,
            "/etc/tend/agent.yaml": "repo: /srv/config.git\nref: main\ninterval: 2s\n" + settings,
        ])
        // node_exporter's textfile folder, which its package makes: tend writes its metrics there.
        try FileManager.default.createDirectory(atPath: host.outside("/var/lib/prometheus/node-exporter"), withIntermediateDirectories: true)
    }

    /// Polls `condition` every 200 ms for up to `seconds`.
    static func eventually(_ seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try await condition()
    }

    static func message(_ host: TestHost) -> String? {
        try? String(contentsOfFile: host.outside("/etc/app/message"), encoding: .utf8)
    }

    /// The metrics file, parsed by the Prometheus client's own parser: name{labels} → value.
    static func metrics(_ host: TestHost) async throws -> [String: Double] {
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    print(f"{s.name}{{{labels}}}\\t{s.value}")
            """
        let parsed = try await sh("/usr/bin/python3", ["-c", script, host.outside("/var/lib/prometheus/node-exporter/tend.prom")])
        var result: [String: Double] = [:]
        for line in parsed.split(separator: "\n") {
            let parts = line.split(separator: "\t")
            if parts.count == 2 { result[String(parts[0])] = Double(parts[1]) }
        }
        return result
    }

    @Test("active only after the first cycle; a pushed commit converges; drift is repaired; a broken commit is refused while the last good is enforced; status, metrics and the journal say so")
    func convergesAndRefuses() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            let first = try await remote.push(Remote.message("v1"), "first")
            try Self.install(host)
            try await host.run(["systemctl", "daemon-reload"])
            // Type=notify: `systemctl start` returns once READY came, after the first cycle.
            let start = try await host.run(["systemctl", "start", "tend.service"])
            #expect(start.status == 0, "\(start)")
            #expect(Self.message(host) == "v1\n", "READY=1 came before the first cycle had converged the host")
            #expect(try await host.unit("tend.service")["ActiveState"] == "active")

            // A pushed commit converges within the interval and a little.
            let second = try await remote.push(Remote.message("v2"), "second")
            #expect(try await Self.eventually(15) { Self.message(host) == "v2\n" }, "the pushed commit was not applied")

            // Drift is repaired on the timer.
            try host.write(["/etc/app/message": "edited by hand\n"])
            #expect(try await Self.eventually(15) { Self.message(host) == "v2\n" }, "drift was not repaired")

            // A broken commit is refused; the last good one stays enforced, drift included.
            let broken = try await remote.push(["site/app.yaml": "resources:\n  - file: /etc/app/message\n    content: [v3\n"], "broken")
            #expect(try await Self.eventually(15) {
                (try await host.tend(["status", "--json"])).stdout.contains(broken)
            }, "status never named the refused commit")
            try host.write(["/etc/app/message": "edited again\n"])
            #expect(try await Self.eventually(15) { Self.message(host) == "v2\n" }, "drift was not repaired while a commit is refused")
            let status = try await host.tend(["status"])
            #expect(status.status == 9, "status exits 9 while the agent refuses a commit: \(status)")
            #expect(status.stdout.contains("Refusing:   \(broken.prefix(7))"), "\(status)")
            #expect(status.stdout.contains("site/app.yaml:"), "the reason names the position: \(status)")
            #expect(status.stdout.contains("Applied:    \(second.prefix(7)) \"second\" by Alice"), "\(status)")
            let json = try JSONSerialization.jsonObject(with: Data(try await host.tend(["status", "--json"]).stdout.utf8)) as? [String: Any]
            #expect((json?["agent"] as? [String: Any]).flatMap { $0["stalled"] as? [String: Any] }?["commit"] as? String == broken)
            #expect((json?["applied"] as? [String: Any])?["commit"] as? String == second)
            #expect(json?["agent_running"] as? Bool == true)
            let stalled = try await Self.metrics(host)
            #expect(stalled["tend_stalled{}"] == 1, "\(stalled)")
            #expect(stalled["tend_applied_commit_info{commit=\"\(second)\",ref=\"main\",source=\"/srv/config.git\"}"] == 1, "\(stalled)")
            #expect((stalled["tend_drift_repaired_total{}"] ?? 0) >= 2, "\(stalled)")
            #expect(stalled["tend_resources{result=\"converged\"}"] != nil)
            let journal = try await host.tendJournal()
            let refusal = journal.entries.first { ($0["MESSAGE"] as? String)?.contains("refusing commit \(broken.prefix(7))") == true }
            #expect(refusal?["PRIORITY"] as? String == "3", "a refused commit is found by journalctl -p err")
            #expect(refusal?["_SYSTEMD_UNIT"] as? String == "tend.service")

            // A later commit fixes it.
            let fixed = try await remote.push(Remote.message("v3"), "fixed")
            #expect(try await Self.eventually(15) { Self.message(host) == "v3\n" })
            #expect(try await Self.eventually(10) { (try await host.tend(["status"])).status == 0 }, "status still unhealthy after the fix")
            #expect(try await Self.metrics(host)["tend_stalled{}"] == 0)
            let blame = try await host.tend(["blame", "/etc/app/message"])
            #expect(blame.stdout.contains("file:/etc/app/message"), "\(blame)")
            #expect(blame.stdout.contains("declared at   site/app.yaml:2 in \(fixed.prefix(7)) \"fixed\" by Alice"), "\(blame)")
            #expect(blame.stdout.contains("declared since \(first.prefix(7)) \"first\""), "\(blame)")
            #expect(blame.stdout.contains("from \(fixed.prefix(7))"), "\(blame)")
            #expect(try await host.tend(["blame", "/etc/passwd"]).status == 1)

            // Every change the agent made is on record with its fields.
            let changes = try await host.tendJournal().entries.filter { $0["TEND_RESOURCE"] as? String == "file:/etc/app/message" && $0["TEND_RESULT"] as? String == "done" }
            #expect(changes.count >= 5, "create, v2, two repairs, v3: \(changes.count)")
            #expect(changes.allSatisfy { $0["TEND_COMMIT"] != nil && $0["TEND_RUN"] != nil })
        }
    }

    @Test("SIGHUP applies at once; suspend plans without applying, resume applies; a bad agent.yaml on reload keeps the settings; SIGTERM exits 0; kill -9 restarts and converges")
    func signalsAndSuspension() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            try await remote.push(Remote.message("v1"), "first")
            try Self.install(host, settings: "")
            try await host.run(["systemctl", "daemon-reload"])
            #expect(try await host.run(["systemctl", "start", "tend.service"]).status == 0)
            #expect(Self.message(host) == "v1\n")

            // An hour between checks: only SIGHUP (systemctl reload) makes the next one come soon.
            try host.write(["/etc/tend/agent.yaml": "repo: /srv/config.git\nref: main\ninterval: 1h\n"])
            #expect(try await host.run(["systemctl", "reload", "tend.service"]).status == 0)
            try await Task.sleep(for: .seconds(1))
            try await remote.push(Remote.message("v2"), "second")
            #expect(try await host.run(["systemctl", "reload", "tend.service"]).status == 0)
            #expect(try await Self.eventually(10) { Self.message(host) == "v2\n" }, "SIGHUP did not apply at once")

            // Suspended: plans, applies nothing, says so.
            let suspend = try await host.run(["env", "SUDO_USER=bob", "/usr/local/bin/tend", "suspend", "--reason", "debugging by hand", "--for", "2h"])
            #expect(suspend.status == 0, "\(suspend)")
            try await remote.push(Remote.message("v3"), "third")
            #expect(try await host.run(["systemctl", "reload", "tend.service"]).status == 0)
            #expect(try await Self.eventually(10) { (try await host.tend(["status"])).stdout.contains("Pending:") })
            #expect(Self.message(host) == "v2\n", "a suspended agent applied")
            let status = try await host.tend(["status"])
            #expect(status.stdout.contains("Suspended:  by bob"), "\(status)")
            #expect(status.stdout.contains("debugging by hand"))
            #expect(status.stdout.contains("Pending:    1 changes not applied"), "\(status)")
            #expect(try await Self.metrics(host)["tend_suspended{}"] == 1)
            #expect(try await host.tendJournal().text.contains("agent suspended by bob"))
            let resume = try await host.tend(["resume"])
            #expect(resume.stdout.contains("starts a cycle now"), "\(resume)")
            #expect(try await Self.eventually(10) { Self.message(host) == "v3\n" }, "resume did not apply")

            // A bad agent.yaml on reload: said at err, the agent keeps running with what it had.
            try host.write(["/etc/tend/agent.yaml": "repo: /srv/config.git\ninterval: soon\n"])
            #expect(try await host.run(["systemctl", "reload", "tend.service"]).status == 0)
            #expect(try await Self.eventually(10) { try await host.tendJournal().text.contains("agent.yaml:2:11: interval must be a duration") })
            #expect(try await host.unit("tend.service")["ActiveState"] == "active")

            // SIGTERM: exits 0 (no restart). A bad agent.yaml stops a start at once with exit 3.
            #expect(try await host.run(["systemctl", "stop", "tend.service"]).status == 0)
            let stopped = try await host.unit("tend.service", ["ActiveState", "Result", "ExecMainStatus"])
            #expect(stopped["Result"] == "success", "\(stopped)")
            #expect(stopped["ExecMainStatus"] == "0", "\(stopped)")
            let bad = try await host.run(["systemctl", "start", "tend.service"])
            #expect(bad.status != 0)
            #expect(try await host.unit("tend.service", ["ExecMainStatus"])["ExecMainStatus"] == "3")
            // Restart=on-failure has scheduled another try: stop cancels it.
            try await host.run(["systemctl", "stop", "tend.service"])
            try await host.run(["systemctl", "reset-failed", "tend.service"])

            // kill -9: systemd restarts it, and it converges what changed meanwhile.
            try host.write(["/etc/tend/agent.yaml": "repo: /srv/config.git\nref: main\ninterval: 2s\n"])
            #expect(try await host.run(["systemctl", "start", "tend.service"]).status == 0)
            let before = try await host.unit("tend.service", ["MainPID", "NRestarts", "ActiveState"])
            #expect(before["ActiveState"] == "active" && before["MainPID"] != "0", "\(before)")
            try host.write(["/etc/app/message": "drifted while tend was down\n"])
            let kill = try await host.run(["kill", "-9", try #require(before["MainPID"])])
            #expect(kill.status == 0, "\(kill)")
            #expect(try await Self.eventually(30) {
                let now = try await host.unit("tend.service", ["MainPID", "NRestarts", "ActiveState"])
                return now["ActiveState"] == "active" && now["MainPID"] != before["MainPID"] && now["NRestarts"] != before["NRestarts"]
            }, "systemd did not restart the killed agent")
            #expect(try await Self.eventually(15) { Self.message(host) == "v3\n" })
        }
    }

    @Test("a manual apply waits for the agent's lock and gives up naming it; SIGTERM during a long apply finishes the step in progress and leaves the rest; the watchdog restarts a hung agent")
    func stopAndWatchdog() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            try await remote.push(Remote.message("v1"), "first")
            // The stop waits for the slow unit's job; a hung agent is aborted after 5 s.
            try Self.install(host, dropIn: "WatchdogSec=3s\nTimeoutStopSec=60s\nTimeoutAbortSec=5s\nRestartSec=1s\n")
            try await host.run(["systemctl", "daemon-reload"])
            #expect(try await host.run(["systemctl", "start", "tend.service"]).status == 0)

            // A slow unit, whose start lasts until the test lets it end (/run/slow-go), so that the
            // manual apply and the stop below find the agent in it however loaded the machine is,
            // before a file that depends on it.
            let slow = """
                resources:
                  - unit: slow.service
                    content: |
                      [Service]
                      Type=oneshot
                      RemainAfterExit=yes
                      ExecStart=/bin/sh -c 'while [ ! -e /run/slow-go ]; do sleep 0.1; done'
                    state: running
                  - file: /etc/app/message
                    content: "after the slow unit\\n"
                    requires: [unit:slow.service]

                """
            try await remote.push(["site/app.yaml": slow], "slow")
            #expect(try await Self.eventually(15) { try await host.unit("slow.service")["ActiveState"] == "activating" }, "the slow unit never started")
            // One lock for the agent and manual runs: a manual apply waits, names the agent, and gives up.
            let agentPID = try #require(try await host.unit("tend.service", ["MainPID"])["MainPID"])
            let manual = try await host.tend(["apply", "--repo", "/srv/config.git", "--ref", "main", "--lock-timeout", "1"])
            #expect(manual.status == 8, "\(manual)")
            #expect(manual.stderr.contains("waiting for process \(agentPID) (tend)"), "\(manual)")
            // SIGTERM while the slow unit's job runs: the agent waits for it, then starts nothing more.
            async let stopping = host.run(["systemctl", "stop", "tend.service"])
            #expect(try await Self.eventually(15) { try await host.unit("tend.service")["ActiveState"] == "deactivating" }, "tend.service was not told to stop")
            try host.write(["/run/slow-go": ""])
            let stop = try await stopping
            #expect(stop.status == 0)
            let unit = try await host.unit("tend.service", ["Result", "ExecMainStatus"])
            #expect(unit["Result"] == "success", "\(unit)")
            #expect(try await host.unit("slow.service")["ActiveState"] == "active", "the step in progress was cut")
            #expect(Self.message(host) == "v1\n", "a step after SIGTERM was started")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: host.outside("/etc/app")).filter { $0.contains(".tend-") }
            #expect(leftovers.isEmpty)
            let run = try await host.tend(["status", "--json"])
            #expect(run.stdout.contains("tend is stopping; the next run applies it"), "\(run)")

            // Hung (stopped by SIGSTOP): no keep-alive, so systemd kills and restarts it.
            #expect(try await host.run(["systemctl", "start", "tend.service"]).status == 0)
            #expect(Self.message(host) == "after the slow unit\n")
            let pid = try #require(try await host.unit("tend.service", ["MainPID"])["MainPID"])
            #expect(try await host.run(["kill", "-STOP", pid]).status == 0)
            #expect(try await Self.eventually(40) {
                let now = try await host.unit("tend.service", ["MainPID", "ActiveState"])
                return now["ActiveState"] == "active" && now["MainPID"] != pid && now["MainPID"] != "0"
            }, "the watchdog did not restart the hung agent")
            let watchdog = try await host.run(["journalctl", "--no-pager", "-u", "tend.service"])
            #expect(watchdog.stdout.contains("Watchdog timeout"), "\(watchdog.stdout.suffix(2000))")
        }
    }

    @Test("with verify set, an unsigned commit is refused and the last signed one stays enforced, drift included, until a signed commit comes")
    func unsignedCommit() async throws {
        try await withTestHost { host in
            let remote = try await Remote.make(in: host)
            try await host.run(["mkdir", "-p", "/etc/tend"])
            #expect(try await host.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@example.com", "-f", "/etc/tend/alice"]).status == 0)
            let key = try String(contentsOfFile: host.outside("/etc/tend/alice.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            try host.write(["/etc/tend/allowed_signers": "alice@example.com namespaces=\"git\" \(key)\n"])
            let signing = ["-c", "gpg.format=ssh", "-c", "user.signingkey=/etc/tend/alice", "-c", "commit.gpgsign=true"]
            try await remote.push(Remote.message("signed"), "signed", signing: signing)
            try Self.install(host, settings: "verify: /etc/tend/allowed_signers\n")
            try await host.run(["systemctl", "daemon-reload"])
            #expect(try await host.run(["systemctl", "start", "tend.service"]).status == 0)
            #expect(Self.message(host) == "signed\n")

            let unsigned = try await remote.push(Remote.message("unsigned"), "unsigned")
            #expect(try await Self.eventually(15) {
                let status = try await host.tend(["status"])
                return status.status == 9 && status.stdout.contains("Refusing:")
            }, "the unsigned commit was not refused")
            let status = try await host.tend(["status"])
            #expect(status.stdout.contains("Refusing:   \(unsigned.prefix(7))"), "\(status)")
            #expect(status.stdout.contains("not signed"), "\(status)")
            try host.write(["/etc/app/message": "drifted\n"])
            #expect(try await Self.eventually(15) { Self.message(host) == "signed\n" }, "drift was not repaired from the last signed commit")

            try await remote.push(Remote.message("signed again"), "signed again", signing: signing)
            #expect(try await Self.eventually(15) { Self.message(host) == "signed again\n" })
            #expect(try await Self.eventually(10) { (try await host.tend(["status"])).status == 0 })
        }
    }
}
