import Foundation
import Testing

/// What operators hook onto a change: a file checked by a command before it replaces the old one,
/// a unit reloaded rather than restarted, a command run once per change.
@Suite("hooks: validate, reload, run on change")
struct HooksTests {
    @Test("validate: a sudoers with a syntax error is refused by visudo and the old sudoers stays; what depends on it is skipped; a good one goes in; plan runs nothing",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/visudo"), "visudo comes with sudo"))
    func validateBeforeReplace() async throws {
        let marks = try Scratch("tend-validate-ran")
        func manifest(_ rule: String, motd: String = "admins may sudo") -> [String: String] {
            ["sudo.yaml": """
                resources:
                  - file: /etc/sudoers.d/admins
                    content: "\(rule)\\n"
                    mode: "0440"
                    validate: [/usr/sbin/visudo, -cf, "%s"]
                  - file: /etc/motd
                    content: "\(motd)\\n"
                    requires: [file:/etc/sudoers.d/admins]
                  - file: /etc/nginx-test.conf
                    content: "events {}\\nhttp { server { listen 8080 } }\\n"
                    validate: [/bin/sh, -c, "touch \(marks.path)/ran; grep -q 'listen 8080;' \\"$1\\" || { echo \\"$1: no ';' after listen\\"; exit 3; }", check, "%s"]
                """]
        }
        let repo = try repository(manifest("%admins ALL=(ALL) NOPASSWD: ALL"))
        let root = try makeRoot()
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.stdout.contains("checked by /usr/sbin/visudo -cf %s before it replaces the file"), "\(plan)")
        #expect(!FileManager.default.fileExists(atPath: marks.url("ran")), "tend plan ran a validate: command")
        let first = try await tend(["apply", repo.path, "--root", root.path])
        #expect(first.status == 5, "the nginx file's check fails: \(first)")
        #expect(FileManager.default.fileExists(atPath: marks.url("ran")), "the apply ran the check")
        #expect(first.stdout.contains("/etc/nginx-test.conf: validate: /bin/sh exited with status 3; the file was left as it was: /etc/nginx-test.conf: no ';' after listen"),
                "what the check said, naming the file, not its temporary: \(first)")
        #expect(!FileManager.default.fileExists(atPath: root.url("etc/nginx-test.conf")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url("etc")).allSatisfy { !$0.contains(".tend-") }, "no temporary is left")
        #expect(read(root.url("etc/sudoers.d/admins")) == "%admins ALL=(ALL) NOPASSWD: ALL\n")
        #expect(read(root.url("etc/motd")) == "admins may sudo\n")

