/// Unified diffs of text content, computed with the standard library's `difference(from:)`.
public enum TextDiff {
    /// The bytes as text, or nil if they are not valid UTF-8 or contain a NUL byte (binary).
    public static func text(_ bytes: [UInt8]) -> String? {
        guard !bytes.contains(0) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    private enum Line {
        case same(String), removed(String), added(String)
    }

    /// A unified diff (`---`, `+++`, `@@` hunks with three lines of context) from `old` to `new`.
    public static func unified(old: String, new: String, oldName: String, newName: String, context: Int = 3) -> String {
        let oldLines = lines(old), newLines = lines(new)
        var removed = Set<Int>(), added = Set<Int>()
        // A file created or emptied needs no search for what the two sides share (a converge of
        // 10,000 new files spent a tenth of its time here).
        if oldLines.isEmpty {
            added = Set(newLines.indices)
        } else if newLines.isEmpty {
            removed = Set(oldLines.indices)
        } else {
            for change in newLines.difference(from: oldLines) {
                switch change {
                case .remove(let offset, _, _): removed.insert(offset)
                case .insert(let offset, _, _): added.insert(offset)
                }
            }
        }
        var script: [Line] = []
        var i = 0, j = 0
        while i < oldLines.count || j < newLines.count {
            if i < oldLines.count, removed.contains(i) {
                script.append(.removed(oldLines[i])); i += 1
            } else if j < newLines.count, added.contains(j) {
                script.append(.added(newLines[j])); j += 1
            } else {
                script.append(.same(oldLines[i])); i += 1; j += 1
            }
        }
        var output = "--- \(oldName)\n+++ \(newName)\n"
        var index = 0
        while index < script.count {
            guard let firstChange = script[index...].firstIndex(where: { if case .same = $0 { false } else { true } }) else { break }
            let start = max(index, firstChange - context)
            var end = firstChange
            var lastChange = firstChange
            while end < script.count {
                if case .same = script[end] {
                    if end - lastChange > 2 * context { break }
                } else {
                    lastChange = end
                }
                end += 1
            }
            end = min(script.count, lastChange + context + 1)
            output += hunk(script, start..<end)
            index = end
        }
        return output
    }

    private static func hunk(_ script: [Line], _ range: Range<Int>) -> String {
        var oldStart = 1, newStart = 1
        for line in script[..<range.lowerBound] {
            switch line {
            case .same: oldStart += 1; newStart += 1
            case .removed: oldStart += 1
            case .added: newStart += 1
            }
        }
        var oldCount = 0, newCount = 0, body = ""
        for line in script[range] {
            switch line {
            case .same(let text): oldCount += 1; newCount += 1; body += " " + text
            case .removed(let text): oldCount += 1; body += "-" + text
            case .added(let text): newCount += 1; body += "+" + text
            }
        }
        if oldCount == 0 { oldStart -= 1 }
        if newCount == 0 { newStart -= 1 }
        return "@@ -\(oldStart),\(oldCount) +\(newStart),\(newCount) @@\n" + body
    }

    /// Lines with their terminators; a last line without one gets the usual marker. Split at
    /// each LF byte, without walking the text by Character: a line feed always ends a grapheme
    /// (so "\r\n" stays one line's end).
    private static func lines(_ text: String) -> [String] {
        var result: [String] = []
        let bytes = text.utf8
        var start = bytes.startIndex
        var index = start
        while index < bytes.endIndex {
            let next = bytes.index(after: index)
            if bytes[index] == UInt8(ascii: "\n") {
                result.append(String(text[start..<next]))
                start = next
            }
            index = next
        }
        if start < bytes.endIndex { result.append(String(text[start...]) + "\n\\ No newline at end of file\n") }
        return result
    }
}
