import Testing
@testable import TendProviders
import TendSpec

/// What `tend adopt` writes must read back as exactly what it read: every scalar it quotes
/// goes through tend's own YAML reader and comes out the same.
@Suite("adopt's YAML text")
struct AdoptTextTests {
    @Test("a scalar written by adopt reads back as the same string", arguments: [
        "plain", "/etc/nginx/sites-available/shop", "@x", "yes", "no", "true", "null", "~", "0o17", "1e3", "017", "-x", ".x", "",
        "a: b", "# not a comment", "line\nbreak", "tab\there", "quote \" and \\ backslash", "\u{2028}sep", "\u{FEFF}bom", "ünïcödé",
        "{{a}}", "[list]", "*alias", "&anchor", "!tag", "%directive", "`tick`", "trailing ", " leading", "\u{7}bell", "\u{85}nel",
    ])
    func readsBack(_ text: String) {
        let yaml = "value: " + YAMLText.quoted(text) + "\n"
        let parsed = YAMLParser.parse(Array(yaml.utf8), file: "t.yaml")
        #expect(parsed.diagnostics.isEmpty, "\(yaml): \(parsed.diagnostics)")
        #expect(parsed.documents.first?.mapping?.first?.value.scalar?.text == text, "\(yaml)")
    }
}
