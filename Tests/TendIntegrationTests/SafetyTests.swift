import Foundation
import Testing

/// What tend must never do: show secrets, write through links, apply a stale plan, or let one
/// failure stop unrelated work.
@Suite("safety")
struct SafetyTests {
    @Test("sensitive content never appears in the plan, the JSON plan or the apply output")
    func sensitiveNeverPrinted() async throws {
        let secret = "s3cr3t-token-9f8e7d"
        let repo = try repository(["secret.yaml": """
            resources:
              - file: /etc/app/token
                content: "\(secret)\\n"
                mode: "0600"
                sensitive: true
            """])
        let root = try makeRoot()
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.stdout.contains("(sensitive content changed)"), "\(plan)")
        let json = try await tend(["plan", repo.path, "--root", root.path, "--json"])
        #expect(json.stdout.contains("\"kind\" : \"sensitive\""), "\(json)")
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--verbose"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/app/token")) == secret + "\n")

        try "old-\(secret)\n".write(toFile: root.url("etc/app/token"), atomically: false, encoding: .utf8)
        let drift = try await tend(["plan", repo.path, "--root", root.path, "--out", root.url("plan.json")])
        #expect(drift.stdout.contains("~ file:/etc/app/token"))
        for output in [plan.stdout, plan.stderr, json.stdout, apply.stdout, apply.stderr, drift.stdout, drift.stderr, read(root.url("plan.json")) ?? ""] {
            #expect(!output.contains(secret), "the secret leaked: \(output)")
        }
    }

    @Test("a link planted at a managed path to a file outside the root is reported and never written through")
    func symlinkAtPathNotFollowed() async throws {
        let outside = try Scratch("tend-outside")
        try outside.write(["shadow": "root:precious:0:0\n"])
        let root = try makeRoot()
        symlink(outside.url("shadow"), root.url("etc/app.conf"))
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/app.conf\n    content: \"owned\\n\"\n    mode: \"0666\"\n"])

        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.status == 5, "\(plan)")
        #expect(plan.stdout.contains("! file:/etc/app.conf: /etc/app.conf: is a symbolic link to \(outside.url("shadow"))"))
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 5, "\(apply)")
        #expect(apply.stdout.contains("✗ file:/etc/app.conf: failed"))
        #expect(read(outside.url("shadow")) == "root:precious:0:0\n")
        #expect(try #require(status(outside.url("shadow"))).st_mode & 0o777 == 0o644)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/app.conf")) == outside.url("shadow"))
    }

    @Test("with force: true the planted link itself is replaced by the file; its target is untouched")
    func forceReplacesTheLink() async throws {
        let outside = try Scratch("tend-outside")
        try outside.write(["shadow": "root:precious:0:0\n"])
        let root = try makeRoot()
        symlink(outside.url("shadow"), root.url("etc/app.conf"))
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/app.conf\n    content: \"owned\\n\"\n    force: true\n"])
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.stdout.contains("± file:/etc/app.conf"), "\(plan)")
        #expect(plan.stdout.contains("note: replaces a symbolic link to \(outside.url("shadow"))"))
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        #expect(read(outside.url("shadow")) == "root:precious:0:0\n")
        #expect(try #require(status(root.url("etc/app.conf"))).st_mode & 0o170000 == 0o100000)
        #expect(read(root.url("etc/app.conf")) == "owned\n")
    }

    @Test("a link planted above a managed path (a folder) is never walked through")
    func symlinkAboveNotFollowed() async throws {
        let outside = try Scratch("tend-outside")
        let root = try makeRoot()
        symlink(outside.path, root.url("etc/nginx"))
        let repo = try repository(["nginx.yaml": "resources:\n  - file: /etc/nginx/nginx.conf\n    content: \"x\\n\"\n"])
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 5, "\(apply)")
        #expect(apply.stdout.contains("/etc/nginx: is a symbolic link"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
    }

    @Test("one failing resource fails its dependents, which are skipped with the reason, and the rest converge")
    func failureIsolation() async throws {
        let repo = try repository(["app.yaml": """
            resources:
              - directory: /srv/broken
                owner: nosuchuser
              - file: /srv/broken/config
                content: "a\\n"
              - file: /etc/needs-broken
                content: "b\\n"
                requires: [directory:/srv/broken]
              - file: /etc/independent
                content: "c\\n"
            """])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 5, "\(apply)")
        #expect(apply.stdout.contains("✗ directory:/srv/broken: failed: /srv/broken: user 'nosuchuser' does not exist on the host"))
        #expect(apply.stdout.contains("↷ file:/srv/broken/config: skipped: requires directory:/srv/broken, which did not converge"))
        #expect(apply.stdout.contains("↷ file:/etc/needs-broken: skipped: requires directory:/srv/broken"))
        #expect(apply.stdout.contains("+ file:/etc/independent: created"))
        #expect(apply.stdout.contains("1 failed, 2 skipped"))
        #expect(read(root.url("etc/independent")) == "c\n")
        #expect(status(root.url("srv/broken")) == nil)
        #expect(status(root.url("etc/needs-broken")) == nil)
    }

    @Test("apply --plan applies exactly the saved plan, and refuses, naming the resources, once the host changed")
    func savedPlan() async throws {
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/a\n    content: \"a\\n\"\n  - file: /etc/b\n    content: \"b\\n\"\n"])
        let root = try makeRoot()
        try root.write(["etc/a": "old\n"])
        let planFile = root.url("../\(UUID().uuidString).json")
        defer { unlink(planFile) }
        let plan = try await tend(["plan", repo.path, "--root", root.path, "--out", planFile])
        #expect(plan.status == 0, "\(plan)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: planFile))) as? [String: Any]
        #expect(json?["format_version"] as? Int == 2)
        #expect((json?["steps"] as? [Any])?.count == 2)

        try "changed meanwhile\n".write(toFile: root.url("etc/a"), atomically: false, encoding: .utf8)
        let before = try tree(root.path)
        let stale = try await tend(["apply", "--plan", planFile])
        #expect(stale.status == 6, "\(stale)")
        #expect(stale.stderr.contains("file:/etc/a: changed on the host since the plan was made"))
        #expect(!stale.stderr.contains("file:/etc/b"))
        #expect(stale.stderr.contains("Make a new plan with: tend plan \(repo.path) --root \(root.path) --out \(planFile)"), "the hint keeps the root: \(stale)")
        #expect(try tree(root.path) == before, "a refused plan changes nothing")

        try "old\n".write(toFile: root.url("etc/a"), atomically: false, encoding: .utf8)
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--out", planFile]).status == 0)
        try repo.write(["site/app.yaml": "resources:\n  - file: /etc/a\n    content: \"other\\n\"\n  - file: /etc/b\n    content: \"b\\n\"\n"])
        let changedConfig = try await tend(["apply", "--plan", planFile])
        #expect(changedConfig.status == 6, "\(changedConfig)")
        #expect(changedConfig.stderr.contains("file:/etc/a: declared differently than when the plan was made"))

        try repo.write(["site/app.yaml": "resources:\n  - file: /etc/a\n    content: \"a\\n\"\n  - file: /etc/b\n    content: \"b\\n\"\n"])
        let applied = try await tend(["apply", "--plan", planFile])
        #expect(applied.status == 0, "\(applied)")
        #expect(read(root.url("etc/a")) == "a\n")
        #expect(read(root.url("etc/b")) == "b\n")
    }

    @Test("apply --confirm refuses to run without a terminal to ask on")
    func confirmNeedsTerminal() async throws {
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/a\n    content: \"a\\n\"\n"])
        let root = try makeRoot()
        let run = try await tend(["apply", repo.path, "--root", root.path, "--confirm"])
        #expect(run.status == 64, "\(run)")
        #expect(run.stderr.contains("--confirm asks on a terminal"))
        #expect(status(root.url("etc/a")) == nil)
    }
}
