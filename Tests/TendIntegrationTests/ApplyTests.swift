import Foundation
import Testing

/// `tend plan` and `tend apply` on repositories in folders, into temporary roots.
@Suite("plan and apply into a root")
struct ApplyTests {
    let manifest = """
        resources:
          - directory: /etc/app
            mode: "0750"
          - file: /etc/app/app.conf
            content: |
              listen = 8080
              workers = 4
            mode: "0640"
            show_diff: true
          - file: /etc/app/banner
            source: files/banner.txt
          - symlink: /etc/app/current
            target: app.conf
          - file: /etc/app/old.conf
            state: absent
        """

    @Test("apply creates files, folders and links with their modes, and a second plan shows no changes")
    func createsAndConverges() async throws {
        let repo = try repository(["app.yaml": manifest, "files/banner.txt": "hello\n"])
        let root = try makeRoot()
        let before = try tree(root.path)

        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout.contains("+ directory:/etc/app"))
        #expect(plan.stdout.contains("+ file:/etc/app/app.conf"))
        #expect(plan.stdout.contains("+listen = 8080"))
        #expect(plan.stdout.contains("target: (none) → app.conf"))
        #expect(plan.stdout.contains("Plan: 4 to create, 0 to update, 0 to delete."))
        #expect(!plan.stdout.contains("old.conf"), "an absent file that is already absent needs nothing")
        #expect(try tree(root.path) == before, "plan must not change the root")

        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(apply.stdout.contains("+ file:/etc/app/app.conf: created"))
        #expect(apply.stdout.contains("Apply: 4 created, 0 updated, 0 deleted."))

        #expect(read(root.url("etc/app/app.conf")) == "listen = 8080\nworkers = 4\n")
        #expect(read(root.url("etc/app/banner")) == "hello\n")
        #expect(try #require(status(root.url("etc/app"))).st_mode & 0o7777 == 0o750)
        #expect(try #require(status(root.url("etc/app/app.conf"))).st_mode & 0o7777 == 0o640)
        #expect(try #require(status(root.url("etc/app/banner"))).st_mode & 0o7777 == 0o644)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/app/current")) == "app.conf")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.url("etc/app")).filter { $0.contains(".tend-") }
        #expect(leftovers.isEmpty, "no temporary files are left behind")

