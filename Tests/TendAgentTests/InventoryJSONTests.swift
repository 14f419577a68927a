import Foundation
import Testing
import TendAgent

/// The inventory is written without JSONEncoder (it took a fifth of converging 10,000 files);
/// what is written must be what JSONEncoder writes for every other record, byte for byte.
@Suite("inventory JSON")
struct InventoryJSONTests {
    /// Writes `inventory` through a state store; returns the file, JSONEncoder's text of it, and what a state store reads back.
    func written(_ inventory: Inventory) throws -> (file: String, encoder: String, readBack: Inventory?) {
        let top = FileManager.default.temporaryDirectory.appendingPathComponent("tend-inventory-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: top) }
        let store = StateStore(stateDirectory: top + "/state", root: "/")
        try store.writeInventory(inventory)
        let file = try String(contentsOfFile: store.directory + "/inventory.json", encoding: .utf8)
        return (file, try StateStore.json(inventory) + "\n", store.read(.inventory, as: Inventory.self))
    }

    @Test("an inventory with every field, awkward keys and strings, is written as JSONEncoder writes it")
    func everyField() throws {
        var inventory = Inventory()
        let commit = String(repeating: "a1", count: 20)
        inventory.commits[commit] = CommitRecord(source: "https://git.example.com/ops/hosts.git", ref: "main", path: "hosts/web",
                                                 commit: commit, subject: "Say \"hi\"\tand \\ bye\n\u{1}\u{1F}\u{7F}\u{85} ünïcödé / 🙂",
                                                 author: "Zoë <zoe@example.com>", date: "2026-11-28T14:03:00+01:00",
                                                 recorded: Date(timeIntervalSince1970: 1_764_436_808.75))
        inventory.commits["folder"] = CommitRecord(source: "/srv/repo", recorded: Date(timeIntervalSince1970: 0.999))
        let ids = ["file:/etc/motd", "file:/etc/Motd", "file:/etc/ä", "file:/etc/z", "unit:nginx.service", "directory:/srv/data", "file:/etc/a\"b"]
        for (index, id) in ids.enumerated() {
            inventory.resources[id] = Inventory.Entry(
                declaredAt: "site/web.yaml:\(index + 1)", commit: index == 0 ? nil : commit, since: index % 2 == 0 ? commit : nil,
                changed: index % 3 == 0 ? Date(timeIntervalSince1970: 1_764_436_808 + Double(index) * 3_601.5) : nil,
                changedBy: index % 3 == 0 ? commit : nil, path: index == 4 ? nil : String(id.drop { $0 != ":" }.dropFirst()),
                instance: index == 2 ? "nginx-site[shop \"ä\"]" : nil, via: index == 2 ? "nginx-site[shop] at site/web.yaml:7:10, vhosts[0] \"shop\"" : nil)
        }
        let (file, encoder, readBack) = try written(inventory)
        #expect(file == encoder)
        #expect(readBack == inventory.withWholeSeconds, "read back as written, dates to the second as ISO 8601 keeps them")
        // The writer names each field: one added to the records must be added there too.
        #expect(Mirror(reflecting: try #require(inventory.resources.values.first)).children.count == 8, "Inventory.json writes eight fields of an entry")
        #expect(Mirror(reflecting: try #require(inventory.commits.values.first)).children.count == 8, "Inventory.json writes eight fields of a commit")
    }

    @Test("entries changed at one moment, and at moments within one second or either side of one, are written as JSONEncoder writes them")
    func sharedAndNearbyDates() throws {
        var inventory = Inventory()
        let run = Date(timeIntervalSince1970: 1_764_436_808.5)
        // Keys sort as listed: a run's many entries share its moment; then dates a fraction
        // apart in one second, and either side of a second, each after the other.
        let dates: [(String, Date)] = (0..<20).map { (String(format: "file:/a/%02d", $0), run) } + [
            ("file:/b/1", Date(timeIntervalSince1970: 1_764_436_809.25)), ("file:/b/2", Date(timeIntervalSince1970: 1_764_436_809.75)),
            ("file:/b/3", Date(timeIntervalSince1970: 1_764_436_810.999)), ("file:/b/4", Date(timeIntervalSince1970: 1_764_436_811.0)),
            ("file:/b/5", run),
        ]
        for (id, date) in dates {
            inventory.resources[id] = Inventory.Entry(declaredAt: "site/a.yaml:1", commit: nil, since: nil, changed: date, changedBy: nil, path: String(id.dropFirst(5)))
        }
        let (file, encoder, readBack) = try written(inventory)
        #expect(file == encoder)
        #expect(readBack == inventory.withWholeSeconds)
    }

    @Test("an empty inventory is written as JSONEncoder writes it")
    func empty() throws {
        let (file, encoder, readBack) = try written(Inventory())
        #expect(file == encoder)
        #expect(readBack == Inventory())
    }
}

extension Inventory {
    /// The same inventory with every date cut to whole seconds.
    var withWholeSeconds: Inventory {
        var copy = self
        func whole(_ date: Date) -> Date { Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)) }
        for (key, commit) in commits { copy.commits[key]?.recorded = whole(commit.recorded) }
        for (key, entry) in resources { copy.resources[key]?.changed = entry.changed.map(whole) }
        return copy
    }
}
