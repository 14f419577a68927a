import Foundation
import Testing
import TendCore
import TendProviders
import TendSpec

/// A configuration repository in a temporary folder, loaded into a catalog.
struct Fixture {
    let path: String

    init(_ files: [String: String]) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tend-catalog-\(UUID().uuidString)").path
        for (name, text) in files {
            let full = path + "/" + name
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: false, encoding: .utf8)
        }
    }

    func catalog(_ facts: HostFacts = HostFacts(hostname: "web-1", os: "debian")) throws -> Catalog {
        try Configuration.catalog(from: try DirectorySnapshot(path: path), providers: .standard, facts: facts)
    }

    func problems(_ facts: HostFacts = HostFacts(hostname: "web-1", os: "debian")) -> [String] {
        do {
            _ = try catalog(facts)
            return []
        } catch let error as ConfigurationError {
            return error.diagnostics.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

@Suite("catalog")
struct CatalogTests {
    @Test("a path comes after its declared parent, requires are honoured, and otherwise declaration order holds")
    func order() throws {
        let fixture = try Fixture([
            "tend.yaml": "hosts:\n  - apply: [m]\n",
            "m/a.yaml": """
                resources:
                  - file: /etc/app/conf
                  - file: /etc/z
                    requires: [file:/etc/y]
                  - file: /etc/y
                  - directory: /etc/app
                  - file: /etc/x
                """,
        ])
        defer { fixture.remove() }
        let catalog = try fixture.catalog()
        #expect(catalog.entries.map(\.id.description) == ["directory:/etc/app", "file:/etc/app/conf", "file:/etc/y", "file:/etc/z", "file:/etc/x"])
        #expect(catalog[ResourceID(kind: "file", name: "/etc/app/conf")]?.dependencies == [ResourceID(kind: "directory", name: "/etc/app")])
    }

    @Test("packages come after the apt sources, pins and keyrings of the catalog, but a source that requires a package, or an apt.conf.d file of a package, closes no cycle")
    func aptSourcesFirst() throws {
        let fixture = try Fixture([
            "tend.yaml": "hosts:\n  - apply: [m]\n",
            "m/a.yaml": """
                resources:
                  - package: nginx
                  - package: ca-certificates
                  - package: unattended-upgrades
                  - file: /etc/apt/sources.list.d/nginx.list
                    content: "deb https://nginx.org/packages/debian bookworm nginx\\n"
                    requires: [package:ca-certificates]
                  - file: /etc/apt/keyrings/nginx.asc
                  - file: /etc/apt/apt.conf.d/20auto-upgrades
                    requires: [package:unattended-upgrades]
                  - file: /etc/motd
                """,
        ])
        defer { fixture.remove() }
        let catalog = try fixture.catalog()
        let order = catalog.entries.map(\.id.description)
        func position(_ id: String) -> Int { order.firstIndex(of: id) ?? -1 }
        #expect(position("file:/etc/apt/sources.list.d/nginx.list") < position("package:nginx"), "\(order)")
        #expect(position("file:/etc/apt/keyrings/nginx.asc") < position("package:nginx"), "\(order)")
        #expect(position("package:ca-certificates") < position("file:/etc/apt/sources.list.d/nginx.list"), "\(order)")
        #expect(position("package:unattended-upgrades") < position("file:/etc/apt/apt.conf.d/20auto-upgrades"), "\(order)")
        #expect(catalog[ResourceID(kind: "package", name: "nginx")]?.dependencies.contains(ResourceID(kind: "file", name: "/etc/motd")) == false)
    }

    @Test("group beside another kind key is that resource's attribute, written before or after it; alone it is the group kind")
    func groupAttributeOrKind() throws {
        let fixture = try Fixture([
            "tend.yaml": "hosts:\n  - apply: [m]\n",
            "m/a.yaml": """
                resources:
                  - group: adm
                    mode: "0640"
                    file: /etc/a
                  - file: /etc/b
                    group: adm
                  - group: ops
                """,
        ])
        defer { fixture.remove() }
        let catalog = try fixture.catalog()
        #expect(Set(catalog.entries.map(\.id.description)) == ["file:/etc/a", "file:/etc/b", "group:ops"])
    }

    @Test("hosts select manifests by hostname glob, labels and os, in the order of tend.yaml")
    func selection() throws {
        let fixture = try Fixture([
            "tend.yaml": """
                hosts:
                  - apply: [base]
                  - match: { hostname: "web-*" }
                    apply: [web]
                  - match: { labels: { env: prod }, os: [ubuntu, debian] }
                    apply: [prod.yaml]
                """,
            "base/base.yaml": "resources:\n  - file: /etc/base\n",
            "web/web.yaml": "resources:\n  - file: /etc/web\n",
            "prod.yaml": "resources:\n  - file: /etc/prod\n",
        ])
        defer { fixture.remove() }
        func ids(_ facts: HostFacts) throws -> [String] { try fixture.catalog(facts).entries.map(\.id.name) }
        #expect(try ids(HostFacts(hostname: "db-1", os: "debian")) == ["/etc/base"])
        #expect(try ids(HostFacts(hostname: "web-1", os: "debian")) == ["/etc/base", "/etc/web"])
        #expect(try ids(HostFacts(hostname: "web-1", os: "debian", labels: ["env": "prod"])) == ["/etc/base", "/etc/web", "/etc/prod"])
        #expect(try ids(HostFacts(hostname: "db-1", os: "rhel", labels: ["env": "prod"])) == ["/etc/base"])
        #expect(try ids(HostFacts(hostname: "db-1", os: "linuxmint", osLike: ["ubuntu"], labels: ["env": "prod"])) == ["/etc/base", "/etc/prod"])
    }

    @Test("a mistake in a manifest for other hosts is still reported")
    func otherHostsValidated() throws {
        let fixture = try Fixture([
            "tend.yaml": "hosts:\n  - apply: [base]\n  - match: { hostname: db-* }\n    apply: [db]\n",
            "base/base.yaml": "resources:\n  - file: /etc/base\n",
            "db/db.yaml": "resources:\n  - file: /etc/db\n    mode: rw\n",
        ])
        defer { fixture.remove() }
        #expect(fixture.problems() == ["db/db.yaml:3:11: 'mode' must be three or four octal digits such as \"0644\", found 'rw'"])
    }

    @Test("two resources cannot manage one path; only units can be notified")
    func conflicts() throws {
        let fixture = try Fixture([
            "tend.yaml": "hosts:\n  - apply: [m]\n",
            "m/a.yaml": """
                resources:
                  - file: /etc/x
                  - directory: /etc/x
                  - file: /etc/y
                    notify: [file:/etc/x]
                """,
        ])
        defer { fixture.remove() }
        #expect(fixture.problems() == [
            "m/a.yaml:3:16: directory:/etc/x manages /etc/x, which file:/etc/x (declared at m/a.yaml:2:11) already manages; the two would undo each other on every apply",
            "m/a.yaml:5:14: 'notify' names file:/etc/x, but a file cannot be notified; only units restart or reload, and commands run, on a change",
        ])
    }

    @Test("manifests are the .yaml files directly in a folder, in name order; files below are not manifests")
    func manifestFolders() throws {
        let fixture = try Fixture([
            "tend.yaml": "hosts:\n  - apply: [m]\n",
            "m/20-b.yaml": "resources:\n  - file: /etc/b\n",
            "m/10-a.yml": "resources:\n  - file: /etc/a\n",
            "m/files/not-a-manifest.yaml": "this: is served by source:\n",
        ])
        defer { fixture.remove() }
        #expect(try fixture.catalog().entries.map(\.id.name) == ["/etc/a", "/etc/b"])
    }
}
