/// The names a loop or a component binds while it expands (the item of `as:`, a component's
/// inputs), and how the text came to be expanded, for messages.
///
/// In an entry that expands, `{{name}}` and `{{name.field}}` in any value are replaced: a value
/// that is nothing but one reference becomes the bound value itself, with its type (a list
/// stays a list, a number a number); a reference inside longer text is replaced by the value's
/// text. A reference to a name that is not bound there, or to a field the item does not have, is
/// an error, so that a typo does not stay in a path; `{{site.tls?}}` is optional: without the
/// field, the key or list item it is the whole value of is left out (so a component's input
/// takes its default), and in text it is empty. Text in braces that is no name (`{{.Field}}`,
/// `{{ $x }}`) is left as it is.
struct Bindings: Sendable {
    var values: [String: YAMLNode] = [:]
    /// What expanded the text, innermost first (`vhosts[3] "shop"`, `nginx-site[shop] at
    /// web.yaml:12:5`).
    var via: [String] = []
    /// The component instances around it, outermost first (`web`, `nginx-site[shop]`).
    var instances: [String] = []
    /// The host's vars, which `values["vars"]` also holds as one mapping, by name.
    var hostVars: [String: YAMLNode]?

    /// `via` as messages show it; nil when nothing expanded the text.
    var viaText: String? { via.isEmpty ? nil : via.joined(separator: ", ") }

    /// `node` with its references replaced and its position marked with `via`; nil after
    /// reporting a reference that cannot be replaced.
    func substitute(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        substitute(Template(node), &diagnostics)
    }

    /// `template` filled in with these bindings; nil after reporting a reference that cannot be
    /// replaced. A loop finds an entry's references once (`Template`) and fills them in per item.
    func substitute(_ template: Template, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        substitute(template, via: viaText, &diagnostics)
    }

    /// `substitute`, with `via` (this bindings' `viaText`) worked out once by the caller.
    func substitute(_ template: Template, via: String?, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        var failed = false
        let result = fill(template.root, via: via, failed: &failed, &diagnostics)
        return failed ? nil : result ?? YAMLNode(.scalar(YAMLScalar("")), at: template.root.node.location)
    }

    /// Nil for a value that is nothing but an optional reference (`{{site.tls?}}`) to what the
    /// item does not have: the key or list item that holds it is left out.
    ///
    /// What holds no reference is the node itself, unchanged and unmarked (copying every node
    /// of 10,000 expanded entries was a third of loading them); a problem found in it later is
    /// marked with `via` where its declaration is decoded (`Diagnostics.mark`).
    private func fill(_ part: Template.Node, via: String?, failed: inout Bool, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        switch part {
        case .fixed(let node):
            return node
        case .sequence(let node, let items):
            var location = node.location
            location.via = via
            return YAMLNode(.sequence(items.compactMap { fill($0, via: via, failed: &failed, &diagnostics) }), at: location, tag: node.tag)
        case .mapping(let node, let pairs):
            var location = node.location
            location.via = via
            return YAMLNode(.mapping(pairs.compactMap { key, value in
                fill(value, via: via, failed: &failed, &diagnostics).map { YAMLPair(key: key, value: $0) }
            }), at: location, tag: node.tag)
        case .scalar(let node, let pieces):
            var location = node.location
            location.via = via
            var text = ""
            for piece in pieces {
                switch piece {
                case .text(let literal):
                    text += literal
                case .reference(let path, let optional, let written):
                    guard let value = resolve(path, optional: optional, written: written, at: location, &diagnostics) else {
                        guard optional, values[path[0]] != nil else {
                            failed = true
                            return node
                        }
                        // Alone, its key or item is left out; in text, it is empty.
                        if pieces.count == 1 { return nil }
                        continue
                    }
                    // Nothing but the reference: the bound value itself, with its type.
                    if pieces.count == 1 { return YAMLNode(value.content, at: location, tag: value.tag) }
                    guard let bound = value.scalar, !value.isNull else {
                        diagnostics.error("'{{\(written)}}' is \(value.kindDescription), which text cannot hold; name one of its fields, or write the reference alone as the whole value", at: location)
                        failed = true
                        return node
                    }
                    text += bound.text
                    // A value put into text is copied: a large var written into many values
                    // would otherwise grow without a bound.
                    guard text.utf8.count <= Self.maximumText else {
                        diagnostics.error("'{{\(written)}}' makes this value more than \(Self.maximumText >> 20) MiB; write the reference alone as the whole value, or use a template", at: location)
                        failed = true
                        return node
                    }
                }
            }
            return YAMLNode(.scalar(YAMLScalar(text, style: .doubleQuoted)), at: location, tag: node.tag)
        }
    }

