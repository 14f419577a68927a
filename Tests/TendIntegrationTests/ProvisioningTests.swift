import Foundation
import Subprocess
import SystemPackage
import Testing

/// examples/provisioning end to end: `make image`'s recipe (scripts/make-image.sh) debootstraps
/// a Debian 12 root and applies the example to it offline; the image then boots as a test host
/// with its own systemd, and its agent, pulling the same repository from a Git server on the
/// test's network, finds nothing to change: the offline apply and the live agent agree.
@Suite("provisioning", .enabled(if: TestHost.available && FileManager.default.isExecutableFile(atPath: "/usr/sbin/debootstrap"),
                                "needs test hosts and debootstrap (installed by make test)"))
struct ProvisioningTests {
    static let recipe = PackagingTests.packageRoot + "/scripts/make-image.sh"

    @Test("make image builds a root that boots running, with its own name and machine ID, and whose agent plans zero changes")
    func imageBootsAndAgentAgrees() async throws {
        let package = try await PackagingTests.builtPackage()
        let scratch = try Scratch("tend-image")

        // The operator's repository: the example, with the URL of the Git server the booted host
        // will reach on the test's network, on the branch the example's agent.yaml names.
        let repo = try await GitRepo()
        let work = repo.path
        for name in try FileManager.default.contentsOfDirectory(atPath: ExampleHost.folder("provisioning")) {
            try FileManager.default.copyItem(atPath: ExampleHost.folder("provisioning") + "/" + name, toPath: work + "/" + name)
        }
        let config = try #require(read(work + "/tend.yaml"))
        let url = "git://10.231.0.1/hosts.git"
        let ours = config.replacingOccurrences(of: "repo_url: ssh://git@git.example.com/ops/hosts.git", with: "repo_url: \(url)")
        #expect(ours != config, "the example's tend.yaml names its repository in vars.repo_url")
        // And a package whose postinst asks, as invoke-rc.d does, whether it may start a service.
        let imageYAML = try #require(read(work + "/image/image.yaml"))
        let commit = try await repo.commit(["tend.yaml": ours, "image/image.yaml": imageYAML + "\n  - package: tend-probe\n"], "hosts for web-07")
        try await repo.git("branch", "-M", "production")
        _ = try await sh("/usr/bin/git", ["clone", "-q", "--bare", work, scratch.url("git/hosts.git")])

        try scratch.write([
            "probe/DEBIAN/control": "Package: tend-probe\nVersion: 1\nArchitecture: all\nMaintainer: tend tests <tests@example.com>\nDescription: asks policy-rc.d\n",
            "probe/DEBIAN/postinst": "#!/bin/sh\nanswer=none\nif [ -x /usr/sbin/policy-rc.d ]; then answer=0; /usr/sbin/policy-rc.d tend-probe start || answer=$?; fi\necho \"policy-rc.d: $answer\" > /var/lib/tend-probe\n",
        ])
        chmod(scratch.url("probe/DEBIAN/postinst"), 0o755)
        try await sh("/usr/bin/dpkg-deb", ["--build", "--root-owner-group", scratch.url("probe"), scratch.url("tend-probe_1_all.deb")])

        // The image, built as `make image` builds it, with this tree's tend and .deb.
        let image = scratch.url("image")
        let build = try await Subprocess.run(.path("/bin/bash"), arguments: [Self.recipe, image, package.path, scratch.url("tend-probe_1_all.deb")],
                                             environment: .inherit.updating(["TEND": tendBinary, "REPO": work]),
                                             output: .string(limit: 1 << 22), error: .string(limit: 1 << 22))
        let buildLog = build.standardOutput + build.standardError
        #expect(build.terminationStatus.isSuccess, "\(buildLog)")
        #expect(buildLog.contains("+ package:tend: created"), "\(buildLog)")
        #expect(buildLog.contains("No changes. The host matches the configuration."), "a second plan of the image has nothing to do: \(buildLog)")
        // No service of the image's packages was started on this machine, in the chroot: while apt
        // ran, policy-rc.d refused every start (101), and it is gone after.
        #expect(read(image + "/var/lib/tend-probe") == "policy-rc.d: 101\n")
        #expect(try Self.processes(rootedIn: image).isEmpty, "a package's service runs from the image on the build machine")
        #expect(!FileManager.default.fileExists(atPath: image + "/usr/sbin/policy-rc.d"), "tend's hold on services outlives the apply")
        #expect(read(image + "/etc/hostname") == "web-07\n")
        #expect(read(image + "/etc/machine-id") == "", "systemd makes the machine ID at first boot")
        #expect(!FileManager.default.fileExists(atPath: image + "/etc/ssh/ssh_host_ed25519_key"), "host keys made in the image would be every machine's")
        let dpkg = try await sh("/usr/bin/dpkg-query", ["--admindir=" + image + "/var/lib/dpkg", "-W", "-f", "${Status} ${Version}", "tend"])
        #expect(dpkg == "install ok installed \(package.version)")

        try await withTestNetwork { network in
            try await network.withGitDaemon(serving: scratch.url("git")) { _ in
                try await withTestHost(image: image) { host in
                    try await network.join(host, number: 7)
                    // The agent's fetch before the network was there failed; it tries again soon.
                    let deadline = Date().addingTimeInterval(90)
                    var record: [String: Any] = [:]
                    while Date() < deadline {
                        if let data = FileManager.default.contents(atPath: host.outside("/var/lib/tend/last-run.json")),
                           let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                           (json["source"] as? [String: Any])?["commit"] as? String == commit {
                            record = json
                            break
                        }
                        try await Task.sleep(for: .milliseconds(500))
                    }
                    let journal = try await host.run(["journalctl", "-u", "tend.service", "--no-pager", "-o", "cat"])
                    #expect(record["result"] as? String == "converged", "the agent did not converge to \(commit): \(journal.stdout)")
                    #expect((record["counts"] as? [String: Any])?.isEmpty == true, "the agent changed what the image build applied: \(record)\n\(journal.stdout)")
                    #expect((record["failures"] as? [Any])?.isEmpty == true, "\(record)")
                    #expect(record["by"] as? String == "tend agent")

                    let state = try await host.run(["systemctl", "is-system-running"])
                    let failed = try await host.run(["systemctl", "--failed", "--no-legend", "--no-pager"])
                    #expect(state.stdout == "running\n", "\(state.stdout) \(failed.stdout)")
                    #expect(try await host.unit("tend.service")["ActiveState"] == "active")
                    #expect(try await host.run(["hostname"]).stdout == "web-07\n")
                    let machineID = try await host.run(["cat", "/etc/machine-id"]).stdout
                    #expect(machineID.count == 33 && machineID != read("/etc/machine-id"), "a machine ID of its own: \(machineID)")
                    // ssh-host-keys.service, enabled by the image build, made this machine's keys.
                    #expect(FileManager.default.fileExists(atPath: host.outside("/etc/ssh/ssh_host_ed25519_key")))
                    #expect(try await host.unit("ssh.service")["ActiveState"] == "active")

                    // tend plan by hand, with the agent's labels, agrees with the agent. It runs in
                    // the host's network namespace (that of its PID 1), where the Git server is.
                    let plan = try await host.run(["nsenter", "-t", "1", "-n", "tend", "plan", "--repo", url, "--ref", "production", "--label", "role=web", "--detailed-exitcode"])
                    #expect(plan.status == 0 && plan.stdout.contains("No changes."), "\(plan)")
                }
            }
        }
    }

    /// The PIDs of processes whose root folder is `image` (a chroot into it).
    static func processes(rootedIn image: String) throws -> [Int32] {
        let resolved = URL(fileURLWithPath: image).resolvingSymlinksInPath().path
        return try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap(Int32.init).filter { pid in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root")) == resolved
        }
    }
}
