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
            Reconciler(source: SourceSpec(location: .folder(repository), stateDirectory: top + "/state"), root: root, identity: Reconciler.Identity(hostname: "web-1"),
                       providers: .standard, policy: Reconciler.Policy(lockTimeout: .seconds(5)), tendVersion: "test", logger: Logger(label: "test"))
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

    func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test("an apply leaves its records in the root's own /var/lib/tend, 0600 in a 0700 folder; only an apply that converged is recorded as applied; a plan records nothing")
    func records() async throws {
        let fixture = try Fixture("resources:\n  - file: /etc/motd\n    content: \"hello\\n\"\n")
        defer { fixture.remove() }
        let store = StateStore(stateDirectory: fixture.top + "/state", root: fixture.root)
        #expect(store.directory == fixture.root + "/var/lib/tend")
        _ = await fixture.reconciler().run(.plan)
        #expect(!FileManager.default.fileExists(atPath: store.directory), "a plan wrote records")

        #expect(await fixture.reconciler().run(.apply).failure == nil)
        let folder = try FileManager.default.attributesOfItem(atPath: store.directory)
        #expect((folder[.posixPermissions] as? Int) == 0o700)
        for record in ["applied.json", "last-good.json", "inventory.json", "last-run.json"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: store.directory + "/" + record)
            #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(record)")
        }
        let run = try #require(store.read(.lastRun, as: RunRecord.self))
        #expect(run.result == .changed)
        #expect(run.counts == ["create": 1])
        let inventory = try #require(store.read(.inventory, as: Inventory.self))
        #expect(inventory.resources.keys.sorted() == ["file:/etc/motd"])
        #expect(inventory.resources["file:/etc/motd"]?.declaredAt == fixture.repository + "/site/a.yaml:2", "a folder source is named as the user gave it")
        #expect(inventory.find("/etc/motd")?.id == "file:/etc/motd")
        #expect(store.read(.applied, as: CommitRecord.self)?.source == fixture.repository)

        // A run that fails a resource is the last good configuration, but not applied.
        try FileManager.default.removeItem(atPath: store.directory + "/applied.json")
        try write("resources:\n  - file: /etc/motd\n    content: \"hello\\n\"\n  - file: /etc/owned\n    content: x\n    owner: nobody-here\n", to: fixture.repository + "/site/a.yaml")
        #expect(await fixture.reconciler().run(.apply).stepFailures.count == 1)
        #expect(store.read(.applied, as: CommitRecord.self) == nil, "a failed apply was recorded as applied")
        #expect(store.read(.lastGood, as: CommitRecord.self) != nil)
        #expect(store.read(.lastRun, as: RunRecord.self)?.result == .failed)
        #expect(store.read(.lastRun, as: RunRecord.self)?.failures.first?.resource == "file:/etc/owned")
    }

    @Test("a root whose var/lib leads outside it gets no records there, and the apply says why")
    func recordsStayInTheRoot() async throws {
        let fixture = try Fixture("resources:\n  - file: /etc/motd\n    content: \"hello\\n\"\n")
        defer { fixture.remove() }
        let outside = fixture.top + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: fixture.root + "/var", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: fixture.root + "/var/lib", withDestinationPath: outside)
        let result = await fixture.reconciler().run(.apply)
        #expect(result.failure?.message.contains("outside the root") == true, "\(String(describing: result.failure))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "records were written outside the root")
    }

    @Test("prune removes what is no longer declared, says so in the plan, keeps a folder that still holds files for a later run, and refuses the whole prune over its budget unless allowed")
    func prune() async throws {
        let three = (1...3).map { "  - file: /etc/app/f\($0)\n    content: \"\($0)\\n\"\n" }.joined()
        let fixture = try Fixture("resources:\n  - directory: /etc/app\n  - directory: /etc/old\n  - file: /etc/old/x\n    content: x\n" + three)
        defer { fixture.remove() }
        try write("hosts:\n  - apply: [site]\nprune: {max: 2}\n", to: fixture.repository + "/tend.yaml")
        #expect(await fixture.reconciler().run(.apply).report?.succeeded == true)

        // /etc/old and its file go: two removals, within the budget of 2.
        try write("resources:\n  - directory: /etc/app\n" + three, to: fixture.repository + "/site/a.yaml")
        let planned = await fixture.reconciler().run(.plan)
        let deletes = planned.plan?.steps.filter { $0.change?.action == .delete } ?? []
        #expect(deletes.map(\.id.description) == ["file:/etc/old/x"], "the folder still holds the file when planned: it waits")
        #expect(deletes.first?.change?.notes.contains { $0 == "no longer declared since this configuration; last declared at \(fixture.repository)/site/a.yaml:4" } == true)
        #expect(planned.notes.contains { $0.contains("directory:/etc/old is no longer declared, but is kept for now") })
        #expect(await fixture.reconciler().run(.apply).report?.succeeded == true)
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/etc/old/x"))
        #expect(FileManager.default.fileExists(atPath: fixture.root + "/etc/old"))
        let store = StateStore(stateDirectory: fixture.top + "/state", root: fixture.root)
        #expect(store.read(.inventory, as: Inventory.self)?.resources["directory:/etc/old"] != nil, "a folder kept for later left the inventory")
        #expect(store.read(.inventory, as: Inventory.self)?.resources["file:/etc/old/x"] == nil)
        #expect(await fixture.reconciler().run(.apply).report?.succeeded == true)
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/etc/old"), "the emptied folder was not pruned on the next run")

        // Three files at once is over the budget: nothing goes, and it says why. (The new file
        // makes the run change the root, so that it leaves its record there.)
        try write("resources:\n  - directory: /etc/app\n  - file: /etc/new\n    content: n\n", to: fixture.repository + "/site/a.yaml")
        let refused = await fixture.reconciler().run(.apply)
        #expect(refused.report?.results.map(\.id.description) == ["file:/etc/new"])
        #expect(refused.pruneRefused?.wanted == 3)
        #expect(refused.pruneRefused?.limit == 2)
        #expect(refused.notes.contains { $0.contains("refusing to prune 3 resources") && $0.contains("--allow-prune") })
        #expect(FileManager.default.fileExists(atPath: fixture.root + "/etc/app/f1"))
        #expect(store.read(.lastRun, as: RunRecord.self)?.pruneRefused?.wanted == 3)
        var allowed = fixture.reconciler()
        allowed.policy.allowPrune = true
        #expect(await allowed.run(.apply).report?.results.count == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.root + "/etc/app").isEmpty)
        #expect(store.read(.inventory, as: Inventory.self)?.resources.keys.sorted() == ["directory:/etc/app", "file:/etc/new"])
    }

    @Test("prune leaves a path that another resource now declares to it, a unit whose state alone was managed, and forgets what is already gone")
    func pruneEdges() async throws {
        let unit = "[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n"
        let fixture = try Fixture("""
            resources:
              - file: /etc/became-link
                content: "x\\n"
              - file: /etc/gone
                content: "y\\n"
              - unit: packaged.service
                enabled: true
            """)
        defer { fixture.remove() }
        try FileManager.default.createDirectory(atPath: fixture.root + "/lib/systemd/system", withIntermediateDirectories: true)
        try write(unit.replacingOccurrences(of: "\\n", with: "\n"), to: fixture.root + "/lib/systemd/system/packaged.service")
        try write("hosts:\n  - apply: [site]\nprune: true\n", to: fixture.repository + "/tend.yaml")
        #expect(await fixture.reconciler().run(.apply).report?.succeeded == true)
        let link = fixture.root + "/etc/systemd/system/multi-user.target.wants/packaged.service"
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != nil)

        try FileManager.default.removeItem(atPath: fixture.root + "/etc/gone")
        try write("resources:\n  - symlink: /etc/became-link\n    target: /etc/hostname\n    force: true\n", to: fixture.repository + "/site/a.yaml")
        let result = await fixture.reconciler().run(.apply)
        #expect(result.failure == nil, "a path taken over by another resource made the configuration invalid: \(String(describing: result.failure))")
        #expect(result.report?.results.map(\.id.description) == ["symlink:/etc/became-link"])
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: fixture.root + "/etc/became-link")) == "/etc/hostname")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != nil, "a package's unit was disabled by prune")
        let inventory = StateStore(stateDirectory: fixture.top + "/state", root: fixture.root).read(.inventory, as: Inventory.self)
        #expect(inventory?.resources.keys.sorted() == ["symlink:/etc/became-link"], "what is gone or no longer managed stays in the inventory")
    }
}
