import Foundation
import Subprocess
import SystemPackage
import Testing

/// `tend adopt` on a host configured by hand: the repository it writes validates, and tend plan
/// of it on the same host is empty.
@Suite("adopt", .enabled(if: TestHost.available && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx"), "needs test hosts and nginx"))
struct AdoptTests {
    /// How an administrator set the host up, by hand, with the distribution's own tools.
    static let handiwork = """
        set -e
        mkdir -p /var/www/shop /var/www/blog
        printf 'server { listen 8081; root /var/www/shop; }\\n' > /etc/nginx/sites-available/shop
        printf 'server { listen 8082; root /var/www/blog; }\\n' > /etc/nginx/sites-available/blog
        ln -s /etc/nginx/sites-available/shop /etc/nginx/sites-enabled/shop
        ln -s /etc/nginx/sites-available/blog /etc/nginx/sites-enabled/blog
        sed -i 's/worker_connections 768/worker_connections 1024/' /etc/nginx/nginx.conf
        printf '[Unit]\\nDescription=Nightly report\\n[Service]\\nType=oneshot\\nExecStart=/bin/true\\n' > /etc/systemd/system/report.service
        printf '[Unit]\\nDescription=Nightly report\\n[Timer]\\nOnCalendar=daily\\n[Install]\\nWantedBy=timers.target\\n' > /etc/systemd/system/report.timer
        systemctl daemon-reload
        systemctl enable report.timer
        mkdir -p /etc/systemd/system/nginx.service.d
        printf '[Service]\\nLimitNOFILE=65536\\n' > /etc/systemd/system/nginx.service.d/limits.conf
        systemctl mask e2scrub_all.timer
        groupadd -g 2100 deploy
        for person in ana:2101 bo:2102; do
            name=${person%%:*}; uid=${person##*:}
            useradd -m -u "$uid" -G deploy -s /bin/bash -c "$name of ops" "$name"
            install -d -m 700 -o "$name" -g "$name" "/home/$name/.ssh"
            echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG$uid$name $name@example.com" > "/home/$name/.ssh/authorized_keys"
            chown "$name:$name" "/home/$name/.ssh/authorized_keys"; chmod 600 "/home/$name/.ssh/authorized_keys"
        done
        echo 'deb http://deb.example.com/debian bookworm main' > /etc/apt/sources.list.d/example.list
        printf 'Package: *\\nPin: origin deb.example.com\\nPin-Priority: 100\\n' > /etc/apt/preferences.d/example
        echo 'ana:correct-horse-battery' | chpasswd
        mkdir -p /etc/shop
        echo 'mode = production' > /etc/shop/app.conf
        printf 'token = s3cr3t-TOKEN-77\\n' > /etc/shop/token.conf
        chmod 600 /etc/shop/token.conf
        printf -- '-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEI-TLSKEY\\n-----END PRIVATE KEY-----\\n' > /etc/shop/tls.key
        install -d -m 700 /etc/shop/private
        printf 'password = s3cr3t-DB-88\\n' > /etc/shop/private/db.conf
        """

    @Test("a host set up by hand (nginx sites and a changed conffile, a timer, a drop-in, a masked unit, users with keys and a group, an apt source with a pin, files no package owns) is adopted into a repository that validates and plans empty on the same host; private files are encrypted; ADOPTED.md says why")
    func roundTrip() async throws {
        try await withTestHost { host in
            let setup = try await host.run(["/bin/sh", "-c", Self.handiwork])
            #expect(setup.status == 0, "\(setup)")
            let dry = try await host.tend(["adopt", "--dry-run"])
            #expect(dry.status == 0 && dry.stdout.contains("+ file:/etc/nginx/nginx.conf: conffile changed from nginx"), "\(dry)")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/srv/adopted")), "a dry run writes nothing")

            let adopt = try await host.tend(["adopt", "--out", "/srv/adopted"])
            #expect(adopt.status == 0 && adopt.stdout.contains("Adopted"), "\(adopt)")
            let report = read(host.outside("/srv/adopted/ADOPTED.md")) ?? ""
            for taken in ["file:/etc/nginx/sites-available/shop", "symlink:/etc/nginx/sites-enabled/blog", "unit:report.timer", "unit:e2scrub_all.timer",
                          "unit:nginx.service", "user:ana", "user:bo", "group:deploy", "file:/etc/apt/sources.list.d/example.list",
                          "file:/etc/apt/preferences.d/example", "file:/etc/shop/app.conf", "file:/etc/shop/token.conf"] {
                #expect(report.contains("`\(taken)`"), "\(taken) not taken: \(report)")
            }
            #expect(report.contains("`/etc/ssh/ssh_host_ed25519_key`: machine-specific"), "\(report)")
            #expect(report.contains("`/etc/machine-id`: machine-specific"), "\(report)")
            #expect(report.contains("`user:ana`: its password hash"), "a hash left out is said so: \(report)")
            let hash = try #require(read(host.outside("/etc/shadow"))?.split(separator: "\n").first { $0.hasPrefix("ana:") }?.split(separator: ":")[1])
            #expect(hash.hasPrefix("$"), "ana has a password hash")
            let secrets = try await host.run(["grep", "-r", "-l", "-F", "-e", "s3cr3t-TOKEN", "-e", "s3cr3t-DB", "-e", "TLSKEY", "-e", String(hash), "/srv/adopted"])
            #expect(secrets.status == 1, "a secret in clear in the adopted repository: \(secrets.stdout)")
            for name in ["token.conf", "tls.key", "private/db.conf"] {
                #expect(FileManager.default.fileExists(atPath: host.outside("/srv/adopted/host/files/etc/shop/\(name).age")), "\(name) is private: encrypted")
            }
            #expect(read(host.outside("/srv/adopted/host/units.yaml"))?.contains("# Masked by hand.") == true)

            let validate = try await host.tend(["validate", "/srv/adopted"])
            #expect(validate.status == 0, "\(validate)")
            let plan = try await host.tend(["plan", "/srv/adopted", "--detailed-exitcode"])
            #expect(plan.status == 0 && plan.stdout.contains("No changes"), "the adopted repository does not describe the host it came from: \(plan)")
        }
    }

    /// The Debian 12 base tree `make image` starts from (scripts/make-image.sh keeps it as a
    /// tarball in its cache): a copy of it in `folder`, made now if the cache has none.
    static func baseImage(in folder: String) async throws {
        let cache = "/var/cache/tend-image"
        let tarball = cache + "/bookworm-minbase.tar"
        if !FileManager.default.fileExists(atPath: tarball) {
            let work = try Scratch("tend-debootstrap")
            try FileManager.default.createDirectory(atPath: cache + "/debs", withIntermediateDirectories: true)
            try await sh("/usr/sbin/debootstrap", ["--variant=minbase", "--cache-dir=\(cache)/debs", "bookworm", work.url("root"), "http://deb.debian.org/debian"])
            try await sh("/bin/tar", ["--numeric-owner", "--xattrs", "-C", work.url("root"), "-cf", tarball, "."])
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try await sh("/bin/tar", ["--numeric-owner", "--xattrs", "-C", folder, "-xf", tarball])
    }

    /// What is compared between the original and the rebuilt host: manual packages beyond a
    /// minimal Debian, enabled and masked units, conffiles changed from their packages, and
    /// people's accounts (without password hashes).
    static func profile(of root: String) async throws -> [String: [String]] {
        let manual = try await sh("/usr/sbin/chroot", [root, "apt-mark", "showmanual"]).split(separator: "\n").map(String.init)
        let priorities = try await sh("/usr/bin/dpkg-query", ["--admindir=\(root)/var/lib/dpkg", "-W", "-f", "${Package} ${Priority}\\n"])
        let minimal = Set(priorities.split(separator: "\n").filter { $0.hasSuffix(" required") || $0.hasSuffix(" important") }.map { String($0.split(separator: " ")[0]) })
        func units(_ state: String) async throws -> [String] {
            try await sh("/bin/systemctl", ["--root=\(root)", "list-unit-files", "--state=\(state)", "--no-legend", "--no-pager"])
                .split(separator: "\n").map { String($0.split(separator: " ")[0]) }.sorted()
        }
        let verify = try await Subprocess.run(.path("/usr/bin/dpkg"), arguments: ["--root=\(root)", "--verify"], output: .string(limit: 1 << 20), error: .discarded)
        let conffiles = verify.standardOutput.split(separator: "\n").filter { $0.contains(" c /") && $0.dropFirst(2).hasPrefix("5") }
            .map { String($0.split(separator: " ").last ?? "") }.sorted()
        let passwd = (read(root + "/etc/passwd") ?? "").split(separator: "\n").filter { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            return fields.count > 2 && (1000..<60000).contains(Int(fields[2]) ?? 0)
        }.map(String.init).sorted()
        let groups = (read(root + "/etc/group") ?? "").split(separator: "\n").filter { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            return fields.count > 2 && (1000..<60000).contains(Int(fields[2]) ?? 0)
        }.map(String.init).sorted()
        return ["manual packages": manual.filter { !minimal.contains($0) }.sorted(), "enabled units": try await units("enabled"),
                "masked units": try await units("masked"), "changed conffiles": conffiles, "people": passwd, "their groups": groups]
    }

    @Test("round trip through an image: a Debian 12 image set up by hand is adopted; the repository, applied to a fresh image root, gives a host that boots with the same manual packages, enabled and masked units, changed conffiles and accounts",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/debootstrap"), "needs debootstrap (installed by make test)"))
    func imageRoundTrip() async throws {
        let scratch = try Scratch("tend-adopt-image")
        let original = scratch.url("original")
        try await Self.baseImage(in: original)
        // The original: packages installed with apt, then the same handiwork as above, on its own systemd.
        try scratch.write(["original/usr/sbin/policy-rc.d": "#!/bin/sh\nexit 101\n"])
        chmod(scratch.url("original/usr/sbin/policy-rc.d"), 0o755)
        try await sh("/usr/sbin/chroot", [original, "sh", "-c", "apt-get update -qq && apt-get install -y -qq systemd-sysv dbus nginx-light sudo e2fsprogs"],
                     environment: ["DEBIAN_FRONTEND": "noninteractive"])
        try FileManager.default.removeItem(atPath: scratch.url("original/usr/sbin/policy-rc.d"))
        // The handiwork on its own systemd; adopted, and profiled, from outside while it runs.
        let adopted = scratch.url("adopted")
        let before = try await withTestHost(image: original) { host in
            let setup = try await host.run(["/bin/sh", "-c", Self.handiwork])
            #expect(setup.status == 0, "\(setup)")
            let adopt = try await tend(["adopt", "--root", host.outside("/"), "--hostname", "web-07", "--out", adopted])
            #expect(adopt.status == 0, "\(adopt)")
            return try await Self.profile(of: host.outside("/"))
        }

        let rebuilt = scratch.url("rebuilt")
        try await Self.baseImage(in: rebuilt)
        let apply = try await tend(["apply", adopted, "--root", rebuilt, "--hostname", "web-07", "--age-identity", "/nonexistent"])
        // The image has no SSH host key: its private files were left out (ADOPTED.md), so all of it applies.
        #expect(apply.status == 0, "\(apply)")
        let after = try await Self.profile(of: rebuilt)
        for (what, items) in before.sorted(by: { $0.key < $1.key }) {
            #expect(after[what] == items, "\(what) differ: original \(items), rebuilt \(after[what] ?? [])\n\(apply)")
        }
        #expect(!(before["people"] ?? []).isEmpty && !(before["changed conffiles"] ?? []).isEmpty && !(before["masked units"] ?? []).isEmpty)
        try await withTestHost(image: rebuilt) { host in
            let state = try await host.run(["systemctl", "is-system-running"])
            #expect(state.stdout == "running\n" || state.stdout == "degraded\n", "\(state)")
            #expect(try await host.unit("report.timer")["ActiveState"] == "active", "the adopted timer runs on the rebuilt host")
        }
    }
}
