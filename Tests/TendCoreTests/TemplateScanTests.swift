import Testing
import TendSpec
@testable import TendCore

/// The scan of a template's tags (nesting limit, unset vars) stays linear in its size: a template
/// comes from the repository, and one commit must not hang every cycle of the agent.
@Suite("template tag scan")
struct TemplateScanTests {
    @Test("50,000 tags on one line are scanned (a scan quadratic in the line would take hours), and an unset var at the end is found at its column", .timeLimit(.minutes(1)))
    func longLine() throws {
        let variables = TemplateVariables(config: nil, facts: HostFacts(hostname: "web-1", labels: [:]))
        let line = String(repeating: "{{host.hostname}} ", count: 50_000)
        #expect(TemplateRenderer.positionTooDeep(line) == nil)
        let unset = TemplateRenderer.firstUnsetVar(in: line + "{{nobody}}", variables: variables)
        #expect(unset?.name == "nobody")
        #expect(unset?.column == line.utf8.count + 1)
    }

    @Test("a nested transform names its var inside the innermost parentheses")
    func nestedTransform() {
        let variables = TemplateVariables(config: nil, facts: HostFacts(hostname: "web-1", labels: [:]))
        #expect(TemplateRenderer.firstUnsetVar(in: "{{first(reversed(host))}}", variables: variables) == nil)
        #expect(TemplateRenderer.firstUnsetVar(in: "{{first(reversed(list))}}", variables: variables)?.name == "first(reversed(list))")
    }
}
