import Foundation
import Testing

/// Fetching over SSH from an sshd the test runs on 127.0.0.1, with the host key checked against a
/// known_hosts file the user names.
@Suite("Git over SSH", .enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd"),
                                "needs root and /usr/sbin/sshd (openssh-server, installed by make test)"))
struct SSHTransportTests {
    /// An sshd on a free port of 127.0.0.1 that lets the client key log in as root, with its own
    /// host key; the test's known_hosts files; and a repository to serve.
    final class Server: Sendable {
        let folder: Scratch
        let port: Int

        init() async throws {
            folder = try Scratch("tend-sshd")
            port = try freePort()
            for key in ["host", "other-host", "client", "stranger"] {
                try await sh("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", folder.url(key)])
            }
            try folder.write([
                "authorized_keys": try String(contentsOfFile: folder.url("client.pub"), encoding: .utf8),
                "known_hosts": "[127.0.0.1]:\(port) " + (try String(contentsOfFile: folder.url("host.pub"), encoding: .utf8)),
                "wrong_known_hosts": "[127.0.0.1]:\(port) " + (try String(contentsOfFile: folder.url("other-host.pub"), encoding: .utf8)),
                "sshd_config": """
                    Port \(port)
                    ListenAddress 127.0.0.1
                    HostKey \(folder.url("host"))
                    AuthorizedKeysFile \(folder.url("authorized_keys"))
                    PermitRootLogin prohibit-password
                    PasswordAuthentication no
                    KbdInteractiveAuthentication no
                    UsePAM no
                    StrictModes no
                    PidFile none

                    """,
            ])
            try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
            chmod(folder.url("host"), 0o600)
        }

        var arguments: [String] { ["-D", "-e", "-f", folder.url("sshd_config")] }

        func fingerprint(_ key: String) async throws -> String {
            String(try await sh("/usr/bin/ssh-keygen", ["-l", "-f", folder.url("\(key).pub")]).split(separator: " ")[1])
        }
    }

    @Test("a key and a matching known_hosts entry fetch and apply; an unknown host key is refused with its fingerprint; no key is refused")
    func sshFetch() async throws {
        let server = try await Server()
        let repo = try await GitRepo()
        try await repo.commit(appConfig("over ssh\n"), "First")
        let url = "ssh://root@127.0.0.1:\(server.port)\(repo.path)"
        let hostFingerprint = try await server.fingerprint("host")
        try await withServer("/usr/sbin/sshd", server.arguments, port: server.port) { _ in
            let root = try makeRoot()
            let state = try Scratch("tend-state")
            let good = try await tend(["apply", "--repo", url, "--state-dir", state.path, "--root", root.path,
                                       "--ssh-key", server.folder.url("client"), "--known-hosts", server.folder.url("known_hosts")])
            #expect(good.status == 0, "\(good)")
            #expect(read(root.url("etc/app.conf")) == "over ssh\n")

            let unknown = try await tend(["plan", "--repo", url, "--state-dir", try Scratch().path,
                                          "--ssh-key", server.folder.url("client"), "--known-hosts", server.folder.url("wrong_known_hosts")])
            #expect(unknown.status == 4, "\(unknown)")
            #expect(unknown.stderr.contains("the host key of [127.0.0.1]:\(server.port) is not in \(server.folder.url("wrong_known_hosts")): \(hostFingerprint)"), "\(unknown)")

            let stranger = try await tend(["plan", "--repo", url, "--state-dir", try Scratch().path,
                                           "--ssh-key", server.folder.url("stranger"), "--known-hosts", server.folder.url("known_hosts")])
            #expect(stranger.status == 4, "\(stranger)")
            #expect(stranger.stderr.contains("cannot fetch \(url) over ssh"), "\(stranger)")

            let noKey = try await tend(["plan", "--repo", url, "--state-dir", try Scratch().path, "--known-hosts", server.folder.url("known_hosts")])
            #expect(noKey.status == 4, "\(noKey)")
            #expect(noKey.stderr.contains("--ssh-key"), "\(noKey)")
        }
    }

    @Test("known_hosts as OpenSSH writes and reads it: hashed names (HashKnownHosts), wildcards and negations, and @revoked keys refused")
    func knownHostsForms() async throws {
        let server = try await Server()
        let repo = try await GitRepo()
        try await repo.commit(appConfig("over ssh\n"), "First")
        let url = "ssh://root@127.0.0.1:\(server.port)\(repo.path)"
        let hostKey = try String(contentsOfFile: server.folder.url("host.pub"), encoding: .utf8)
        try server.folder.write([
            "hashed": "[127.0.0.1]:\(server.port) " + hostKey,
            "wildcard": "[127.0.0.?]:\(server.port),!other.example " + hostKey,
            "negated": "[127.0.0.*]:\(server.port),![127.0.0.1]:\(server.port) " + hostKey,
            "revoked": "[127.0.0.1]:\(server.port) " + hostKey + "@revoked [127.0.0.1]:\(server.port) " + hostKey,
        ])
        try await sh("/usr/bin/ssh-keygen", ["-H", "-f", server.folder.url("hashed")])
        #expect(read(server.folder.url("hashed"))?.hasPrefix("|1|") == true, "ssh-keygen -H did not hash the file")
        try await withServer("/usr/sbin/sshd", server.arguments, port: server.port) { _ in
            func plan(_ knownHosts: String) async throws -> TendRun {
                let (state, root) = (try Scratch(), try makeRoot())
                let run = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path,
                                          "--ssh-key", server.folder.url("client"), "--known-hosts", server.folder.url(knownHosts)])
                withExtendedLifetime((state, root)) {}
                return run
            }
            let hashed = try await plan("hashed")
            #expect(hashed.status == 0, "\(hashed)")
            let wildcard = try await plan("wildcard")
            #expect(wildcard.status == 0, "\(wildcard)")
            let negated = try await plan("negated")
            #expect(negated.status == 4, "a negated pattern still matched: \(negated)")
            let revoked = try await plan("revoked")
            #expect(revoked.status == 4, "\(revoked)")
            #expect(revoked.stderr.contains("is marked @revoked in \(server.folder.url("revoked"))"), "\(revoked)")

            // No file named: the user's ~/.ssh/known_hosts is read, as ssh reads it.
            let home = try Scratch("tend-home")
            try home.write([".ssh/known_hosts": "[127.0.0.1]:\(server.port) " + (try String(contentsOfFile: server.folder.url("other-host.pub"), encoding: .utf8))])
            let (state, root) = (try Scratch(), try makeRoot())
            let fromHome = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path, "--ssh-key", server.folder.url("client")],
                                          environment: ["HOME": home.path])
            #expect(fromHome.status == 4, "\(fromHome)")
            #expect(fromHome.stderr.contains("/.ssh/known_hosts: SHA256:"), "\(fromHome)")
        }
    }
}
