import Foundation
import Testing
import TendCore
import TendProviders
import TendSpec

/// The agent's stat cache (issue 9): a file whose status is the one recorded is not read again,
/// and nothing that changed is ever trusted, also a change within one timestamp tick.
@Suite("stat cache")
struct StatCacheTests {
    private struct Setup {
        let fixture: Fixture
        let root: String
        let catalog: Catalog

        init(content: String = "declared\n") throws {
            fixture = try Fixture(["tend.yaml": "hosts:\n  - apply: [m]\n",
                                   "m/a.yaml": "resources:\n  - file: /srv/app.conf\n    content: \"\(content.replacingOccurrences(of: "\n", with: "\\n"))\"\n"])
            root = FileManager.default.temporaryDirectory.appendingPathComponent("tend-statcache-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root + "/srv", withIntermediateDirectories: true)
            catalog = try fixture.catalog()
        }

        var file: String { root + "/srv/app.conf" }

        /// The plan's steps with `cache`, as ids.
        func plan(_ cache: StatCache?) async throws -> [String] {
            let host = try HostReader(root: root)
            host.statCache = cache
            let plan = await Planner(catalog: catalog, snapshot: try DirectorySnapshot(path: fixture.path), facts: HostFacts(hostname: "web-1", os: "debian"), tendVersion: "test")
                .plan(host: host)
            return plan.steps.map { "\($0.id)" + ($0.change?.content == nil ? "" : " content") }
        }

        func remove() {
            fixture.remove()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    @Test("a converged file is recorded once its status is older than the racy margin; saved and loaded, it is trusted; any write makes it read again")
    func trustsUnchangedStatus() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        try "declared\n".write(toFile: setup.file, atomically: false, encoding: .utf8)
        let cache = StatCache()
        // Just written: racy, so read and not recorded.
        #expect(try await setup.plan(cache) == [])
        #expect(cache.count == 0)
        try await Task.sleep(for: .milliseconds(2100))
        #expect(try await setup.plan(cache) == [])
        #expect(cache.count == 1, "a converged file past the racy margin is recorded")

        // Saved and loaded by the agent's rules: the same entries.
        let saved = setup.root + "/stat-cache"
        try cache.save(to: saved)
        let loaded = StatCache.load(from: saved)
        #expect(loaded.count == 1)
        let status = try #require(try HostReader(root: setup.root).status("/srv/app.conf"))
        #expect(loaded.trustedDigest("/srv/app.conf", status: status) == StatCache.digest(of: Array("declared\n".utf8)))

        // The same size written by hand: the status moved, the file is read, the drift planned.
        try "tampered\n".write(toFile: setup.file, atomically: false, encoding: .utf8)
        #expect(try await setup.plan(loaded) == ["file:/srv/app.conf content"])
        #expect(loaded.count == 0, "content that differs is forgotten")

        // A damaged cache is an empty one.
        try "tend stat cache 1\nnot an entry\n".write(toFile: saved, atomically: false, encoding: .utf8)
        #expect(StatCache.load(from: saved).count == 0)
        #expect(StatCache.load(from: setup.root + "/missing").count == 0)
    }

    @Test("a racy change, within the timestamp tick of the read that found the file converged, is still noticed")
    func racyChange() async throws {
        let setup = try Setup()
        defer { setup.remove() }
        let cache = StatCache()
        // Written, checked and written again in place with the same size, at once: the second
        // write may leave every field of the status as it was (one coarse clock tick).
        try "declared\n".write(toFile: setup.file, atomically: false, encoding: .utf8)
        let before = try #require(try HostReader(root: setup.root).status("/srv/app.conf"))
        #expect(try await setup.plan(cache) == [])
        let handle = try #require(FileHandle(forWritingAtPath: setup.file))
        try handle.write(contentsOf: Data("tampered\n".utf8))
        try handle.close()
        let after = try #require(try HostReader(root: setup.root).status("/srv/app.conf"))
        if after.changeTime == before.changeTime, after.modificationTime == before.modificationTime {
            print("the rewrite kept the file's status: this run checks the racy rule on the filesystem too")
        }
        #expect(try await setup.plan(cache) == ["file:/srv/app.conf content"], "a racily clean entry was trusted")

        // The rule itself, whatever this filesystem's timestamps: content read within the margin
        // after the file's last change is not vouched for; read later, it is.
        let probe = StatCache()
        probe.record("/srv/app.conf", status: after, digest: "d", readAt: after.changeTime + StatCache.racyMargin / 2)
        #expect(probe.trustedDigest("/srv/app.conf", status: after) == nil, "a racy read was recorded")
        probe.record("/srv/app.conf", status: after, digest: "d", readAt: after.changeTime + StatCache.racyMargin + 1)
        #expect(probe.trustedDigest("/srv/app.conf", status: after) == "d")
    }
}
