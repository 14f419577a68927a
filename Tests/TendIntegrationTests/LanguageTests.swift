import Foundation
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
}
