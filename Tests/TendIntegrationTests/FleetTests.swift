import Foundation
import Testing

/// A fleet of 20 test hosts (scripts/fleet.sh): each with its own machine ID, hostname and
/// address, running the agent under systemd, pulling one repository from a git daemon on their
/// network, and sending its journal to one collector (systemd-journal-upload to
/// systemd-journal-remote), where the fleet's results are queried by tend's fields.
@Suite("a fleet of test hosts", .enabled(if: TestHost.available && FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd-journal-remote"),
                                         "needs test hosts and systemd-journal-remote (installed by make test)"))
struct FleetTests {
    static let size = 20
    static let script = PackagingTests.packageRoot + "/scripts/fleet.sh"

    struct Member: Sendable {
        let host: TestHost
        let name: String
        var index: Int { Int(name.dropFirst("fleet-".count))! }
        var role: String { index.isMultiple(of: 2) ? "db" : "web" }
    }

    /// Boots the fleet, runs `body` with its hosts and network, and ends every host and the
    /// network whatever `body` did.
    static func withFleet(_ body: @Sendable @escaping ([Member], TestNetwork, Scratch) async throws -> Void) async throws {
        let folder = try Scratch("tend-fleet")
        defer {
            let down = Process()
            down.executableURL = URL(fileURLWithPath: "/bin/bash")
            down.arguments = [Self.script, "down", folder.path]
            try? down.run()
            down.waitUntilExit()
        }
        // Twenty hosts boot at once here: no other test host boots meanwhile.
        var slots: [BootSlots.Slot] = []
        for _ in 0..<3 { slots.append(await BootSlots.shared.take()) }
        defer { slots.forEach { $0.release() } }
        _ = try await sh("/bin/bash", [Self.script, "up", folder.path, "\(Self.size)", tendBinary])
        slots.forEach { $0.release() }
        let members = try String(contentsOfFile: folder.url("hosts"), encoding: .utf8).split(separator: "\n").map { line in
            let fields = line.split(separator: " ").map(String.init)
            return Member(host: TestHost(pid: Int32(fields[0])!, base: folder.url(fields[2])), name: fields[2])
        }
        let network = TestNetwork(name: try String(contentsOfFile: folder.url("netns"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        try await body(members, network, folder)
    }

    /// The repository: a motd for every host, a file per role (by label), one more for the
    /// hostnames fleet-01 to fleet-03, and on fleet-07 a file whose owner does not exist.
    static func configuration(_ version: String) -> [String: String] {
        [
            "tend.yaml": """
                hosts:
                  - apply: [base]
                  - match: { labels: { role: web } }
                    apply: [web]
                  - match: { labels: { role: db } }
                    apply: [db]
                  - match: { hostname: ["fleet-0[1-3]"] }
                    apply: [canary]
                  - match: { hostname: [fleet-07] }
                    apply: [broken]

                """,
            "base/base.yaml": "resources:\n  - file: /etc/fleet/motd\n    template: files/motd.mustache\n",
            "base/files/motd.mustache": "{{host.hostname}} runs {{host.labels.role}} \(version)\n",
            "web/web.yaml": "resources:\n  - file: /etc/fleet/web.conf\n    content: \"web\\n\"\n",
            "db/db.yaml": "resources:\n  - file: /etc/fleet/db.conf\n    content: \"db\\n\"\n",
            "canary/canary.yaml": "resources:\n  - file: /etc/fleet/canary\n    content: \"yes\\n\"\n",
            "broken/broken.yaml": "resources:\n  - file: /etc/fleet/broken\n    content: \"x\\n\"\n    owner: no-such-user\n",
        ]
    }

    /// The commit `member`'s agent last ran, from its last-run.json.
    static func lastRun(_ member: Member) -> (commit: String?, result: String?) {
        guard let data = FileManager.default.contents(atPath: member.host.outside("/var/lib/tend/last-run.json")),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return (nil, nil) }
        return ((json["source"] as? [String: Any])?["commit"] as? String, json["result"] as? String)
    }

    @Test("20 hosts pull one repository: each gets exactly what tend.yaml gives its labels and hostname, the preview from their snapshots is what each agent then does with a pushed commit, which reaches all, a commit in waves moves wave by wave, and the fleet's results are queried at one journal collector")
    func fleetConvergesAndReports() async throws {
        // Both commits are made first; the server's main points at the first until the push.
        let repo = try await GitRepo()
        let first = try await repo.commit(Self.configuration("v1"), "fleet v1")
        let second = try await repo.commit(Self.configuration("v2"), "fleet v2")
        let work = repo.path
        try await Self.withFleet { members, network, folder in
            let served = folder.url("git/fleet.git")
            _ = try await sh("/usr/bin/git", ["clone", "-q", "--bare", work, served])
            _ = try await sh("/usr/bin/git", ["-C", served, "update-ref", "refs/heads/main", first])
            try await network.withGitDaemon(serving: folder.url("git")) { url in
                try await network.withJournalCollector(output: folder.url("collected")) {
                    // The agent from the shipped unit on every host, and its journal sent to the collector.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for member in members {
                            group.addTask {
                                try AgentTests.install(member.host)
                                try member.host.write([
                                    "/etc/tend/agent.yaml": "repo: \(url)fleet.git\nref: main\ninterval: 5s\nsplay: 5s\nlabels:\n  role: \(member.role)\n",
                                    "/etc/systemd/journal-upload.conf.d/fleet.conf": "[Upload]\nURL=http://\(network.gateway):19532\n",
                                    // docs/fleet.md's drop-in: an upload that fails once (the collector busy under
                                    // the suite's load) is retried instead of ending after five quick restarts.
                                    "/etc/systemd/system/systemd-journal-upload.service.d/retry.conf":
                                        "[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nRestart=always\nRestartSec=10s\n",
                                ])
                                try await member.host.run(["systemctl", "daemon-reload"])
                                let start = try await member.host.run(["systemctl", "start", "tend.service", "systemd-journal-upload.service"])
                                #expect(start.status == 0, "\(member.name): \(start)")
                            }
                        }
                        try await group.waitForAll()
                    }

                    for member in members {
                        let run = Self.lastRun(member)
                        #expect(run.commit == first, "\(member.name) did not apply the first commit: \(run)")
                        // Applied, or checked again since (every 5 s); fleet-07's broken file fails on each run.
                        #expect(member.name == "fleet-07" ? run.result == "failed" : ["changed", "converged"].contains(run.result), "\(member.name): \(run)")
                        let files = Set((try? FileManager.default.contentsOfDirectory(atPath: member.host.outside("/etc/fleet"))) ?? [])
                        var expected: Set<String> = ["motd", member.role + ".conf"]
                        if member.index <= 3 { expected.insert("canary") }
                        #expect(files == expected, "\(member.name) (\(member.role)) has \(files.sorted())")
                        #expect(read(member.host.outside("/etc/fleet/motd")) == "\(member.name) runs \(member.role) v1\n")
                    }

                    // Before the push: each host's snapshot, and the fleet's preview of the second commit.
                    let snapshots = folder.url("snapshots")
                    try FileManager.default.createDirectory(atPath: snapshots, withIntermediateDirectories: true)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for member in members {
                            group.addTask {
                                let taken = try await member.host.tend(["snapshot", "--out", "/root/snapshot.json"])
                                #expect(taken.status == 0, "\(member.name): \(taken)")
                            }
                        }
                        try await group.waitForAll()
                    }
                    for member in members {
                        try FileManager.default.copyItem(atPath: member.host.outside("/root/snapshot.json"), toPath: snapshots + "/\(member.name).json")
                    }
                    let previewRun = try await tend(["plan", "--snapshots", snapshots, "--repo", work, "--ref", "main", "--state-dir", folder.url("preview-state"), "--json"])
                    #expect(previewRun.status == 5, "fleet-07 fails in the preview: \(previewRun)")
                    let previewed = (try JSONSerialization.jsonObject(with: Data(previewRun.stdout.utf8)) as? [String: Any])?["hosts"] as? [[String: Any]] ?? []
                    #expect((try JSONSerialization.jsonObject(with: Data(previewRun.stdout.utf8)) as? [String: Any])?["commit"] as? String == second)
                    let preview = Dictionary(previewed.map { host in
                        let ids = { (key: String) in Set((host[key] as? [[String: Any]] ?? []).compactMap { $0["resource"] as? String }) }
                        return (host["hostname"] as? String ?? "?", (changes: ids("changes"), errors: ids("errors")))
                    }) { first, _ in first }
                    #expect(preview.count == Self.size, "\(previewRun.stdout)")
                    #expect(preview["fleet-07"]?.errors == ["file:/etc/fleet/broken"], "\(previewRun.stdout)")

                    // A pushed commit reaches every host within its interval and splay.
                    _ = try await sh("/usr/bin/git", ["-C", served, "update-ref", "refs/heads/main", second])
                    #expect(try await AgentTests.eventually(60) { members.allSatisfy { Self.lastRun($0).commit == second } },
                            "not every host took the second commit: \(members.filter { Self.lastRun($0).commit != second }.map(\.name))")
                    for member in members {
                        #expect(read(member.host.outside("/etc/fleet/motd")) == "\(member.name) runs \(member.role) v2\n")
                        // What the agent did with the commit is what the preview said it would.
                        _ = try await member.host.run(["journalctl", "--sync"])
                        let entries = try await member.host.run(["journalctl", "-o", "json", "--no-pager", "TEND_COMMIT=\(second)"])
                            .stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                        let resources = { (result: String) in Set(entries.filter { $0["TEND_RESULT"] as? String == result }.compactMap { $0["TEND_RESOURCE"] as? String }) }
                        #expect(resources("done") == preview[member.name]?.changes, "\(member.name): the agent changed \(resources("done").sorted()); the preview said \(preview[member.name]?.changes.sorted() ?? [])")
                        #expect(resources("failed") == preview[member.name]?.errors, "\(member.name): the agent failed \(resources("failed").sorted()); the preview said \(preview[member.name]?.errors.sorted() ?? [])")
                    }

                    // A third commit in two waves: a quarter of the fleet at once, the rest 45 s after
                    // the commit. `tend rollout status` names the first wave; it moves, the rest waits.
                    try FileManager.default.createDirectory(atPath: work + "/base/files", withIntermediateDirectories: true)
                    for (path, text) in Self.configuration("v3") {
                        try Data((path == "tend.yaml" ? "rollout:\n  waves:\n    - share: 25%\n    - share: 100%\n      after: 45s\n" + text : text).utf8)
                            .write(to: URL(fileURLWithPath: work + "/" + path))
                    }
                    let identity = ["-c", "user.name=Alice Admin", "-c", "user.email=alice@example.com", "-C", work]
                    _ = try await sh("/usr/bin/git", identity + ["add", "-A"])
                    _ = try await sh("/usr/bin/git", identity + ["commit", "-q", "-m", "fleet v3 in waves"])
                    let third = try await sh("/usr/bin/git", ["-C", work, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
                    _ = try await sh("/usr/bin/git", ["-C", served, "fetch", "-q", work, "main:main"])
                    let fleet = try String(contentsOfFile: folder.url("hosts"), encoding: .utf8).split(separator: "\n")
                        .map { line in let fields = line.split(separator: " "); return "\(fields[3]) \(fields[2])" }.joined(separator: "\n")
                    try Data(fleet.utf8).write(to: URL(fileURLWithPath: folder.url("fleet.txt")))
                    let rollout = try await tend(["rollout", "status", "--repo", served, "--ref", "main", "--state-dir", folder.url("state"),
                                                  "--label", "role=web", "--machine-ids", folder.url("fleet.txt")])
                    let firstLine = rollout.stdout.split(separator: "\n").first { $0.hasPrefix("wave 1 of 2: 25% of the fleet") }.map(String.init) ?? ""
                    // "…; 5 hosts: fleet-04, fleet-09, …": the names follow the line's last ": ".
                    let firstWave = Set((firstLine.components(separatedBy: ": ").last ?? "").components(separatedBy: ", ").filter { $0.hasPrefix("fleet-") })
                    #expect(!firstWave.isEmpty && firstWave.count < Self.size / 2 && !firstLine.contains("…"), "\(rollout)")
                    let v3 = { (member: Member) in read(member.host.outside("/etc/fleet/motd")) == "\(member.name) runs \(member.role) v3\n" }
                    #expect(try await AgentTests.eventually(15) { members.filter { firstWave.contains($0.name) }.allSatisfy(v3) }, "the first wave did not take the commit")
                    let moved = members.filter(v3).map(\.name)
                    #expect(Set(moved) == firstWave, "only the first wave has the commit before 45 s: \(moved.sorted()) against \(firstWave.sorted())")
                    if let waiting = members.first(where: { !firstWave.contains($0.name) }) {
                        #expect(try await AgentTests.eventually(12) {
                            (try await waiting.host.tend(["status"])).stdout.contains("Rollout:    \(third.prefix(7)) reaches this host at")
                        }, "\(waiting.name) does not say when it takes the commit")
                    }
                    #expect(try await AgentTests.eventually(70) { members.allSatisfy(v3) }, "the second wave did not take the commit: \(members.filter { !v3($0) }.map(\.name))")

                    // The fleet's results at the collector, by tend's journal fields.
                    func collected(_ filter: [String]) async throws -> [[String: Any]] {
                        let out = try await sh("/usr/bin/journalctl", ["-D", folder.url("collected"), "-o", "json", "--no-pager"] + filter)
                        return out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                    }
                    // Uploads come in a little after the change: every host's motd change of the second commit.
                    let uploaded = {
                        Set(try await collected(["TEND_COMMIT=\(second)", "TEND_RESOURCE=file:/etc/fleet/motd", "TEND_RESULT=done"]).compactMap { $0["_HOSTNAME"] as? String })
                    }
                    if !(try await AgentTests.eventually(30) { try await uploaded().count == Self.size }) {
                        let missing = try await Set(members.map(\.name)).subtracting(uploaded())
                        var uploaders = ""
                        for member in members where missing.contains(member.name) {
                            let shown = try await member.host.run(["systemctl", "show", "-p", "ActiveState,SubState,Result,NRestarts", "systemd-journal-upload.service"])
                            let logged = try await member.host.run(["journalctl", "--no-pager", "-n", "15", "-u", "systemd-journal-upload.service"])
                            uploaders += "\n\(member.name): \(shown.stdout)\(logged.stdout)"
                        }
                        Issue.record("the collector does not have the second commit's change of \(missing.sorted()); their uploaders:\(uploaders)")
                    }
                    let failed = try await collected(["TEND_RESULT=failed"])
                    #expect(!failed.isEmpty && failed.allSatisfy { $0["_HOSTNAME"] as? String == "fleet-07" }, "\(failed.map { $0["_HOSTNAME"] ?? "?" })")
                    #expect(failed.contains { $0["TEND_RESOURCE"] as? String == "file:/etc/fleet/broken" && ($0["MESSAGE"] as? String)?.contains("no-such-user") == true })
                }
            }
        }
    }
}
