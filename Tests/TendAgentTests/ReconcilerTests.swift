import Foundation
import Logging
import Testing
import TendAgent
import TendCore
import TendProviders
import TendSpec

/// The pipeline as one call: the result value that `tend plan`, `tend apply` and the agent read.
@Suite("reconciler")
struct ReconcilerTests {
    /// A repository and an empty root in a scratch folder.
    struct Fixture {
        let top: String
        var repository: String { top + "/repo" }
        var root: String { top + "/root" }

        init(_ manifest: String) throws {
            top = FileManager.default.temporaryDirectory.appendingPathComponent("tend-reconciler-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: top + "/repo/site", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: top + "/root/etc", withIntermediateDirectories: true)
            try "hosts:\n  - apply: [site]\n".write(toFile: repository + "/tend.yaml", atomically: false, encoding: .utf8)
            try manifest.write(toFile: repository + "/site/a.yaml", atomically: false, encoding: .utf8)
            try "root:x:0:0::/root:/bin/sh\n".write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
            try "root:x:0:\n".write(toFile: root + "/etc/group", atomically: false, encoding: .utf8)
        }

        func reconciler() -> Reconciler {
            Reconciler(source: SourceSpec(location: .folder(repository), stateDirectory: top + "/state"), root: root, hostname: "web-1",
                       providers: .standard, lockTimeout: .seconds(5), tendVersion: "test", logger: Logger(label: "test"))
        }

        func remove() { try? FileManager.default.removeItem(atPath: top) }
    }

    @Test("plan changes nothing and returns the plan; apply converges; a second plan is empty")
    func planApplyPlan() async throws {
        let fixture = try Fixture("resources:\n  - file: /etc/motd\n    content: \"hello\\n\"\n")
        defer { fixture.remove() }
        let planned = await fixture.reconciler().run(.plan)
        #expect(planned.failure == nil)
        #expect(planned.plan?.steps.map(\.id.description) == ["file:/etc/motd"])
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/etc/motd"))

        let applied = await fixture.reconciler().run(.apply)
        #expect(applied.failure == nil)
        #expect(applied.report?.succeeded == true)
        #expect(applied.stepFailures.isEmpty)
        #expect(FileManager.default.contents(atPath: fixture.root + "/etc/motd") == Data("hello\n".utf8))
        #expect(await fixture.reconciler().run(.plan).plan?.hasChanges == false)
    }

    @Test("an invalid configuration is a stalled failure with every problem at its position")
    func invalidConfiguration() async throws {
        let fixture = try Fixture("resources:\n  - file: relative\n  - file: /etc/a\n    mode: \"+644\"\n")
        defer { fixture.remove() }
        let result = await fixture.reconciler().run(.apply)
        let failure = try #require(result.failure)
        #expect(failure.code == .invalidConfiguration)
        #expect(failure.class == .stalled)
        #expect(failure.diagnostics.map { "\($0.location.map { "\($0.line):\($0.column)" } ?? "")" } == ["2:11", "4:11"])
        #expect(result.report == nil)
    }

    @Test("a resource that fails is retried later; what depends on it waits; a plan not approved changes nothing")
    func typedStepFailures() async throws {
        let fixture = try Fixture("""
            resources:
              - file: /etc/owned
                content: "x\\n"
                owner: nobody-here
              - file: /etc/after
                content: "y\\n"
                requires: [file:/etc/owned]
              - file: /etc/free
                content: "z\\n"
            """)
        defer { fixture.remove() }
        let declined = await fixture.reconciler().run(.apply, events: ReconcileEvents(approve: { _ in false }))
        #expect(declined.declined)
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/etc/free"))

        let result = await fixture.reconciler().run(.apply)
        let failures = result.stepFailures
        #expect(failures.map(\.resource?.description) == ["file:/etc/owned", "file:/etc/after"])
        #expect(failures.map(\.class) == [.retryLater, .waiting])
        #expect(failures[0].message.contains("user 'nobody-here' does not exist on the host"))
        #expect(FileManager.default.contents(atPath: fixture.root + "/etc/free") == Data("z\n".utf8))
    }
}
