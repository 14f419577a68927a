import Foundation
import Testing

/// The agent repairs drift the moment it happens (issue 9): its watches (inotify on managed paths,
/// the bus for managed units, dpkg's status file for packages) wake a repair of exactly what
/// changed. Every agent here checks on a 1-hour interval, so whatever is repaired within seconds
/// was repaired by a watch.
@Suite("drift repaired as it happens", .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
struct WatchTests {
    typealias Remote = AgentTests.Remote

    static let unit = """
        [Unit]
        Description=watched service
        [Service]
        ExecStart=/bin/sleep infinity
        [Install]
        WantedBy=multi-user.target

        """

    static func configuration(_ text: String) -> [String: String] {
        [
            "tend.yaml": "hosts:\n  - apply: [site]\n",
            "site/app.yaml": """
                resources:
                  - directory: /etc/app
                  - file: /etc/app/message
                    content: "\(text)\\n"
                    mode: "0644"
                    force: true
                  - file: /etc/app/unwanted
                    state: absent
                  - file: /etc/app/secret
                    content: "the declared secret\\n"
                    mode: "0600"
                    sensitive: true
                  - unit: watched.service
                    content: |
                \(unit.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }.joined(separator: "\n"))
                    enabled: true
                    state: running

                """,
        ]
    }

    /// Starts the agent on a 1-hour interval with `configuration` and `extra` files pushed;
    /// returns the remote.
    static func start(_ host: TestHost, text: String = "declared", extra: [String: String] = [:]) async throws -> Remote {
        let remote = try await Remote.make(in: host)
        try await remote.push(configuration(text).merging(extra) { _, new in new }, "first")
        try AgentTests.install(host)
        try host.write(["/etc/tend/agent.yaml": "repo: /srv/config.git\nref: main\ninterval: 1h\n"])
        try await host.run(["systemctl", "daemon-reload"])
        let start = try await host.run(["systemctl", "start", "tend.service"])
        let log = try await host.run(["journalctl", "--no-pager", "-n", "40"]).stdout
        #expect(start.status == 0, "\(start)\n\(log)")
        #expect(AgentTests.message(host) == "\(text)\n")
        return remote
    }

    static func mode(_ host: TestHost, _ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: host.outside(path)))?[.posixPermissions] as? Int
    }

    static func type(_ host: TestHost, _ path: String) -> FileAttributeType? {
        (try? FileManager.default.attributesOfItem(atPath: host.outside(path)))?[.type] as? FileAttributeType
    }

    /// The link case needs `force: true`, as everywhere: without it tend never replaces a link
    /// with a file (it reports the drift instead).
    @Test("a file edited, chmodded, deleted or replaced by a link, and a unit stopped by hand, are repaired at once; the journal says what drifted, never sensitive content")
    func repairsAtOnce() async throws {
        try await withTestHost { host in
            _ = try await Self.start(host)

            // First, before any repair re-arms a watch: a link made where the configuration says
            // nothing may be, in a managed folder (watched both as a folder and as a path, whose
            // masks must add up; a link's creation is an IN_CREATE and nothing else): removed.
            try await host.run(["ln", "-s", "/etc/hostname", "/etc/app/unwanted"])
            #expect(try await AgentTests.eventually(5) { (try? FileManager.default.destinationOfSymbolicLink(atPath: host.outside("/etc/app/unwanted"))) == nil },
                    "a link made where the configuration declares nothing was not removed")

            // Edited: the journal shows the lines that drifted.
            // In place, in one write, the same size (a shell's `>` truncates first, and a repair
            // between the truncation and the write would leave the write to the replaced file).
            try await host.run(["sh", "-c", "printf 'tampered\\n' | dd of=/etc/app/message conv=notrunc status=none"])
            #expect(try await AgentTests.eventually(5) { AgentTests.message(host) == "declared\n" }, "an edit was not repaired")
            #expect(try await AgentTests.eventually(5) {
                try await host.tendJournal().text.contains("file:/etc/app/message (content: -tampered")
            })
            let repairs = try await host.tendJournal().entries.filter { ($0["MESSAGE"] as? String)?.hasPrefix("drift repaired") == true }
            let edit = try #require(repairs.first { ($0["MESSAGE"] as? String)?.contains("file:/etc/app/message (content: -tampered") == true },
                                    "\(repairs.map { $0["MESSAGE"] ?? "" })")
            #expect((edit["MESSAGE"] as? String)?.contains("+declared") == true, "\(edit)")
            #expect(edit["TEND_ACTION"] as? String == "repair" && edit["TEND_RESULT"] as? String == "done", "\(edit)")

            // Chmodded, deleted, replaced by a link.
            try await host.run(["chmod", "0666", "/etc/app/message"])
            #expect(try await AgentTests.eventually(5) { Self.mode(host, "/etc/app/message") == 0o644 }, "a chmod was not repaired")
            try await host.run(["rm", "/etc/app/message"])
            #expect(try await AgentTests.eventually(5) { AgentTests.message(host) == "declared\n" }, "a deletion was not repaired")
            try await host.run(["sh", "-c", "rm /etc/app/message && ln -s /etc/hostname /etc/app/message"])
            let linked = try await AgentTests.eventually(5) { Self.type(host, "/etc/app/message") == .typeRegular && AgentTests.message(host) == "declared\n" }
            let linkJournal = try await host.run(["journalctl", "--no-pager", "-o", "cat", "SYSLOG_IDENTIFIER=tend"]).stdout
            #expect(linked, "a link put in its place was not repaired: \(linkJournal.suffix(3000))")

            // A sensitive file: repaired, and its content appears nowhere in the journal.
            try await host.run(["sh", "-c", "echo leaked-value-4711 > /etc/app/secret"])
            #expect(try await AgentTests.eventually(5) {
                (try? String(contentsOfFile: host.outside("/etc/app/secret"), encoding: .utf8)) == "the declared secret\n"
            }, "the sensitive file was not repaired")
            #expect(try await AgentTests.eventually(5) {
                try await host.tendJournal().text.contains("file:/etc/app/secret (content (sensitive, not shown))")
            })
            let journal = try await host.tendJournal().text
            #expect(!journal.contains("leaked-value-4711") && !journal.contains("the declared secret"), "sensitive content reached the journal")

            // A unit stopped by hand is started again.
            let stop = try await host.run(["systemctl", "stop", "watched.service"])
            #expect(stop.status == 0, "\(stop)")
            #expect(try await AgentTests.eventually(5) { try await host.unit("watched.service")["ActiveState"] == "active" }, "a stopped unit was not started again")
            let unitJournal = try await host.run(["journalctl", "--no-pager", "-o", "cat", "SYSLOG_IDENTIFIER=tend"]).stdout
            #expect(unitJournal.contains("unit:watched.service (state: stopped (inactive) → running)"), "\(unitJournal.suffix(2000))")

            // The agent is still fine, and counted its repairs.
            #expect(try await host.unit("tend.service")["ActiveState"] == "active")
            #expect(try await AgentTests.eventually(5) { (try await AgentTests.metrics(host)["tend_watch_repairs_total{}"] ?? 0) >= 6 })
        }
    }

    @Test("a file something else keeps changing back becomes contested: reported in the journal, tend status and a metric, and left to the timer until a new commit")
    func contested() async throws {
        try await withTestHost { host in
            let remote = try await Self.start(host)
            // Another tool that writes the file back every 200 ms.
            let fighter = try await host.run(["systemd-run", "--unit=fighter", "/bin/sh", "-c", "while :; do echo theirs > /etc/app/message; sleep 0.2; done"])
            #expect(fighter.status == 0, "\(fighter)")
            #expect(try await AgentTests.eventually(15) { try await host.tendJournal().text.contains("file:/etc/app/message is contested") },
                    "the fight did not end in a contest")
            let status = try await host.tend(["status"])
            #expect(status.stdout.contains("Contested:  file:/etc/app/message since"), "\(status)")
            #expect(try await AgentTests.metrics(host)["tend_contested_resources{}"] == 1)

            // Contested: no repair at once any more, however often it changes.
            try await host.run(["systemctl", "stop", "fighter.service"])
            try await host.run(["sh", "-c", "echo theirs > /etc/app/message"])
            try await Task.sleep(for: .seconds(2))
            #expect(AgentTests.message(host) == "theirs\n", "a contested file was still repaired at once")
            let repairs = try await host.tendJournal().entries.filter { ($0["MESSAGE"] as? String)?.hasPrefix("drift repaired") == true }.count

            // A new commit ends the contest: applied at once (SIGHUP), and watched again.
            try await remote.push(Self.configuration("second"), "second")
            try await host.run(["systemctl", "kill", "--signal=SIGHUP", "tend.service"])
            #expect(try await AgentTests.eventually(10) { AgentTests.message(host) == "second\n" })
            try await host.run(["sh", "-c", "echo theirs > /etc/app/message"])
            #expect(try await AgentTests.eventually(5) { AgentTests.message(host) == "second\n" }, "the watch did not come back with the new commit")
            let after = try await host.tendJournal().entries.filter { ($0["MESSAGE"] as? String)?.hasPrefix("drift repaired") == true }.count
            #expect(after > repairs)
            #expect(try await AgentTests.eventually(5) {
                let status = try await host.tend(["status"])
                return !status.stdout.contains("Contested:")
            })
        }
    }

    @Test("events lost to an inotify queue overflow lead to a full check at once")
    func overflow() async throws {
        try await withTestHost { host in
            _ = try await Self.start(host)
            let pid = try #require(try await host.unit("tend.service", ["MainPID"])["MainPID"])
            // While the agent cannot read, 20,000 events (a chmod each of the file and of its
            // folder's entry, never two alike in a row, so none coalesce) fill the 16,384 of the queue.
            try await host.run(["kill", "-STOP", pid])
            let burst = try await host.run(["python3", "-c", "import os\nfor i in range(10000): os.chmod('/etc/app/message', 0o600 if i % 2 else 0o640)"])
            try await host.run(["kill", "-CONT", pid])
            #expect(burst.status == 0, "\(burst)")
            #expect(try await AgentTests.eventually(10) {
                try await host.tendJournal().text.contains("inotify's queue overflowed and events were lost: checking everything now")
            }, "the overflow was not noticed")
            #expect(try await AgentTests.eventually(10) { Self.mode(host, "/etc/app/message") == 0o644 }, "the full check did not repair the file")
            #expect(try await host.unit("tend.service")["ActiveState"] == "active")
        }
    }

    @Test("a package removed by hand comes back at once, seen through dpkg's status file",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-scanpackages"), "needs dpkg-scanpackages (dpkg-dev)"))
    func packageRemovedByHand() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            _ = try await Self.start(host, extra: ["site/packages.yaml": "resources:\n  - package: tend-test-lib\n"])
            func installed() async throws -> Bool {
                try await host.run(["dpkg-query", "-W", "-f", "${Status}", "tend-test-lib"]).stdout == "install ok installed"
            }
            #expect(try await installed())
            let remove = try await host.run(["dpkg", "--remove", "tend-test-lib"])
            #expect(remove.status == 0, "\(remove)")
            #expect(try await AgentTests.eventually(20) { try await installed() }, "the removed package did not come back")
            #expect(try await AgentTests.eventually(10) { try await host.tendJournal().text.contains("drift repaired in ") })
            #expect(try await host.tendJournal().text.contains("package:tend-test-lib"))
        }
    }

    @Test("a user's shell changed by hand with usermod comes back at once, seen through /etc/passwd")
    func userChangedByHand() async throws {
        try await withTestHost { host in
            _ = try await Self.start(host, extra: ["site/accounts.yaml": "resources:\n  - user: watched\n    shell: /bin/sh\n"])
            func shell() async throws -> String {
                try await host.run(["getent", "passwd", "watched"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":").last.map(String.init) ?? ""
            }
            #expect(try await shell() == "/bin/sh")
            let change = try await host.run(["usermod", "-s", "/bin/bash", "watched"])
            #expect(change.status == 0, "\(change)")
            #expect(try await AgentTests.eventually(10) { try await shell() == "/bin/sh" }, "the shell changed by hand was not repaired")
            #expect(try await AgentTests.eventually(5) {
                try await host.tendJournal().text.contains("user:watched (shell: /bin/bash → /bin/sh)")
            })
        }
    }
}
