import Foundation
import Testing

/// `template:` renders a Mustache template of the repository with the vars of tend.yaml, of the
/// host entries that match, and the host's facts.
@Suite("templates")
struct TemplateTests {
    @Test("a file rendered from a template with repository vars, host-entry vars and facts")
    func rendersVarsAndFacts() async throws {
        let repo = try repository([:], extra: [
            "tend.yaml": """
                vars:
                  admin: ops@example.com
                  workers: 2
                  backends: [10.0.0.1, 10.0.0.2]
                hosts:
                  - apply: [site]
                  - match: { hostname: "web-*" }
                    apply: []
                    vars: { workers: 8 }
                """,
            "site/app.yaml": "resources:\n  - file: /etc/app.conf\n    template: files/app.conf.mustache\n",
            "site/files/app.conf.mustache": "# {{host.hostname}} {{#host.labels.env}}({{host.labels.env}}){{/host.labels.env}}\nadmin = {{admin}}\nworkers = {{workers}}\n{{#backends}}backend {{.}}\n{{/backends}}",
        ])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-3", "--label", "env=prod"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/app.conf")) == "# web-3 (prod)\nadmin = ops@example.com\nworkers = 8\nbackend 10.0.0.1\nbackend 10.0.0.2\n")
        let other = try makeRoot()
        #expect(try await tend(["apply", repo.path, "--root", other.path, "--hostname", "db-1"]).status == 0)
        #expect(read(other.url("etc/app.conf"))?.contains("workers = 2") == true, "host-entry vars apply only to matching hosts")
    }

    @Test("a broken template is reported at its own path, line and column; a unit file can be a template")
    func errorsAndUnits() async throws {
        let repo = try repository(["units.yaml": """
            resources:
              - unit: app.service
                template: files/app.service.mustache
                enabled: true
              - file: /etc/broken
                template: files/broken.mustache
            """], extra: [
            "site/files/app.service.mustache": "[Service]\nExecStart=/usr/bin/app --name {{host.hostname}}\n[Install]\nWantedBy=multi-user.target\n",
            "site/files/broken.mustache": "line one\n{{#section}}never closed\n",
        ])
        let root = try makeRoot()
        let broken = try await tend(["validate", repo.path, "--root", root.path, "--hostname", "web-1"])
        #expect(broken.status == 3, "\(broken)")
        #expect(broken.stderr.contains("/site/files/broken.mustache:"), "\(broken)")
        #expect(broken.stderr.contains("template error"), "\(broken)")
        try repo.write(["site/files/broken.mustache": "fixed {{host.os}}\n"])
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-1"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/systemd/system/app.service"))?.contains("ExecStart=/usr/bin/app --name web-1") == true)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.url("etc/systemd/system/multi-user.target.wants/app.service")) == "/etc/systemd/system/app.service")
    }

    @Test("a template renders values as text: &, <, >, quotes and apostrophes are written as they are, not as HTML entities")
    func rendersText() async throws {
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/app.conf\n    template: files/app.conf.mustache\n"], extra: [
            "tend.yaml": "vars:\n  url: \"https://example.com/?a=1&b=<2>\"\n  quote: \"say \\\"hi\\\" it's\"\nhosts:\n  - apply: [site]\n",
            "site/files/app.conf.mustache": "url = {{url}}\nraw = {{{url}}}\nquote = {{quote}}\n",
        ])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/app.conf")) == "url = https://example.com/?a=1&b=<2>\nraw = https://example.com/?a=1&b=<2>\nquote = say \"hi\" it's\n")
    }

    @Test("a var a template shows but nobody set is an error at its position, unless a section makes it optional; a manifest for other hosts is not held to this host's vars")
    func unsetVars() async throws {
        let repo = try repository(["app.yaml": "resources:\n  - file: /etc/app.conf\n    template: files/app.conf.mustache\n"], extra: [
            "tend.yaml": "vars:\n  port: 80\nhosts:\n  - apply: [site]\n  - match: { hostname: \"db-*\" }\n    apply: [db]\n    vars: { pool: 10 }\n",
            "site/files/app.conf.mustache": "port = {{port}}\n{{#proxy}}proxy = {{proxy}}\n{{/proxy}}listen = {{ listen_address }}\n",
            "db/db.yaml": "resources:\n  - file: /etc/db.conf\n    template: db.conf.mustache\n",
            "db/db.conf.mustache": "pool = {{pool}}\n",
        ])
        let root = try makeRoot()
        let unset = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(unset.status == 3, "\(unset)")
        #expect(unset.stderr.contains("/site/files/app.conf.mustache:3:20: template error: 'listen_address' is not set"), "\(unset)")
        #expect(!unset.stderr.contains("proxy"), "a var inside a section is optional: \(unset)")
        #expect(!unset.stderr.contains("pool"), "a manifest for other hosts was held to this host's vars: \(unset)")
        try repo.write(["tend.yaml": "vars:\n  port: 80\n  listen_address: 0.0.0.0\nhosts:\n  - apply: [site]\n  - match: { hostname: \"db-*\" }\n    apply: [db]\n    vars: { pool: 10 }\n"])
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-1"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/app.conf")) == "port = 80\nlisten = 0.0.0.0\n")
    }

    @Test("inside a section, a var neither set nor on every item is an error at its position (a loop body is where it matters most); item fields, top-level vars and optional sections pass")
    func unsetVarsInSections() async throws {
        let repo = try repository(["web.yaml": "resources:\n  - file: /etc/vhosts.conf\n    template: files/vhosts.mustache\n"], extra: [
            "tend.yaml": """
                vars:
                  domain: example.com
                  vhosts:
                    - { name: shop, port: 8080, tls: { cert: /etc/ssl/shop.pem } }
                    - { name: blog, port: 8081 }
                hosts:
                  - apply: [site]
                """,
            "site/files/vhosts.mustache": "{{#vhosts}}\nserver {{name}}.{{domain}} {{port}} {{prot}}\n{{#tls}}\ncert {{cert}}\n{{/tls}}\n{{/vhosts}}\n",
        ])
        let invalid = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(invalid.status == 3, "\(invalid)")
        #expect(invalid.stderr.contains("/site/files/vhosts.mustache:2:37: template error: 'prot' is not set"), "\(invalid)")
        #expect(!invalid.stderr.contains("'cert'") && !invalid.stderr.contains("'name'") && !invalid.stderr.contains("'domain'"), "\(invalid)")
        // Set on one item only, it is still unset for the other.
        try repo.write(["tend.yaml": """
            vars:
              domain: example.com
              vhosts:
                - { name: shop, port: 8080, prot: https, tls: { cert: /etc/ssl/shop.pem } }
                - { name: blog, port: 8081 }
            hosts:
              - apply: [site]
            """])
        let partly = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(partly.status == 3 && partly.stderr.contains("'prot' is not set"), "\(partly)")
        try repo.write(["tend.yaml": """
            vars:
              domain: example.com
              prot: http
              vhosts:
                - { name: shop, port: 8080, prot: https, tls: { cert: /etc/ssl/shop.pem } }
                - { name: blog, port: 8081 }
            hosts:
              - apply: [site]
            """])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-1"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/vhosts.conf")) == "server shop.example.com 8080 https\ncert /etc/ssl/shop.pem\nserver blog.example.com 8081 http\n")
    }

    @Test("partials are read from templates/ and rendered with the context where they are included; a missing one, one that includes itself and an error inside one are reported where they are")
    func partials() async throws {
        let repo = try repository(["web.yaml": "resources:\n  - file: /etc/site.conf\n    template: files/site.mustache\n"], extra: [
            "tend.yaml": "vars:\n  admin: ops@example.com\n  vhosts: [{ name: shop }, { name: blog }]\nhosts:\n  - apply: [site]\n",
            "site/files/site.mustache": "{{> header}}\n{{#vhosts}}\n{{> nginx/vhost}}\n{{/vhosts}}\n",
            "templates/header.mustache": "# managed by tend; mail {{admin}}\n",
            "templates/nginx/vhost.mustache": "server {{name}} {{> footer}}\n",
            "templates/footer.mustache": "(end)",
        ])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "web-1"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/site.conf")) == "# managed by tend; mail ops@example.com\nserver shop (end)\nserver blog (end)\n")

        try repo.write(["templates/footer.mustache": "{{> nginx/vhost}}"])
        let cycle = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(cycle.status == 3, "\(cycle)")
        #expect(cycle.stderr.contains("templates/footer.mustache:1:1: template error: partial 'nginx/vhost' includes itself (nginx/vhost → footer → nginx/vhost)"), "\(cycle)")

        try repo.write(["templates/footer.mustache": "{{> missing}} {{unset_in_partial}}"])
        let missing = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(missing.status == 3 && missing.stderr.contains("templates/footer.mustache:1:1: template error: partial 'missing' not found: partials are read from templates/missing.mustache"), "\(missing)")

        try repo.write(["templates/footer.mustache": "({{unset_in_partial}})"])
        let unset = try await tend(["validate", repo.path, "--hostname", "web-1"])
        #expect(unset.status == 3 && unset.stderr.contains("templates/footer.mustache:1:2: template error: 'unset_in_partial' is not set"), "\(unset)")
    }

    @Test("var files per host entry merge deep (a host's tuning keeps the rest of its env's); with vars_schema a misspelt override is an error with 'did you mean', and a mistyped one names the type")
    func varFilesAndSchema() async throws {
        let repo = try repository(["db.yaml": "resources:\n  - file: /etc/db.conf\n    template: files/db.conf.mustache\n"], extra: [
            "tend.yaml": """
                vars_schema:
                  pg_shared_buffers: { type: string, default: 128MB, doc: shared_buffers of PostgreSQL }
                  pg_tuning: map
                  backup: { type: bool, default: false }
                  admins: list
                vars_files: [env/common.yaml]
                hosts:
                  - apply: [site]
                  - match: { labels: { env: prod } }
                    apply: []
                    vars_files: [env/prod.yaml]
                  - match: { hostname: db-11 }
                    apply: []
                    vars_files: [hosts/db-11.yaml]
                """,
            "env/common.yaml": "admins: [ana]\npg_tuning: { work_mem: 4MB, max_connections: 100 }\n",
            "env/prod.yaml": "backup: true\npg_shared_buffers: 2GB\npg_tuning: { work_mem: 16MB, max_connections: 500 }\n",
            "hosts/db-11.yaml": "pg_tuning: { work_mem: 64MB }\n",
            "site/files/db.conf.mustache": "shared_buffers = {{pg_shared_buffers}}\nwork_mem = {{pg_tuning.work_mem}}\nmax_connections = {{pg_tuning.max_connections}}\nbackup = {{backup}}\n",
        ])
        let root = try makeRoot()
        let apply = try await tend(["apply", repo.path, "--root", root.path, "--hostname", "db-11", "--label", "env=prod"])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/db.conf")) == "shared_buffers = 2GB\nwork_mem = 64MB\nmax_connections = 500\nbackup = true\n")
        let staging = try makeRoot()
        #expect(try await tend(["apply", repo.path, "--root", staging.path, "--hostname", "db-12"]).status == 0)
        #expect(read(staging.url("etc/db.conf")) == "shared_buffers = 128MB\nwork_mem = 4MB\nmax_connections = 100\nbackup = false\n", "the schema's defaults apply under everything")

        try repo.write(["hosts/db-11.yaml": "pg_shared_buffer: 4GB\nbackup: sometimes\n"])
        let typo = try await tend(["validate", repo.path, "--hostname", "db-11"])
        #expect(typo.status == 3, "\(typo)")
        #expect(typo.stderr.contains("/hosts/db-11.yaml:1:1: var 'pg_shared_buffer' is not in vars_schema; did you mean 'pg_shared_buffers'?"), "\(typo)")
        #expect(typo.stderr.contains("/hosts/db-11.yaml:2:9: var 'backup' must be true or false (bool), found 'sometimes'"), "\(typo)")

        try repo.write(["hosts/db-11.yaml": "- not a mapping\n"])
        let list = try await tend(["validate", repo.path, "--hostname", "db-11"])
        #expect(list.status == 3 && list.stderr.contains("/hosts/db-11.yaml:1:1: a var file holds one mapping of vars, found a sequence"), "\(list)")
        try repo.write(["tend.yaml": "vars_files: [env/missing.yaml]\nhosts:\n  - apply: [site]\n"])
        let missing = try await tend(["validate", repo.path, "--hostname", "db-11"])
        #expect(missing.status == 3 && missing.stderr.contains("tend.yaml:1:14: var file 'env/missing.yaml': not found"), "\(missing)")
    }
}
