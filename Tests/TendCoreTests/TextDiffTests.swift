import Testing
@testable import TendCore

@Suite("unified diffs")
struct TextDiffTests {
    @Test("a changed line in the middle of a file gets three lines of context")
    func contextLines() {
        let old = (1...10).map { "line \($0)\n" }.joined()
        let new = old.replacingOccurrences(of: "line 5\n", with: "line five\n")
        #expect(TextDiff.unified(old: old, new: new, oldName: "a", newName: "a") == """
            --- a
            +++ a
            @@ -2,7 +2,7 @@
             line 2
             line 3
             line 4
            -line 5
            +line five
             line 6
             line 7
             line 8

            """)
    }

    @Test("changes far apart make separate hunks")
    func separateHunks() {
        let old = (1...20).map { "\($0)\n" }.joined()
        let new = old.replacingOccurrences(of: "\n2\n", with: "\ntwo\n").replacingOccurrences(of: "\n19\n", with: "\nnineteen\n")
        let diff = TextDiff.unified(old: old, new: new, oldName: "a", newName: "a")
        #expect(diff.components(separatedBy: "\n@@").count == 3, "\(diff)")
        #expect(diff.contains("@@ -1,5 +1,5 @@"))
        #expect(diff.contains("@@ -16,5 +16,5 @@"))
    }

    @Test("a new file is all additions from /dev/null; a missing final newline is marked")
    func newFile() {
        #expect(TextDiff.unified(old: "", new: "a\nb", oldName: "/dev/null", newName: "/x") == """
            --- /dev/null
            +++ /x
            @@ -0,0 +1,2 @@
            +a
            +b
            \\ No newline at end of file

            """)
    }

    @Test("an emptied file is all removals; CRLF ends a line as LF does, and a combining mark after a line feed starts the next line")
    func emptiedAndLineEnds() {
        #expect(TextDiff.unified(old: "a\r\nb\n", new: "", oldName: "/x", newName: "/dev/null") == "--- /x\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\r\n-b\n")
        #expect(TextDiff.unified(old: "x\n\u{301}y\n", new: "x\n\u{301}z\n", oldName: "/x", newName: "/x")
            == "--- /x\n+++ /x\n@@ -1,2 +1,2 @@\n x\n-\u{301}y\n+\u{301}z\n")
    }

    @Test("bytes with NUL or invalid UTF-8 are binary")
    func binary() {
        #expect(TextDiff.text(Array("plain\n".utf8)) == "plain\n")
        #expect(TextDiff.text([0x61, 0x00]) == nil)
        #expect(TextDiff.text([0xFF, 0xFE]) == nil)
        #expect(ContentChange.between([1, 0], [2, 0, 3], path: "/x", sensitive: false) == .binary(before: 2, after: 3))
        #expect(ContentChange.between(Array("a".utf8), Array("b".utf8), path: "/x", sensitive: true) == .sensitive)
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }

    func components(separatedBy separator: String) -> [Substring] {
        split(separator: separator, omittingEmptySubsequences: false)
    }
}
