import Foundation
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
        mkdir -p /etc/shop
        echo 'mode = production' > /etc/shop/app.conf
        printf 'token = s3cr3t-TOKEN-77\\n' > /etc/shop/token.conf
        chmod 600 /etc/shop/token.conf
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
            let secrets = try await host.run(["grep", "-r", "-l", "-e", "s3cr3t-TOKEN", "-e", "PRIVATE KEY", "/srv/adopted"])
            #expect(secrets.status == 1, "a secret in clear in the adopted repository: \(secrets.stdout)")
            #expect(FileManager.default.fileExists(atPath: host.outside("/srv/adopted/host/files/etc/shop/token.conf.age")))
            #expect(read(host.outside("/srv/adopted/host/units.yaml"))?.contains("# Masked by hand.") == true)

            let validate = try await host.tend(["validate", "/srv/adopted"])
            #expect(validate.status == 0, "\(validate)")
            let plan = try await host.tend(["plan", "/srv/adopted", "--detailed-exitcode"])
            #expect(plan.status == 0 && plan.stdout.contains("No changes"), "the adopted repository does not describe the host it came from: \(plan)")
        }
    }
}