        let again = try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"])
        #expect(again.status == 0, "\(again)")
        #expect(again.stdout.contains("No changes."))
    }

    @Test("detailed exit code: plan 2 while changes are pending, 0 once applied; apply 2 when it changed something, 0 when not, 5 on failures")
    func detailedExitCode() async throws {
        let repo = try repository(["app.yaml": manifest, "files/banner.txt": "hello\n"])
        let root = try makeRoot()
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 2)
        #expect(try await tend(["apply", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 2)
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
        #expect(try await tend(["apply", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
        try repo.write(["site/broken.yaml": "resources:\n  - file: /etc/owned\n    content: x\n    owner: nobody-here\n"])
        #expect(try await tend(["apply", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 5, "failures keep their code")
    }

    @Test("content, mode and a deleted file: the plan shows old → new and a unified diff, apply converges")
    func updatesAndDeletes() async throws {
        let repo = try repository(["app.yaml": manifest, "files/banner.txt": "hello\n"])
        let root = try makeRoot()
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        try "listen = 8080\nworkers = 2\n".write(toFile: root.url("etc/app/app.conf"), atomically: false, encoding: .utf8)
        chmod(root.url("etc/app/app.conf"), 0o666)
        try "stale".write(toFile: root.url("etc/app/old.conf"), atomically: false, encoding: .utf8)

        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.stdout.contains("~ file:/etc/app/app.conf"), "\(plan)")
        #expect(plan.stdout.contains("mode: 0666 → 0640"))
        #expect(plan.stdout.contains("-workers = 2"))
        #expect(plan.stdout.contains("+workers = 4"))
        #expect(plan.stdout.contains("@@ -1,2 +1,2 @@"))
        #expect(plan.stdout.contains("- file:/etc/app/old.conf"))
        #expect(plan.stdout.contains("Plan: 0 to create, 1 to update, 1 to delete."))

        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/app/app.conf")) == "listen = 8080\nworkers = 4\n")
        #expect(try #require(status(root.url("etc/app/app.conf"))).st_mode & 0o7777 == 0o640)
        #expect(status(root.url("etc/app/old.conf")) == nil)
        #expect(try await tend(["plan", repo.path, "--root", root.path]).stdout.contains("No changes."))
    }

    @Test("drift is repaired: a managed file edited and a link removed by hand are put back")
    func driftRepair() async throws {
        let repo = try repository(["app.yaml": manifest, "files/banner.txt": "hello\n"])
        let root = try makeRoot()
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        try "edited by hand\n".write(toFile: root.url("etc/app/banner"), atomically: false, encoding: .utf8)
        unlink(root.url("etc/app/current"))

        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(apply.stdout.contains("~ file:/etc/app/banner: updated"))
        #expect(apply.stdout.contains("+ symlink:/etc/app/current: created"))
        #expect(read(root.url("etc/app/banner")) == "hello\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/app/current")) == "app.conf")
    }

    @Test("owner and group by name are resolved in the root's own user database", .enabled(if: isRoot, "changing owners needs root"))
    func ownersFromTheRoot() async throws {
        let repo = try repository(["app.yaml": """
            resources:
              - directory: /srv/app
                owner: app
                group: app
              - file: /srv/app/data
                content: "x"
                owner: "1500"
                group: www-data
            """])
        let root = try makeRoot()
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.stdout.contains("owner: (none) → app (1500)"), "\(plan)")
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        let dir = try #require(status(root.url("srv/app")))
        #expect(dir.st_uid == 1500 && dir.st_gid == 1500)
        let file = try #require(status(root.url("srv/app/data")))
        #expect(file.st_uid == 1500 && file.st_gid == 33)

        chown(root.url("srv/app/data"), 0, 0)
        let drift = try await tend(["plan", repo.path, "--root", root.path])
        #expect(drift.stdout.contains("owner: root (0) → app (1500)"), "\(drift)")
        #expect(drift.stdout.contains("group: root (0) → www-data (33)"))
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        #expect(try #require(status(root.url("srv/app/data"))).st_uid == 1500)
    }

    @Test("new files get exactly their declared mode, owner and group, whatever tend's umask and a setgid folder's group", .enabled(if: isRoot, "changing owners needs root"))
    func newFilesExactlyAsDeclared() async throws {
        let root = try makeRoot()
        // A setgid folder of www-data's: a file created in it gets group 33 unless it is changed.
        try FileManager.default.createDirectory(atPath: root.url("srv/shared"), withIntermediateDirectories: true)
        chown(root.url("srv/shared"), 0, 33)
        chmod(root.url("srv/shared"), 0o2775)
        var manifest = "resources:\n"
        for index in 0..<100 {
            manifest += "  - file: /srv/plain/f\(index)\n    content: \"\(index)\\n\"\n    mode: \"0644\"\n"
            manifest += "  - file: /srv/shared/g\(index)\n    content: \"\(index)\\n\"\n    mode: \"0640\"\n    group: root\n"
            manifest += "  - file: /srv/plain/o\(index)\n    content: \"\(index)\\n\"\n    mode: \"0600\"\n    owner: app\n    group: app\n"
        }
        let repo = try repository(["a.yaml": manifest])
        // umask 027 would make a file created as 0644 0640: the mode must still be the declared one.
        try await sh("/bin/sh", ["-c", "umask 027; exec \"$0\" \"$@\"", tendBinary, "apply", repo.path, "--root", root.path])
        for index in 0..<100 {
            let plain = try #require(status(root.url("srv/plain/f\(index)")))
            #expect(plain.st_mode & 0o7777 == 0o644 && plain.st_uid == 0 && plain.st_gid == 0, "f\(index): \(String(plain.st_mode, radix: 8)) \(plain.st_uid):\(plain.st_gid)")
            let shared = try #require(status(root.url("srv/shared/g\(index)")))
            #expect(shared.st_mode & 0o7777 == 0o640 && shared.st_uid == 0 && shared.st_gid == 0, "g\(index): \(String(shared.st_mode, radix: 8)) \(shared.st_uid):\(shared.st_gid)")
            let owned = try #require(status(root.url("srv/plain/o\(index)")))
            #expect(owned.st_mode & 0o7777 == 0o600 && owned.st_uid == 1500 && owned.st_gid == 1500, "o\(index): \(String(owned.st_mode, radix: 8)) \(owned.st_uid):\(owned.st_gid)")
        }
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0, "converged")
    }

    @Test("a symlink's target is changed by replacing the link atomically")
    func symlinkRetarget() async throws {
        let root = try makeRoot()
        let first = try repository(["links.yaml": "resources:\n  - symlink: /etc/alternatives/editor\n    target: /usr/bin/vim\n"])
        #expect(try await tend(["apply", first.path, "--root", root.path]).status == 0)
        let second = try repository(["links.yaml": "resources:\n  - symlink: /etc/alternatives/editor\n    target: /usr/bin/nano\n"])
        let plan = try await tend(["plan", second.path, "--root", root.path])
        #expect(plan.stdout.contains("~ symlink:/etc/alternatives/editor"), "\(plan)")
        #expect(plan.stdout.contains("target: /usr/bin/vim → /usr/bin/nano"))
        #expect(try await tend(["apply", second.path, "--root", root.path]).status == 0)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/alternatives/editor")) == "/usr/bin/nano")
    }

    @Test("a directory with purge removes what the configuration does not declare, and keeps what it does")
    func purge() async throws {
        let repo = try repository(["sites.yaml": """
            resources:
              - directory: /etc/nginx/sites-enabled
                purge: true
              - symlink: /etc/nginx/sites-enabled/app.conf
                target: ../sites-available/app.conf
            """])
        let root = try makeRoot()
        try root.write(["etc/nginx/sites-enabled/default": "server {}\n", "etc/nginx/sites-enabled/old/x": "y"])
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.stdout.contains("removes unmanaged: default, old"), "\(plan)")
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url("etc/nginx/sites-enabled")) == ["app.conf"])
    }

    @Test("binary content is summarised by size")
    func binaryContent() async throws {
        let repo = try repository(["bin.yaml": "resources:\n  - file: /opt/blob\n    source: files/blob.bin\n"])
        try repo.write("site/files/blob.bin", bytes: Data([0, 1, 2, 3, 255, 0]))
        let root = try makeRoot()
        let plan = try await tend(["plan", repo.path, "--root", root.path])
        #expect(plan.stdout.contains("binary content changed (none → 6 bytes)"), "\(plan)")
        #expect(try await tend(["apply", repo.path, "--root", root.path]).status == 0)
        #expect(FileManager.default.contents(atPath: root.url("opt/blob")) == Data([0, 1, 2, 3, 255, 0]))
    }
}

