import Foundation
import Testing
import TendSpec
@testable import TendCore

@Suite("rendered plans")
struct PlanRenderingTests {
    let plan = Plan(
        tendVersion: "test", source: SnapshotOrigin(type: "directory", location: "/repo"), sourceDescription: "repo",
        root: "/tmp/root", facts: HostFacts(hostname: "web-1"), resourceCount: 9,
        steps: [
            step("file:/etc/motd", Change(.create, attributes: [AttributeChange("mode", before: nil, after: "0644")],
                                          content: .text(diff: "--- /dev/null\n+++ /etc/motd\n@@ -0,0 +1,1 @@\n+hello\n"))),
            step("file:/etc/app.conf", Change(.update, attributes: [AttributeChange("mode", before: "0666", after: "0640"),
                                                                    AttributeChange("owner", before: "root (0)", after: "app (1500)")])),
            step("file:/etc/secret", Change(.update, content: .sensitive)),
            step("file:/opt/blob", Change(.update, content: .binary(before: 10, after: 12))),
            step("file:/etc/old", Change(.delete)),
            step("file:/etc/link", Change(.replace, notes: ["replaces a symbolic link to /tmp/x"])),
            step("directory:/etc/sites", Change(.update, removes: ["default", "old"])),
            Plan.Step(id: ResourceID(kind: "file", name: "/etc/bad"), change: nil, error: "/etc/bad: is a symbolic link",
                      dependsOn: [], desiredDigest: "", observedFingerprint: nil),
        ])

    static func step(_ id: String, _ change: Change) -> Plan.Step {
        Plan.Step(id: ResourceID(parsing: id)!, change: change, error: nil, dependsOn: [], desiredDigest: "", observedFingerprint: nil)
    }

    func golden(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test("without colour, the plan reads as the golden file")
    func plain() throws {
        #expect(plan.rendered(style: Style(enabled: false)) == (try golden("plan.txt")))
    }

    @Test("with colour, symbols and diff lines are painted and the text is the same")
    func coloured() throws {
        let text = plan.rendered(style: Style(enabled: true))
        #expect(text.contains("\u{1B}[32m+ file:/etc/motd\u{1B}[0m"))
        #expect(text.contains("\u{1B}[31m- file:/etc/old\u{1B}[0m"))
        #expect(text.contains("\u{1B}[32m+hello\u{1B}[0m"))
        let stripped = text.split(separator: "\u{1B}[", omittingEmptySubsequences: false).enumerated()
            .map { $0.offset == 0 ? String($0.element) : String($0.element.drop { $0 != "m" }.dropFirst()) }.joined()
        #expect(stripped == (try golden("plan.txt")))
    }

    @Test("a plan with nothing to do says so")
    func empty() {
        var empty = plan
        empty.steps = []
        #expect(empty.rendered(style: Style(enabled: false)).hasSuffix("No changes. The host matches the configuration.\n"))
    }

    @Test("the JSON plan round-trips")
    func json() throws {
        let data = try JSONEncoder().encode(plan)
        let decoded = try JSONDecoder().decode(Plan.self, from: data)
        #expect(decoded.steps == plan.steps)
        #expect(decoded.facts == plan.facts)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(object?["format_version"] as? Int == 2)
    }
}
