import Foundation
import Testing

/// `tend snapshot` on a test host, and `tend plan --snapshot(s)` outside it: the preview of a new
/// commit equals the plan the host itself makes, and what its apply then does; no secret of the
/// host is in the snapshot.
@Suite("fleet preview from snapshots", .enabled(if: TestHost.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-scanpackages"),
                                                 "needs test hosts and dpkg-scanpackages (dpkg-dev)"))
struct SnapshotTests {
    static let hash = "$6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmn"
    static let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGfXbXnKYFZgYZ0x0j6Yy1n2nq8JtQ2rKkq2mQhXH0Jt deploy@example.com"

    /// A configuration in `folder` of the host: open and private files, a sensitive one, a user
    /// with a password and keys, and a unit; `version` changes what a new commit changes.
    static func configuration(_ folder: String, version: Int) -> [String: String] {
        let unitState = version == 1 ? "running" : "stopped"
        return [
            folder + "/tend.yaml": "hosts:\n  - apply: [site]\n",
            folder + "/site/site.yaml": """
                resources:
                  - file: /etc/app/app.conf
                    content: "port = \(8000 + version)\\n"
                  - file: /etc/app/secret.key
                    content: "s3cret-v\(version)\\n"
                    sensitive: true
                  - file: /etc/app/private.conf
                    content: "private-text\\n"
                    mode: "0600"
                  - file: /root/notes
                    content: "readable-but-in-root\\n"
                    mode: "0644"
                \(version == 2 ? "  - file: /etc/app/new.conf\n    content: \"new\\n\"\n" : "")\
                  - user: deploy
                    uid: 2100
                    home: /home/deploy
                    shell: \(version == 1 ? "/bin/bash" : "/bin/sh")
                    password: "\(hash)"
                    authorized_keys: ["\(key)"]
                  - unit: preview.service
                    content: |
                      [Service]
                      ExecStart=/bin/sleep infinity
                      [Install]
                      WantedBy=multi-user.target
                    enabled: true
                    state: \(unitState)

                """,
        ]
    }

    /// A plan's steps as JSON objects, without what only the machine that planned can know.
    static func steps(_ run: TendRun) -> [NSDictionary] {
        guard let json = try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
              let steps = json["steps"] as? [[String: Any]] else { return [] }
        return steps.map { step in
            var step = step
            step["observed_fingerprint"] = nil
            return step as NSDictionary
        }
    }

