import Foundation
import Testing

/// The unit resource on real systemd test hosts, and offline under --root.
@Suite("systemd units", .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
struct UnitTests {
    static let helloUnit = """
        [Unit]
        Description=tend test service
        [Service]
        ExecStart=/bin/sh -c 'cat /etc/hello/message; exec sleep infinity'
        [Install]
        WantedBy=multi-user.target

        """

    static func manifest(unit: String = helloUnit, extra: String = "", enabled: Bool = true, state: String = "running", dropins: String = "") -> [String: String] {
        [
            "/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n",
            "/srv/config/site/hello.yaml": """
                resources:
                  - file: /etc/hello/message
                    content: "hello\\n"
                    notify: [unit:hello.service]
                  - unit: hello.service
                    content: |
                \(unit.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }.joined(separator: "\n"))
                    enabled: \(enabled)
                    state: \(state)
                \(dropins)
                \(extra)
                """,
        ]
    }

    @Test("a unit file is created, enabled and started; notify and unit file changes restart it; stop and disable; a second plan is empty")
    func lifecycle() async throws {
        try await withTestHost { host in
            try host.write(Self.manifest())
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.stdout.contains("+ unit:hello.service"), "\(plan)")
            #expect(plan.stdout.contains("enabled: false → true"))
            #expect(plan.stdout.contains("state:   stopped (inactive) → running"))
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            var unit = try await host.unit("hello.service", ["ActiveState", "UnitFileState", "MainPID", "NeedDaemonReload"])
            #expect(unit["ActiveState"] == "active")
            #expect(unit["UnitFileState"] == "enabled")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0, "idempotent")

            // A file that notifies the unit changes: the unit restarts.
            let firstPID = unit["MainPID"]
            try host.write(["/srv/config/site/hello.yaml": try String(contentsOfFile: host.outside("/srv/config/site/hello.yaml"), encoding: .utf8)
                .replacingOccurrences(of: "content: \"hello\\n\"", with: "content: \"bonjour\\n\"")])
            let notified = try await host.tend(["plan", "/srv/config"])
            #expect(notified.stdout.contains("↻ unit:hello.service"), "\(notified)")
            #expect(notified.stdout.contains("restart (notified by file:/etc/hello/message)"))
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            unit = try await host.unit("hello.service", ["ActiveState", "MainPID"])
            #expect(unit["ActiveState"] == "active")
            #expect(unit["MainPID"] != firstPID, "restarted")

            // The unit file and a drop-in change while it runs: one reload, then a restart.
            try host.write(Self.manifest(unit: Self.helloUnit.replacingOccurrences(of: "tend test service", with: "tend test service, revised"),
                                         dropins: "    dropins:\n      env.conf: |\n        [Service]\n        Environment=GREETING=hi\n"))
            let changed = try await host.tend(["plan", "/srv/config"])
            #expect(changed.stdout.contains("+Description=tend test service, revised"), "\(changed)")
            #expect(changed.stdout.contains("+++ /etc/systemd/system/hello.service.d/env.conf"))
            #expect(changed.stdout.contains("daemon-reload (unit files changed)"))
            #expect(changed.stdout.contains("restart (its unit files changed while it runs)"))
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            unit = try await host.unit("hello.service", ["Description", "Environment", "NeedDaemonReload", "ActiveState"])
            #expect(unit["Description"] == "tend test service, revised")
            #expect(unit["Environment"] == "GREETING=hi")
            #expect(unit["NeedDaemonReload"] == "no")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)

            // Stop and disable.
            try host.write(Self.manifest(enabled: false, state: "stopped"))
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            unit = try await host.unit("hello.service")
            #expect(unit["ActiveState"] == "inactive")
            #expect(unit["UnitFileState"] == "disabled")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)
        }
    }

    @Test("unit files of several units change in one apply: exactly one daemon-reload, and none when nothing changed")
    func oneReloadPerApply() async throws {
        try await withTestHost { host in
            func write(_ description: String) throws {
                var manifest = "resources:\n"
                for name in ["one", "two", "three"] {
                    manifest += """
                          - unit: \(name).service
                            content: |
                              [Unit]
                              Description=\(description) \(name)
                              [Service]
                              ExecStart=/bin/sleep infinity
                              [Install]
                              WantedBy=multi-user.target
                            enabled: true
                            state: running

                        """
                }
                try host.write(["/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n", "/srv/config/site/units.yaml": manifest])
            }
            // Each daemon-reload emits the manager's Reloading signal (true, then false): watch the bus.
            var watch = 0
            func reloads(during body: () async throws -> Void) async throws -> Int {
                watch += 1
                let unit = "tend-test-reload-watch-\(watch)", file = "/run/reloads-\(watch).json"
                let started = try await host.run(["systemd-run", "--unit", unit, "--quiet", "-p", "StandardOutput=file:\(file)",
                                                  "busctl", "monitor", "--system", "--json=short",
                                                  "--match", "type='signal',interface='org.freedesktop.systemd1.Manager',member='Reloading'"])
                #expect(started.status == 0, "\(started)")
                try await Task.sleep(for: .milliseconds(500))
                try await body()
                try await Task.sleep(for: .milliseconds(500))
                _ = try await host.run(["systemctl", "stop", unit])
                let log = (try? String(contentsOfFile: host.outside(file), encoding: .utf8)) ?? ""
                return log.split(separator: "\n").filter { $0.contains("\"member\":\"Reloading\"") && $0.contains("true") }.count
            }
            try write("first")
            var count = try await reloads {
                let run = try await host.tend(["apply", "/srv/config"])
                #expect(run.status == 0, "\(run)")
            }
            #expect(count == 1, "one reload for three new units")
            try write("second")
            count = try await reloads {
                let run = try await host.tend(["apply", "/srv/config"])
                #expect(run.status == 0, "\(run)")
            }
            #expect(count == 1, "one reload for three changed unit files")
            #expect(try await host.unit("two.service", ["Description"])["Description"] == "second two")
            count = try await reloads {
                let run = try await host.tend(["apply", "/srv/config"])
                #expect(run.status == 0, "\(run)")
            }
            #expect(count == 0, "no reload when nothing changed")
        }
    }

    @Test("a unit that exists in the image is managed for state only, and can be masked and unmasked")
    func packageUnitAndMask() async throws {
        try await withTestHost { host in
            func manage(_ attributes: String) async throws -> TendRun {
                try host.write(["/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n",
                                "/srv/config/site/timer.yaml": "resources:\n  - unit: dpkg-db-backup.timer\n\(attributes)"])
                return try await host.tend(["apply", "/srv/config"])
            }
            #expect(try await manage("    enabled: false\n    state: stopped\n").status == 0)
            var unit = try await host.unit("dpkg-db-backup.timer")
            #expect(unit["UnitFileState"] == "disabled")
            #expect(unit["ActiveState"] == "inactive")
            #expect(try await manage("    masked: true\n").status == 0)
            #expect(try await host.unit("dpkg-db-backup.timer")["UnitFileState"] == "masked")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)
            let unmask = try await manage("    masked: false\n    enabled: true\n    state: running\n")
            #expect(unmask.status == 0, "\(unmask)")
            unit = try await host.unit("dpkg-db-backup.timer")
            #expect(unit["UnitFileState"] == "enabled")
            #expect(unit["ActiveState"] == "active")
        }
    }

    @Test("a unit that fails to start fails with its journal lines; its dependents are skipped and the rest converge")
    func failingUnit() async throws {
        try await withTestHost { host in
            try host.write([
                "/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n",
                "/srv/config/site/broken.yaml": """
                    resources:
                      - unit: broken.service
                        content: |
                          [Service]
                          Type=oneshot
                          ExecStart=/bin/sh -c 'echo tend-test-failure-marker; exit 3'
                        state: running
                      - file: /etc/needs-broken
                        content: "x\\n"
                        requires: [unit:broken.service]
                      - file: /etc/independent
                        content: "y\\n"
                    """,
            ])
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 5, "\(apply)")
            #expect(apply.stdout.contains("✗ unit:broken.service: failed: broken.service: start failed"), "\(apply)")
            #expect(apply.stdout.contains("tend-test-failure-marker"))
            #expect(apply.stdout.contains("↷ file:/etc/needs-broken: skipped: requires unit:broken.service"))
            #expect(apply.stdout.contains("+ file:/etc/independent: created"))
            #expect(FileManager.default.fileExists(atPath: host.outside("/etc/independent")))
            #expect(!FileManager.default.fileExists(atPath: host.outside("/etc/needs-broken")))
        }
    }

    @Test("journald gets one structured entry per step with the documented fields, and never sensitive content")
    func journal() async throws {
        try await withTestHost { host in
            let secret = "journal-secret-\(UUID().uuidString)"
            try host.write([
                "/srv/repo/tend.yaml": "hosts:\n  - apply: [site]\n",
                "/srv/repo/site/app.yaml": "resources:\n  - file: /etc/app/token\n    content: \"\(secret)\"\n    sensitive: true\n  - file: /etc/app/conf\n    content: \"x\\n\"\n",
            ])
            for command in [["git", "init", "-q", "-b", "main", "/srv/repo"], ["git", "-C", "/srv/repo", "add", "-A"],
                            ["git", "-C", "/srv/repo", "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-q", "-m", "config"]] {
                let run = try await host.run(command)
                #expect(run.status == 0, "\(run)")
            }
            let commit = try await host.run(["git", "-C", "/srv/repo", "rev-parse", "HEAD"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            // Run as a service, as the agent will: auto picks the journal.
            let service = try await host.run(["systemd-run", "--wait", "--collect", "--quiet", "/usr/local/bin/tend", "apply", "--repo", "/srv/repo", "--state-dir", "/var/lib/tend"])
            #expect(service.status == 0, "\(service)")
            #expect(FileManager.default.fileExists(atPath: host.outside("/etc/app/conf")))
            let (entries, journal) = try await host.tendJournal()
            let steps = entries.filter { $0["MESSAGE_ID"] as? String == "11342b278b194f0183efb57fe08b2f13" }
            #expect(steps.count == 2, "\(journal)")
            let conf = try #require(steps.first { $0["TEND_RESOURCE"] as? String == "file:/etc/app/conf" })
            #expect(conf["TEND_ACTION"] as? String == "create")
            #expect(conf["TEND_RESULT"] as? String == "done")
            #expect(conf["TEND_COMMIT"] as? String == commit)
            #expect((conf["TEND_RUN"] as? String)?.count == 32)
            #expect(conf["PRIORITY"] as? String == "6")
            #expect(conf["CODE_FILE"] != nil)
            #expect(entries.contains { $0["MESSAGE_ID"] as? String == "83728d00a7214437bd156c0fb33c9236" }, "the run's end is logged")
            #expect(!journal.contains(secret), "sensitive content never reaches the journal")
        }
    }
}

/// The journal as the audit trail: a manual apply is on record as an agent's would be.
@Suite("journal audit trail", .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
struct AuditTrailTests {
    @Test("a manual tend apply records each change with before → after in the journal, failures at priority err, never content")
    func manualApplyIsOnRecord() async throws {
        try await withTestHost { host in
            let secret = "audit-secret-\(UUID().uuidString)"
            try host.write([
                "/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n",
                "/srv/config/site/a.yaml": """
                    resources:
                      - file: /etc/audit/plain
                        content: "one\\n"
                        mode: "0640"
                      - file: /etc/audit/secret
                        content: "\(secret)\\n"
                        sensitive: true
                      - file: /etc/audit/owned
                        content: "x\\n"
                        owner: nobody-here
                    """,
            ])
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 5, "\(apply)")
            #expect(!apply.stderr.contains("file:/etc/audit/plain: create done"), "the console stays quiet without -v")
            let (entries, journal) = try await host.tendJournal()
            let plain = try #require(entries.first { $0["TEND_RESOURCE"] as? String == "file:/etc/audit/plain" }, "\(journal)")
            #expect((plain["MESSAGE"] as? String)?.contains("create done (mode: (none) → 0640; content changed)") == true, "\(plain)")
            #expect(plain["PRIORITY"] as? String == "6")
            let owned = try #require(entries.first { $0["TEND_RESOURCE"] as? String == "file:/etc/audit/owned" })
            #expect(owned["PRIORITY"] as? String == "3", "a failure is found by journalctl -p err")
            #expect(owned["TEND_RESULT"] as? String == "failed")
            let errors = try await host.run(["journalctl", "-p", "err", "--no-pager", "SYSLOG_IDENTIFIER=tend"])
            #expect(errors.stdout.contains("file:/etc/audit/owned"), "\(errors)")
            #expect(!journal.contains(secret))
        }
    }
}

/// Units under --root, where no manager runs: what systemctl --root would do.
@Suite("systemd units under --root")
struct OfflineUnitTests {
    @Test("enablement and mask links are identical to what systemctl --root makes; start and stop are left out with a note",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemctl"), "needs systemctl to compare with"))
    func offlineEnable() async throws {
        let repo = try repository(["units.yaml": """
            resources:
              - unit: hello.service
                content: |
                  [Unit]
                  Description=hello
                  [Service]
                  ExecStart=/bin/true
                  [Install]
                  WantedBy=multi-user.target
                  Alias=greeting.service
                enabled: true
                state: running
              - unit: other.service
                masked: true
            """])
        let ours = try makeRoot()
        let plan = try await tend(["plan", repo.path, "--root", ours.path])
        #expect(plan.stdout.contains("start and stop are left out: no service manager runs for this root"), "\(plan)")
        let apply = try await tend(["apply", repo.path, "--root", ours.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(try await tend(["plan", repo.path, "--root", ours.path, "--detailed-exitcode"]).status == 0)

        let theirs = try makeRoot()
        try theirs.write(["etc/systemd/system/hello.service": try String(contentsOfFile: ours.url("etc/systemd/system/hello.service"), encoding: .utf8)])
        try await sh("/usr/bin/systemctl", ["--root", theirs.path, "enable", "hello.service"])
        try await sh("/usr/bin/systemctl", ["--root", theirs.path, "mask", "other.service"])
        func links(_ root: Scratch) throws -> [String: String] {
            var result: [String: String] = [:]
            let base = root.url("etc/systemd/system")
            for path in FileManager.default.enumerator(atPath: base)?.allObjects as? [String] ?? [] {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: base + "/" + path) { result[path] = target }
            }
            return result
        }
        let expected = try links(theirs)
        #expect(expected.count == 3, "\(expected)")
        #expect(try links(ours) == expected)
    }

    @Test("under --root, template instances, a template's DefaultInstance=, Also=, RequiredBy= and specifiers enable exactly as systemctl --root does, and disable again",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemctl"), "needs systemctl to compare with"))
    func offlineInstallForms() async throws {
        let units = [
            "resources:",
            "  - unit: getty@tty2.service",
            "    enabled: true",
            "  - unit: worker@.service",
            "    content: \"[Service]\\nExecStart=/bin/true %i\\n[Install]\\nWantedBy=multi-user.target\\nDefaultInstance=main\\n\"",
            "    enabled: true",
            "  - unit: app.service",
            "    content: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nRequiredBy=graphical.target\\nAlias=%p-alias.service\\nAlso=app-helper.service\\n\"",
            "    enabled: true",
            "  - unit: app-helper.service",
            "    content: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=timers.target\\n\"",
        ].joined(separator: "\n") + "\n"
        let repo = try repository(["units.yaml": units])
        // getty@.service comes with the image, as a package installs it.
        let getty = "[Unit]\nDescription=Getty on %I\n[Service]\nExecStart=/sbin/agetty %I\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n"
        let ours = try makeRoot()
        let theirs = try makeRoot()
        try ours.write(["lib/systemd/system/getty@.service": getty])
        try theirs.write(["lib/systemd/system/getty@.service": getty])

        let apply = try await tend(["apply", repo.path, "--root", ours.path])
        #expect(apply.status == 0, "\(apply)")
        let again = try await tend(["plan", repo.path, "--root", ours.path, "--detailed-exitcode"])
        #expect(again.status == 0, "a second plan is not empty: \(again)")

        for file in ["worker@.service", "app.service", "app-helper.service"] {
            try theirs.write(["etc/systemd/system/" + file: try String(contentsOfFile: ours.url("etc/systemd/system/" + file), encoding: .utf8)])
        }
        try await sh("/usr/bin/systemctl", ["--root", theirs.path, "enable", "getty@tty2.service", "worker@.service", "app.service"])
        func links(_ root: Scratch) -> [String: String] {
            var result: [String: String] = [:]
            let base = root.url("etc/systemd/system")
            for path in FileManager.default.enumerator(atPath: base)?.allObjects as? [String] ?? [] {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: base + "/" + path) { result[path] = target }
            }
            return result
        }
        let expected = links(theirs)
        #expect(expected["getty.target.wants/getty@tty2.service"] == "/lib/systemd/system/getty@.service", "\(expected)")
        #expect(expected["multi-user.target.wants/worker@main.service"] == "/etc/systemd/system/worker@.service", "\(expected)")
        #expect(expected["app-alias.service"] == "/etc/systemd/system/app.service", "\(expected)")
        #expect(expected["timers.target.wants/app-helper.service"] != nil, "\(expected)")
        #expect(links(ours) == expected)

        // Disabled again, every one of those links goes, as `systemctl --root disable` removes them.
        try repo.write(["site/units.yaml": units.replacingOccurrences(of: "enabled: true", with: "enabled: false")])
        let disable = try await tend(["apply", repo.path, "--root", ours.path])
        #expect(disable.status == 0, "\(disable)")
        try await sh("/usr/bin/systemctl", ["--root", theirs.path, "disable", "getty@tty2.service", "worker@.service", "app.service"])
        #expect(links(ours) == links(theirs))
        #expect(links(ours)["getty.target.wants/getty@tty2.service"] == nil)
    }

    @Test("under --root, an enabled unit whose [Install] changes is enabled again: the old link goes, the new one comes",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemctl"), "needs systemctl"))
    func offlineInstallChange() async throws {
        func units(_ install: String) -> [String: String] {
            ["units.yaml": "resources:\n  - unit: app.service\n    content: \"[Service]\\nExecStart=/bin/true\\n[Install]\\n\(install)\\n\"\n    enabled: true\n"]
        }
        let repo = try repository(units("WantedBy=multi-user.target"))
        let root = try makeRoot()
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        let old = root.url("etc/systemd/system/multi-user.target.wants/app.service")
        let new = root.url("etc/systemd/system/graphical.target.requires/app.service")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: old)) == "/etc/systemd/system/app.service")
        try repo.write(units("RequiredBy=graphical.target").mapKeys { "site/" + $0 })
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: old)) == nil, "the link of the old [Install] stayed")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: new)) == "/etc/systemd/system/app.service")
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
    }

    @Test("state: absent stops, disables and removes a unit tend wrote, live and under --root, and a second plan is empty")
    func absent() async throws {
        try await withTestHost { host in
            try host.write(UnitTests.manifest())
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            #expect(try await host.unit("hello.service")["ActiveState"] == "active")
            try host.write(["/srv/config/site/hello.yaml": "resources:\n  - unit: hello.service\n    state: absent\n"])
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.stdout.contains("- unit:hello.service"), "\(plan)")
            #expect(plan.stdout.contains("enabled: true → false"))
            #expect(plan.stdout.contains("state:   running → stopped"))
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            let unit = try await host.unit("hello.service")
            #expect(unit["ActiveState"] == "inactive", "\(unit)")
            #expect(unit["LoadState"] == "not-found", "\(unit)")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/etc/systemd/system/hello.service")))
            #expect(!FileManager.default.fileExists(atPath: host.outside("/etc/systemd/system/multi-user.target.wants/hello.service")))
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)
        }

        // Offline: the links and the file go.
        let unit = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
        let repo = try repository(["units.yaml": "resources:\n  - unit: hello.service\n    content: \"\(unit.replacingOccurrences(of: "\n", with: "\\n"))\"\n    enabled: true\n"])
        let root = try makeRoot()
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/systemd/system/multi-user.target.wants/hello.service"))) == "/etc/systemd/system/hello.service")
        try repo.write(["site/units.yaml": "resources:\n  - unit: hello.service\n    state: absent\n"])
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(!FileManager.default.fileExists(atPath: root.url("etc/systemd/system/hello.service")))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/systemd/system/multi-user.target.wants/hello.service"))) == nil)
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
    }

    @Test("under --root, a unit its package brings plans as installed by that package, as on a host, with no daemon-reload")
    func installedByPackageUnderRoot() async throws {
        let root = try makeRoot()
        let repo = try repository(["units.yaml": "resources:\n  - package: nginx\n  - unit: nginx.service\n    enabled: true\n"])
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.stdout.contains("enabled: (installed by package:nginx) → true"), "\(plan)")
        #expect(!plan.stdout.contains("daemon-reload"), "no manager runs for a root: \(plan)")
    }
}
