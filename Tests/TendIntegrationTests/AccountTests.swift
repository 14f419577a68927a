import Foundation
import Testing

/// `user` and `group` on an image root (through useradd's --prefix) and on a live test host, and
/// a plan that knows what an earlier step creates: a file owned by a user the same apply makes.
@Suite("users and groups", .enabled(if: isRoot, "useradd and chown need root"))
struct AccountTests {
    /// A root with the shadow files useradd keeps beside passwd and group.
    func accountRoot() throws -> Scratch {
        let root = try makeRoot()
        try root.write([
            "etc/shadow": "root:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\napp:*:19000:0:99999:7:::\n",
            "etc/gshadow": "root:*::\nwww-data:*::\napp:!::\n",
            "home/.keep": "",
        ])
        chmod(root.url("etc/shadow"), 0o640)
        chmod(root.url("etc/gshadow"), 0o640)
        return root
    }

    func line(_ root: Scratch, _ file: String, _ name: String) -> String? {
        read(root.url(file))?.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map(String.init)
    }

    @Test("under --root: a group and a user are created with every attribute, a second plan is empty, changes show each attribute and never the hash, and removal keeps the home")
    func lifecycle() async throws {
        let root = try accountRoot()
        let machinePasswd = read("/etc/passwd")
        let hash = "$6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmn"
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGfXbXnKYFZgYZ0x0j6Yy1n2nq8JtQ2rKkq2mQhXH0Jt deploy@example.com"
        let manifest = """
            resources:
              - group: deploy
                gid: 2100
              - group: ops
                gid: 2200
                members: [www-data, deploy]
              - user: deploy
                uid: 2100
                group: deploy
                groups: [ops]
                home: /home/deploy
                shell: /bin/bash
                comment: Deploy user
                password: "\(hash)"
                expires: "2030-01-31"
                authorized_keys: [\"\(key)\"]
            """
        let repo = try repository(["accounts.yaml": manifest])
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout.contains("+ user:deploy"), "\(plan)")
        #expect(plan.stdout.contains("(absent) → (sensitive value changed)"), "\(plan)")
        #expect(!plan.stdout.contains("saltsalt"), "the plan shows the password hash")
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(!apply.stdout.contains("saltsalt") && !apply.stderr.contains("saltsalt"))
        #expect(line(root, "etc/group", "deploy") == "deploy:x:2100:")
        #expect(line(root, "etc/group", "ops") == "ops:x:2200:www-data,deploy" || line(root, "etc/group", "ops") == "ops:x:2200:deploy,www-data")
        #expect(line(root, "etc/passwd", "deploy") == "deploy:x:2100:2100:Deploy user:/home/deploy:/bin/bash")
        #expect(line(root, "etc/shadow", "deploy")?.hasPrefix("deploy:\(hash):") == true)
        #expect(line(root, "etc/shadow", "deploy")?.hasSuffix(":21945:") == true, "expires 2030-01-31 is day 21945: \(line(root, "etc/shadow", "deploy") ?? "")")
        #expect(read(root.url("home/deploy/.ssh/authorized_keys")) == key + "\n")
        #expect(status(root.url("home/deploy/.ssh"))?.st_mode == S_IFDIR | 0o700)
        #expect(status(root.url("home/deploy/.ssh/authorized_keys"))?.st_uid == 2100)
        let again = try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"])
        #expect(again.status == 0, "a second plan is not empty: \(again)")

