import Foundation
import Testing

/// Commits must carry a good signature by an allowed key before anything of them is loaded.
@Suite("signed commits")
struct SignatureTests {
    /// Keys made by the test: alice (allowed) and mallory (not), for SSH and OpenPGP.
    final class Keys: Sendable {
        let folder: Scratch

        init() async throws {
            folder = try Scratch("tend-keys")
            for name in ["alice", "mallory"] {
                try await sh("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "\(name)@example.com", "-f", folder.url(name)])
            }
            let alice = try String(contentsOfFile: folder.url("alice.pub"), encoding: .utf8)
            try folder.write(["allowed_signers": "alice@example.com namespaces=\"git\" \(alice)"])
        }

        func fingerprint(_ name: String) async throws -> String {
            let line = try await sh("/usr/bin/ssh-keygen", ["-l", "-f", folder.url("\(name).pub")])
            return String(line.split(separator: " ")[1])
        }

        /// `git commit` arguments that sign with `name`'s SSH key.
        func sshSigning(_ name: String) -> [String] {
            ["-c", "gpg.format=ssh", "-c", "user.signingkey=\(folder.url(name))", "-c", "commit.gpgsign=true"]
        }
    }

    func verified(_ repo: GitRepo, _ extra: [String]) async throws -> (TendRun, Scratch) {
        let root = try makeRoot()
        let run = try await tend(["apply", "--repo", repo.path, "--state-dir", try Scratch("tend-state").path, "--root", root.path] + extra)
        return (run, root)
    }

    @Test("--verify, --verify-gpg and the other Git options with a folder source are refused (exit 64), not ignored: a folder has no commits to check")
    func verifyNeedsGit() async throws {
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/a\n    content: \"a\\n\"\n"])
        let root = try makeRoot()
        for options in [["--verify", "/nonexistent/allowed_signers"], ["--verify-gpg", "/etc/keyring.gpg"], ["--ref", "main", "--offline"]] {
            for command in ["validate", "plan", "apply"] {
                let run = try await tend([command, repo.path, "--root", root.path] + options)
                #expect(run.status == 64, "\(command) \(options): \(run)")
                #expect(run.stderr.contains("\(options[0])") && run.stderr.contains("for Git sources (--repo)"), "\(run)")
            }
        }
        #expect(status(root.url("etc/a")) == nil, "nothing was applied")
    }

    @Test("SSH: a commit signed by an allowed key is applied; unsigned or signed by another key is refused with its fingerprint")
    func sshSignatures() async throws {
        let keys = try await Keys()
        let allowed = ["--verify", keys.folder.url("allowed_signers")]
        let repo = try await GitRepo()
        try await repo.commit(appConfig("signed\n"), "Signed by Alice", extra: keys.sshSigning("alice"))
        let (good, root) = try await verified(repo, allowed)
        #expect(good.status == 0, "\(good)")
        #expect(read(root.url("etc/app.conf")) == "signed\n")

        let unsigned = try await repo.commit(appConfig("unsigned\n"), "Not signed")
        let (refused, untouched) = try await verified(repo, allowed)
        #expect(refused.status == 7, "\(refused)")
        #expect(refused.stderr.contains("commit \(unsigned.prefix(7)) is not signed"), "\(refused)")
        #expect(status(untouched.url("etc/app.conf")) == nil, "nothing is applied from a refused commit")

        try await repo.commit(appConfig("mallory\n"), "Signed by Mallory", extra: keys.sshSigning("mallory"))
        let (stranger, _) = try await verified(repo, allowed)
        #expect(stranger.status == 7, "\(stranger)")
        let fingerprint = try await keys.fingerprint("mallory")
        #expect(stranger.stderr.contains("is signed by key \(fingerprint), which is not in"), "\(stranger)")
    }

    @Test("SSH: a signature that does not match the commit is refused")
    func tamperedSignature() async throws {
        let keys = try await Keys()
        let repo = try await GitRepo()
        try await repo.commit(appConfig("original\n"), "Original", extra: keys.sshSigning("alice"))
        // Keep the signature header but change the message: the signed payload no longer matches.
        let raw = try await repo.git("cat-file", "commit", "HEAD")
        let forged = raw.replacingOccurrences(of: "Original", with: "Forged")
        try keys.folder.write(["forged": forged])
        let id = try await sh("/usr/bin/git", ["hash-object", "-t", "commit", "-w", "--literally", keys.folder.url("forged")], in: repo.path).trimmingCharacters(in: .whitespacesAndNewlines)
        try await repo.git("update-ref", "refs/heads/main", id)
        let (run, _) = try await verified(repo, ["--verify", keys.folder.url("allowed_signers")])
        #expect(run.status == 7, "\(run)")
        #expect(run.stderr.contains("commit \(id.prefix(7)) has a bad SSH signature (key \(try await keys.fingerprint("alice")))"), "\(run)")
    }

    @Test("OpenPGP: a commit signed by a key of the keyring is applied; another key is refused, naming it")
    func openPGPSignatures() async throws {
        let home = try Scratch("tend-gnupg")
        let gnupg = ["GNUPGHOME": home.path]
        for name in ["Alice", "Mallory"] {
            try await sh("/usr/bin/gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "\(name) <\(name.lowercased())@example.com>", "ed25519", "sign", "never"], environment: gnupg)
        }
        let listing = try await sh("/usr/bin/gpg", ["--batch", "--with-colons", "--list-keys"], environment: gnupg)
        let fingerprints = listing.split(separator: "\n").filter { $0.hasPrefix("fpr:") }.map { String($0.split(separator: ":", omittingEmptySubsequences: false)[9]) }
        try #require(fingerprints.count == 2)
        let (alice, mallory) = (fingerprints[0], fingerprints[1])
        let keyring = home.url("alice.gpg")
        let exported = try await sh("/usr/bin/gpg", ["--batch", "--export", "--output", keyring, alice], environment: gnupg)
        _ = exported

        let repo = try await GitRepo()
        try await repo.commit(appConfig("pgp\n"), "Signed with OpenPGP", extra: ["-c", "user.signingkey=\(alice)", "-c", "commit.gpgsign=true"], environment: gnupg)
        let (good, root) = try await verified(repo, ["--verify-gpg", keyring])
        #expect(good.status == 0, "\(good)")
        #expect(read(root.url("etc/app.conf")) == "pgp\n")

        try await repo.commit(appConfig("mallory\n"), "Signed by Mallory", extra: ["-c", "user.signingkey=\(mallory)", "-c", "commit.gpgsign=true"], environment: gnupg)
        let (refused, _) = try await verified(repo, ["--verify-gpg", keyring])
        #expect(refused.status == 7, "\(refused)")
        #expect(refused.stderr.contains("is signed by OpenPGP key \(mallory.suffix(16))"), "\(refused)")
    }
}