    @Test("a snapshot plans a new commit elsewhere exactly as the host then plans and applies it; sensitive and private contents, and the password hash, are not in it")
    func previewMatchesTheHost() async throws {
        try await withTestHost { host in
            try host.write(Self.configuration("/srv/v1", version: 1).merging(Self.configuration("/srv/v2", version: 2)) { a, _ in a })
            let first = try await host.tend(["apply", "/srv/v1"])
            #expect(first.status == 0, "\(first)")

            let taken = try await host.tend(["snapshot", "/srv/v1", "--out", "/root/host.json"])
            #expect(taken.status == 0, "\(taken)")
            #expect(taken.stdout.contains("Wrote /root/host.json: "), "\(taken)")
            #expect(taken.stdout.contains("converged"), "\(taken)")
            let file = host.outside("/root/host.json")
            #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o600)

            // Nothing secret anywhere in it, in the raw JSON or in any content it holds.
            let raw = try String(contentsOfFile: file, encoding: .utf8)
            let json = try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any]
            let paths = (json?["observed"] as? [String: Any])?["paths"] as? [String: [String: Any]] ?? [:]
            let texts = paths.compactMapValues { ($0["text"] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } }
            // /root/notes is 0644, but /root lets no one else through.
            for secret in ["s3cret-v1", "private-text", "saltsalt", "readable-but-in-root"] {
                #expect(!raw.contains(secret) && !texts.values.contains { $0.contains(secret) }, "\(secret) is in the snapshot")
            }
            #expect(texts["/etc/app/app.conf"] == "port = 8001\n", "an open file's content is kept for diffs")
            #expect(paths["/etc/app/secret.key"]?["digest"] != nil && paths["/etc/app/private.conf"]?["digest"] != nil)
            #expect(texts["/etc/shadow"]?.contains("deploy:tend-sha256-") == true, "the shadow file keeps its lines with digests")
            #expect((json?["facts"] as? [String: Any])?["hostname"] as? String != nil)

            // Outside the host: the same commit needs nothing, as on the host.
            let state = try Scratch("tend-preview-state")
            let same = try await tend(["plan", "--snapshot", file, host.outside("/srv/v1"), "--state-dir", state.path, "--detailed-exitcode"])
            #expect(same.status == 0, "the snapshot's own configuration is not converged in the preview: \(same)")

            // The new commit: previewed outside equals the host's own plan, step by step.
            let preview = try await tend(["plan", "--snapshot", file, host.outside("/srv/v2"), "--state-dir", state.path, "--json"])
            #expect(preview.status == 0, "\(preview)")
            #expect(preview.stderr.contains("recorded nothing of /etc/app/new.conf; taken as absent"), "\(preview)")
            let onHost = try await host.tend(["plan", "/srv/v2", "--json"])
            let previewed = Self.steps(preview)
            #expect(previewed.count == 5 && previewed.allSatisfy { $0["change"] != nil && $0["error"] == nil }, "\(preview.stdout)")
            #expect(previewed == Self.steps(onHost), "preview:\n\(preview.stdout)\non the host:\n\(onHost.stdout)")
            let text = try await tend(["plan", "--snapshot", file, host.outside("/srv/v2"), "--state-dir", state.path])
            #expect(text.stdout.contains("content: (sensitive content changed)") && text.stdout.contains("+port = 8002"), "\(text)")
            #expect(!text.stdout.contains("s3cret"), "\(text)")

            // What the host's apply then does is what was previewed.
            let apply = try await host.tend(["apply", "/srv/v2", "--json"])
            #expect(apply.status == 0, "\(apply)")
            let report = try JSONSerialization.jsonObject(with: Data(apply.stdout.utf8)) as? [String: Any]
            let done = Set(((report?["resources"] as? [[String: Any]]) ?? []).filter { $0["result"] as? String == "done" }.compactMap { $0["id"] as? String })
            #expect(done == Set(previewed.compactMap { $0["id"] as? String }), "applied \(done.sorted()); \(apply.stdout)")

            // A fleet's folder: each host summarised, an unreadable snapshot named as failing.
            let fleet = try Scratch("tend-preview-fleet")
            try FileManager.default.copyItem(atPath: file, toPath: fleet.url("a.json"))
            try FileManager.default.copyItem(atPath: file, toPath: fleet.url("b.json"))
            try Data("{}".utf8).write(to: URL(fileURLWithPath: fleet.url("c.json")))
            let summary = try await tend(["plan", "--snapshots", fleet.path, host.outside("/srv/v2"), "--state-dir", state.path])
            #expect(summary.status == 5, "a host that fails fails the preview: \(summary)")
            #expect(summary.stdout.hasPrefix("Preview for 3 hosts of ") && summary.stdout.contains("\n0 unchanged, 2 change, 1 fail\n"), "\(summary)")
            #expect(summary.stdout.contains("+ file:/etc/app/new.conf on 2 hosts"), "\(summary)")
            #expect(summary.stdout.contains("c.json: not a tend snapshot (no format_version)"), "\(summary)")
            try FileManager.default.removeItem(atPath: fleet.url("c.json"))
            let detailed = try await tend(["plan", "--snapshots", fleet.path, host.outside("/srv/v2"), "--state-dir", state.path, "--json", "--detailed-exitcode"])
            #expect(detailed.status == 2, "\(detailed)")
            let hosts = (try JSONSerialization.jsonObject(with: Data(detailed.stdout.utf8)) as? [String: Any])?["hosts"] as? [[String: Any]] ?? []
            #expect(hosts.count == 2 && hosts.allSatisfy { $0["result"] as? String == "changes" && ($0["changes"] as? [Any])?.count == 5 }, "\(detailed.stdout)")

            // A hostile snapshot: control characters in its hostname and paths reach no terminal.
            var hostile = try JSONSerialization.jsonObject(with: Data(raw.utf8)) as! [String: Any]
            var facts = hostile["facts"] as! [String: Any]
            facts["hostname"] = "evil\u{1b}]0;owned\u{7}\u{1b}[31m"
            hostile["facts"] = facts
            var observed = hostile["observed"] as! [String: Any]
            var hostilePaths = observed["paths"] as! [String: Any]
            hostilePaths["/etc/app/\u{1b}[2J"] = ["text": Data("x".utf8).base64EncodedString()]
            observed["paths"] = hostilePaths
            hostile["observed"] = observed
            try JSONSerialization.data(withJSONObject: hostile).write(to: URL(fileURLWithPath: fleet.url("a.json")))
            let escaped = try await tend(["plan", "--snapshots", fleet.path, host.outside("/srv/v2"), "--state-dir", state.path])
            #expect(escaped.status == 0 && escaped.stdout.contains("evil\\e]0;owned"), "\(escaped)")
            #expect(!escaped.stdout.contains("\u{1b}") && !escaped.stderr.contains("\u{1b}"), "a control character reached the terminal: \(escaped)")

            // A snapshot of another format is refused, naming the file.
            try Data(#"{"format_version": 99}"#.utf8).write(to: URL(fileURLWithPath: fleet.url("future.json")))
            let future = try await tend(["plan", "--snapshot", fleet.url("future.json"), host.outside("/srv/v2"), "--state-dir", state.path])
            #expect(future.status == 1 && future.stderr.contains("future.json: snapshot format 99; this tend reads format 1"), "\(future)")
        }
    }

