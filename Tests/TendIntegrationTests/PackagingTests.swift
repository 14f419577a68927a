import Foundation
import Testing

/// tend as a Debian package (scripts/build-deb.sh, `make deb`, which `make test` runs first):
/// installed with apt on a test host that has no Swift, used as an operator would, then purged.
@Suite("the Debian package")
struct PackagingTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    /// The .deb that `make deb` built, which must be of this tree's version.
    static func builtPackage() async throws -> (path: String, version: String) {
        let version = (try? String(contentsOfFile: packageRoot + "/.build/deb/version", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "none"
        let current = try await sh(packageRoot + "/scripts/version.sh", []).trimmingCharacters(in: .whitespacesAndNewlines)
        guard version == current else {
            throw CommandFailed(command: "find the .deb", output: "the .deb in .build/deb is of version \(version), this tree is \(current): run `make deb` (`make test` does)")
        }
        let path = packageRoot + "/.build/deb/tend_\(version)_amd64.deb"
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandFailed(command: "find the .deb", output: "\(path) is missing: run `make deb` (`make test` does)")
        }
        return (path, version)
    }

    @Test("tend --version names the version Git gives this tree and the libgit2, libyaml and libsystemd it runs with")
    func version() async throws {
        let run = try await tend(["--version"])
        #expect(run.status == 0, "\(run)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let expected = try await sh(Self.packageRoot + "/scripts/version.sh", []).trimmingCharacters(in: .whitespacesAndNewlines)
        let libgit2 = try await sh("/usr/bin/pkg-config", ["--modversion", "libgit2"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let libyaml = try await sh("/usr/bin/pkg-config", ["--modversion", "yaml-0.1"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let libsystemd = try FileManager.default.destinationOfSymbolicLink(atPath: "/lib/x86_64-linux-gnu/libsystemd.so.0")
        #expect(lines.count == 4, "\(run)")
        #expect(lines.first == "tend \(expected)")
        #expect(lines.dropFirst().first?.hasPrefix("libgit2 \(libgit2) (https, ssh)") == true, "\(lines)")
        #expect(lines.dropFirst(2).first == "libyaml \(libyaml)")
        #expect(lines.dropFirst(3).first == "libsystemd \(libsystemd.replacingOccurrences(of: "libsystemd.so.", with: ""))")
    }

    @Test("apt installs the .deb on a host with no Swift; tend --version, man pages, completion; tend.service converges the host; apt purge leaves nothing of tend",
          .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
    func installUseAndPurge() async throws {
        let package = try await Self.builtPackage()
        try await withTestHost(bare: true) { host in
            #expect(try await host.run(["sh", "-c", "command -v swift || ls /opt/swift/usr"]).stdout.isEmpty, "the host has a Swift toolchain")
            try FileManager.default.copyItem(atPath: package.path, toPath: host.outside("/tmp/tend.deb"))
            let install = try await host.run(["sh", "-c", "cd /tmp && apt-get install -y -q ./tend.deb"])
            #expect(install.status == 0, "\(install)")
            #expect(try await host.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", "tend"]).stdout == "install ok installed \(package.version)")

            // The binary runs on Debian's libraries alone, and says which.
            let ldd = try await host.run(["ldd", "/usr/bin/tend"])
            #expect(!ldd.stdout.contains("not found") && !ldd.stdout.contains("/opt/swift") && !ldd.stdout.contains("libswift"), "\(ldd.stdout)")
            let version = try await host.run(["tend", "--version"])
            #expect(version.status == 0 && version.stdout.hasPrefix("tend \(package.version)\nlibgit2 1."), "\(version)")

            // Man pages: tend(1), one per subcommand, and tend.yaml(5).
            for (section, page, text) in [("1", "tend", "Keep Linux hosts"), ("1", "tend-agent", "--once"), ("1", "tend-apply", "--detailed-exitcode"), ("5", "tend.yaml", "hosts:")] {
                let man = try await host.run(["man", "-P", "cat", section, page])
                #expect(man.status == 0 && man.stdout.contains(text), "man \(section) \(page): \(man)")
            }

            // bash completes subcommands, and folders for --root.
            let completion = try await host.run(["bash", "-c", """
                source /usr/share/bash-completion/bash_completion
                source /usr/share/bash-completion/completions/tend
                mkdir -p /srv/images/one
                cd /srv && COMPREPLY=(); COMP_WORDS=(tend ag); COMP_CWORD=1; COMP_LINE="tend ag"; COMP_POINT=7; _tend tend ag tend
                echo "subcommand: ${COMPREPLY[*]}"
                COMPREPLY=(); COMP_WORDS=(tend apply --root images/); COMP_CWORD=3; COMP_LINE="tend apply --root images/"; COMP_POINT=${#COMP_LINE}; _tend tend images/ --root
                echo "root: ${COMPREPLY[*]}"
                """])
            #expect(completion.stdout.contains("subcommand: agent"), "\(completion)")
            #expect(completion.stdout.contains("root: images/one"), "\(completion)")

            // Installed, not enabled: the agent needs a repository first. The conffile has one
            // commented out, and the state folder is root's alone.
            #expect(try await host.unit("tend.service")["UnitFileState"] == "disabled")
            #expect(try String(contentsOfFile: host.outside("/etc/tend/agent.yaml"), encoding: .utf8).contains("# repo: "))
            #expect(try FileManager.default.attributesOfItem(atPath: host.outside("/var/lib/tend"))[.posixPermissions] as? Int == 0o700)

            // Configured and started, it converges the host before `systemctl start` returns.
            let remote = try await AgentTests.Remote.make(in: host)
            let pushed = try await remote.push(AgentTests.Remote.message("from the package"), "first")
            try host.write(["/etc/tend/agent.yaml": "repo: /srv/config.git\nref: main\ninterval: 1m\n"])
            let start = try await host.run(["systemctl", "enable", "--now", "tend.service"])
            #expect(start.status == 0, "\(start)")
            #expect(AgentTests.message(host) == "from the package\n")
            let status = try await host.run(["tend", "status"])
            #expect(status.status == 0 && status.stdout.contains("changed"), "\(status)")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/var/lib/prometheus")), "tend made node_exporter's folder on a host without it")

            // The one-shot alternative runs a cycle and exits by it.
            try await host.run(["systemctl", "stop", "tend.service"])
            try host.write(["/etc/app/message": "edited by hand\n"])
            let once = try await host.run(["systemctl", "start", "tend-apply.service"])
            let onceLog = try await host.run(["journalctl", "-u", "tend-apply.service", "--no-pager"]).stdout
            #expect(once.status == 0, "\(once)\n\(onceLog)")
            #expect(AgentTests.message(host) == "from the package\n", "tend-apply.service did not repair the file")

            // The shipped snapshot service records the host for fleet previews.
            let snapshot = try await host.run(["systemctl", "start", "tend-snapshot.service"])
            let snapshotLog = try await host.run(["journalctl", "-u", "tend-snapshot.service", "--no-pager"]).stdout
            #expect(snapshot.status == 0, "\(snapshot)\n\(snapshotLog)")
            let recorded = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: host.outside("/var/lib/tend/snapshot.json")))) as? [String: Any]
            #expect(recorded?["commit"] as? String == pushed, "the snapshot is not of the commit the agent applied")
            #expect((recorded?["observed"] as? [String: Any])?["paths"] as? [String: Any] != nil, "no snapshot at /var/lib/tend/snapshot.json")

            // Purged, nothing of tend is left but its journal and what it managed.
            let purge = try await host.run(["apt-get", "purge", "-y", "-q", "tend"])
            #expect(purge.status == 0, "\(purge)")
            #expect(try await host.run(["dpkg-query", "-W", "-f", "${Status}", "tend"]).stdout.isEmpty)
            for left in ["/usr/bin/tend", "/etc/tend", "/var/lib/tend", "/lib/systemd/system/tend.service", "/lib/systemd/system/tend-apply.timer", "/lib/systemd/system/tend-snapshot.timer",
                         "/etc/systemd/system/multi-user.target.wants/tend.service", "/usr/share/doc/tend", "/usr/share/man/man1/tend.1.gz",
                         "/usr/share/bash-completion/completions/tend", "/var/lib/prometheus/node-exporter/tend.prom",
                         "/var/lib/systemd/deb-systemd-helper-enabled/tend.service.dsh-also"] {
                #expect(!FileManager.default.fileExists(atPath: host.outside(left)), "\(left) is left after purge")
            }
            let units = try await host.run(["systemctl", "list-unit-files", "tend*", "--no-legend"])
            #expect(units.stdout.isEmpty, "\(units.stdout)")
            #expect(AgentTests.message(host) == "from the package\n", "purging tend removed what it managed")
        }
    }
}
