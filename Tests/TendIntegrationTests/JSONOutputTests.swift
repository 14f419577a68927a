import Foundation
import Testing

/// `--json` of validate and apply: what a program reads instead of the text (docs/json-output.md).
@Suite("JSON output")
struct JSONOutputTests {
    static func object(_ run: TendRun) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
    }

    @Test("validate --json says valid with the resource count, or every problem with its file, line and column, and exits 3")
    func validate() async throws {
        let good = try repository(["app.yaml": "resources:\n  - file: /etc/a\n    content: \"a\\n\"\n  - directory: /etc/d\n"])
        let valid = try await tend(["validate", good.path, "--json"])
        #expect(valid.status == 0, "\(valid)")
        let validObject = Self.object(valid)
        #expect(validObject?["valid"] as? Bool == true, "\(valid)")
        #expect(validObject?["resource_count"] as? Int == 2)
        #expect((validObject?["diagnostics"] as? [Any])?.isEmpty == true)

        let bad = try repository(["app.yaml": "resources:\n  - unit: a.service\n    enabled: maybe\n  - file: etc/x\n"])
        let invalid = try await tend(["validate", bad.path, "--json"])
        #expect(invalid.status == 3, "\(invalid)")
        let object = Self.object(invalid)
        #expect(object?["valid"] as? Bool == false, "\(invalid)")
        let diagnostics = object?["diagnostics"] as? [[String: Any]] ?? []
        #expect(diagnostics.count == 2, "\(invalid)")
        #expect(diagnostics.first?["file"] as? String == bad.path + "/site/app.yaml")
        #expect(diagnostics.first?["line"] as? Int == 3)
        #expect(diagnostics.first?["column"] as? Int == 14)
        #expect((diagnostics.first?["message"] as? String)?.contains("'enabled' must be true or false") == true)
        #expect(diagnostics.last?["line"] as? Int == 4)
        #expect((object?["error"] as? [String: Any])?["code"] as? String == "invalid_configuration")
    }

    @Test("apply --json gives each resource's result and typed changes (a boolean for enabled), failed and skipped steps with their reasons, codes and retry classes, and exits 5")
    func apply() async throws {
        let repo = try repository(["app.yaml": """
            resources:
              - unit: hello.service
                content: "[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n"
                enabled: true
              - file: /etc/blocked/x
                content: "x"
              - file: /etc/after
                content: "a"
                requires: [file:/etc/blocked/x]
            """])
        let root = try makeRoot()
        try root.write(["etc/blocked": "a file where a folder is needed\n"])
        let run = try await tend(["apply", repo.path, "--root", root.path, "--json"])
        #expect(run.status == 5, "\(run)")
        let object = Self.object(run)
        #expect(object?["result"] as? String == "failed", "\(run)")
        #expect(object?["format_version"] as? Int == 1)
        let resources = Dictionary(uniqueKeysWithValues: (object?["resources"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "", $0) })
        #expect(resources["unit:hello.service"]?["result"] as? String == "done", "\(run)")
        let attributes = (resources["unit:hello.service"]?["change"] as? [String: Any])?["attributes"] as? [[String: Any]] ?? []
        let enabled = attributes.first { $0["name"] as? String == "enabled" }
        #expect(enabled?["before"] as? Bool == false && enabled?["after"] as? Bool == true, "\(attributes)")
        #expect(resources["file:/etc/blocked/x"]?["result"] as? String == "failed")
        #expect((resources["file:/etc/blocked/x"]?["reason"] as? String)?.contains("not a directory") == true, "\(run)")
        #expect(resources["file:/etc/blocked/x"]?["code"] as? String == "unobservable", "\(run)")
        #expect(resources["file:/etc/blocked/x"]?["retry"] as? String == "next_run", "\(run)")
        #expect(resources["file:/etc/after"]?["result"] as? String == "skipped")
        #expect(resources["file:/etc/after"]?["code"] as? String == "blocked", "\(run)")
        #expect(resources["file:/etc/after"]?["retry"] as? String == "after_dependency", "\(run)")
        #expect(resources["unit:hello.service"]?["code"] == nil, "a done step has no failure code")
        #expect(!run.stdout.contains("Applying"), "text output mixed into the JSON")

        // Again: the unit is converged now; the failed file still fails.
        let again = Self.object(try await tend(["apply", repo.path, "--root", root.path, "--json"]))
        #expect((again?["resources"] as? [[String: Any]])?.contains { $0["id"] as? String == "unit:hello.service" } == false)
    }
}
