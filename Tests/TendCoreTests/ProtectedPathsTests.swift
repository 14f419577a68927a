import Foundation
import Testing
import TendCore
import TendProviders
import TendSpec

/// The table of what a repository cannot declare (`ProtectedPaths`), as the catalog applies it.
@Suite("protected paths")
struct ProtectedPathsTests {
    static func catalog(_ manifest: String, root: String = "/", stateDirectory: String = "/var/lib/tend", selfManagement: Bool = false) throws -> Catalog {
        let fixture = try Fixture(["tend.yaml": "hosts:\n  - apply: [m]\n", "m/a.yaml": manifest])
        defer { fixture.remove() }
        let protected = ProtectedPaths(root: root, stateDirectory: stateDirectory, binary: "/opt/tend/bin/tend", selfManagement: selfManagement)
        return try Configuration.catalog(from: try DirectorySnapshot(path: fixture.path), providers: .standard,
                                         facts: HostFacts(hostname: "web-1", os: "debian"), protected: protected)
    }

    static func problems(_ manifest: String, root: String = "/", stateDirectory: String = "/var/lib/tend", selfManagement: Bool = false) -> [String] {
        do {
            _ = try catalog(manifest, root: root, stateDirectory: stateDirectory, selfManagement: selfManagement)
            return []
        } catch let error as ConfigurationError {
            return error.diagnostics.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    /// One declaration of each rule, with the line it is on and the rule its refusal names.
    static let never: [(String, Int, String)] = [
        ("  - file: /var/lib/tend/suspended.json\n    content: \"{}\"\n", 2, "state"),
        ("  - file: /srv/state/agent.json\n    content: \"{}\"\n", 2, "state"),
        ("  - directory: /var/lib\n    purge: true\n", 2, "state"),
        ("  - symlink: /var/lib/tend\n    target: /tmp\n", 2, "state"),
        ("  - file: /usr/bin/tend\n    content: x\n", 2, "binary"),
        ("  - file: /opt/tend/bin/tend\n    content: x\n", 2, "binary"),
        ("  - file: /run/tend/locks/-.lock\n    content: x\n", 2, "lock"),
        ("  - file: /proc/sys/kernel/hostname\n    content: x\n", 2, "kernel"),
        ("  - file: /sys/kernel/mm/transparent_hugepage/enabled\n    content: never\n", 2, "kernel"),
        ("  - symlink: /dev/tend\n    target: /dev/null\n", 2, "kernel"),
    ]

    static let optIn: [(String, Int, String)] = [
        ("  - file: /etc/tend/agent.yaml\n    content: \"repo: /elsewhere\\n\"\n", 2, "control"),
        ("  - directory: /etc/tend\n", 2, "control"),
        ("  - unit: tend.service\n    enabled: false\n", 2, "units"),
        ("  - unit: tend-apply.timer\n    masked: true\n", 2, "units"),
        ("  - file: /etc/systemd/system/tend.service.d/exec.conf\n    content: \"[Service]\\n\"\n", 2, "units"),
        ("  - symlink: /etc/systemd/system/multi-user.target.wants/tend.service\n    state: absent\n", 2, "units"),
        ("  - file: /lib/systemd/system/tend-snapshot.service\n    content: x\n", 2, "units"),
        ("  - directory: /etc/systemd/system/multi-user.target.wants\n    purge: true\n", 2, "units"),
        ("  - symlink: /etc/systemd/system/timers.target.wants\n    target: /tmp\n", 2, "units"),
        ("  - file: /etc/systemd/system/service.d/all.conf\n    content: \"[Service]\\n\"\n", 2, "units"),
        ("  - file: /etc/systemd/system/tend-.service.d/prefix.conf\n    content: \"[Service]\\n\"\n", 2, "units"),
        ("  - file: /etc/systemd/system.control/tend.service.d/50-x.conf\n    content: \"[Service]\\n\"\n", 2, "units"),
        ("  - symlink: /etc/systemd/system/tend.service.requires/broken.service\n    target: /dev/null\n", 2, "units"),
        ("  - file: /etc/systemd/system/tend.service.d/\u{301}x.conf\n    content: \"[Service]\\n\"\n", 2, "units"),
        ("  - unit: other.service\n    content: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nAlias=tend.service\\n\"\n    enabled: true\n", 2, "units"),
        ("  - package: tend\n    state: absent\n", 2, "package"),
    ]

    @Test("what no host may let a repository declare is refused at its position, naming its rule, self-managed or not")
    func neverDeclarable() {
        for (declaration, line, rule) in Self.never {
            for selfManagement in [false, true] {
                let problems = Self.problems("resources:\n" + declaration, stateDirectory: "/srv/state/", selfManagement: selfManagement)
                #expect(problems.count == 1 && problems[0].contains("m/a.yaml:\(line):") && problems[0].contains("rule '\(rule)'"), "\(declaration): \(problems)")
                #expect(!problems.joined().contains("self_manage"), "no opt-in is offered for \(rule): \(problems)")
            }
        }
    }

    @Test("tend's own control is refused with the way to opt in, and accepted on a self-managed host")
    func controlNeedsOptIn() throws {
        for (declaration, line, rule) in Self.optIn {
            let problems = Self.problems("resources:\n" + declaration)
            #expect(problems.count == 1 && problems[0].contains("m/a.yaml:\(line):") && problems[0].contains("rule '\(rule)'")
                    && problems[0].contains("self_manage: true") && problems[0].contains("--self-manage"), "\(declaration): \(problems)")
            #expect(try Self.catalog("resources:\n" + declaration, selfManagement: true).entries.count == 1)
        }
    }

    @Test("names are matched whole: /etc/tend-x, tend-late.service and /var/lib/tendency are anyone's")
    func wholeNames() throws {
        let manifest = """
            resources:
              - file: /etc/tend-x.conf
              - file: /var/lib/tendency
              - unit: tend-late.service
              - file: /etc/systemd/system/tend-late.service.d/a.conf
              - directory: /etc
              - file: /devices
            """
        #expect(try Self.catalog(manifest).entries.count == 6)
    }

    @Test("under another root, the root's own /var/lib/tend is protected, not the building machine's state folder")
    func otherRoot() throws {
        #expect(Self.problems("resources:\n  - file: /var/lib/tend/inventory.json\n", root: "/srv/image").count == 1)
        #expect(try Self.catalog("resources:\n  - file: /srv/state/x\n  - file: /opt/tend/bin/tend\n", root: "/srv/image", stateDirectory: "/srv/state").entries.count == 2)
    }

    @Test("what manages tend comes last in the run, with what depends on it, each in its own order")
    func selfManagedLast() throws {
        let catalog = try Self.catalog("""
            resources:
              - directory: /etc/tend
              - file: /etc/tend/agent.yaml
                notify: [unit:tend.service]
              - unit: tend.service
                dropins:
                  limits.conf: "[Service]\\n"
              - file: /etc/motd
                requires: [file:/etc/tend/agent.yaml]
              - package: nginx
              - file: /etc/nginx/nginx.conf
            """, selfManagement: true)
        #expect(catalog.entries.map(\.id.description) == ["package:nginx", "file:/etc/nginx/nginx.conf", "directory:/etc/tend",
                                                          "file:/etc/tend/agent.yaml", "unit:tend.service", "file:/etc/motd"])
    }
}