        // Someone opens the keys to others: the mode is repaired, the content kept.
        chmod(root.url("home/deploy/.ssh"), 0o755)
        chmod(root.url("home/deploy/.ssh/authorized_keys"), 0o644)
        let opened = try await tend(["apply", repo.path, "--root", root.path])
        #expect(opened.status == 0, "\(opened)")
        #expect(status(root.url("home/deploy/.ssh"))?.st_mode == S_IFDIR | 0o700)
        #expect(status(root.url("home/deploy/.ssh/authorized_keys"))?.st_mode == S_IFREG | 0o600)
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)

        // Changed: shell and groups shown old → new; a new hash only as changed.
        let changed = manifest.replacingOccurrences(of: "/bin/bash", with: "/bin/sh").replacingOccurrences(of: "groups: [ops]", with: "groups: []")
            .replacingOccurrences(of: "members: [www-data, deploy]", with: "members: [www-data]")
            .replacingOccurrences(of: "home: /home/deploy", with: "home: /srv/deploy").replacingOccurrences(of: "deploy@example.com", with: "ci@example.com")
            .replacingOccurrences(of: "saltsalt", with: "pepperpe") + "\n    locked: true\n"
        try repo.write(["site/accounts.yaml": changed])
        let update = try await tend(["plan", repo.path, "--root", root.path])
        func shows(_ name: String, _ change: String) -> Bool {
            update.stdout.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix(name + ":") && $0.hasSuffix(change) }
        }
        #expect(shows("shell", "/bin/bash → /bin/sh"), "\(update)")
        #expect(shows("groups", "ops → "), "\(update)")
        #expect(shows("password", "(sensitive value) → (sensitive value changed)"), "\(update)")
        #expect(!update.stdout.contains("pepperpe") && !update.stdout.contains("saltsalt"))
        #expect(shows("home", "/home/deploy → /srv/deploy"), "\(update)")
        #expect(update.stdout.contains("+\(key.replacingOccurrences(of: "deploy@example.com", with: "ci@example.com"))"), "the keys' diff: \(update)")
        let updated = try await tend(["apply", repo.path, "--root", root.path])
        #expect(updated.status == 0, "\(updated)")
        #expect(line(root, "etc/passwd", "deploy") == "deploy:x:2100:2100:Deploy user:/srv/deploy:/bin/sh")
        #expect(line(root, "etc/shadow", "deploy")?.hasPrefix("deploy:!$6$pepperpe$") == true, "locked with the new hash: \(line(root, "etc/shadow", "deploy") ?? "")")
        #expect(line(root, "etc/group", "ops") == "ops:x:2200:www-data")
        #expect(read(root.url("srv/deploy/.ssh/authorized_keys")) == key.replacingOccurrences(of: "deploy@example.com", with: "ci@example.com") + "\n",
                "the home moved with its keys, and the keys changed")
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)

        // Removed: the account goes, its home stays.
        try repo.write(["site/accounts.yaml": "resources:\n  - user: deploy\n    state: absent\n  - group: ops\n    state: absent\n"])
        let remove = try await tend(["apply", repo.path, "--root", root.path])
        #expect(remove.status == 0, "\(remove)")
        #expect(line(root, "etc/passwd", "deploy") == nil)
        #expect(line(root, "etc/group", "ops") == nil)
        #expect(FileManager.default.fileExists(atPath: root.url("srv/deploy/.ssh/authorized_keys")), "removing a user removed its home")
        #expect(read("/etc/passwd") == machinePasswd, "the machine's own accounts changed")
    }

    @Test("a file and a folder owned by a user and a group that the same apply creates: planned as '(created by user:app)', applied with the new ids")
    func ownerCreatedEarlier() async throws {
        let root = try accountRoot()
        let repo = try repository(["app.yaml": """
            resources:
              - file: /srv/svc/config
                content: "x\\n"
                owner: svc
                group: svcgroup
              - directory: /srv/svc
                owner: svc
              - user: svc
                uid: 3100
                system: true
                group: svcgroup
              - group: svcgroup
                gid: 3200
            """])
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout.contains("owner: (none) → svc (created by user:svc)"), "\(plan)")
        #expect(plan.stdout.contains("group: (none) → svcgroup (created by group:svcgroup)"), "\(plan)")
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(status(root.url("srv/svc/config"))?.st_uid == 3100)
        #expect(status(root.url("srv/svc/config"))?.st_gid == 3200)
        #expect(status(root.url("srv/svc"))?.st_uid == 3100)
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
    }

    @Test("bad input: a name useradd rejects is an error at its position; a uid another name has and a primary group nobody makes fail the plan and change nothing")
    func badInput() async throws {
        let root = try accountRoot()
        let accounts = ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"].map { read(root.url($0)) }
        let badName = try repository(["a.yaml": "resources:\n  - user: Bad.Name\n"])
        let invalid = try await tend(["validate", badName.path])
        #expect(invalid.status == 3, "\(invalid)")
        #expect(invalid.stderr.contains("site/a.yaml:2:11: user name 'Bad.Name' must start with a lowercase letter"), "\(invalid)")
        let taken = try repository(["a.yaml": "resources:\n  - user: other\n    uid: 1500\n"])
        let takenRun = try await tend(["apply", taken.path, "--root", root.path])
        #expect(takenRun.status == 5, "\(takenRun)")
        #expect(takenRun.stdout.contains("uid 1500 already belongs to the user 'app'"), "\(takenRun)")
        let noGroup = try repository(["a.yaml": "resources:\n  - user: other\n    group: nosuch\n"])
        let noGroupRun = try await tend(["apply", noGroup.path, "--root", root.path])
        #expect(noGroupRun.status == 5, "\(noGroupRun)")
        #expect(noGroupRun.stdout.contains("primary group 'nosuch' is neither on the host nor declared"), "\(noGroupRun)")
        #expect(["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"].map { read(root.url($0)) } == accounts, "a refused plan changed the accounts")
        #expect(!FileManager.default.fileExists(atPath: root.url("home/other")))
    }

    @Test("a user declared with a group of its own name joins that group; one whose group a package made joins it; both can go together")
    func ownNameGroup() async throws {
        let root = try accountRoot()
        try root.write(["etc/group": read(root.url("etc/group"))! + "pkg:x:2600:\n", "etc/gshadow": read(root.url("etc/gshadow"))! + "pkg:!::\n"])
        let repo = try repository(["a.yaml": """
            resources:
              - user: web
                system: true
              - group: web
                gid: 2500
              - user: pkg
                system: true
            """])
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(line(root, "etc/passwd", "web")?.contains(":2500:") == true, "\(line(root, "etc/passwd", "web") ?? "")")
        #expect(line(root, "etc/passwd", "pkg")?.contains(":2600:") == true, "\(line(root, "etc/passwd", "pkg") ?? "")")
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
        try repo.write(["site/a.yaml": "resources:\n  - group: web\n    state: absent\n  - user: web\n    state: absent\n"])
        let remove = try await tend(["apply", repo.path, "--root", root.path])
        #expect(remove.status == 0, "\(remove)")
        #expect(line(root, "etc/passwd", "web") == nil && line(root, "etc/group", "web") == nil)
    }

    @Test("password and lock: '!' is refused for a hash, locked: false on an account with no password is an error, and under --root a home behind a link is never made")
    func lockAndHomeSafety() async throws {
        let root = try accountRoot()
        let bang = try repository(["a.yaml": "resources:\n  - user: x\n    password: \"!\"\n"])
        let refused = try await tend(["validate", bang.path])
        #expect(refused.status == 3 && refused.stderr.contains("for none, set locked: true"), "\(refused)")
        let unlock = try repository(["a.yaml": "resources:\n  - user: app\n    locked: false\n"])
        let unlockRun = try await tend(["apply", unlock.path, "--root", root.path])
        #expect(unlockRun.status == 5 && unlockRun.stdout.contains("locked: false needs a password"), "\(unlockRun)")

        let outside = try Scratch("tend-outside")
        try FileManager.default.removeItem(atPath: root.url("home"))
        try FileManager.default.createSymbolicLink(atPath: root.url("home"), withDestinationPath: outside.path)
        let linked = try repository(["a.yaml": "resources:\n  - user: newbie\n"])
        let linkedRun = try await tend(["apply", linked.path, "--root", root.path])
        #expect(linkedRun.status == 5, "\(linkedRun)")
        #expect(linkedRun.stdout.contains("is a symbolic link"), "\(linkedRun)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: outside.path)) == [], "useradd made a home through the link")
        #expect(line(root, "etc/passwd", "newbie") == nil)
    }

    @Test("authorized_keys are never written through a link the user planted at ~/.ssh")
    func plantedLink() async throws {
        let root = try accountRoot()
        let elsewhere = try Scratch("tend-elsewhere")
        try root.write(["home/app/.profile": ""])
        try FileManager.default.createSymbolicLink(atPath: root.url("home/app/.ssh"), withDestinationPath: elsewhere.path)
        let repo = try repository(["a.yaml": "resources:\n  - user: app\n    home: /home/app\n    authorized_keys: \"ssh-ed25519 AAAA key\\n\"\n"])
        let run = try await tend(["apply", repo.path, "--root", root.path])
        #expect(run.status == 5, "\(run)")
        #expect(run.stdout.contains("/home/app/.ssh: is a symbolic link"), "\(run)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: elsewhere.path)) == [], "keys were written through the link")
    }

    @Test("on a live host: a user is created with its group and key, changed, and removed, as getent and id see it",
          .enabled(if: TestHost.available, "\(TestHost.unavailableReason)"))
    func liveHost() async throws {
        try await withTestHost { host in
            try host.write(["/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n",
                            "/srv/config/site/a.yaml": "resources:\n  - group: tendops\n  - user: tendop\n    groups: [tendops]\n    shell: /bin/bash\n    password: \"$6$livesalt$hash\"\n    locked: true\n"])
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(try await host.run(["id", "-nG", "tendop"]).stdout.contains("tendops"))
            #expect(try await host.run(["getent", "passwd", "tendop"]).stdout.hasSuffix(":/home/tendop:/bin/bash\n"))
            #expect(try await host.run(["getent", "shadow", "tendop"]).stdout.hasPrefix("tendop:!$6$livesalt$hash:"), "the hash (through chpasswd) and the lock")
            #expect(FileManager.default.fileExists(atPath: host.outside("/home/tendop")), "the home was not created")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)
            try host.write(["/srv/config/site/a.yaml": "resources:\n  - user: tendop\n    state: absent\n  - group: tendops\n    state: absent\n"])
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            #expect(try await host.run(["getent", "passwd", "tendop"]).status == 2)
            #expect(FileManager.default.fileExists(atPath: host.outside("/home/tendop")), "the home was removed without remove_home")
        }
    }
}
