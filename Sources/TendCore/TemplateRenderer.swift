internal import Mustache
public import TendSpec

/// Values that templates can use, built from tend.yaml's vars and the host's facts.
public struct TemplateVariables: @unchecked Sendable {
    // Holds only String, Bool, [Any] and [String: Any] values built from YAML, never mutated after
    // init: safe to share between threads.
    let values: [String: Any]

    public init() {
        values = [:]
    }

    /// The vars of tend.yaml, then those of each host entry that matches (later entries win), and
    /// `host` with the facts: `{{host.hostname}}`, `{{host.os}}`, `{{host.os_version}}`,
    /// `{{host.labels.env}}`.
    public init(config: RepositoryConfig?, facts: HostFacts) {
        var values: [String: Any] = [:]
        var layers: [YAMLNode] = []
        if let vars = config?.vars { layers.append(vars) }
        for entry in config?.hosts ?? [] where entry.match?.matches(facts) ?? true {
            if let vars = entry.vars { layers.append(vars) }
        }
        for layer in layers {
            for pair in layer.mapping ?? [] {
                if let key = pair.keyText { values[key] = Self.value(pair.value) }
            }
        }
        values["host"] = ["hostname": facts.hostname, "os": facts.os, "os_version": facts.osVersion,
                          "labels": facts.labels] as [String: Any]
        self.values = values
    }

    private static func value(_ node: YAMLNode) -> Any {
        switch node.content {
        case .scalar(let scalar): scalar.boolValue ?? scalar.text
        case .sequence(let items): items.map(value)
        case .mapping(let pairs): Dictionary(pairs.compactMap { pair in pair.keyText.map { ($0, value(pair.value)) } }) { _, new in new }
        }
    }
}

/// A template that cannot be parsed, with where.
public struct TemplateError: Error, Sendable {
    public var message: String
    public var line: Int
    public var column: Int
}

/// Mustache templates, rendered with swift-mustache.
public enum TemplateRenderer {
    /// The deepest nesting of sections (`{{#a}}…{{/a}}`, `{{^a}}`) a template may have: the
    /// template parser recurses once per level, and a hostile template could nest thousands.
    public static let maximumSectionDepth = 100

    public static func render(_ text: String, with variables: TemplateVariables) throws -> String {
        if let (line, column) = positionTooDeep(text) {
            throw TemplateError(message: "template error: sections nested deeper than \(maximumSectionDepth) levels", line: line, column: column)
        }
        do {
            return try MustacheTemplate(string: text).render(variables.values)
        } catch let error as MustacheTemplate.ParserError {
            throw TemplateError(message: "template error: " + describe(error.error), line: error.context.lineNumber, column: error.context.columnNumber + 1)
        }
    }

    /// Where sections first nest deeper than `maximumSectionDepth`, or nil. Follows set-delimiter
    /// tags (`{{=<% %>=}}`) as Mustache does, so other delimiters cannot hide the nesting.
    static func positionTooDeep(_ text: String) -> (line: Int, column: Int)? {
        let bytes = Array(text.utf8)
        var open = Array("{{".utf8), close = Array("}}".utf8)
        var depth = 0, index = 0, line = 1, lineStart = 0
        func matches(_ token: [UInt8], at position: Int) -> Bool {
            position + token.count <= bytes.count && bytes[position..<position + token.count].elementsEqual(token)
        }
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
                index += 1
                continue
            }
            guard matches(open, at: index) else { index += 1; continue }
            let tagStart = index
            var cursor = index + open.count
            while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
            let sigil = cursor < bytes.count ? bytes[cursor] : 0
            var end = cursor
            while end < bytes.count, !matches(close, at: end) { end += 1 }
            switch sigil {
            case UInt8(ascii: "#"), UInt8(ascii: "^"):
                depth += 1
                if depth > maximumSectionDepth {
                    return (line, String(decoding: bytes[lineStart..<tagStart], as: UTF8.self).count + 1)
                }
            case UInt8(ascii: "/"):
                depth = max(0, depth - 1)
            case UInt8(ascii: "="):
                // {{=<% %>=}}: the new delimiters are the two words inside, without the '='s.
                let inner = bytes[(cursor + 1)..<max(cursor + 1, end)]
                let words = inner.split(separator: UInt8(ascii: " "))
                if words.count == 2, var newClose = words.last.map(Array.init), newClose.last == UInt8(ascii: "=") {
                    newClose.removeLast()
                    if let newOpen = words.first.map(Array.init), !newOpen.isEmpty, !newClose.isEmpty {
                        index = min(bytes.count, end + close.count)
                        open = newOpen
                        close = newClose
                        continue
                    }
                }
            default:
                break
            }
            index = min(bytes.count, end + close.count)
        }
        return nil
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? MustacheTemplate.Error {
        case .expectedSectionEnd?: "a section is never closed ({{/name}} is missing)"
        case .sectionCloseNameIncorrect?: "a section is closed with another name than it was opened with"
        case .unfinishedName?: "a tag is not finished (}} is missing)"
        case .invalidSetDelimiter?: "a set-delimiter tag is malformed"
        default: "\(error)"
        }
    }
}
