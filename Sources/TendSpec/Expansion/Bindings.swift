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

    var viaText: String? { via.isEmpty ? nil : via.joined(separator: ", ") }

    /// `node` with its references replaced and its position marked with `via`; nil after
    /// reporting a reference that cannot be replaced.
    func substitute(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        var failed = false
        let result = substitute(node, failed: &failed, &diagnostics)
        return failed ? nil : result ?? YAMLNode(.scalar(YAMLScalar("")), at: node.location)
    }

    /// Nil for a value that is nothing but an optional reference (`{{site.tls?}}`) to what the
    /// item does not have: the key or list item that holds it is left out.
    private func substitute(_ node: YAMLNode, failed: inout Bool, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        var location = node.location
        location.via = viaText
        switch node.content {
        case .sequence(let items):
            return YAMLNode(.sequence(items.compactMap { substitute($0, failed: &failed, &diagnostics) }), at: location, tag: node.tag)
        case .mapping(let pairs):
            return YAMLNode(.mapping(pairs.compactMap { pair in
                var key = pair.key
                key.location.via = location.via
                return substitute(pair.value, failed: &failed, &diagnostics).map { YAMLPair(key: key, value: $0) }
            }), at: location, tag: node.tag)
        case .scalar(let scalar):
            guard scalar.text.utf8.contains(UInt8(ascii: "{")) else { return YAMLNode(node.content, at: location, tag: node.tag) }
            var text = ""
            var rest = Substring(scalar.text)
            while let open = rest.firstRange(of: "{{") {
                guard let close = rest[open.upperBound...].firstRange(of: "}}") else { break }
                var inner = Substring(rest[open.upperBound..<close.lowerBound].trimmingWhitespace())
                let optional = inner.last == "?"
                if optional { inner = inner.dropLast() }
                guard let path = Self.namePath(inner) else {
                    text += rest[..<close.upperBound]
                    rest = rest[close.upperBound...]
                    continue
                }
                let alone = text.isEmpty && rest[..<open.lowerBound].isEmpty && rest[close.upperBound...].isEmpty
                guard let value = resolve(path, optional: optional, at: location, &diagnostics) else {
                    if optional, values[String(path[0])] != nil {
                        if alone { return nil }
                        text += rest[..<open.lowerBound]
                        rest = rest[close.upperBound...]
                        continue
                    }
                    failed = true
                    return node
                }
                // Nothing but the reference: the bound value itself, with its type.
                if alone { return YAMLNode(value.content, at: location, tag: value.tag) }
                guard let bound = value.scalar, !value.isNull else {
                    diagnostics.error("'{{\(inner)}}' is \(value.kindDescription), which text cannot hold; name one of its fields, or write the reference alone as the whole value", at: location)
                    failed = true
                    return node
                }
                text += rest[..<open.lowerBound]
                text += bound.text
                rest = rest[close.upperBound...]
            }
            text += rest
            return YAMLNode(.scalar(YAMLScalar(text, style: .doubleQuoted)), at: location, tag: node.tag)
        }
    }

    /// The bound value that `path` (`site`, `site.tls.cert`, `sites.0`) names; nil after
    /// reporting a name not bound or a field the value does not have (not reported if
    /// `optional`: the caller leaves it out).
    private func resolve(_ path: [Substring], optional: Bool, at location: SourceLocation, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        let name = String(path[0])
        guard var value = values[name] else {
            var message = "'{{\(path.joined(separator: "."))}}': '\(name)' is not bound here"
            message += values.isEmpty ? "" : " (bound: \(values.keys.sorted().joined(separator: ", ")))"
            if let near = Suggestion.nearest(to: name, in: values.keys) { message += "; did you mean '\(near)'?" }
            diagnostics.error(message, at: location)
            return nil
        }
        var walked = name
        for field in path.dropFirst() {
            if let pairs = value.mapping, let found = pairs.first(where: { $0.keyText == String(field) }) {
                value = found.value
            } else if let items = value.sequence, let index = Int(field), items.indices.contains(index) {
                value = items[index]
            } else {
                if optional { return nil }
                var message = "'{{\(path.joined(separator: "."))}}': \(walked) has no '\(field)'"
                if let pairs = value.mapping {
                    let fields = pairs.compactMap(\.keyText)
                    message += fields.isEmpty ? " (it is an empty mapping)" : " (its fields: \(fields.joined(separator: ", ")))"
                    if let near = Suggestion.nearest(to: String(field), in: fields) { message += "; did you mean '\(near)'?" }
                } else {
                    message += " (it is \(value.kindDescription))"
                }
                diagnostics.error(message, at: location)
                return nil
            }
            walked += "." + field
        }
        return value
    }

    /// The dotted name in `{{…}}`, or nil when the braces hold something else.
    static func namePath(_ inner: Substring) -> [Substring]? {
        let parts = inner.split(separator: ".", omittingEmptySubsequences: false)
        guard let first = parts.first?.utf8.first, first == UInt8(ascii: "_") || (first | 0x20) >= UInt8(ascii: "a") && (first | 0x20) <= UInt8(ascii: "z") else {
            return nil
        }
        for part in parts {
            guard !part.isEmpty, part.utf8.allSatisfy({ byte in
                byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || ((byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z"))
            }) else { return nil }
        }
        return parts
    }
}
