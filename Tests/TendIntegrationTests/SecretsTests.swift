import Foundation
import Testing

/// Secrets encrypted with age in the repository, opened only on the host with its SSH host key:
/// the plaintext is written where it belongs and nowhere else.
@Suite("secrets", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/age"), "needs Debian's age"))
struct SecretsTests {
    static let tlsKey = "-----BEGIN PRIVATE KEY-----\nTLS-KEY-PLAINTEXT-4b1f9e\n-----END PRIVATE KEY-----\n"
    static let password = "db-password-PLAINTEXT-9c2e77"

    /// `plaintext` encrypted with Debian's age to this machine's SSH host key (which a test host
    /// shares), armored if asked.
    static func encrypt(_ plaintext: String, armored: Bool) async throws -> String {
        let scratch = try Scratch("tend-age")
        try scratch.write(["plain": plaintext])
        try await sh("/usr/bin/age", ["-R", "/etc/ssh/ssh_host_ed25519_key.pub"] + (armored ? ["-a"] : []) + ["-o", scratch.url("out"), scratch.url("plain")])
        // Binary ciphertext kept byte for byte as Latin-1 text.
        return try String(contentsOfFile: scratch.url("out"), encoding: isoLatin)
    }

    static let isoLatin = String.Encoding.isoLatin1

    /// The repository: the nginx TLS key from a .age file, the database password from an !age
    /// var through a template, and a plain file beside them.
    static func secretRepository() async throws -> [String: String] {
        let password = try await encrypt(Self.password, armored: true)
        return [
            "tend.yaml": "vars:\n  db_password: !age |\n" + password.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n") + "\nhosts:\n  - apply: [site]\n",
            "site/web.yaml": """
                resources:
                  - file: /etc/ssl/private/nginx.key
                    source: keys/nginx.key.age
                  - file: /etc/app/db.conf
                    template: db.conf.mustache
                  - file: /etc/app/plain.conf
                    content: "plain\\n"
                """,
            "site/db.conf.mustache": "password = {{db_password}}\n",
        ]
    }

    @Test("the nginx key and a database password, age-encrypted to the host's SSH key, are applied 0600 root with the right bytes; no plaintext in plans, JSON, plan file, snapshot, journal, state, metrics or Git cache; a hand edit is repaired by the agent; a host without the key fails those resources alone at their position",
          .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
    func secretsOnTheHost() async throws {
        let files = try await Self.secretRepository()
        let key = try await Self.encrypt(Self.tlsKey, armored: false)
        try await withTestHost { host in
            try host.write(files.mapKeys { "/srv/repo/" + $0 })
            try FileManager.default.createDirectory(atPath: host.outside("/srv/repo/site/keys"), withIntermediateDirectories: true)
            try Data(key.data(using: Self.isoLatin)!).write(to: URL(fileURLWithPath: host.outside("/srv/repo/site/keys/nginx.key.age")))
            for command in [["git", "init", "-q", "-b", "main", "/srv/repo"], ["git", "-C", "/srv/repo", "add", "-A"],
                            ["git", "-C", "/srv/repo", "-c", "user.name=Ops", "-c", "user.email=ops@example.com", "commit", "-q", "-m", "secrets"]] {
                let ran = try await host.run(command)
                #expect(ran.status == 0, "\(command): \(ran)")
            }
            try host.write(["/etc/tend/agent.yaml": "repo: /srv/repo\nmetrics_file: /var/lib/prometheus/tend.prom\n"])
            var said = ""

            let plan = try await host.tend(["plan", "--repo", "/srv/repo", "--out", "/root/plan.json"])
            #expect(plan.status == 0 && plan.stdout.contains("secret changed: opened on this host"), "\(plan)")
            let json = try await host.tend(["plan", "--repo", "/srv/repo", "--json"])
            let apply = try await host.tend(["apply", "--repo", "/srv/repo"])
            #expect(apply.status == 0, "\(apply)")
            said += plan.stdout + plan.stderr + json.stdout + json.stderr + apply.stdout + apply.stderr

            var info = stat()
            #expect(lstat(host.outside("/etc/ssl/private/nginx.key"), &info) == 0 && info.st_mode & 0o777 == 0o600 && info.st_uid == 0)
            #expect(read(host.outside("/etc/ssl/private/nginx.key")) == Self.tlsKey)
            #expect(read(host.outside("/etc/app/db.conf")) == "password = \(Self.password)\n")
            #expect(lstat(host.outside("/etc/app/db.conf"), &info) == 0 && info.st_mode & 0o777 == 0o600, "a template that shows a secret is sensitive")

            // Someone edits the key by hand: the agent puts it back, and says nothing of it.
            try "tampered\n".write(toFile: host.outside("/etc/ssl/private/nginx.key"), atomically: false, encoding: .utf8)
            let agent = try await host.tend(["agent", "--once"])
            #expect(agent.status == 0, "\(agent)")
            #expect(read(host.outside("/etc/ssl/private/nginx.key")) == Self.tlsKey, "repaired")
            let snapshot = try await host.tend(["snapshot", "--repo", "/srv/repo", "--out", "/root/snapshot.json"])
            #expect(snapshot.status == 0, "\(snapshot)")
            said += agent.stdout + agent.stderr + snapshot.stdout + snapshot.stderr

            _ = try await host.run(["journalctl", "--sync"])
            let journal = try await host.run(["journalctl", "-o", "export", "--no-pager"])
            #expect(journal.stdout.contains("/etc/ssl/private/nginx.key"), "the journal has the steps")
            let kept = try await host.run(["grep", "-r", "-a", "-l", "-e", "TLS-KEY-PLAINTEXT", "-e", "db-password-PLAINTEXT",
                                            "/var/lib/tend", "/var/lib/prometheus", "/root/plan.json", "/root/snapshot.json"])
            #expect(kept.status == 1 && kept.stdout.isEmpty, "plaintext kept in: \(kept.stdout)")
            for marker in ["TLS-KEY-PLAINTEXT", "db-password-PLAINTEXT", "tampered"] {
                #expect(!journal.stdout.contains(marker), "\(marker) in the journal")
                #expect(!said.contains(marker), "\(marker) on a terminal: \(said)")
            }
            #expect(FileManager.default.fileExists(atPath: host.outside("/var/lib/prometheus/tend.prom")))
        }

        // A host without the key: those two resources fail, at the secrets' positions; the rest converges.
        try await withTestHost { host in
            try host.write(files.mapKeys { "/srv/config/" + $0 })
            try FileManager.default.createDirectory(atPath: host.outside("/srv/config/site/keys"), withIntermediateDirectories: true)
            try Data(key.data(using: Self.isoLatin)!).write(to: URL(fileURLWithPath: host.outside("/srv/config/site/keys/nginx.key.age")))
            try FileManager.default.removeItem(atPath: host.outside("/etc/ssh/ssh_host_ed25519_key"))
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 5, "\(apply)")
            #expect(apply.stdout.contains("site/web.yaml:3:13: secret 'site/keys/nginx.key.age' cannot be opened here: this host has no identity at /etc/ssh/ssh_host_ed25519_key"), "\(apply)")
            #expect(apply.stdout.contains("tend.yaml:2:16: var 'db_password' is a secret that cannot be opened here"), "\(apply)")
            #expect(read(host.outside("/etc/app/plain.conf")) == "plain\n")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/etc/ssl/private/nginx.key")) && !FileManager.default.fileExists(atPath: host.outside("/etc/app/db.conf")))
        }
    }

    @Test("what tend secrets rekey writes decrypts with age -d -i, armored where it was; tend secrets recipients prints the host's SSH public key", .enabled(if: isRoot, "reads the host key"))
    func rekey() async throws {
        let folder = try Scratch("tend-secrets")
        try folder.write(["keys/a.age": try await Self.encrypt("secret a\n", armored: true)])
        try Data(try await Self.encrypt("secret b\n", armored: false).data(using: Self.isoLatin)!).write(to: URL(fileURLWithPath: folder.url("keys/b.age")))
        let recipient = try await tend(["secrets", "recipients"])
        let hostPublic = try String(contentsOfFile: "/etc/ssh/ssh_host_ed25519_key.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        #expect(recipient.status == 0 && recipient.stdout == hostPublic + "\n", "\(recipient)")
        try await sh("/usr/bin/age-keygen", ["-o", folder.url("operator.key")])
        let operatorRecipient = try await sh("/usr/bin/age-keygen", ["-y", folder.url("operator.key")])
        try folder.write(["recipients.txt": "# the fleet and the operator\n" + recipient.stdout + operatorRecipient])
        let rekey = try await tend(["secrets", "rekey", folder.url("keys"), "--recipients", folder.url("recipients.txt"), "--age-identity", "/etc/ssh/ssh_host_ed25519_key"])
        #expect(rekey.status == 0 && rekey.stdout.contains("re-encrypted"), "\(rekey)")
        #expect(try await sh("/usr/bin/age", ["-d", "-i", folder.url("operator.key"), folder.url("keys/a.age")]) == "secret a\n")
        #expect(try await sh("/usr/bin/age", ["-d", "-i", folder.url("operator.key"), folder.url("keys/b.age")]) == "secret b\n")
        #expect(read(folder.url("keys/a.age"))?.hasPrefix("-----BEGIN AGE ENCRYPTED FILE-----") == true)
        #expect(FileManager.default.contents(atPath: folder.url("keys/b.age"))?.starts(with: Array("age-encryption.org/v1".utf8)) == true)
    }

    @Test("bad secrets and hooks fail with a clear message, each bounded: a truncated .age, one for another recipient, a 1 GB .age, a validate: that hangs",
          .enabled(if: isRoot, "opens the host key"))
    func badInputs() async throws {
        let good = try await Self.encrypt("a secret\n", armored: false)
        let other = try Scratch("tend-age-other")
        try await sh("/usr/bin/age-keygen", ["-o", other.url("key")])
        try other.write(["plain": "for someone else\n"])
        let someoneElse = try await sh("/usr/bin/age-keygen", ["-y", other.url("key")]).trimmingCharacters(in: .whitespacesAndNewlines)
        try await sh("/usr/bin/age", ["-r", someoneElse, "-o", other.url("out"), other.url("plain")])
        let repo = try repository(["a.yaml": """
            resources:
              - file: /etc/truncated
                source: truncated.age
              - file: /etc/someone-else
                source: other.age
              - file: /etc/fine
                content: "fine\\n"
              - file: /etc/hangs
                content: "x\\n"
                validate: [/bin/sh, -c, "sleep 1000", check, "%s"]
                validate_timeout: 1s
            """])
        let bytes = Array(good.data(using: Self.isoLatin)!)
        try Data(bytes.prefix(bytes.count / 2)).write(to: URL(fileURLWithPath: repo.url("site/truncated.age")))
        try FileManager.default.copyItem(atPath: other.url("out"), toPath: repo.url("site/other.age"))
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--age-identity", "/etc/ssh/ssh_host_ed25519_key"], timeout: 60)
        #expect(apply.status == 5, "\(apply)")
        #expect(apply.stdout.contains("site/a.yaml:3:13: secret 'site/truncated.age' cannot be opened here: "), "\(apply)")
        #expect(apply.stdout.contains("site/a.yaml:5:13: secret 'site/other.age' cannot be opened here: this host's identity (/etc/ssh/ssh_host_ed25519_key) is not one of its recipients"), "\(apply)")
        #expect(apply.stdout.contains("/etc/hangs: validate: /bin/sh ran out of time after 1s; the file was left as it was"), "\(apply)")
        #expect(read(root.url("etc/fine")) == "fine\n", "the rest converges")
        #expect(!FileManager.default.fileExists(atPath: root.url("etc/hangs")) && !FileManager.default.fileExists(atPath: root.url("etc/truncated")))

        // 1 GB of ciphertext (sparse): refused as it is read, before age sees a byte of it.
        let huge = repo.url("site/huge.age")
        #expect(FileManager.default.createFile(atPath: huge, contents: nil) && truncate(huge, 1 << 30) == 0)
        try repo.write(["site/a.yaml": "resources:\n  - file: /etc/huge\n    source: huge.age\n"])
        let refused = try await tend(["validate", repo.path, "--age-identity", "/etc/ssh/ssh_host_ed25519_key"], timeout: 60)
        #expect(refused.status == 3 && refused.stderr.contains("site/a.yaml:3:13: source file 'site/huge.age': is 1073741824 bytes; tend reads files of at most 64 MiB"), "\(refused)")
    }

    @Test("a loop item's field tagged !age reaches its template opened, and makes the file sensitive", .enabled(if: isRoot, "opens the host key"))
    func secretInLoopItem() async throws {
        let password = try await Self.encrypt("item-secret-PLAINTEXT", armored: true)
        let indented = password.split(separator: "\n").map { "          " + $0 }.joined(separator: "\n")
        let repo = try repository(["a.yaml": "resources:\n  - for_each: people\n    file: /etc/people/{{item.name}}\n    template: person.mustache\n"], extra: [
            "tend.yaml": "vars:\n  people:\n    - name: ana\n      password: !age |\n\(indented)\nhosts:\n  - apply: [site]\n",
            "site/person.mustache": "{{item.name}}:{{item.password}}\n",
        ])
        let root = try makeRoot()
        let plan = try await tend(["plan", repo.path, "--root", root.path, "--age-identity", "/etc/ssh/ssh_host_ed25519_key"])
        #expect(plan.status == 0 && plan.stdout.contains("secret changed") && !plan.stdout.contains("PLAINTEXT"), "\(plan)")
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--age-identity", "/etc/ssh/ssh_host_ed25519_key"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/people/ana")) == "ana:item-secret-PLAINTEXT\n")
        var info = stat()
        #expect(lstat(root.url("etc/people/ana"), &info) == 0 && info.st_mode & 0o777 == 0o600)
    }
}
