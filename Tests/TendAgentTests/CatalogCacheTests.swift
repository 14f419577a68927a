import Foundation
import Testing
@testable import TendAgent
import TendCore
import TendProviders
import TendSpec

@Suite("catalog cache")
struct CatalogCacheTests {
    let folder: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tend-cache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/m", withIntermediateDirectories: true)
        try "hosts:\n  - apply: [m]\n".write(toFile: folder + "/tend.yaml", atomically: false, encoding: .utf8)
        try "resources:\n  - file: /etc/motd\n    content: \"{{ host.hostname }}\\n\"\n".write(toFile: folder + "/m/a.yaml", atomically: false, encoding: .utf8)
    }

    /// Looks `key` up in `cache`, counting the catalogs built.
    func catalog(_ cache: CatalogCache, _ key: CatalogCache.Key, builds: inout Int) throws -> Catalog {
        let snapshot = try DirectorySnapshot(path: folder)
        return try cache.catalog(for: key, description: "test") { () throws(ConfigurationError) -> Catalog in
            builds += 1
            return try Configuration.catalog(from: snapshot, providers: .standard, facts: key.facts)
        }
    }

    func key(commit: String?, hostname: String = "web-1", managed: Set<String> = []) -> CatalogCache.Key {
        CatalogCache.Key(origin: SnapshotOrigin(type: commit == nil ? "directory" : "git", location: folder, commit: commit),
                         facts: HostFacts(hostname: hostname, os: "debian"), managed: managed, selfManagement: false)
    }

    @Test("a commit's catalog is built once while the facts and the inventory stay the same, and again when either changes")
    func reusedForTheSameCommit() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = CatalogCache()
        var builds = 0
        let commit = String(repeating: "a", count: 40)
        let first = try catalog(cache, key(commit: commit), builds: &builds)
        _ = try catalog(cache, key(commit: commit), builds: &builds)
        #expect(builds == 1)
        let renamed = try catalog(cache, key(commit: commit, hostname: "web-2"), builds: &builds)
        #expect(builds == 2, "other facts make another catalog")
        #expect(first.entries.map(\.id) == renamed.entries.map(\.id))
        _ = try catalog(cache, key(commit: commit, hostname: "web-2", managed: ["file:/etc/old"]), builds: &builds)
        #expect(builds == 3, "another inventory may prune other resources")
        _ = try catalog(cache, key(commit: String(repeating: "b", count: 40), hostname: "web-2", managed: ["file:/etc/old"]), builds: &builds)
        #expect(builds == 4)
    }

    @Test("a folder, which can change under the same name, is built every time")
    func folderNeverReused() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = CatalogCache()
        var builds = 0
        _ = try catalog(cache, key(commit: nil), builds: &builds)
        _ = try catalog(cache, key(commit: nil), builds: &builds)
        #expect(builds == 2)
    }

    @Test("the enforced catalog is the last one applied, of the origin the run applied, until another is")
    func enforced() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = CatalogCache()
        var builds = 0
        #expect(cache.current == nil)
        let good = key(commit: String(repeating: "a", count: 40))
        _ = try catalog(cache, good, builds: &builds)
        cache.enforce(good.origin)
        #expect(cache.current?.origin == good.origin && cache.current?.catalog.entries.count == 1)
        // A newer commit loaded but not applied (refused, or failed its checks) leaves it enforced.
        let newer = key(commit: String(repeating: "b", count: 40))
        _ = try catalog(cache, newer, builds: &builds)
        #expect(cache.current?.origin == good.origin)
        cache.enforce(newer.origin)
        #expect(cache.current?.origin == newer.origin)
        // Marking an origin other than the last one loaded enforces nothing.
        cache.enforce(good.origin)
        #expect(cache.current == nil)
    }
}