    /// The most bytes a value that references are put into may grow to.
    static let maximumText = 1 << 20
    /// The most names a message lists.
    static let listedNames = 20

    /// An entry's text with the references in it found once: what stays as written, and each
    /// scalar cut into literal text and references.
    struct Template: Sendable {
        indirect enum Node: Sendable {
            /// Holds no reference: taken as it is.
            case fixed(YAMLNode)
            case scalar(YAMLNode, [Piece])
            case sequence(YAMLNode, [Node])
            case mapping(YAMLNode, [(key: YAMLNode, value: Node)])

            var node: YAMLNode {
                switch self {
                case .fixed(let node), .scalar(let node, _), .sequence(let node, _), .mapping(let node, _): node
                }
            }
        }

        enum Piece: Sendable {
            case text(String)
            /// `{{site.name}}`: the path, whether it ends in `?`, and the text as written.
            case reference([String], optional: Bool, written: String)
        }

        let root: Node

        init(_ node: YAMLNode) {
            root = Self.compile(node)
        }

        private static func compile(_ node: YAMLNode) -> Node {
            switch node.content {
            case .sequence(let items):
                let compiled = items.map(compile)
                return compiled.allSatisfy { if case .fixed = $0 { true } else { false } } ? .fixed(node) : .sequence(node, compiled)
            case .mapping(let pairs):
                let compiled = pairs.map { (key: $0.key, value: compile($0.value)) }
                return compiled.allSatisfy { if case .fixed = $0.value { true } else { false } } ? .fixed(node) : .mapping(node, compiled)
            case .scalar(let scalar):
                let pieces = Self.pieces(of: scalar.text)
                return pieces.contains { if case .reference = $0 { true } else { false } } ? .scalar(node, pieces) : .fixed(node)
            }
        }

        /// `text` cut into literal text and `{{name.field}}` references; braces that hold no
        /// name stay text.
        static func pieces(of source: String) -> [Piece] {
            let bytes = source.utf8
            guard var open = Bindings.find(UInt8(ascii: "{"), in: bytes, from: bytes.startIndex) else { return [.text(source)] }
            var pieces: [Piece] = []
            var copied = bytes.startIndex
            while let close = Bindings.find(UInt8(ascii: "}"), in: bytes, from: bytes.index(open, offsetBy: 2)) {
                let after = bytes.index(close, offsetBy: 2)
                // `{{ x {{item}}`: the reference is the last `{{` before the `}}`.
                while let inner = Bindings.find(UInt8(ascii: "{"), in: bytes, from: bytes.index(after: open)), inner < close { open = inner }
                var first = bytes.index(open, offsetBy: 2), last = close
                while first < last, bytes[first] == UInt8(ascii: " ") { first = bytes.index(after: first) }
                while first < last, bytes[bytes.index(before: last)] == UInt8(ascii: " ") { last = bytes.index(before: last) }
                let optional = first < last && bytes[bytes.index(before: last)] == UInt8(ascii: "?")
                if optional { last = bytes.index(before: last) }
                if let path = Bindings.namePath(source[first..<last]) {
                    if copied < open { pieces.append(.text(String(source[copied..<open]))) }
                    pieces.append(.reference(path.map(String.init), optional: optional, written: String(source[first..<last])))
                    copied = after
                }
                guard let next = Bindings.find(UInt8(ascii: "{"), in: bytes, from: after) else { break }
                open = next
            }
            if copied < bytes.endIndex { pieces.append(.text(String(source[copied...]))) }
            return pieces
        }
    }

