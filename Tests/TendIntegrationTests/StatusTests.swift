import Foundation
import Subprocess
import SystemPackage
import Testing

/// `tend status` as scripts and monitoring read it: an exit code for each way a host can need
/// attention, the reasons in `--json`, and a plain refusal for users who cannot read the records.
@Suite("status that can be scripted")
struct StatusTests {
    static func problems(_ run: TendRun) -> [String] {
        guard let json = try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
              let problems = json["problems"] as? [[String: Any]] else { return ["(no JSON: \(run))"] }
        return problems.compactMap { $0["code"] as? String }
    }

    @Test("healthy exits 0; suspended 10; a lock held for over an hour, a full state folder and failed fetches counted across --once runs 9, each named in --json; the source is agent.yaml's",
          .enabled(if: isRoot && FileManager.default.fileExists(atPath: "/usr/bin/flock"), "needs root (a tmpfs, the lock) and flock(1)"))
    func exitCodes() async throws {
        let root = try makeRoot()
        let repo = try await GitRepo()
        try await repo.commit(appConfig("v1\n"), "v1")
        let state = try Scratch("tend-state")
        let settings = try Scratch("tend-agent-yaml")
        try await withGitDaemon(serving: repo.path) { url in
            try settings.write(["agent.yaml": "repo: \(url)\nstate_dir: \(state.path)\nroot: \(root.path)\n"])
            let agent = try await tend(["agent", "--once", "--config", settings.url("agent.yaml")])
            #expect(agent.status == 0, "\(agent)")
        }
        let status = ["status", "--config", settings.url("agent.yaml")]
        let healthy = try await tend(status)
        #expect(healthy.status == 0 && healthy.stdout.contains("Health:     nothing needs attention"), "\(healthy)")
        #expect(Self.problems(try await tend(status + ["--json"])) == [])

        // Suspended, and nothing else.
        #expect(try await tend(["suspend", "--reason", "by hand", "--root", root.path]).status == 0)
        let suspended = try await tend(status)
        #expect(suspended.status == 10 && suspended.stdout.contains("[suspended]"), "\(suspended)")
        #expect(Self.problems(try await tend(status + ["--json"])) == ["suspended"])
        #expect(try await tend(["resume", "--root", root.path]).status == 0)

        // The agent.yaml now names another repository: status says which, and where the records came from.
        try settings.write(["agent.yaml": "repo: git://127.0.0.1:1/moved.git\nstate_dir: \(state.path)\nroot: \(root.path)\n"])
        let moved = try await tend(status)
        #expect(moved.stdout.contains("Source:     git://127.0.0.1:1/moved.git; what is recorded below came from git://127.0.0.1:"), "\(moved)")

        // Three one-shot runs that cannot fetch: counted across runs, not "1 in a row" each.
        for _ in 0..<3 { _ = try await tend(["agent", "--once", "--config", settings.url("agent.yaml"), "--fetch-timeout", "2"]) }
        let failing = try await tend(status)
        #expect(failing.status == 9 && failing.stdout.contains("Fetch:      3 failed in a row"), "\(failing)")
        #expect(Self.problems(try await tend(status + ["--json"])).contains("fetch_failing"))

        // The lock, held for two hours.
        let lock = try lockFile(of: root.path)
        let marker = root.url("held")
        let held = try await Subprocess.run(.path("/usr/bin/flock"), arguments: ["-o", lock, "/bin/sh", "-c", #"touch -d '2 hours ago' "$2"; echo $$ > "$1.new" && mv "$1.new" "$1"; exec sleep 120"#, "sh", marker, lock],
                                            input: .none, output: .discarded, error: .discarded) { _ in
            try #require(try await AgentTests.eventually(60) { FileManager.default.fileExists(atPath: marker) }, "flock never took the lock")
            let holder = try #require(read(marker).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
            defer { kill(holder, SIGKILL) }
            return try await tend(status + ["--json"])
        }.closureResult
        #expect(held.status == 9 && Self.problems(held).contains("lock_held"), "\(held)")
        #expect(held.stdout.contains("has held the lock of \(root.path) for 2h"), "\(held)")

        // The state folder's disk full: a 4 MiB tmpfs over the root's records, then filled.
        let records = root.url("var/lib/tend")
        let saved = try Scratch("tend-records")
        try await sh("/bin/cp", ["-a", records + "/.", saved.path])
        try await sh("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tend-full", records])
        defer { _ = try? FileManager.default.removeItem(atPath: records + "/filler"); umount2(records, Int32(MNT_DETACH)) }
        try await sh("/bin/cp", ["-a", saved.path + "/.", records])
        let room = try await tend(status + ["--json"])
        #expect(!Self.problems(room).contains("state_unwritable"), "a state folder with room is unwritable: \(room)")
        _ = try? await sh("/bin/dd", ["if=/dev/zero", "of=\(records)/filler", "bs=64k"])
        let full = try await tend(status + ["--json"])
        #expect(full.status == 9 && Self.problems(full).contains("state_unwritable"), "\(full)")
    }

    @Test("run by another user, status and blame say to run as root instead of telling of no records",
          .enabled(if: isRoot && FileManager.default.fileExists(atPath: "/usr/sbin/runuser"), "needs root and runuser(1)"))
    func nonRoot() async throws {
        let root = try makeRoot()
        chmod(root.path, 0o755)
        let repo = try repository(["a.yaml": "resources:\n  - file: /etc/x\n    content: \"x\\n\"\n"])
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        for command in [["status"], ["blame", "/etc/x"]] {
            let run = try await Subprocess.run(.path("/usr/sbin/runuser"), arguments: Arguments(["-u", "nobody", "--", tendBinary] + command + ["--root", root.path]),
                                               input: .none, output: .string(limit: 1 << 16), error: .string(limit: 1 << 16))
            #expect(run.terminationStatus == .exited(1), "\(command): \(run.standardOutput) \(run.standardError)")
            #expect(run.standardError.contains("permission denied reading \(root.path)/var/lib/tend: run as root"), "\(command): \(run.standardError)")
            #expect(!run.standardOutput.contains("has not run") && !run.standardError.contains("nothing has been applied"), "\(command)")
        }
    }
}
