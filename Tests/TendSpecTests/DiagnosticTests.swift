import Testing
import TendSpec

@Suite("configuration errors")
struct DiagnosticTests {
    func problems(_ file: String, _ count: Int) -> [Diagnostic] {
        (1...count).map { Diagnostic("problem \($0)", at: SourceLocation(file: file, line: $0, column: 1)) }
    }

    @Test("at most 200 problems of a file are shown, then one line counts the rest of that file's; other files and problems without a place are all shown, and the count is of all")
    func shownPerFile() {
        let general = Diagnostic("tend.yaml: not found", at: nil)
        let error = ConfigurationError([general] + problems("a.yaml", 250) + problems("b.yaml", 3))
        #expect(error.diagnostics.count == 254)
        let shown = error.shown
        #expect(shown.count == 1 + ConfigurationError.shownPerFile + 1 + 3)
        #expect(shown.first == general)
        #expect(shown[ConfigurationError.shownPerFile].description == "a.yaml:200:1: problem 200")
        #expect(shown[ConfigurationError.shownPerFile + 1].description == "a.yaml:201:1: 50 more problems in this file, not shown")
        #expect(shown.suffix(3).map(\.description) == ["b.yaml:1:1: problem 1", "b.yaml:2:1: problem 2", "b.yaml:3:1: problem 3"])

        let few = problems("a.yaml", ConfigurationError.shownPerFile)
        #expect(ConfigurationError(few).shown == few)
        #expect(ConfigurationError(problems("a.yaml", ConfigurationError.shownPerFile + 1)).shown.last?.message == "1 more problem in this file, not shown")
    }
}
