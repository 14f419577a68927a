/// `vars_schema:` of tend.yaml: every var the repository knows, with its type, its default and a
/// line of doc. With a schema, a var set anywhere (tend.yaml's `vars`, a host entry's, a var file)
/// must be one of it and of its type, so a misspelt or mistyped override is an error at its
/// position instead of a default that silently applies.
public struct VarSchema: Sendable {
    /// What a var holds. The raw value is as tend.yaml writes it.
    public enum VarType: String, Sendable, CaseIterable {
        case string, int, bool, list, map
        /// An absolute path on the host.
        case path
    }

    public struct Declared: Sendable {
        public var type: VarType
        /// Applied first, under every other layer of vars.
        public var defaultValue: YAMLNode?
        public var doc: String?
        public var location: SourceLocation
    }

    /// By name.
    public var vars: [String: Declared]

    /// Decodes `vars_schema:` (or a component's `inputs:`: `noun` "input", `owner` "component
    /// 'nginx-site'"), reporting what is wrong at its position.
    static func decode(_ node: YAMLNode, noun: String = "var", owner: String = "'vars_schema'", _ diagnostics: inout Diagnostics) -> VarSchema? {
        guard let pairs = node.mapping else {
            diagnostics.error("\(owner) must be a mapping of \(noun) names to their type, default and doc, found \(node.kindDescription)", at: node.location)
            return nil
        }
        var schema = VarSchema(vars: [:])
        for pair in pairs {
            guard let name = pair.keyText else { continue }
            let what = "\(noun) '\(name)' of \(owner)"
            // `name: int` is short for `name: {type: int}`.
            if let scalar = pair.value.scalar {
                guard let type = VarType(rawValue: scalar.text) else {
                    diagnostics.error(Self.unknownType(scalar.text, of: what), at: pair.value.location)
                    continue
                }
                schema.vars[name] = Declared(type: type, defaultValue: nil, doc: nil, location: pair.key.location)
                continue
            }
            guard var reader = MappingReader(pair.value, what: what, diagnostics: &diagnostics) else { continue }
            let typeNode = reader.take("type")
            let defaultNode = reader.take("default")
            let doc = reader.take("doc")?.string("'doc' of \(what)", &diagnostics)
            reader.finish(&diagnostics, context: what)
            guard let typeNode else {
                diagnostics.error("\(what) needs a 'type': \(VarType.allCases.map(\.rawValue).joined(separator: ", "))", at: pair.value.location)
                continue
            }
            guard let typeText = typeNode.scalar?.text, let type = VarType(rawValue: typeText) else {
                diagnostics.error(Self.unknownType(typeNode.scalar?.text ?? typeNode.kindDescription, of: what), at: typeNode.location)
                continue
            }
            if let defaultNode, let problem = type.problem(with: defaultNode) {
                diagnostics.error("the default of \(what) \(problem)", at: defaultNode.location)
            }
            schema.vars[name] = Declared(type: type, defaultValue: defaultNode, doc: doc, location: pair.key.location)
        }
        return schema
    }

    private static func unknownType(_ found: String, of what: String) -> String {
        var message = "unknown type '\(found)' of \(what) (types: \(VarType.allCases.map(\.rawValue).joined(separator: ", ")))"
        if let near = Suggestion.nearest(to: found, in: VarType.allCases.map(\.rawValue)) { message += "; did you mean '\(near)'?" }
        return message
    }

    /// Checks the vars of one layer (`vars:` of tend.yaml or of a host entry, a var file): each
    /// declared, and of its type.
    func check(_ vars: YAMLNode, _ diagnostics: inout Diagnostics) {
        for pair in vars.mapping ?? [] {
            guard let name = pair.keyText else { continue }
            guard let declared = self.vars[name] else {
                var message = "var '\(name)' is not in vars_schema"
                if let near = Suggestion.nearest(to: name, in: self.vars.keys) { message += "; did you mean '\(near)'?" }
                diagnostics.error(message, at: pair.key.location)
                continue
            }
            if let problem = declared.type.problem(with: pair.value) {
                diagnostics.error("var '\(name)' \(problem) (vars_schema, \(declared.location))", at: pair.value.location)
            }
        }
    }
}

extension VarSchema.VarType {
    /// Why `node` is not a value of this type, or nil.
    func problem(with node: YAMLNode) -> String? {
        let ok: Bool = switch self {
        case .string: node.scalar != nil && !node.isNull
        case .int: node.scalar.flatMap { Int($0.text) } != nil
        case .bool: node.scalar?.boolValue != nil
        case .list: node.sequence != nil
        case .map: node.mapping != nil
        case .path: node.scalar.map { $0.text.hasPrefix("/") } ?? false
        }
        guard !ok else { return nil }
        let wanted = switch self {
        case .string: "text"
        case .int: "a whole number"
        case .bool: "true or false"
        case .list: "a list"
        case .map: "a mapping"
        case .path: "an absolute path"
        }
        // What was found, cut short: a value can be long, and is the repository's to show, not ours to copy.
        let found = node.scalar.map { scalar in
            let shown = Printable.escaped(scalar.text)
            return shown.count > 40 ? "'\(shown.prefix(39))…'" : "'\(shown)'"
        } ?? node.kindDescription
        return "must be \(wanted) (\(rawValue)), found \(found)"
    }
}
