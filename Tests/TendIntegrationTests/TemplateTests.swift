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
}