    @Test("packages: the preview of an upgrade, a removal and a new package from a snapshot is the host's own plan, apt's candidates as the host recorded them")
    func packages() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            let site = { (resources: String) in ["/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n", "/srv/config/site/packages.yaml": "resources:\n" + resources] }
            try host.write(site("  - package: tend-test-app\n    version: \"1.0-1\"\n  - package: tend-test-conf\n"))
            let first = try await host.tend(["apply", "/srv/config"])
            #expect(first.status == 0, "\(first)")
            let taken = try await host.tend(["snapshot", "/srv/config", "--out", "/root/host.json"])
            #expect(taken.status == 0 && taken.stdout.contains("converged"), "\(taken)")

            try host.write(site("  - package: tend-test-app\n    state: latest\n  - package: tend-test-conf\n    state: absent\n  - package: tend-test-other\n"))
            let state = try Scratch("tend-preview-state")
            let preview = try await tend(["plan", "--snapshot", host.outside("/root/host.json"), host.outside("/srv/config"), "--state-dir", state.path, "--json"])
            #expect(preview.status == 0, "\(preview)")
            let onHost = try await host.tend(["plan", "/srv/config", "--json"])
            let previewed = Self.steps(preview)
            let planned = Self.steps(onHost)
            #expect(previewed.map { $0["id"] as? String } == ["package:tend-test-app", "package:tend-test-conf", "package:tend-test-other"], "\(preview.stdout)")
            // The upgrade (2.0-1, apt's candidate recorded on the host) and the removal are the host's own.
            #expect(Array(previewed.prefix(2)) == Array(planned.prefix(2)), "preview:\n\(preview.stdout)\non the host:\n\(onHost.stdout)")
            // A package the snapshot never knew: installed, at the candidate the host will find.
            let text = try await tend(["plan", "--snapshot", host.outside("/root/host.json"), host.outside("/srv/config"), "--state-dir", state.path])
            #expect(text.stdout.contains("version: 1.0-1 → 2.0-1") && text.stdout.contains("held:    true → false"), "\(text)")
            #expect(text.stdout.contains("+ package:tend-test-other") && text.stdout.contains("(absent) → (apt's candidate on the host (not in its snapshot))"), "\(text)")

            let apply = try await host.tend(["apply", "/srv/config", "--json"])
            #expect(apply.status == 0, "\(apply)")
            let report = try JSONSerialization.jsonObject(with: Data(apply.stdout.utf8)) as? [String: Any]
            let done = ((report?["resources"] as? [[String: Any]]) ?? []).filter { $0["result"] as? String == "done" }.compactMap { $0["id"] as? String }
            #expect(Set(done) == Set(previewed.compactMap { $0["id"] as? String }), "\(apply.stdout)")
        }
    }
}

/// `tend snapshot --root`: an image or a chroot previewed as a host is.
@Suite("snapshots of a root")
struct RootSnapshotTests {
    @Test("a snapshot of a root records that root (its files, its records, its machine ID) and plans its own configuration as converged; its units are said not to be planned from it")
    func snapshotOfARoot() async throws {
        let root = try makeRoot()
        chmod(root.path, 0o755)
        try root.write(["etc/machine-id": "0123456789abcdef0123456789abcdef\n"])
        let repo = try repository(["files.yaml": "resources:\n  - file: /etc/motd\n    content: \"hello\\n\"\n  - directory: /srv/app\n    owner: www-data\n"],
                                  extra: ["units/units.yaml": "resources:\n  - unit: app.service\n    enabled: true\n"])
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        let out = try Scratch("tend-snapshot")
        let taken = try await tend(["snapshot", repo.path, "--root", root.path, "--hostname", "web-01", "--out", out.url("web-01.json")])
        #expect(taken.status == 0 && taken.stdout.contains("web-01, 2 resources") && taken.stdout.contains("converged"), "\(taken)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out.url("web-01.json")))) as? [String: Any])
        #expect(json["machine_id"] as? String == "0123456789abcdef0123456789abcdef", "\(json.keys)")
        #expect((json["inventory"] as? [String: Any]) != nil, "the root's own records are in it")
        let plan = try await tend(["plan", repo.path, "--snapshot", out.url("web-01.json"), "--detailed-exitcode"])
        #expect(plan.status == 0 && plan.stdout.contains("No changes"), "\(plan)")
        try "edited\n".write(toFile: root.url("etc/motd"), atomically: false, encoding: .utf8)
        let drifted = try await tend(["snapshot", repo.path, "--root", root.path, "--hostname", "web-01", "--out", out.url("drifted.json")])
        #expect(drifted.stdout.contains("1 change pending"), "\(drifted)")
        // A unit: no manager ran in the root, so none is planned from its snapshot, and it says so.
        try FileManager.default.removeItem(atPath: repo.url("tend.yaml"))
        try repo.write(["tend.yaml": "hosts:\n  - apply: [site, units]\n"])
        let units = try await tend(["plan", repo.path, "--snapshot", out.url("web-01.json")])
        #expect(units.stdout.contains("no service manager ran where the snapshot was taken"), "\(units)")
    }
}