        try repo.write(manifest("%admins ALL=(ALL) NOPASSWD ALL broken", motd: "admins may sudo again").mapKeys { "site/" + $0 })
        let broken = try await tend(["apply", repo.path, "--root", root.path])
        #expect(broken.status == 5, "\(broken)")
        #expect(broken.stdout.contains("file:/etc/motd: skipped"), "what requires the refused file is skipped: \(broken)")
        #expect(read(root.url("etc/motd")) == "admins may sudo\n")
        #expect(broken.stdout.contains("/etc/sudoers.d/admins: validate: /usr/sbin/visudo exited with status 1; the file was left as it was: its output is not shown, as the file's content is not"), "\(broken)")
        #expect(read(root.url("etc/sudoers.d/admins")) == "%admins ALL=(ALL) NOPASSWD: ALL\n", "the old sudoers stays")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url("etc/sudoers.d")) == ["admins"], "no temporary is left")
    }

    @Test("a certificate change reloads nginx (its main process stays, its workers are new); reload-or-restart restarts a unit that cannot reload; the plan says which",
          .enabled(if: TestHost.available && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx"), "needs test hosts and nginx"))
    func reload() async throws {
        try await withTestHost { host in
            func manifest(_ cert: String) -> [String: String] {
                ["/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n",
                 "/srv/config/site/web.yaml": """
                    resources:
                      - file: /etc/ssl/shop.pem
                        content: "\(cert)\\n"
                        notify: [{reload: unit:nginx.service}, {reload-or-restart: unit:hello.service}]
                      - unit: nginx.service
                        state: running
                      - unit: hello.service
                        content: "[Service]\\nExecStart=/bin/sleep infinity\\n"
                        state: running
                    """]
            }
            try host.write(manifest("first"))
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            let nginx = try await host.unit("nginx.service", ["MainPID"])["MainPID"]
            let hello = try await host.unit("hello.service", ["MainPID"])["MainPID"]
            let workers = try await host.run(["pgrep", "-P", nginx ?? "0"]).stdout

            try host.write(manifest("second"))
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.stdout.contains("↻ unit:nginx.service") && plan.stdout.contains("reload (notified by file:/etc/ssl/shop.pem)"), "\(plan)")
            #expect(plan.stdout.contains("reload-or-restart (notified by file:/etc/ssl/shop.pem)"), "\(plan)")
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(try await host.unit("nginx.service", ["MainPID"])["MainPID"] == nginx, "reloaded, not restarted")
            // nginx starts new workers on a reload; give them a moment.
            var newWorkers = workers
            for _ in 0..<50 where newWorkers == workers {
                try await Task.sleep(for: .milliseconds(100))
                newWorkers = try await host.run(["pgrep", "-P", nginx ?? "0"]).stdout
            }
            #expect(!newWorkers.isEmpty && newWorkers != workers, "nginx reloaded: \(workers) → \(newWorkers)")
            #expect(try await host.unit("hello.service", ["MainPID"])["MainPID"] != hello, "a unit without ExecReload= is restarted")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)
        }
    }

    @Test("a command notified by a file runs exactly once per change, as a transient unit whose output is in the journal; never in tend plan; creates: runs it while its path is missing",
          .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
    func commandOnChange() async throws {
        try await withTestHost { host in
            func manifest(_ content: String) -> [String: String] {
                ["/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n",
                 "/srv/config/site/a.yaml": """
                    resources:
                      - file: /etc/app/app.conf
                        content: "\(content)\\n"
                        notify: [command:count]
                      - command: count
                        argv: [/bin/sh, -c, "echo ran-with-$GREETING; echo run >> /var/lib/count"]
                        environment: { GREETING: hello }
                        working_directory: /tmp
                      - command: make-marker
                        argv: [/usr/bin/touch, /var/lib/marker]
                        creates: /var/lib/marker
                    """]
            }
            func runs() -> Int { (read(host.outside("/var/lib/count")) ?? "").split(separator: "\n").count }
            try host.write(manifest("one"))
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.stdout.contains("▶ command:count") && plan.stdout.contains("runs (notified by file:/etc/app/app.conf)"), "\(plan)")
            #expect(plan.stdout.contains("▶ command:make-marker") && plan.stdout.contains("runs: /var/lib/marker is missing"), "\(plan)")
            #expect(runs() == 0 && !FileManager.default.fileExists(atPath: host.outside("/var/lib/marker")), "tend plan runs nothing")

            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(runs() == 1)
            #expect(FileManager.default.fileExists(atPath: host.outside("/var/lib/marker")))
            #expect(try await host.tend(["apply", "/srv/config", "--detailed-exitcode"]).status == 0, "nothing changed, nothing runs")
            #expect(runs() == 1)

            try host.write(manifest("two"))
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            #expect(runs() == 2, "once per change")
            _ = try await host.run(["journalctl", "--sync"])
            let journal = try await host.run(["journalctl", "--no-pager", "-o", "cat", "--unit", "tend-command-count-*"])
            #expect(journal.stdout.split(separator: "\n").filter { $0 == "ran-with-hello" }.count == 2, "its output is in the journal under its own unit: \(journal)")

            // A command that fails fails its step with what the journal says of it.
            try host.write(["/srv/config/site/a.yaml": "resources:\n  - command: fails\n    argv: [/bin/sh, -c, \"echo cannot do it; exit 4\"]\n    creates: /nowhere\n"])
            let failed = try await host.tend(["apply", "/srv/config"])
            #expect(failed.status == 5 && failed.stdout.contains("command:fails") && failed.stdout.contains("cannot do it"), "\(failed)")
        }
    }
}
