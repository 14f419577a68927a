/// Text from a repository or the host, made safe to print on a terminal.
///
/// Paths, names and file contents are chosen by whoever writes the repository or the host's
/// files. An ESC byte in one would reach the terminal as an escape sequence (colours, cursor
/// moves, a rewritten line), a CR would overwrite what was printed before it, and a newline would
/// start a line that looks like tend's own. Every control character (C0, DEL, C1) and every
/// bidirectional override is therefore shown visibly: `\e`, `\r`, `\n`, `\t`, `\x07`, `\u{202E}`.
public enum Printable {
    /// `text` with its control characters written visibly; tabs are kept when `keepingTabs`, and
    /// line feeds when `keepingNewlines` (for tend's own multi-line messages, such as a failed
    /// unit's journal lines, whose lines are escaped all the same).
    public static func escaped(_ text: String, keepingTabs: Bool = false, keepingNewlines: Bool = false) -> String {
        let shown = { (scalar: Unicode.Scalar) in
            !mustEscape(scalar, keepingTabs: keepingTabs) || (keepingNewlines && scalar == "\n")
        }
        guard !text.unicodeScalars.allSatisfy(shown) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard !shown(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\u{1B}": out += "\\e"
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            default:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += scalar.value < 0x100 ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{\(hex)}"
            }
        }
        return out
    }

    /// `'text'`, escaped.
    public static func quoted(_ text: String) -> String {
        "'" + escaped(text) + "'"
    }

    /// Whether `text` holds a control character (C0 including NUL, DEL or C1).
    public static func hasControlCharacters(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7F } || text.unicodeScalars.contains { (0x80...0x9F).contains($0.value) }
    }

    private static func mustEscape(_ scalar: Unicode.Scalar, keepingTabs: Bool) -> Bool {
        switch scalar.value {
        case 0x09: !keepingTabs
        case 0x00..<0x20, 0x7F...0x9F: true
        case 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
