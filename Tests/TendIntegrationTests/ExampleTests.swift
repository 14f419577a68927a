import Foundation
import Testing

/// An example repository of examples/ and a host it is written for.
struct ExampleHost: CustomTestStringConvertible, Sendable {
    var example: String
    /// `--hostname` and `--label` of the host.
    var host: [String]

    var testDescription: String { "\(example) (\(host.joined(separator: " ")))" }

    var path: String { Self.folder(example) }

    /// The folder examples/`name` of this source tree.
    static func folder(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/\(name)").standardized.path
    }

    /// Each example with the hosts its README names.
    static let all: [ExampleHost] = [
        ExampleHost(example: "webhost", host: ["--hostname", "web-01"]),
        ExampleHost(example: "package-service", host: ["--hostname", "web-01", "--label", "env=prod"]),
        ExampleHost(example: "package-service", host: ["--hostname", "edge-01"]),
        ExampleHost(example: "fleet", host: ["--hostname", "web-01", "--label", "env=prod"]),
        ExampleHost(example: "fleet", host: ["--hostname", "db-01", "--label", "env=staging"]),
        ExampleHost(example: "fleet", host: ["--hostname", "mail-01"]),
        ExampleHost(example: "signed-git", host: ["--hostname", "web-01", "--self-manage"]),
        ExampleHost(example: "provisioning", host: ["--hostname", "web-07", "--label", "stage=image", "--label", "role=web", "--self-manage"]),
        ExampleHost(example: "provisioning", host: ["--hostname", "web-07", "--label", "role=web", "--self-manage"]),
    ]
}

