import Foundation
import Subprocess
import SystemPackage
import Testing

/// Loops (`for_each:`), groups, components (`use:`) and per-resource template vars: what a fleet
/// writes once instead of copying, expanded for each host before anything runs.
@Suite("loops and components")
struct LanguageTests {
    /// Six virtual hosts written once: a file per site from one template, and a component that
    /// makes each site's available file and enabled link.
    static let sites: [String: String] = [
        "tend.yaml": """
            vars:
              vhosts:
                - { name: shop, port: 8080, tls: true }
                - { name: blog, port: 8081 }
              admins: { ana: 1001, bo: 1002 }
            hosts:
              - apply: [site]
            """,
        "site/web.yaml": """
            resources:
              - for_each: vhosts
                as: site
                file: /etc/web/upstreams/{{site.name}}.conf
                template: upstream.mustache
                vars: { scheme: http }
              - use: nginx-site
                for_each: vhosts
                as: site
                with: { name: "{{site.name}}", port: "{{site.port}}", tls: "{{site.tls?}}" }
              - for_each: admins
                resources:
                  - directory: /home/{{item.key}}
                  - file: /home/{{item.key}}/uid
                    content: "{{item.value}}"
                    requires: ["directory:/home/{{item.key}}"]
            """,
        "site/upstream.mustache": "upstream {{site.name}} {{scheme}}://127.0.0.1:{{site.port}}\n",
        "components/nginx-site/component.yaml": """
            doc: One nginx site, available and enabled.
            inputs:
              name: { type: string, doc: the site's name }
              port: { type: int, default: 80 }
              tls: { type: bool, default: false }
            resources:
              - file: /etc/web/sites-available/{{name}}
                template: site.conf.mustache
              - symlink: /etc/web/sites-enabled/{{name}}
                target: /etc/web/sites-available/{{name}}
                requires: ["file:/etc/web/sites-available/{{name}}"]
            """,
        "components/nginx-site/site.conf.mustache": "server {{name}} listen {{port}}{{#tls}} ssl{{/tls}}\n",
    ]

