public import TendSpec

/// systemd's rules for unit names (`unit_name_is_valid` in systemd's src/basic/unit-name.c), and
/// the [Install] section of a unit file checked against them.
///
/// A unit name is a prefix of letters, digits and `:-_.\`, optionally an `@` with an instance of
/// the same characters, then a dot and a unit type; at most 255 bytes. So a name is never a path:
/// no `/`, no `..` component, no control character or NUL can be part of one. tend makes the links
/// of [Install] itself under `--root`, where every name becomes a path, so names that systemd
/// would refuse must never reach the filesystem.
public enum UnitName {
    /// The unit types systemd knows.
    public static let types = ["service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"]

    /// The longest unit name systemd accepts (`UNIT_NAME_MAX` less its NUL).
    public static let maximumLength = 255

    /// Why `name` is not a valid unit name, or nil when it is one.
    public static func problem(in name: String) -> String? {
        let shown = Printable.quoted(name)
        guard name.utf8.count <= maximumLength else { return "\(shown) is longer than \(maximumLength) bytes" }
        guard let dot = name.utf8.lastIndex(of: UInt8(ascii: ".")) else {
            return "\(shown) is not a unit name: it has no type suffix (.\(types.joined(separator: ", .")))"
        }
        let type = String(name.utf8[name.utf8.index(after: dot)...])!
        guard types.contains(type) else {
            return "\(shown) is not a unit name: '.\(Printable.escaped(type))' is not a unit type (.\(types.joined(separator: ", .")))"
        }
        let stem = name.utf8[..<dot]
        let parts = stem.split(separator: UInt8(ascii: "@"), maxSplits: 1, omittingEmptySubsequences: false)
        guard let prefix = parts.first, !prefix.isEmpty else { return "\(shown) is not a unit name: nothing comes before the type" }
        if parts.count == 2, parts[1].contains(UInt8(ascii: "@")) { return "\(shown) is not a unit name: it has more than one '@'" }
        for part in parts {
            if let bad = part.first(where: { !isAllowed($0) }) {
                return "\(shown) is not a unit name: \(describe(bad)) is not allowed (only letters, digits and :-_.\\@)"
            }
        }
        return nil
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "\\"): true
        default: false
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        if byte < 0x80 { return "the byte '\(Printable.escaped(String(decoding: [byte], as: UTF8.self)))'" }
        return "the byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    /// One name of an [Install] section: the key it came under (`WantedBy`, `RequiredBy`,
    /// `Alias`…), the name, and the line of the unit file it is on (1-based).
    public struct InstallEntry: Sendable, Hashable {
        public var key: String
        public var name: String
        public var line: Int
        public var column: Int
    }

    /// The keys of [Install] whose values name units, each a list separated by spaces.
    static let installKeys = ["WantedBy", "RequiredBy", "UpheldBy", "Alias", "Also"]

    /// Every unit name in the [Install] section of `text`, with its position in the file.
    public static func installEntries(of text: [UInt8]) -> [InstallEntry] {
        var entries: [InstallEntry] = []
        var inInstall = false
        // Split on the byte: Swift joins "\r\n" into one Character, which "\n" would not split.
        for (index, bytes) in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let rawLine = String(decoding: bytes, as: UTF8.self)
            let line = rawLine.trimmingWhitespace()
            if line.hasPrefix("[") { inInstall = line == "[Install]"; continue }
            guard inInstall, let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals].trimmingWhitespace())
            guard installKeys.contains(key) else { continue }
            let valueStart = rawLine.distance(from: rawLine.startIndex, to: rawLine.firstIndex(of: "=")!) + 1
            var column = valueStart
            for word in rawLine[rawLine.index(after: rawLine.firstIndex(of: "=")!)...].split(omittingEmptySubsequences: false, whereSeparator: \.isWhitespace) {
                defer { column += word.count + 1 }
                if word.isEmpty { continue }
                entries.append(InstallEntry(key: key, name: String(word), line: index + 1, column: column + 1))
            }
        }
        return entries
    }

    /// The problems of the [Install] section of the unit `unit` with the file `text`, each with its
    /// line and column in the file.
    public static func installProblems(of text: [UInt8], unit: String) -> [(message: String, line: Int, column: Int)] {
        installEntries(of: text).compactMap { entry -> (message: String, line: Int, column: Int)? in
            let name: String
            do throws(UnitNameError) {
                name = try expandingSpecifiers(entry.name, unit: unit)
            } catch {
                return ("\(entry.key)=: \(error.message)", entry.line, entry.column)
            }
            return problem(in: name).map { ("\(entry.key)=: \($0)", entry.line, entry.column) }
        }
    }

    /// `name` with the specifiers systemd expands in [Install] from the unit's own name (`%n`,
    /// `%N`, `%p`, `%i`, `%j`, `%%`), as `systemctl enable` does:
    /// `WantedBy=sys-subsystem-net-devices-%i.device` in `wpa_supplicant@.service`. systemd
    /// refuses the unescaped `%I %P %J` there, and so does tend; the host and user specifiers
    /// (`%H`, `%h`) are refused too, since they could hold anything. A template's
    /// `DefaultInstance=` is not read: `%i` of a template is empty.
    public static func expandingSpecifiers(_ name: String, unit: String) throws(UnitNameError) -> String {
        guard name.contains("%") else { return name }
        let stem = unit.utf8.lastIndex(of: UInt8(ascii: ".")).map { String(unit.utf8[..<$0])! } ?? unit
        let at = stem.firstIndex(of: "@")
        let prefix = at.map { String(stem[..<$0]) } ?? stem
        let instance = at.map { String(stem[stem.index(after: $0)...]) } ?? ""
        let dash = prefix.lastIndex(of: "-")
        var out = ""
        var iterator = name.makeIterator()
        while let character = iterator.next() {
            guard character == "%" else { out.append(character); continue }
            switch iterator.next() {
            case "%"?: out += "%"
            case "n"?: out += unit
            case "N"?: out += stem
            case "p"?: out += prefix
            case "i"?: out += instance
            case "j"?: out += dash.map { String(prefix[prefix.index(after: $0)...]) } ?? prefix
            case let other: throw UnitNameError(message: "\(Printable.quoted(name)) uses the specifier '%\(other.map(String.init) ?? "")', which tend does not expand in [Install] (only %n %N %p %i %j %%)")
            }
        }
        return out
    }
}

/// A name in [Install] that cannot be expanded.
public struct UnitNameError: Error, Sendable {
    public var message: String
}
