import Foundation
import Testing

/// An example repository of examples/ and a host it is written for.
struct ExampleHost: CustomTestStringConvertible, Sendable {
    var example: String
    /// `--hostname` and `--label` of the host.
    var host: [String]

    var testDescription: String { "\(example) (\(host.joined(separator: " ")))" }

    var path: String { Self.folder(example) }

    /// The folder examples/`name` of this source tree.
    static func folder(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/\(name)").standardized.path
    }

    /// Each example with the hosts its README names.
    static let all: [ExampleHost] = [
        ExampleHost(example: "webhost", host: ["--hostname", "web-01"]),
        ExampleHost(example: "package-service", host: ["--hostname", "web-01", "--label", "env=prod"]),
        ExampleHost(example: "package-service", host: ["--hostname", "edge-01"]),
        ExampleHost(example: "fleet", host: ["--hostname", "web-01", "--label", "env=prod"]),
        ExampleHost(example: "fleet", host: ["--hostname", "db-01", "--label", "env=staging"]),
        ExampleHost(example: "fleet", host: ["--hostname", "mail-01"]),
        ExampleHost(example: "signed-git", host: ["--hostname", "web-01", "--self-manage"]),
        ExampleHost(example: "provisioning", host: ["--hostname", "web-07", "--label", "stage=image", "--label", "role=web", "--self-manage"]),
        ExampleHost(example: "provisioning", host: ["--hostname", "web-07", "--label", "role=web", "--self-manage"]),
    ]
}

/// The example repositories of examples/ are valid for the current code, and do what their
/// READMEs say.
@Suite("examples")
struct ExampleTests {
    @Test("every example is valid for the hosts it is written for", arguments: ExampleHost.all)
    func valid(_ example: ExampleHost) async throws {
        let run = try await tend(["validate", example.path] + example.host)
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("is valid"), "\(run)")
        #expect(run.stderr.isEmpty, "\(run)")
    }

    @Test("fleet: a production web host and a staging db host get different plans, each with the values its host entries give")
    func fleetPlansDiffer() async throws {
        let fleet = ExampleHost.folder("fleet")

        let webRoot = try makeRoot()
        let before = try tree(webRoot.path)
        let web = try await tend(["plan", fleet, "--root", webRoot.path, "--hostname", "web-01", "--label", "env=prod"])
        #expect(web.status == 0, "\(web)")
        #expect(web.stdout.contains("+ file:/etc/motd"), "\(web)")
        #expect(web.stdout.contains("+web-01: web host, production"), "\(web)")
        #expect(web.stdout.contains("+ file:/etc/app/app.conf"), "\(web)")
        #expect(web.stdout.contains("+workers = 16"), "a production web host gets the workers of the entry that matches both: \(web)")
        #expect(web.stdout.contains("+log_level = warn"), "\(web)")
        #expect(web.stdout.contains("+host = db-01.prod.example.internal"), "\(web)")
        #expect(!web.stdout.contains("/etc/app-db/"), "a web host gets no database configuration: \(web)")
        #expect(try tree(webRoot.path) == before, "plan must not change the root")

        let dbRoot = try makeRoot()
        let db = try await tend(["plan", fleet, "--root", dbRoot.path, "--hostname", "db-01", "--label", "env=staging"])
        #expect(db.status == 0, "\(db)")
        #expect(db.stdout.contains("+db-01: db host, staging"), "\(db)")
        #expect(db.stdout.contains("+ file:/etc/app-db/db.conf"), "\(db)")
        #expect(db.stdout.contains("+max_connections = 50"), "\(db)")
        #expect(db.stdout.contains("+log_level = info"), "\(db)")
        #expect(db.stdout.contains("+enabled = no"), "backups are for production only: \(db)")
        #expect(!db.stdout.contains("/etc/app/"), "a db host gets no web configuration: \(db)")
        #expect(!db.stdout.contains("production"), "nothing of production reaches a staging host: \(db)")
    }
}
