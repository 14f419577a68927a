import Foundation
import Testing

/// tend.yaml's `rollout:` and `health:`, with the agent as a service on test hosts: a commit
/// reaches each host when its wave is due, and a commit that fails a host's health checks is put
/// back to the last good one there.
@Suite("rollout waves and health checks", .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
struct FleetPolicyTests {
    typealias Remote = AgentTests.Remote

    /// Machine IDs whose place in the fleet (`Rollout.position`) is 18.03 and 80.95.
    static let early = "1679091c5a880faf6fb5e6087eb1b2dc"
    static let late = "c4ca4238a0b923820dcc509a6f75849b"

    /// The agent of `host` (interval 1h: only SIGHUP and its own wake make it check) enforcing
    /// /srv/config.git, where the first commit writes /etc/app/message `v1`.
    static func start(_ host: TestHost) async throws -> Remote {
        let remote = try await Remote.make(in: host)
        try await remote.push(Remote.message("v1"), "first")
        try AgentTests.install(host, settings: "")
        try host.write(["/etc/tend/agent.yaml": "repo: /srv/config.git\nref: main\ninterval: 1h\n"])
        try await host.run(["systemctl", "daemon-reload"])
        let start = try await host.run(["systemctl", "start", "tend.service"])
        #expect(start.status == 0 && AgentTests.message(host) == "v1\n", "\(start)")
        return remote
    }

    @Test("a commit with waves reaches the early host at once and the late one when its wave is due, which keeps the last commit until then; status, metrics and tend rollout status say so")
    func wavesMove() async throws {
        try await withTestHost(machineID: Self.early) { early in
            try await withTestHost(machineID: Self.late) { late in
                let earlyRemote = try await Self.start(early)
                let lateRemote = try await Self.start(late)
                // The late wave is due 45 s after the commit: time for the checks below on a loaded machine.
                let waves = "rollout:\n  waves:\n    - share: 50%\n    - share: 100%\n      after: 45s\nhosts:\n  - apply: [site]\n"
                let second = Remote.message("v2").merging(["tend.yaml": waves]) { _, new in new }
                try await earlyRemote.push(second, "second")
                let commit = try await lateRemote.push(second, "second")
                let pushed = Date().formatted(.iso8601)
                for host in [early, late] { try await host.run(["systemctl", "reload", "tend.service"]) }

                #expect(try await AgentTests.eventually(10) { AgentTests.message(early) == "v2\n" }, "the first wave did not take the commit")
                #expect(try await AgentTests.eventually(10) {
                    (try await late.tend(["status"])).stdout.contains("Rollout:    \(commit.prefix(7)) reaches this host at")
                }, "the late host does not say when it takes the commit")
                let status = try await late.tend(["status"])
                #expect(status.status == 0, "waiting for a wave is not a problem: \(status)")
                #expect(status.stdout.contains("(wave 2 of 2, 100% of the fleet); enforcing "), "\(status)")
                #expect(AgentTests.message(late) == "v1\n", "the late host took the commit before its wave")
                #expect(try await AgentTests.metrics(late)["tend_rollout_waiting{}"] == 1)
                let journal = try await late.tendJournal()
                #expect(journal.entries.contains { ($0["MESSAGE"] as? String)?.contains("commit \(commit.prefix(7)) reaches this host at") == true },
                        "\(journal.text.suffix(2000))")

                // tend rollout status, offline, for the two hosts.
                try late.write(["/srv/fleet.txt": "\(Self.early) web-early\n\(Self.late) web-late\n"])
                let rollout = try await late.tend(["rollout", "status", "--repo", "/srv/config.git", "--ref", "main", "--offline", "--machine-ids", "/srv/fleet.txt", "--at", pushed])
                #expect(rollout.status == 0, "\(rollout)")
                #expect(rollout.stdout.contains("wave 1 of 2: 50% of the fleet, at the commit, due since "), "\(rollout)")
                #expect(rollout.stdout.contains("; 1 host: web-early"), "\(rollout)")
                #expect(rollout.stdout.contains("wave 2 of 2: 100% of the fleet, 45s after it, due "), "\(rollout)")
                #expect(rollout.stdout.contains("; 1 host: web-late"), "\(rollout)")
                #expect(rollout.stdout.contains("50% of the fleet takes this commit now; this host is in wave 2"), "\(rollout)")

                // The agent wakes when its wave is due, not an interval (1h) later.
                #expect(try await AgentTests.eventually(70) { AgentTests.message(late) == "v2\n" }, "the late host never took the commit")
                #expect(try await AgentTests.eventually(5) { try await AgentTests.metrics(late)["tend_rollout_waiting{}"] == 0 })
                #expect(!(try await late.tend(["status"])).stdout.contains("Rollout:"))
            }
        }
    }

    /// nginx and nginx-common from Debian's archive, fetched once into /var/cache/tend-test.
    static func nginxPackages() async throws -> String {
        let folder = "/var/cache/tend-test/nginx"
        let found = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        if found.filter({ $0.hasSuffix(".deb") }).count < 2 {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try await sh("/usr/bin/apt-get", ["download", "-q", "-o", "APT::Sandbox::User=root", "nginx", "nginx-common"], in: folder)
        }
        return folder
    }

    /// A site on port 8080 whose /health answers `status` with `body`.
    static func site(_ status: Int, _ body: String) -> [String: String] {
        [
            "tend.yaml": """
                hosts:
                  - apply: [web]
                    health:
                      - unit: nginx.service
                      - http: http://127.0.0.1:8080/health
                        timeout: 5s

                """,
            "web/nginx.yaml": """
                resources:
                  - package: nginx
                  - file: /etc/nginx/conf.d/health.conf
                    content: |
                      server {
                        listen 8080;
                        location /health { return \(status) "\(body)\\n"; }
                      }
                    requires: [package:nginx]
                    notify: [unit:nginx.service]
                  - unit: nginx.service
                    enabled: true
                    state: running
                    requires: [package:nginx]

                """,
        ]
    }

    /// GET /health on port 8080 of `host`, from its own network namespace: the status and body.
    static func health(_ host: TestHost) async throws -> String {
        let script = "import urllib.request,urllib.error\ntry:\n r=urllib.request.urlopen('http://127.0.0.1:8080/health',timeout=5); print(r.status, r.read().decode().strip())\nexcept urllib.error.HTTPError as e: print(e.code)\nexcept Exception as e: print('error', e)\n"
        return try await host.run(["nsenter", "-t", "1", "-n", "python3", "-c", script]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("nginx: a commit whose site fails its health check is put back to the last good one, refused until a new commit, and reported at err, in status and in metrics")
    func badNginxCommitIsPutBack() async throws {
        let debs = try await Self.nginxPackages()
        try await withTestHost { host in
            try FileManager.default.copyItem(atPath: debs, toPath: host.outside("/srv/debs"))
            let apt = try await host.run(["sh", "-c", """
                cd /srv/debs && dpkg-scanpackages -m . /dev/null > Packages 2>/dev/null &&
                rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* &&
                echo 'deb [trusted=yes] file:/srv/debs ./' > /etc/apt/sources.list.d/nginx.list && apt-get update -q
                """])
            #expect(apt.status == 0, "\(apt)")
            let remote = try await Remote.make(in: host)
            let good = try await remote.push(Self.site(200, "v1"), "good site")
            try AgentTests.install(host, settings: "")
            try host.write(["/etc/tend/agent.yaml": "repo: /srv/config.git\nref: main\ninterval: 1h\n"])
            try await host.run(["systemctl", "daemon-reload"])
            let start = try await host.run(["systemctl", "start", "tend.service"])
            #expect(start.status == 0, "\(start)")
            #expect(try await Self.health(host) == "200 v1")
            #expect(try await host.unit("nginx.service")["ActiveState"] == "active")

            // nginx -t passes and nginx runs, but the site answers 503: the health check fails.
            let bad = try await remote.push(Self.site(503, "broken"), "bad site")
            try await host.run(["systemctl", "reload", "tend.service"])
            #expect(try await AgentTests.eventually(40) {
                (try await host.tend(["status"])).stdout.contains("Refusing:   \(bad.prefix(7))")
            }, "the bad commit was not refused")
            #expect(try await AgentTests.eventually(10) { try await Self.health(host) == "200 v1" }, "the last good site was not put back")
            #expect(try String(contentsOfFile: host.outside("/etc/nginx/conf.d/health.conf"), encoding: .utf8).contains("return 200 \"v1\\n\""))
            let status = try await host.tend(["status"])
            #expect(status.status == 9, "a commit refused as unhealthy needs attention: \(status)")
            #expect(status.stdout.contains("failed its health checks on this host (http http://127.0.0.1:8080/health"), "\(status)")
            #expect(status.stdout.contains("answered 503"), "\(status)")
            let record = try JSONSerialization.jsonObject(with: Data(try await host.tend(["status", "--json"]).stdout.utf8)) as? [String: Any]
            #expect((record?["agent"] as? [String: Any])?["enforcing"] as? String == good)
            let metrics = try await AgentTests.metrics(host)
            #expect(metrics["tend_unhealthy_commits_total{}"] == 1, "\(metrics)")
            #expect(metrics["tend_stalled{}"] == 1, "\(metrics)")
            let journal = try await host.tendJournal()
            let putBack = journal.entries.filter { ($0["MESSAGE"] as? String)?.contains("commit \(bad.prefix(7)) failed its health checks on this host; putting back") == true }
            #expect(putBack.count == 1 && putBack.first?["PRIORITY"] as? String == "3", "found by journalctl -p err: \(journal.text.suffix(3000))")

            // Not tried again on the next check: the site stays good, with no second put-back.
            let cycle = { () -> String? in
                let data = FileManager.default.contents(atPath: host.outside("/var/lib/tend/agent.json")) ?? Data()
                return (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["last_cycle"] as? String
            }
            let before = cycle()
            try await Task.sleep(for: .seconds(1))
            try await host.run(["systemctl", "reload", "tend.service"])
            #expect(try await AgentTests.eventually(20) { cycle() != before }, "no cycle ran after the reload")
            #expect(try await Self.health(host) == "200 v1")
            #expect(try await host.tendJournal().entries.filter { ($0["MESSAGE"] as? String)?.contains("putting back") == true }.count == 1)

            // A new commit is tried, and passes.
            try await remote.push(Self.site(200, "v3"), "fixed site")
            try await host.run(["systemctl", "reload", "tend.service"])
            #expect(try await AgentTests.eventually(30) { try await Self.health(host) == "200 v3" }, "the fixed commit was not applied")
            #expect(try await AgentTests.eventually(10) { (try await host.tend(["status"])).status == 0 }, "status still unhealthy after the fix")
        }
    }
}
