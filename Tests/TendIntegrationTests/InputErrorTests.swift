import Foundation
import Testing

/// Bad input gets its position, its message and its exit code, and the root stays as it was.
@Suite("bad input")
struct InputErrorTests {
    /// Runs plan and apply on `manifest`, checks both exit with `code` and print `messages` on
    /// stderr, and that the root is unchanged.
    func rejects(_ manifest: String, extra: [String: String] = [:], code: Int32 = 3, messages: [String]) async throws {
        let repo = try repository(["app.yaml": manifest], extra: extra)
        let root = try makeRoot()
        let before = try tree(root.path)
        for command in ["plan", "apply", "validate"] {
            let run = try await tend([command, repo.path, "--root", root.path])
            #expect(run.status == code, "\(command): \(run)")
            for message in messages {
                #expect(run.stderr.contains(message), "\(command) should say \(message): \(run)")
            }
            #expect(run.stdout.isEmpty, "\(command) prints no plan for invalid input: \(run)")
        }
        #expect(try tree(root.path) == before, "invalid input changes nothing")
    }

    @Test("broken YAML is reported with libyaml's position and problem")
    func brokenYAML() async throws {
        try await rejects("resources:\n  - file: /etc/a\n    content: [unclosed\n", messages: [
            "/site/app.yaml:4:1: did not find expected ',' or ']' (while parsing a flow sequence at line 3, column 14)",
        ])
    }

    @Test("what apply would refuse is refused at validate: an owner named like an option (-1), and a file below a declared symbolic link")
    func refusedAtValidate() async throws {
        try await rejects("""
            resources:
              - file: /etc/a
                owner: "-1"
              - symlink: /etc/link
                target: /srv/real
              - file: /etc/link/x
                content: x
            """, messages: [
            "/site/app.yaml:3:12: 'owner' must be a user name or a number below 4294967295, found '-1'",
            "/site/app.yaml:6:11: file:/etc/link/x is below symlink:/etc/link (declared at site/app.yaml:4:14), a symbolic link that tend never follows",
        ])
    }

    @Test("wrong types, a bad mode, a relative path, '..' and an unknown key are all reported at once")
    func everyProblemAtOnce() async throws {
        try await rejects("""
            resources:
              - file: etc/relative
              - file: /etc/../shadow
              - file: /etc/a
                mode: "0999"
                contnet: x
              - directory: /etc/b
                purge: maybe
              - symlink: /etc/c
                target: [a, b]
            """, messages: [
                "/site/app.yaml:2:11: 'etc/relative' is a relative path; paths must be absolute",
                "/site/app.yaml:3:11: '/etc/../shadow' contains '..'",
                "/site/app.yaml:5:11: 'mode' must be three or four octal digits such as \"0644\", found '0999'",
                "/site/app.yaml:6:5: unknown key 'contnet' in a file; did you mean 'content'?",
                "/site/app.yaml:8:12: 'purge' must be true or false, found a string",
                "/site/app.yaml:10:13: 'target' must be a string, found a sequence",
                "is invalid: 6 problems; nothing was changed",
            ])
    }

    @Test("a missing source file, a duplicate id and a reference to an undeclared resource")
    func references() async throws {
        try await rejects("""
            resources:
              - file: /etc/a
                source: files/missing.conf
              - file: /etc/b
                content: x
              - file: /etc/b
                content: y
              - file: /etc/c
                content: z
                requires: [file:/etc/bb, nonsense]
            """, messages: [
                "/site/app.yaml:3:13: source file 'site/files/missing.conf': not found",
                "/site/app.yaml:6:11: duplicate resource file:/etc/b (first declared at site/app.yaml:4:11)",
                "/site/app.yaml:10:16: 'requires' names file:/etc/bb, which is not declared for this host; did you mean 'file:/etc/b'?",
                "/site/app.yaml:10:30: 'nonsense' in 'requires' is not a resource id",
            ])
    }

    @Test("a dependency cycle is printed as the cycle")
    func cycle() async throws {
        try await rejects("""
            resources:
              - file: /etc/a
                requires: [file:/etc/b]
              - file: /etc/b
                requires: [file:/etc/a]
            """, messages: ["dependency cycle (each needs the next): file:/etc/a (site/app.yaml:2:11) → file:/etc/b (site/app.yaml:4:11) → file:/etc/a"])
    }

    @Test("only the first 20 unknown names in requires: get a \"did you mean\", so that thousands of them take no time (each is compared with every id); all are reported")
    func suggestionBudget() async throws {
        // Each of 2,000 files requires one that does not exist (a folder renamed in a large repository).
        let manifest = "resources:\n" + (0..<2_000).map { "  - file: /srv/f\($0)\n    content: x\n    requires: [file:/srv/g\($0)]\n" }.joined()
        let repo = try repository(["app.yaml": manifest])
        let run = try await tend(["validate", repo.path])
        #expect(run.status == 3)
        let lines = run.stderr.split(separator: "\n").filter { $0.contains("'requires' names") }
        #expect(lines.count == 200, "at most 200 problems of a file are shown: \(run.stderr.suffix(400))")
        // Line n names file:/srv/gn and suggests file:/srv/fn.
        #expect(lines.prefix(20).enumerated().allSatisfy { $1.hasSuffix("names file:/srv/g\($0), which is not declared for this host; did you mean 'file:/srv/f\($0)'?") },
                "\(lines.prefix(21))")
        #expect(lines.dropFirst(20).allSatisfy { $0.hasSuffix("which is not declared for this host") }, "\(lines.dropFirst(20).prefix(2))")
        #expect(run.stderr.contains("is invalid: 2000 problems"), "\(run.stderr.suffix(300))")
    }

    @Test("an unknown kind and a problem in tend.yaml")
    func unknownKindAndConfig() async throws {
        try await rejects("resources:\n  - fiel: /etc/a\n", extra: ["tend.yaml": "hosts:\n  - apply: [site, nowhere]\n    match: { hostnme: x }\n"], messages: [
            "/site/app.yaml:2:5: unknown resource kind 'fiel'; did you mean 'file'?",
            "/tend.yaml:2:19: 'nowhere' in 'apply' does not exist",
            "/tend.yaml:3:14: unknown key 'hostnme' in 'match'; did you mean 'hostname'?",
        ])
    }

    @Test("a source that cannot be read exits 4; a missing root exits 1")
    func unreadable() async throws {
        let missing = try await tend(["plan", "/nonexistent/tend-config", "--root", "/tmp"])
        #expect(missing.status == 4, "\(missing)")
        #expect(missing.stderr.contains("cannot read the source: /nonexistent/tend-config"))
        let repo = try repository(["app.yaml": "resources: []\n"])
        let noRoot = try await tend(["plan", repo.path, "--root", "/nonexistent/root"])
        #expect(noRoot.status == 1, "\(noRoot)")
        #expect(noRoot.stderr.contains("/nonexistent/root: cannot open the root folder"))
        let noConfig = try Scratch()
        let empty = try await tend(["validate", noConfig.path])
        #expect(empty.status == 3, "\(empty)")
        #expect(empty.stderr.contains("tend.yaml: not found"))
    }
}
