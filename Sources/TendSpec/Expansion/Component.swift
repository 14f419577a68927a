/// A component: a folder `components/NAME/` whose `component.yaml` declares typed inputs and the
/// resources one instance makes. A manifest instantiates it with `use: NAME` and `with:` (and
/// may repeat it with `for_each:`); inside, `{{input}}` names an input, and `source:` and
/// `template:` are relative to the component's folder.
///
/// ```yaml
/// # components/nginx-site/component.yaml
/// doc: One nginx virtual host, available and enabled.
/// inputs:
///   name: { type: string, doc: the site's name, also its file's }
///   port: { type: int, default: 8080 }
/// resources:
///   - file: /etc/nginx/sites-available/{{name}}
///     template: site.conf.mustache
/// ```
public struct Component: Sendable {
    /// Where components are read from: `components/NAME/component.yaml`.
    public static let folder = "components"
    /// The name of the file in a component's folder.
    public static let file = "component.yaml"

    public var name: String
    /// The repository path of its component.yaml.
    public var path: String
    public var doc: String?
    public var inputs: VarSchema
    /// Its `resources:` as written, expanded for each instance.
    public var resources: [YAMLNode]

    /// The repository path of the component `name`'s file.
    public static func path(of name: String) -> String { "\(folder)/\(name)/\(file)" }

    /// Why `name` cannot name a component, or nil: a component is one folder below
    /// `components/`.
    static func problem(inName name: String) -> String? {
        if name.isEmpty { return "an empty name" }
        if let problem = RepositoryPath.problem(in: name) { return problem }
        if name.contains("/") || name == "." || name == ".." { return "a component's name is one folder's name below \(folder)/, without '/'" }
        return nil
    }

    /// Decodes a component's file, reporting every problem in it; nil if it is not one.
    static func decode(_ root: YAMLNode, name: String, path: String, _ diagnostics: inout Diagnostics) -> Component? {
        let what = "component '\(name)'"
        guard var reader = MappingReader(root, what: "\(path), a component,", diagnostics: &diagnostics) else { return nil }
        let doc = reader.take("doc")?.string("'doc' of \(what)", &diagnostics)
        let inputs = reader.take("inputs").flatMap { VarSchema.decode($0, noun: "input", owner: what, &diagnostics) } ?? VarSchema(vars: [:])
        for name in inputs.vars.keys.sorted() where Expander.reserved.contains(name) {
            diagnostics.error("input '\(name)' of \(what) would hide the host's \(name == "vars" ? "vars" : "facts") ({{\(name).…}}); name it otherwise", at: inputs.vars[name]!.location)
        }
        var resources: [YAMLNode] = []
        if let node = reader.take("resources") {
            if let items = node.sequence {
                resources = items
            } else if !node.isNull {
                diagnostics.error("'resources' of \(what) must be a list, found \(node.kindDescription)", at: node.location)
            }
        }
        reader.finish(&diagnostics, context: what)
        return Component(name: name, path: path, doc: doc, inputs: inputs, resources: resources)
    }

    /// The instance's values of its inputs: `with:` checked against the inputs (each known and of
    /// its type), then the defaults of those not given. Nil after reporting, at the call site, an
    /// unknown, mistyped or missing input.
    func inputValues(_ with: YAMLNode?, use: SourceLocation, _ diagnostics: inout Diagnostics) -> [String: YAMLNode]? {
        var values: [String: YAMLNode] = [:]
        var failed = false
        for pair in with?.mapping ?? [] {
            guard let key = pair.keyText else { continue }
            guard let declared = inputs.vars[key] else {
                var message = "component '\(name)' has no input '\(key)'"
                let known = inputs.vars.keys.sorted()
                message += known.isEmpty ? " (it takes none)" : " (inputs: \(known.joined(separator: ", ")))"
                if let near = Suggestion.nearest(to: key, in: known) { message += "; did you mean '\(near)'?" }
                diagnostics.error(message, at: pair.key.location)
                failed = true
                continue
            }
            if let problem = declared.type.problem(with: pair.value) {
                diagnostics.error("input '\(key)' of component '\(name)' \(problem)", at: pair.value.location)
                failed = true
            }
            values[key] = pair.value
        }
        for (input, declared) in inputs.vars.sorted(by: { $0.key < $1.key }) where values[input] == nil {
            if let value = declared.defaultValue {
                values[input] = value
            } else {
                diagnostics.error("component '\(name)' needs input '\(input)' (\(declared.type.rawValue)\(declared.doc.map { ": \($0)" } ?? "")) in 'with'", at: use)
                failed = true
            }
        }
        return failed ? nil : values
    }
}
