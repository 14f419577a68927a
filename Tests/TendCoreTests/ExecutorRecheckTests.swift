import Foundation
import Logging
import Testing
import TendCore
import TendProviders
import TendSpec

/// A step re-checks, at the moment it writes, that the host still holds what the plan found: what
/// appeared or changed since is never replaced or removed (hardening, hole 3).
@Suite("steps re-check what they replace")
struct StepRecheckTests {
    /// Plans `manifest` into a fresh root, lets `meanwhile` change the root, then applies the plan.
    private func planThenApply(_ manifest: String, before: (String) throws -> Void = { _ in }, meanwhile: (String) throws -> Void) async throws -> (root: String, report: ApplyReport) {
        let fixture = try Fixture(["tend.yaml": "hosts:\n  - apply: [m]\n", "m/a.yaml": manifest])
        defer { fixture.remove() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tend-recheck-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/srv", withIntermediateDirectories: true)
        try before(root)
        let catalog = try fixture.catalog()
        let facts = HostFacts(hostname: "web-1", os: "debian")
        let host = try HostReader(root: root)
        let plan = await Planner(catalog: catalog, snapshot: try DirectorySnapshot(path: fixture.path), facts: facts, tendVersion: "test")
            .plan(host: host)
        try meanwhile(root)
        let report = try await Executor(catalog: catalog, logger: Logger(label: "test")).apply(plan, host: host)
        return (root, report)
    }

    private func reasons(_ report: ApplyReport) -> [String: String] {
        var reasons: [String: String] = [:]
        for result in report.results { if case .failed(let failure) = result.outcome { reasons[result.id.description] = failure.cause } }
        return reasons
    }

    @Test("a folder that appears where a file, folder or link is to be created keeps its contents; the steps fail")
    func appearedFolders() async throws {
        let (root, report) = try await planThenApply("""
            resources:
              - file: /srv/file
                content: "new\\n"
              - directory: /srv/dir
              - symlink: /srv/link
                target: /etc/passwd
            """) { root in
            for name in ["file", "dir", "link"] {
                try FileManager.default.createDirectory(atPath: "\(root)/srv/\(name)", withIntermediateDirectories: true)
                try Data("precious\n".utf8).write(to: URL(fileURLWithPath: "\(root)/srv/\(name)/important.db"))
            }
        }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let reasons = reasons(report)
        #expect(reasons["file:/srv/file"]?.contains("something appeared here since it was planned (a directory); nothing was replaced") == true, "\(reasons)")
        #expect(reasons["directory:/srv/dir"]?.contains("a directory appeared here since it was planned") == true, "\(reasons)")
        #expect(reasons["symlink:/srv/link"]?.contains("something appeared here since it was planned (a directory)") == true, "\(reasons)")
        for name in ["file", "dir", "link"] {
            #expect(FileManager.default.contents(atPath: "\(root)/srv/\(name)/important.db") == Data("precious\n".utf8))
        }
    }

    @Test("a file or link planned for update or delete that became a folder is left as it is")
    func replacedByFolder() async throws {
        let (root, report) = try await planThenApply("""
            resources:
              - file: /srv/conf
                content: "new\\n"
              - file: /srv/old
                state: absent
              - symlink: /srv/link
                target: /a
            """, before: { root in
                try Data("old\n".utf8).write(to: URL(fileURLWithPath: "\(root)/srv/conf"))
                try Data("old\n".utf8).write(to: URL(fileURLWithPath: "\(root)/srv/old"))
                try FileManager.default.createSymbolicLink(atPath: "\(root)/srv/link", withDestinationPath: "/b")
            }) { root in
            for name in ["conf", "old", "link"] {
                try FileManager.default.removeItem(atPath: "\(root)/srv/\(name)")
                try FileManager.default.createDirectory(atPath: "\(root)/srv/\(name)", withIntermediateDirectories: true)
                try Data("precious\n".utf8).write(to: URL(fileURLWithPath: "\(root)/srv/\(name)/important.db"))
            }
        }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let reasons = reasons(report)
        #expect(reasons["file:/srv/conf"]?.contains("is no longer a regular file; it was left as it is") == true, "\(reasons)")
        #expect(reasons["file:/srv/old"]?.contains("is now a directory, not a regular file as planned; it was left as it is") == true, "\(reasons)")
        #expect(reasons["symlink:/srv/link"]?.contains("is now a directory, not a symbolic link as planned; it was left as it is") == true, "\(reasons)")
        for name in ["conf", "old", "link"] {
            #expect(FileManager.default.contents(atPath: "\(root)/srv/\(name)/important.db") == Data("precious\n".utf8))
        }
    }
}