    /// Where the pair `byte byte` (`{{`, `}}`) first starts in `bytes` from `start`.
    static func find(_ byte: UInt8, in bytes: String.UTF8View, from start: String.Index) -> String.Index? {
        var index = start
        while index < bytes.endIndex {
            if bytes[index] == byte {
                let next = bytes.index(after: index)
                if next < bytes.endIndex, bytes[next] == byte { return index }
            }
            index = bytes.index(after: index)
        }
        return nil
    }

    /// The bound value that `path` (`site`, `site.tls.cert`, `sites.0`) names; nil after
    /// reporting a name not bound or a field the value does not have (not reported if
    /// `optional`: the caller leaves it out).
    private func resolve(_ path: [String], optional: Bool, written: String, at location: SourceLocation, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        let name = path[0]
        var fields = path.dropFirst()
        var walked = name
        var found = values[name]
        // The host's vars by name, not by a walk through thousands of keys for each item.
        if name == "vars", let first = fields.first, let hostVars, let value = hostVars[first] {
            found = value
            walked += "." + first
            fields = fields.dropFirst()
        }
        guard var value = found else {
            var message = "'{{\(written)}}': '\(name)' is not bound here"
            message += values.isEmpty ? "" : " (bound: \(Self.listed(values.keys.sorted())))"
            if let near = Suggestion.nearest(to: name, in: values.keys) { message += "; did you mean '\(near)'?" }
            diagnostics.error(message, at: location)
            return nil
        }
        for field in fields {
            if let pairs = value.mapping, let found = pairs.first(where: { $0.key.scalar?.text == field }) {
                value = found.value
            } else if let items = value.sequence, let index = Int(field), items.indices.contains(index) {
                value = items[index]
            } else {
                if optional { return nil }
                var message = "'{{\(written)}}': \(walked) has no '\(field)'"
                if let pairs = value.mapping {
                    let fields = pairs.compactMap(\.keyText)
                    message += fields.isEmpty ? " (it is an empty mapping)" : " (its fields: \(Self.listed(fields)))"
                    if fields.count <= 1000, let near = Suggestion.nearest(to: field, in: fields) { message += "; did you mean '\(near)'?" }
                } else {
                    message += " (it is \(value.kindDescription))"
                }
                diagnostics.error(message, at: location)
                return nil
            }
            walked += "." + field
        }
        // A secret's plaintext must stay in files that are sensitive; an entry's values are
        // shown in plans, so a secret is never put into one.
        if value.tag == "!age" || value.holdsAgeSecret {
            diagnostics.error("'{{\(written)}}' is a secret (!age): it reaches a file through a template or a source ending in .age, where it stays sensitive, never through an entry's values", at: location)
            return nil
        }
        return value
    }

    /// Names for a message: the first `listedNames`, and how many more.
    static func listed(_ names: [String]) -> String {
        names.count <= listedNames ? names.joined(separator: ", ")
            : names.prefix(listedNames).joined(separator: ", ") + " and \(names.count - listedNames) more"
    }

    /// The dotted name in `{{…}}`, or nil when the braces hold something else.
    static func namePath(_ inner: Substring) -> [Substring]? {
        let bytes = inner.utf8
        guard let first = bytes.first, first == UInt8(ascii: "_") || isLetter(first) else { return nil }
        var parts: [Substring] = []
        var start = bytes.startIndex
        var index = start
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: ".") {
                guard start < index else { return nil }
                parts.append(inner[start..<index])
                start = bytes.index(after: index)
            } else if !(isLetter(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))) {
                return nil
            }
            index = bytes.index(after: index)
        }
        guard start < bytes.endIndex else { return nil }
        parts.append(inner[start...])
        return parts
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
    }
}

extension YAMLNode {
    /// Whether a value holds an `!age` secret anywhere in it.
    public var holdsAgeSecret: Bool {
        if tag == "!age" { return true }
        switch content {
        case .scalar: return false
        case .sequence(let items): return items.contains(where: \.holdsAgeSecret)
        case .mapping(let pairs): return pairs.contains { $0.value.holdsAgeSecret }
        }
    }
}
