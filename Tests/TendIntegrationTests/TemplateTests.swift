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
            "site/files/app.conf.mustache": "# {{host.hostname}} ({{host.labels.env}})\nadmin = {{admin}}\nworkers = {{workers}}\n{{#backends}}backend {{.}}\n{{/backends}}",
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
}
