import FoundationEssentials
import Glibc
import TendCore

extension Inventory {
    /// The inventory as `StateStore` writes every record (pretty-printed, keys sorted and in
    /// snake_case, ISO 8601 dates in UTC), written directly: JSONEncoder took a fifth of
    /// converging 10,000 new files to encode it, and this takes a few milliseconds. The same bytes
    /// as JSONEncoder's; InventoryJSONTests holds the two side by side.
    var json: [UInt8] {
        var out = PrettyJSON()
        out.object { out in
            out.member("commits") { out in
                out.object(commits) { out, commit in
                    out.member("author", commit.author)
                    out.member("commit", commit.commit)
                    out.member("date", commit.date)
                    out.member("path", commit.path)
                    out.member("recorded", PrettyJSON.iso8601(commit.recorded))
                    out.member("ref", commit.ref)
                    out.member("source", commit.source)
                    out.member("subject", commit.subject)
                }
            }
            out.member("resources") { out in
                // Most entries were changed by the same run, at the same instant (one `now` a run).
                var lastChanged: (date: Date, text: String)?
                out.object(resources) { out, entry in
                    out.member("changed", entry.changed.map { date in
                        if let lastChanged, lastChanged.date == date { return lastChanged.text }
                        let text = PrettyJSON.iso8601(date)
                        lastChanged = (date, text)
                        return text
                    })
                    out.member("changed_by", entry.changedBy)
                    out.member("commit", entry.commit)
                    out.member("declared_at", entry.declaredAt)
                    out.member("instance", entry.instance)
                    out.member("path", entry.path)
                    out.member("since", entry.since)
                    out.member("via", entry.via)
                }
            }
        }
        return out.bytes
    }
}

/// JSON text laid out as JSONEncoder's `.prettyPrinted` lays it out: two spaces an indent,
/// `"key" : value`, and an empty object as an open and a close brace with an empty line between.
private struct PrettyJSON {
    private(set) var bytes: [UInt8] = []
    private var depth = 0
    /// Whether the object being written has a member yet.
    private var hasMember: [Bool] = []

    init() {
        bytes.reserveCapacity(1 << 16)
    }

    /// An object whose members `body` writes.
    mutating func object(_ body: (inout PrettyJSON) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        depth += 1
        hasMember.append(false)
        body(&self)
        let empty = !hasMember.removeLast()
        depth -= 1
        bytes.append(UInt8(ascii: "\n"))
        if empty { bytes.append(UInt8(ascii: "\n")) }
        indent()
        bytes.append(UInt8(ascii: "}"))
    }

    /// An object with a member for each key of `members`, keys sorted, each an object `body`
    /// writes. (The keys alone are sorted: sorting the pairs copied every entry many times.)
    mutating func object<Value>(_ members: [String: Value], _ body: (inout PrettyJSON, Value) -> Void) {
        object { out in
            for key in members.keys.sorted(by: Self.precedes) {
                out.member(key) { out in out.object { body(&$0, members[key]!) } }
            }
        }
    }

    /// A member whose value `body` writes.
    mutating func member(_ key: String, _ body: (inout PrettyJSON) -> Void) {
        if hasMember[hasMember.count - 1] { bytes.append(UInt8(ascii: ",")) }
        hasMember[hasMember.count - 1] = true
        bytes.append(UInt8(ascii: "\n"))
        indent()
        string(key)
        bytes.append(contentsOf: " : ".utf8)
        body(&self)
    }

    /// A string member; none when the value is nil, as `encodeIfPresent` leaves it out.
    mutating func member(_ key: String, _ value: String?) {
        guard let value else { return }
        member(key) { $0.string(value) }
    }

    /// Whether `a` sorts before `b` by their UTF-8 bytes, as `.sortedKeys` sorts.
    static func precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let shared = min(x.count, y.count)
                let order = shared == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, shared)
                return order != 0 ? order < 0 : x.count < y.count
            }
        }
    }

    private mutating func indent() {
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * depth))
    }

    /// A JSON string: quotes, backslashes and control characters below U+0020 escaped; slashes,
    /// DEL and the rest as they are (`.withoutEscapingSlashes`).
    private mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        defer { bytes.append(UInt8(ascii: "\"")) }
        // Most strings (ids, paths, commits) have nothing to escape: copied at once.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: text.utf8)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case 0x08: bytes.append(contentsOf: #"\b"#.utf8)
            case 0x0C: bytes.append(contentsOf: #"\f"#.utf8)
            case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
            case 0x0D: bytes.append(contentsOf: #"\r"#.utf8)
            case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20:
                bytes.append(contentsOf: #"\u00"#.utf8)
                bytes.append(contentsOf: Digest.hex([byte]).utf8)
            default: bytes.append(byte)
            }
        }
    }

    /// `2026-11-29T17:20:08Z`: whole seconds in UTC, as the `.iso8601` date strategy writes them.
    static func iso8601(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