    @Test("a loop repeats a resource per item, with the item in its path and its template; a component makes each instance's resources with its typed inputs; a group repeats several; the second plan is empty")
    func loopsAndComponents() async throws {
        let repo = try Scratch("tend-repo")
        try repo.write(Self.sites)
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-1"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/web/upstreams/shop.conf")) == "upstream shop http://127.0.0.1:8080\n")
        #expect(read(root.url("etc/web/upstreams/blog.conf")) == "upstream blog http://127.0.0.1:8081\n")
        #expect(read(root.url("etc/web/sites-available/shop")) == "server shop listen 8080 ssl\n")
        #expect(read(root.url("etc/web/sites-available/blog")) == "server blog listen 8081\n", "an input not given takes its default")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/web/sites-enabled/blog")) == "/etc/web/sites-available/blog")
        #expect(read(root.url("home/ana/uid")) == "1001" && read(root.url("home/bo/uid")) == "1002", "over a mapping, an item is {key, value}")

        let again = try await tend(["plan", repo.path, "--root", root.path, "--hostname", "web-1", "--detailed-exitcode"])
        #expect(again.status == 0 && again.stdout.contains("No changes"), "\(again)")

        // The plan names the instance a resource came from, in text and JSON; blame too.
        try FileManager.default.removeItem(atPath: root.url("etc/web/sites-available/shop"))
        let plan = try await tend(["plan", repo.path, "--root", root.path, "--hostname", "web-1"])
        #expect(plan.stdout.contains("+ file:/etc/web/sites-available/shop (nginx-site[shop])"), "\(plan)")
        let json = try await tend(["plan", repo.path, "--root", root.path, "--hostname", "web-1", "--json"])
        #expect(json.stdout.contains("\"instance\" : \"nginx-site[shop]\"") || json.stdout.contains("\"instance\":\"nginx-site[shop]\""), "\(json)")
        let state = try Scratch("tend-state")
        #expect(try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-1", "--state-dir", state.path]).status == 0)
        let blame = try await tend(["blame", "/etc/web/sites-enabled/blog", "--root", root.path, "--state-dir", state.path])
        #expect(blame.stdout.contains("components/nginx-site/component.yaml:9") && blame.stdout.contains("instance of   nginx-site[blog]"), "\(blame)")
        #expect(blame.stdout.contains("site/web.yaml:7:10, vhosts[1] \"blog\""), "\(blame)")
    }

    @Test("an error in an expanded resource names the entry's position and the item; an instance's, the instance and where it was used; a loop over a var this host lacks says so")
    func errorsNameTheItem() async throws {
        let repo = try Scratch("tend-repo")
        try repo.write(Self.sites)
        try repo.write(["tend.yaml": """
            vars:
              vhosts:
                - { name: shop, port: 8080, tls: true }
                - { name: "a b", port: 8081, tls: maybe }
              admins: { ana: 1001 }
            hosts:
              - apply: [site]
              - match: { hostname: "db-*" }
                apply: [db]
            """,
            "db/db.yaml": "resources:\n  - for_each: databases\n    file: /etc/db/{{item}}\n"])
        let web = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(web.status == 3, "\(web)")
        #expect(web.stderr.contains("/site/web.yaml:10:64 (vhosts[1] \"a b\"): input 'tls' of component 'nginx-site' must be true or false (bool), found 'maybe'"), "\(web)")
        #expect(!web.stderr.contains("databases"), "a manifest for other hosts is not held to this host's vars: \(web)")
        let db = try await tend(["validate", repo.path, "--hostname", "db-1"])
        #expect(db.stderr.contains("/db/db.yaml:2:15: for_each: this host has no var 'databases'"), "\(db)")

        // A path the item makes wrong is reported inside the component, with the instance.
        try repo.write(["tend.yaml": "vars:\n  vhosts: [{ name: \"../x\", port: 1 }]\n  admins: {}\nhosts:\n  - apply: [site]\n"])
        let dotdot = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(dotdot.stderr.contains("/components/nginx-site/component.yaml:7:11 (nginx-site[../x] at site/web.yaml:7:10, vhosts[0] \"../x\"): '/etc/web/sites-available/../x' contains '..'"), "\(dotdot)")
    }

    @Test("per-resource vars let one template serve many files; vars on a resource without a template is an error")
    func resourceVars() async throws {
        let repo = try repository(["a.yaml": """
            resources:
              - file: /etc/app/one.conf
                template: app.mustache
                vars: { port: 1, tags: [a, b] }
              - file: /etc/app/two.conf
                template: app.mustache
                vars: { port: 2, tags: [] }
            """], extra: ["site/app.mustache": "port {{port}}{{#tags}} {{.}}{{/tags}}\n"])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/app/one.conf")) == "port 1 a b\n" && read(root.url("etc/app/two.conf")) == "port 2\n")
        try repo.write(["site/a.yaml": "resources:\n  - file: /etc/app/one.conf\n    content: x\n    vars: { port: 1 }\n"])
        let invalid = try await tend(["validate", repo.path])
        #expect(invalid.status == 3 && invalid.stderr.contains("/site/a.yaml:4:11: 'vars' gives values to a template, and this file has no 'template'"), "\(invalid)")
    }

    @Test("when: makes an entry or a group only when true; {{vars.x}} and {{host.x}} work in an entry written once, and braces that name neither stay as written")
    func whenAndHostReferences() async throws {
        let repo = try repository(["a.yaml": """
            resources:
              - file: /etc/pg/{{vars.pg_version}}/tend.conf
                content: "cpus={{host.cpus}} host={{host.hostname}} env={{host.labels.env}}\\n"
              - file: /etc/literal
                content: "{{kept}} as written\\n"
              - for_each: sites
                as: site
                resources:
                  - when: "{{site.tls}}"
                    file: /etc/ssl/{{site.name}}.pem
                    content: "cert of {{site.name}}\\n"
                  - file: /etc/sites/{{site.name}}
                    content: "{{site.name}}\\n"
            """], extra: ["tend.yaml": "vars:\n  pg_version: 15\n  sites: [{ name: shop, tls: true }, { name: blog, tls: false }]\nhosts:\n  - apply: [site]\n"])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-1", "--label", "env=prod"])
        #expect(apply.status == 0, "\(apply)")
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        #expect(read(root.url("etc/pg/15/tend.conf")) == "cpus=\(cpus) host=web-1 env=prod\n")
        #expect(read(root.url("etc/literal")) == "{{kept}} as written\n")
        #expect(read(root.url("etc/ssl/shop.pem")) == "cert of shop\n" && read(root.url("etc/sites/blog")) == "blog\n")
        #expect(!FileManager.default.fileExists(atPath: root.url("etc/ssl/blog.pem")), "when: false makes nothing")

        try repo.write(["site/a.yaml": "resources:\n  - for_each: [a]\n    when: \"{{item}}\"\n    file: /etc/x\n  - file: /etc/{{vars.pg_versoin}}\n"])
        let invalid = try await tend(["validate", repo.path])
        #expect(invalid.status == 3, "\(invalid)")
        #expect(invalid.stderr.contains("/site/a.yaml:3:11 (for_each[0] \"a\"): 'when' must be true or false"), "\(invalid)")
        #expect(invalid.stderr.contains("/site/a.yaml:5:11: '{{vars.pg_versoin}}': vars has no 'pg_versoin' (its fields: pg_version, sites); did you mean 'pg_version'?"), "\(invalid)")
    }

    @Test("tend facts says what the machine is; templates see the facts as host.NAME and match: selects by them")
    func facts() async throws {
        let json = try await tend(["facts", "--json", "--hostname", "web-1.shop.example", "--label", "env=prod"])
        #expect(json.status == 0, "\(json)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(facts["hostname"] as? String == "web-1.shop.example" && facts["domain"] as? String == "shop.example")
        #expect(facts["cpus"] as? Int == ProcessInfo.processInfo.activeProcessorCount)
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let total = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }?.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        #expect(facts["memory_mb"] as? Int == total.map { $0 / 1024 })
        let release = try String(contentsOfFile: "/etc/os-release", encoding: .utf8)
        #expect(release.contains("VERSION_CODENAME=\(facts["codename"] as? String ?? "?")"))
        let arch = try await Subprocess.run(.path(FilePath("/usr/bin/dpkg")), arguments: ["--print-architecture"], output: .string(limit: 4096), error: .discarded)
        #expect(facts["architecture"] as? String == arch.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect((facts["labels"] as? [String: String]) == ["env": "prod"])
        #expect(facts["virtualization"] is String)
        let text = try await tend(["facts"])
        #expect(text.status == 0 && text.stdout.contains("memory_mb") && text.stdout.contains("virtualization"), "\(text)")

        let architecture = try #require(facts["architecture"] as? String)
        let repo = try repository(["a.yaml": "resources:\n  - file: /etc/facts\n    template: facts.mustache\n"], extra: [
            "tend.yaml": "hosts:\n  - match: { facts: { architecture: [\(architecture)], memory_mb: \"*\" } }\n    apply: [site]\n  - match: { facts: { architecture: not-this-one } }\n    apply: [other]\n",
            "site/facts.mustache": "{{host.architecture}} {{host.cpus}} {{host.codename}}{{#host.ipv6}} v6{{/host.ipv6}}\n",
            "other/b.yaml": "resources:\n  - file: /etc/other\n",
        ])
        let root = try makeRoot()
        try root.write(["etc/os-release": release])
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/facts"))?.hasPrefix("\(architecture) \(ProcessInfo.processInfo.activeProcessorCount) \(facts["codename"] as? String ?? "")") == true)
        #expect(!FileManager.default.fileExists(atPath: root.url("etc/other")), "a host entry whose facts do not match applies nothing")
        try repo.write(["tend.yaml": "hosts:\n  - match: { facts: { architectur: amd64 } }\n    apply: [site]\n"])
        let typo = try await tend(["validate", repo.path])
        #expect(typo.status == 3 && typo.stderr.contains("tend.yaml:2:23: unknown fact 'architectur' in 'match'") && typo.stderr.contains("did you mean 'architecture'?"), "\(typo)")
    }

    @Test("validate --all-hosts checks every host of hosts.yaml (or --hosts) and says each one's problems under its name; a bad hosts file is refused at its position")
    func allHosts() async throws {
        let repo = try repository(["web.yaml": "resources:\n  - file: /etc/web.conf\n    template: web.mustache\n"], extra: [
            "tend.yaml": "hosts:\n  - match: { hostname: \"web-*\" }\n    apply: [site]\n  - match: { labels: { env: prod } }\n    apply: []\n    vars: { workers: 8 }\n",
            "site/web.mustache": "workers {{workers}} on {{host.memory_mb}} MiB\n",
            "hosts.yaml": "- { hostname: web-01, labels: { env: prod }, facts: { memory_mb: 4096 } }\n- { hostname: web-s1, labels: { env: staging } }\n- { hostname: db-01 }\n",
        ])
        let all = try await tend(["validate", repo.path, "--all-hosts"])
        #expect(all.status == 3, "\(all)")
        #expect(all.stdout.contains("web-01  valid: 1 resources"), "\(all)")
        #expect(all.stdout.contains("web-s1  1 problem:\n    \(repo.path)/site/web.mustache:1:9: template error: 'workers' is not set"), "\(all)")
        #expect(all.stdout.contains("db-01   valid: 0 resources"), "\(all)")
        #expect(all.stdout.contains("is invalid for 1 of 3 hosts"), "\(all)")

        let json = try await tend(["validate", repo.path, "--all-hosts", "--json"])
        #expect(json.status == 3, "\(json)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let hosts = try #require(document["hosts"] as? [[String: Any]])
        #expect(document["valid"] as? Bool == false && hosts.map { $0["hostname"] as? String } == ["web-01", "web-s1", "db-01"])
        #expect(hosts.map { $0["valid"] as? Bool } == [true, false, true])

        let ci = try Scratch("tend-ci")
        try ci.write(["hosts.yaml": "- { hostname: web-01, labels: { env: prod } }\n"])
        let given = try await tend(["validate", repo.path, "--all-hosts", "--hosts", ci.url("hosts.yaml")])
        #expect(given.status == 0 && given.stdout.contains("is valid for all 1 hosts"), "\(given)")

        try repo.write(["hosts.yaml": "- { hostname: web-01 }\n- { hostname: web-01 }\n- { hostname: x, facts: { memroy_mb: 1 } }\n"])
        let bad = try await tend(["validate", repo.path, "--all-hosts"])
        #expect(bad.status == 3, "\(bad)")
        #expect(bad.stderr.contains("hosts.yaml:2:15: host 'web-01' is listed twice (first at hosts.yaml:1:15)"), "\(bad)")
        #expect(bad.stderr.contains("hosts.yaml:3:27: unknown fact 'memroy_mb'") && bad.stderr.contains("did you mean 'memory_mb'?"), "\(bad)")
        try FileManager.default.removeItem(atPath: repo.url("hosts.yaml"))
        let none = try await tend(["validate", repo.path, "--all-hosts"])
        #expect(none.status != 0 && none.stderr.contains("has no hosts.yaml at its top"), "\(none)")
    }

    @Test("a long loop (made on every core) makes the same resources as a short one and reports its items' problems in item order; an item's template sees the host's facts unset where unknown; a manifest for other hosts is not held to a when: on what only they set; when: on an absent optional field is false")
    func longLoopsAndWhen() async throws {
        let items = (0..<1500).map { "{ name: f\($0), mode: \"\($0 == 12 || $0 == 1205 ? "9999" : "0644")\" }" }.joined(separator: ", ")
        let repo = try repository(["a.yaml": """
            resources:
              - for_each: files
                file: /srv/many/{{item.name}}
                mode: "{{item.mode}}"
              - use: site
                with: { name: shop }
              - for_each: [{ name: a }]
                file: /etc/flag
                when: "{{item.flag?}}"
            """], extra: [
            "tend.yaml": "vars:\n  files: [\(items)]\nhosts:\n  - apply: [site]\n  - match: { hostname: db-1 }\n    apply: [db]\n    vars: { is_primary: true }\n",
            "db/db.yaml": "resources:\n  - file: /etc/primary\n    when: \"{{vars.is_primary}}\"\n",
            "components/site/component.yaml": "inputs: { name: string }\nresources:\n  - file: /etc/sites/{{name}}\n    template: site.mustache\n",
            "components/site/site.mustache": "{{name}}{{#host.ipv6}} v6 {{host.ipv6}}{{/host.ipv6}}{{^host.ipv6}} v4 only{{/host.ipv6}}\n",
        ])
        let invalid = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(invalid.status == 3, "\(invalid)")
        let lines = invalid.stderr.split(separator: "\n").filter { $0.contains("/site/a.yaml:4:11") }
        #expect(lines.count == 2 && lines[0].contains("(files[12] \"f12\")") && lines[1].contains("(files[1205] \"f1205\")"), "\(invalid)")
        #expect(!invalid.stderr.contains("is_primary"), "a var only other hosts set is no error here: \(invalid)")
        let db = try await tend(["validate", repo.path, "--hostname", "db-1"])
        #expect(!db.stderr.contains("is_primary"), "the host that sets it has it: \(db)")

        try repo.write(["tend.yaml": "vars:\n  files: [\((0..<1500).map { "{ name: f\($0), mode: \"0644\" }" }.joined(separator: ", "))]\nhosts:\n  - apply: [site]\n"])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-1"])
        #expect(apply.status == 0, "\(apply)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url("srv/many")).count == 1500)
        #expect(!FileManager.default.fileExists(atPath: root.url("etc/flag")), "when: on an absent optional field is false")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(try await tend(["facts", "--json"]).stdout.utf8)) as? [String: Any])
        let expected = (facts["ipv6"] as? String).map { "shop v6 \($0)\n" } ?? "shop v4 only\n"
        #expect(read(root.url("etc/sites/shop")) == expected)
    }
}
