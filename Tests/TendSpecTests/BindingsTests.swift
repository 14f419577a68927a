import Testing
@testable import TendSpec

/// How a value of an entry that expands is cut into text and `{{name.field}}` references, and how
/// they are filled in: what decides whether a typo is caught or a brace is kept as written.
@Suite("references in expanded entries")
struct BindingsTests {
    /// The pieces of `text`: literal text as itself, a reference as `<path?>`.
    func pieces(_ text: String) -> String {
        Bindings.Template.pieces(of: text).map { piece in
            switch piece {
            case .text(let text): text
            case .reference(let path, let optional, _): "<" + path.joined(separator: ".") + (optional ? "?" : "") + ">"
            }
        }.joined()
    }

    @Test("names in braces are references, with spaces and a trailing '?'; braces that hold no name stay text", arguments: [
        ("/srv/{{site.name}}.conf", "/srv/<site.name>.conf"),
        ("{{ site.port }}", "<site.port>"),
        ("{{site.tls?}}", "<site.tls?>"),
        ("{{sites.0}}", "<sites.0>"),
        ("{{.Field}} and {{ $x }}", "{{.Field}} and {{ $x }}"),
        ("{{}} {{a.}} {{a..b}} {{1a}}", "{{}} {{a.}} {{a..b}} {{1a}}"),
        ("{{ x {{item}}", "{{ x <item>"),
        ("{{{item}}}", "{<item>}"),
        ("é{{item}}ü", "é<item>ü"),
        ("no braces", "no braces"),
        ("{{item}", "{{item}"),
    ])
    func cut(_ text: String, _ expected: String) {
        #expect(pieces(text) == expected)
    }

    func scalar(_ text: String) -> YAMLNode { YAMLNode(.scalar(YAMLScalar(text)), at: SourceLocation(file: "a.yaml", line: 1, column: 1)) }

    @Test("a reference alone is the bound value with its type; in text, its text; a missing field is an error with 'did you mean', or left out when optional")
    func fill() {
        let site = YAMLNode(.mapping([YAMLPair(key: scalar("name"), value: scalar("shop")), YAMLPair(key: scalar("port"), value: scalar("8080"))]),
                            at: SourceLocation(file: "vars.yaml", line: 3, column: 5))
        let bindings = Bindings(values: ["site": site], via: ["sites[0] \"shop\""])
        var diagnostics = Diagnostics()
        #expect(bindings.substitute(scalar("{{site}}"), &diagnostics)?.mapping?.count == 2)
        #expect(bindings.substitute(scalar("{{site.port}}"), &diagnostics)?.scalar?.text == "8080")
        #expect(bindings.substitute(scalar("{{site.name}}:{{site.port}}"), &diagnostics)?.scalar?.text == "shop:8080")
        #expect(bindings.substitute(scalar("x{{site.tls?}}y"), &diagnostics)?.scalar?.text == "xy")
        #expect(diagnostics.isEmpty)
        #expect(bindings.substitute(scalar("{{site.nmae}}"), &diagnostics) == nil)
        #expect(diagnostics.all.first?.description == "a.yaml:1:1 (sites[0] \"shop\"): '{{site.nmae}}': site has no 'nmae' (its fields: name, port); did you mean 'name'?")
        #expect(bindings.substitute(scalar("{{site}}s"), &diagnostics) == nil, "a mapping in text")
        #expect(diagnostics.all.last?.message.contains("which text cannot hold") == true)
    }
}
