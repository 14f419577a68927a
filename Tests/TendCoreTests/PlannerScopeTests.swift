import Foundation
import Testing
import TendCore
import TendProviders
import TendSpec

/// What the agent's repair of a resource a watch saw change plans (issue 9): that resource, what
/// depends on it and what it notifies, exactly as a full plan would; nothing else.
@Suite("repair scope")
struct RepairScopeTests {
    /// (What a changed file notifies joins the scope too; a restart needs a running systemd, which
    /// WatchTests has.)
    @Test("a repair of one file plans it and the link that requires it, and not an unrelated drifted file")
    func scope() async throws {
        let fixture = try Fixture([
            "tend.yaml": "hosts:\n  - apply: [m]\n",
            "m/a.yaml": """
                resources:
                  - directory: /srv
                  - file: /srv/a.conf
                    content: "a\\n"
                  - symlink: /srv/a.link
                    target: /srv/a.conf
                    requires: [file:/srv/a.conf]
                  - file: /srv/b.conf
                    content: "b\\n"
                """,
        ])
        defer { fixture.remove() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tend-scope-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/srv", withIntermediateDirectories: true)
        try "drifted\n".write(toFile: root + "/srv/a.conf", atomically: false, encoding: .utf8)
        try "drifted\n".write(toFile: root + "/srv/b.conf", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/srv/a.link", withDestinationPath: "/srv/a.conf")
        let catalog = try fixture.catalog()
        let planner = Planner(catalog: catalog, snapshot: try DirectorySnapshot(path: fixture.path), facts: HostFacts(hostname: "web-1", os: "debian"), tendVersion: "test")

        let full = await planner.plan(host: try HostReader(root: root))
        #expect(Set(full.steps.map(\.id.description)) == ["file:/srv/a.conf", "file:/srv/b.conf"])

        let repair = await planner.plan(host: try HostReader(root: root), scope: [ResourceID(kind: "file", name: "/srv/a.conf")])
        // b.conf drifted too, but no watch named it: the repair leaves it to the next cycle. The
        // link is observed (it depends on a.conf) and needs nothing.
        #expect(repair.steps.map(\.id.description) == ["file:/srv/a.conf"])
        #expect(repair.steps.first?.change == full.steps.first { $0.id.description == "file:/srv/a.conf" }?.change)

        // The link, out of place, is in scope through the file it requires.
        try FileManager.default.removeItem(atPath: root + "/srv/a.link")
        let withLink = await planner.plan(host: try HostReader(root: root), scope: [ResourceID(kind: "file", name: "/srv/a.conf")])
        #expect(withLink.steps.map(\.id.description) == ["file:/srv/a.conf", "symlink:/srv/a.link"])
        let unrelated = await planner.plan(host: try HostReader(root: root), scope: [ResourceID(kind: "file", name: "/srv/b.conf")])
        #expect(unrelated.steps.map(\.id.description) == ["file:/srv/b.conf"])
    }
}
