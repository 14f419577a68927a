import Foundation
import Testing

/// `prune:` through the command line, from a Git repository whose history the records name.
@Suite("prune")
struct PruneTests {
    @Test("a resource dropped from the repository is planned as a delete no longer declared since the commit, removed by apply, and forgotten; over the budget, apply refuses the prune, says so in status, and --allow-prune lets it through")
    func pruneFromGit() async throws {
        let repo = try await GitRepo()
        let root = try makeRoot()
        let state = try Scratch("tend-state")
        let files = (1...6).map { "  - file: /etc/app/f\($0)\n    content: \"\($0)\\n\"\n" }
        let first = try await repo.commit(["tend.yaml": "hosts:\n  - apply: [site]\nprune: true\n",
                                           "site/app.yaml": "resources:\n" + files.joined()], "six files")
        let arguments = ["--repo", repo.path, "--root", root.path, "--state-dir", state.path]
        #expect(try await tend(["apply"] + arguments).status == 0)

        let second = try await repo.commit(["site/app.yaml": "resources:\n" + files.dropLast().joined()], "drop f6")
        let plan = try await tend(["plan"] + arguments)
        #expect(plan.stdout.contains("- file:/etc/app/f6"), "\(plan)")
        #expect(plan.stdout.contains("note: no longer declared since \(second.prefix(7)); last declared at site/app.yaml:12 in \(first.prefix(7))"), "\(plan)")
        let applied = try await tend(["apply"] + arguments)
        #expect(applied.status == 0, "\(applied)")
        #expect(!FileManager.default.fileExists(atPath: root.url("etc/app/f6")))
        let blame = try await tend(["blame", "file:/etc/app/f6", "--root", root.path])
        #expect(blame.status == 1, "a pruned resource is no longer in the inventory: \(blame)")

        // Five at once is over a budget of 2. The same commit adds a file, so the run changes the
        // root and leaves its record there (a run that changes nothing in a root records nothing).
        try await repo.commit(["tend.yaml": "hosts:\n  - apply: [site]\nprune: {max: 2}\n",
                               "site/app.yaml": "resources:\n  - file: /etc/other\n    content: \"o\\n\"\n"], "drop everything")
        let refused = try await tend(["apply"] + arguments)
        #expect(refused.status == 0, "a refused prune applies everything else: \(refused)")
        #expect(refused.stderr.contains("refusing to prune 5 resources no longer declared: more than the budget of 2"), "\(refused)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url("etc/app")).count == 5)
        let status = try await tend(["status", "--root", root.path])
        #expect(status.stdout.contains("Prune:      refused: 5 resources no longer declared, more than the budget of 2"), "\(status)")
        let allowed = try await tend(["apply", "--allow-prune"] + arguments)
        #expect(allowed.status == 0, "\(allowed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url("etc/app")).isEmpty)
        #expect(try await tend(["plan", "--detailed-exitcode"] + arguments).status == 0, "nothing is left to prune")
    }
}