/// The example repositories of examples/ are valid for the current code, and do what their
/// READMEs say.
@Suite("examples")
struct ExampleTests {
    @Test("every example is valid for the hosts it is written for", arguments: ExampleHost.all)
    func valid(_ example: ExampleHost) async throws {
        let run = try await tend(["validate", example.path] + example.host)
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("is valid"), "\(run)")
        #expect(run.stderr.isEmpty, "\(run)")
    }

    @Test("fleet: a production web host and a staging db host get different plans, each with the values its host entries give")
    func fleetPlansDiffer() async throws {
        let fleet = ExampleHost.folder("fleet")

        let webRoot = try makeRoot()
        let before = try tree(webRoot.path)
        let web = try await tend(["plan", fleet, "--root", webRoot.path, "--hostname", "web-01", "--label", "env=prod"])
        #expect(web.status == 0, "\(web)")
        #expect(web.stdout.contains("+ file:/etc/motd"), "\(web)")
        #expect(web.stdout.contains("+web-01: web host, production"), "\(web)")
        #expect(web.stdout.contains("+ file:/etc/app/app.conf"), "\(web)")
        #expect(web.stdout.contains("+workers = 16"), "a production web host gets the workers of the entry that matches both: \(web)")
        #expect(web.stdout.contains("+log_level = warn"), "\(web)")
        #expect(web.stdout.contains("+host = db-01.prod.example.internal"), "\(web)")
        #expect(!web.stdout.contains("/etc/app-db/"), "a web host gets no database configuration: \(web)")
        #expect(try tree(webRoot.path) == before, "plan must not change the root")

        let dbRoot = try makeRoot()
        let db = try await tend(["plan", fleet, "--root", dbRoot.path, "--hostname", "db-01", "--label", "env=staging"])
        #expect(db.status == 0, "\(db)")
        #expect(db.stdout.contains("+db-01: db host, staging"), "\(db)")
        #expect(db.stdout.contains("+ file:/etc/app-db/db.conf"), "\(db)")
        #expect(db.stdout.contains("+max_connections = 50"), "\(db)")
        #expect(db.stdout.contains("+log_level = info"), "\(db)")
        #expect(db.stdout.contains("+enabled = no"), "backups are for production only: \(db)")
        #expect(!db.stdout.contains("/etc/app/"), "a db host gets no web configuration: \(db)")
        #expect(!db.stdout.contains("production"), "nothing of production reaches a staging host: \(db)")
    }

    /// A root where the shop fleet's packages are installed as dpkg records them (what an image
    /// built from Debian's packages holds), with the units they ship and the postgres account.
    func shopRoot() throws -> Scratch {
        let root = try makeRoot()
        let packages = ["chrony", "curl", "vim-tiny", "nginx", "postgresql", "sudo"]
        var files = [
            "etc/passwd": "root:x:0:0:root:/root:/bin/sh\npostgres:x:114:121::/var/lib/postgresql:/bin/bash\n",
            "etc/group": "root:x:0:\npostgres:x:121:\n",
            "etc/shadow": "root:*:19000:0:99999:7:::\npostgres:*:19000:0:99999:7:::\n",
            "etc/gshadow": "root:*::\npostgres:!::\n",
            "home/.keep": "",
            "var/lib/dpkg/status": packages.map { "Package: \($0)\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nVersion: 1.0-1\nDescription: \($0)\n\n" }.joined(),
        ]
        for unit in ["chrony", "nginx", "postgresql"] {
            files["lib/systemd/system/\(unit).service"] = "[Unit]\nDescription=\(unit)\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
        }
        try root.write(files)
        chmod(root.url("etc/shadow"), 0o640)
        chmod(root.url("etc/gshadow"), 0o640)
        return root
    }

    @Test("shop-fleet: every host of hosts.yaml validates with one command; web, db and bastion hosts in prod and staging converge and their second plan is empty; the db host's tuning is merged from env/ and hosts/",
          .enabled(if: isRoot, "useradd and chown need root"))
    func shopFleet() async throws {
        let fleet = ExampleHost.folder("shop-fleet")
        let all = try await tend(["validate", fleet, "--all-hosts"])
        #expect(all.status == 0 && all.stdout.contains("is valid for all 7 hosts"), "\(all)")

        for (host, env) in [("web-01", "prod"), ("web-s1", "staging"), ("db-11", "prod"), ("db-s1", "staging"), ("bastion-01", "prod")] {
            let root = try shopRoot()
            let apply = try await tend(["apply", fleet, "--root", root.path, "--hostname", host, "--label", "env=\(env)"])
            #expect(apply.status == 0, "\(host): \(apply)")
            let again = try await tend(["plan", fleet, "--root", root.path, "--hostname", host, "--label", "env=\(env)", "--detailed-exitcode"])
            #expect(again.status == 0 && again.stdout.contains("No changes"), "\(host): \(again)")
            #expect(read(root.url("etc/motd")) == "# \(host): \(env == "prod" ? "production" : "staging") host, managed by tend; mail ops@shop.example\n")
            switch host {
            case "web-01":
                for site in ["shop", "api", "admin", "static", "blog", "status"] {
                    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/nginx/sites-enabled/\(site)")) == "/etc/nginx/sites-available/\(site)")
                }
                #expect(read(root.url("etc/nginx/sites-available/shop"))?.contains("listen 443 ssl;") == true)
                #expect(read(root.url("etc/nginx/sites-available/status"))?.contains("listen 80;") == true)
                #expect(!FileManager.default.fileExists(atPath: root.url("etc/ssl/private/status.key")), "a site without tls has no key")
                var info = stat()
                #expect(lstat(root.url("etc/ssl/private/shop.key"), &info) == 0 && info.st_mode & 0o777 == 0o600)
            case "db-11":
                #expect(read(root.url("etc/postgresql/15/main/conf.d/tend.conf")) == "# db-11 (production): managed by tend\nshared_buffers = 8GB\nwork_mem = 256MB\nmax_connections = 100\n",
                        "shared_buffers from env/prod.yaml, the rest from hosts/db-11.yaml")
            case "db-s1":
                #expect(read(root.url("etc/postgresql/15/main/conf.d/tend.conf")) == "# db-s1 (staging): managed by tend\nshared_buffers = 512MB\nwork_mem = 16MB\nmax_connections = 200\n")
                #expect(read(root.url("etc/systemd/system/pg-backup.timer"))?.contains("OnCalendar=weekly") == true)
            case "bastion-01":
                let passwd = read(root.url("etc/passwd")) ?? ""
                for (index, admin) in ["ana", "bo", "chen", "dev", "eli", "fay", "gus", "hal"].enumerated() {
                    #expect(passwd.contains("\(admin):x:\(2001 + index):"), "\(passwd)")
                    #expect(read(root.url("home/\(admin)/.ssh/authorized_keys"))?.hasSuffix(" \(admin)@shop.example\n") == true)
                }
                #expect(read(root.url("etc/group"))?.contains("admins:x:") == true)
            default: break
            }
        }
    }
}
