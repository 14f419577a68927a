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
    public static func render(_ text: String, with variables: TemplateVariables) throws -> String {
        do {
            return try MustacheTemplate(string: text).render(variables.values)
        } catch let error as MustacheTemplate.ParserError {
            throw TemplateError(message: "template error: " + describe(error.error), line: error.context.lineNumber, column: error.context.columnNumber + 1)
        }
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
