/// Expand, the end of Load: the entries that a loop (`for_each:`), a group (`resources:`) or a
/// component (`use:`) write once become the resources they stand for, with one host's vars.
/// Each is then decoded by the same rules as a written one, so paths, ids and limits hold for
/// what was expanded; a problem in one names the entry's position and the item or instance
/// (`web.yaml:12:5 (vhosts[3] "shop")`).
///
/// ```yaml
/// - for_each: vhosts          # a list or mapping var of the host, or one written here
///   as: site                  # default: item
///   file: /etc/nginx/sites-available/{{site.name}}
///   template: site.conf.mustache        # sees {{site.name}} too
/// - use: nginx-site           # components/nginx-site/component.yaml
///   for_each: vhosts
///   as: site
///   with: { name: "{{site.name}}", port: "{{site.port}}" }
/// ```
///
/// Over a mapping, each item is `{key: K, value: V}`. Expansion is bounded: at most
/// `maximumResources` resources for a host, components nested at most `maximumDepth` deep, and a
/// component that uses itself is an error.
public struct Expander: Sendable {
    /// The most resources loops and components make for one host, and the most loop items and
    /// component instances they go through (so that loops in loops that make nothing are
    /// bounded too).
    public static let maximumResources = 100_000
    /// How deep components may use components.
    public static let maximumDepth = 8
    /// The keys that make an entry one that expands.
    static let keys: Set<String> = ["for_each", "use", "resources", "when"]

    let kinds: Set<String>
    let components: [String: Component]
    /// The host's vars, which `for_each: NAME` lists.
    let vars: [String: YAMLNode]
    /// For manifests meant for other hosts: a loop over a var this host does not have is
    /// skipped, not an error.
    let lenient: Bool
    public private(set) var diagnostics = Diagnostics()
    /// Resources made so far.
    public private(set) var count = 0
    /// Loop items and component instances gone through so far.
    private var visited = 0
    private var exhausted = false

    /// What every entry that expands sees: `vars` (the host's vars) and `host` (its facts).
    let base: [String: YAMLNode]
    /// The names `base` binds, which no input or item may take.
    static let reserved: Set<String> = ["vars", "host"]

    public init(kinds: Set<String>, components: [String: Component], vars: [String: YAMLNode], facts: HostFacts, lenient: Bool = false) {
        self.kinds = kinds
        self.components = components
        self.vars = vars
        self.lenient = lenient
        let at = SourceLocation(file: RepositoryLoader.configFile, line: 1, column: 1)
        base = ["vars": YAMLNode(.mapping(vars.sorted { $0.key < $1.key }.map { YAMLPair(key: YAMLNode(.scalar(YAMLScalar($0.key)), at: at), value: $0.value) }), at: at),
                "host": facts.node(at: at)]
    }

    /// The resources `entry` of `manifest` stands for on this host.
    public mutating func expand(_ entry: YAMLNode, manifest: String, into made: inout [ResourceDeclaration]) {
        expand(entry, manifest: manifest, bindings: Bindings(values: base, hostVars: vars), chain: [], into: &made)
    }

    /// Whether an entry of `resources:` expands (rather than being one resource as written).
    static func expands(_ node: YAMLNode) -> Bool {
        guard let pairs = node.mapping else { return false }
        return pairs.contains { $0.keyText.map(keys.contains) ?? false } || pairs.contains { refersToHost($0.value) }
    }

    /// Whether a value names the host's vars or facts (`{{vars.pg_version}}`, `{{host.cpus}}`),
    /// which makes even a resource written once one that expands for each host.
    static func refersToHost(_ node: YAMLNode) -> Bool {
        switch node.content {
        case .scalar(let scalar):
            guard scalar.text.utf8.contains(UInt8(ascii: "{")) else { return false }
            return Bindings.Template.pieces(of: scalar.text).contains {
                if case .reference(let path, _, _) = $0 { reserved.contains(path[0]) } else { false }
            }
        case .sequence(let items): return items.contains(where: refersToHost)
        case .mapping(let pairs): return pairs.contains { refersToHost($0.value) }
        }
    }

    // MARK: Expanding

    private mutating func expand(_ node: YAMLNode, manifest: String, bindings: Bindings, chain: [String], into result: inout [ResourceDeclaration]) {
        guard !exhausted, let pairs = node.mapping else { return }
        guard let forEach = pairs.first(where: { $0.keyText == "for_each" }) else {
            return expandOne(node, manifest: manifest, bindings: bindings, chain: chain, into: &result)
        }
        let name = pairs.first { $0.keyText == "as" }?.value.scalar?.text ?? "item"
        guard let items = items(of: forEach.value, bindings: bindings) else { return }
        let body = YAMLNode(.mapping(pairs.filter { $0.keyText != "for_each" && $0.keyText != "as" }), at: node.location, tag: node.tag)
        // A long loop over one resource (the usual long loop) is made on every core, as a long
        // manifest is decoded.
        if items.count >= 1024, !Self.expands(body), visited + items.count <= Self.maximumResources, count + items.count <= Self.maximumResources {
            visited += items.count
            let (kinds, name, template, lenient) = (kinds, name, Bindings.Template(body), lenient)
            let slices = ParallelSlices.map(items.count, minimum: 1024) { _, range in
                var found = Diagnostics()
                var made: [ResourceDeclaration] = []
                made.reserveCapacity(range.count)
                // One set of bindings changed in place item by item (a copy each was a fifth
                // of the loop).
                var inner = bindings
                inner.via.insert("", at: 0)
                for item in items[range] {
                    inner.values[name] = item.value
                    inner.via[0] = item.label
                    if let declaration = Self.resource(template, manifest: manifest, bindings: inner, kinds: kinds, lenient: lenient, &found) {
                        made.append(declaration)
                    }
                }
                return (made, found)
            }
            for (made, found) in slices {
                diagnostics.append(contentsOf: found)
                result.append(contentsOf: made)
                count += made.count
            }
            return
        }
        for item in items where !exhausted {
            guard visit(node.location, bindings) else { break }
            var inner = bindings
            inner.values[name] = item.value
            inner.via.insert(item.label, at: 0)
            expandOne(body, manifest: manifest, bindings: inner, chain: chain, into: &result)
        }
    }

    private mutating func expandOne(_ node: YAMLNode, manifest: String, bindings: Bindings, chain: [String], into result: inout [ResourceDeclaration]) {
        var pairs = node.mapping ?? []
        var node = node
        // `when:` (for each item, after for_each): true or false, the entry is made or not.
        if let index = pairs.firstIndex(where: { $0.keyText == "when" }) {
            guard let condition = substitute(pairs[index].value, bindings) else { return }
            // An optional reference to what the item lacks (`{{site.tls?}}`) is false.
            let absent = condition.scalar?.text.isEmpty == true && pairs[index].value.scalar?.text.contains("?}}") == true
            guard absent || condition.scalar?.boolValue != nil else {
                diagnostics.error("'when' must be true or false (a reference such as \"{{site.tls}}\" to one), found \(condition.kindDescription)", at: marked(pairs[index].value.location, bindings))
                return
            }
            guard !absent, condition.scalar?.boolValue == true else { return }
            pairs.remove(at: index)
            node = YAMLNode(.mapping(pairs), at: node.location, tag: node.tag)
        }
        if let use = pairs.first(where: { $0.keyText == "use" }) {
            return instantiate(use.value, with: pairs.first { $0.keyText == "with" }?.value, bindings: bindings, chain: chain, into: &result)
        }
        if let group = pairs.first(where: { $0.keyText == "resources" }) {
            for entry in group.value.sequence ?? [] { expand(entry, manifest: manifest, bindings: bindings, chain: chain, into: &result) }
            return
        }
        guard count < Self.maximumResources else {
            exhausted = true
            diagnostics.error("loops and components make more than \(Self.maximumResources) resources for this host; tend expands at most that many", at: marked(node.location, bindings))
            return
        }
        guard let declaration = Self.resource(Bindings.Template(node), manifest: manifest, bindings: bindings, kinds: kinds, lenient: lenient, &diagnostics) else { return }
        count += 1
        result.append(declaration)
    }

    /// One resource, its references replaced, decoded as a written one. For a manifest meant
    /// for other hosts (`lenient`), one that names what this host lacks is left out unsaid.
    private static func resource(_ template: Bindings.Template, manifest: String, bindings: Bindings, kinds: Set<String>, lenient: Bool,
                                 _ diagnostics: inout Diagnostics) -> ResourceDeclaration? {
        let start = diagnostics.all.count
        let via = bindings.viaText
        defer { diagnostics.mark(from: start, via: via) }
        guard let substituted = bindings.substitute(template, via: via, &diagnostics) else {
            if lenient { diagnostics.drop(from: start) }
            return nil
        }
        guard var declaration = RepositoryLoader.decodeEntry(substituted, manifest: manifest, kinds: kinds, &diagnostics) else { return nil }
        declaration.nameLocation.via = via
        // Its template sees the item and the inputs too; its own `vars:` win.
        // (`vars` and `host` are the host's, which the template sees already.)
        if declaration.attributes.peek("template") != nil {
            let own = bindings.values.filter { !reserved.contains($0.key) }
            declaration.vars = declaration.vars.isEmpty ? own : own.merging(declaration.vars) { $1 }
        }
        declaration.instance = bindings.instances.isEmpty ? nil : bindings.instances.joined(separator: "/")
        return declaration
    }

    /// One instance of a component: its resources, expanded with its inputs alone (an instance
    /// does not see the loop around it, only what `with:` gives it).
    private mutating func instantiate(_ use: YAMLNode, with: YAMLNode?, bindings: Bindings, chain: [String], into result: inout [ResourceDeclaration]) {
        let at = marked(use.location, bindings)
        guard let name = use.scalar?.text, let component = components[name] else { return }
        if chain.contains(name) {
            diagnostics.error("component '\(name)' uses itself (\((chain + [name]).joined(separator: " → ")))", at: at)
            return
        }
        guard chain.count < Self.maximumDepth else {
            diagnostics.error("components are nested more than \(Self.maximumDepth) deep (\((chain + [name]).joined(separator: " → ")))", at: at)
            return
        }
        var given: YAMLNode?
        if let with {
            guard let substituted = substitute(with, bindings) else { return }
            given = substituted
        }
        guard let values = component.inputValues(given, use: at, &diagnostics), visit(use.location, bindings) else { return }
        let label = values["name"]?.scalar?.text ?? bindings.via.first.flatMap(Self.itemName)
        let instance = label.map { "\(name)[\(Self.shortened($0))]" } ?? name
        var position = use.location
        position.via = nil
        let inner = Bindings(values: values.merging(base) { $1 }, via: ["\(instance) at \(position)"] + bindings.via, instances: bindings.instances + [instance],
                             hostVars: vars)
        for entry in component.resources { expand(entry, manifest: component.path, bindings: inner, chain: chain + [name], into: &result) }
    }

    /// The items `for_each:` goes over, each with how messages name it; nil after reporting why
    /// there are none to go over.
    private mutating func items(of node: YAMLNode, bindings: Bindings) -> [(value: YAMLNode, label: String)]? {
        let at = marked(node.location, bindings)
        var list = node
        var shownName = "for_each"
        if let text = node.scalar?.text, !text.contains("{{") {
            shownName = text
            guard let found = lookUp(text) else {
                if lenient { return nil }
                var message = "for_each: this host has no var '\(text)'"
                if let near = Suggestion.nearest(to: text, in: vars.keys) { message += "; did you mean '\(near)'?" }
                diagnostics.error(message, at: at)
                return nil
            }
            list = found
        } else {
            if let text = node.scalar?.text { shownName = text.replacing("{{", with: "").replacing("}}", with: "").trimmingWhitespace() }
            guard let substituted = substitute(node, bindings) else { return nil }
            list = substituted
        }
        let count = list.sequence?.count ?? list.mapping?.count ?? 0
        if visited + count > Self.maximumResources {
            exhausted = true
            let before = visited > 0 ? " after \(visited) others" : ""
            diagnostics.error("for_each: '\(Printable.escaped(shownName))' has \(count) items\(before); loops and components go through at most \(Self.maximumResources) items and make at most that many resources for a host", at: at)
            return nil
        }
        if let items = list.sequence {
            return items.enumerated().map { index, item in
                let name = (item.scalar?.text ?? item.mapping?.first { $0.keyText == "name" }?.value.scalar?.text).map { " \"\(Self.shortened($0))\"" } ?? ""
                return (item, "\(shownName)[\(index)]\(name)")
            }
        }
        if let pairs = list.mapping {
            return pairs.map { pair in
                let key = YAMLNode(.scalar(YAMLScalar("key")), at: pair.key.location)
                let value = YAMLNode(.scalar(YAMLScalar("value")), at: pair.key.location)
                let item = YAMLNode(.mapping([YAMLPair(key: key, value: pair.key), YAMLPair(key: value, value: pair.value)]), at: pair.key.location)
                return (item, "\(shownName)[\"\(Self.shortened(pair.keyText ?? ""))\"]")
            }
        }
        diagnostics.error("for_each needs a list or a mapping; '\(Printable.escaped(shownName))' is \(list.kindDescription)", at: at)
        return nil
    }

    /// Counts one loop item or component instance; false, once reported, past the limit.
    private mutating func visit(_ location: SourceLocation, _ bindings: Bindings) -> Bool {
        visited += 1
        guard visited > Self.maximumResources else { return true }
        if !exhausted {
            diagnostics.error("loops and components go through more than \(Self.maximumResources) items and instances for this host; tend expands at most that many", at: marked(location, bindings))
        }
        exhausted = true
        return false
    }

    /// The host's var at a dotted path (`web.vhosts`).
    private func lookUp(_ path: String) -> YAMLNode? {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        guard var node = vars[String(parts[0])] else { return nil }
        for part in parts.dropFirst() {
            guard let next = node.mapping?.first(where: { $0.keyText == String(part) })?.value else { return nil }
            node = next
        }
        return node
    }

    /// `node` with `bindings`' references replaced; in a manifest for other hosts, one that
    /// names what this host lacks is nil, unsaid.
    private mutating func substitute(_ node: YAMLNode, _ bindings: Bindings) -> YAMLNode? {
        let start = diagnostics.all.count
        let result = bindings.substitute(node, &diagnostics)
        if result == nil, lenient { diagnostics.drop(from: start) }
        return result
    }

    private func marked(_ location: SourceLocation, _ bindings: Bindings) -> SourceLocation {
        var location = location
        location.via = bindings.viaText
        return location
    }

    /// The quoted name in an item's label (`vhosts[3] "shop"` → `shop`).
    private static func itemName(_ label: String) -> String? {
        guard let open = label.firstIndex(of: "\""), label.last == "\"", open < label.index(before: label.endIndex) else {
            return label.firstIndex(of: "[").map { String(label[label.index(after: $0)...].dropLast()) }
        }
        return String(label[label.index(after: open)..<label.index(before: label.endIndex)])
    }

    private static func shortened(_ text: String) -> String {
        let shown = Printable.escaped(text)
        return shown.utf8.count > 40 && shown.count > 40 ? String(shown.prefix(39)) + "…" : shown
    }

    // MARK: Checking as loaded

    /// Checks an entry that expands as written, for every host alike: its keys, `as:`, and that
    /// `use:` names a component (collected into `uses`, loaded next).
    static func check(_ node: YAMLNode, manifest: String, kinds: Set<String>, uses: inout [Located<String>], _ diagnostics: inout Diagnostics) {
        guard var reader = MappingReader(node, what: "a resource", diagnostics: &diagnostics) else { return }
        let forEach = reader.take("for_each")
        if let forEach, forEach.isNull || (forEach.scalar?.text.isEmpty ?? false) {
            diagnostics.error("for_each needs a list or mapping, or the name of a var that holds one", at: forEach.location)
        }
        if let when = reader.take("when"), when.scalar == nil || when.isNull {
            diagnostics.error("'when' must be true or false, or a reference to one (\"{{site.tls}}\"), found \(when.kindDescription)", at: when.location)
        }
        if let name = reader.take("as") {
            if forEach == nil {
                diagnostics.error("'as' names the item of 'for_each', and this entry has none", at: name.location)
            } else if let text = name.string("'as'", &diagnostics) {
                if Bindings.namePath(Substring(text))?.count != 1 {
                    diagnostics.error("'as' must be a name (letters, digits, '_' and '-', not first a digit), found '\(Printable.escaped(text))'", at: name.location)
                } else if reserved.contains(text) {
                    diagnostics.error("'as: \(text)' would hide the host's \(text == "vars" ? "vars" : "facts") ({{\(text).…}}); name the item otherwise", at: name.location)
                }
            }
        }
        if let use = reader.take("use") {
            if let name = use.string("'use'", &diagnostics) {
                if let problem = Component.problem(inName: name) {
                    diagnostics.error("'use': \(problem)", at: use.location)
                } else {
                    uses.append(Located(name, at: use.location))
                }
            }
            if let with = reader.take("with"), with.mapping == nil {
                diagnostics.error("'with' gives a component its inputs as a mapping, found \(with.kindDescription)", at: with.location)
            }
            reader.finish(&diagnostics, context: "an entry that uses a component")
        } else if let group = reader.take("resources") {
            if let items = group.sequence {
                for item in items where expands(item) {
                    check(item, manifest: manifest, kinds: kinds, uses: &uses, &diagnostics)
                }
            } else {
                diagnostics.error("'resources' of a group must be a list, found \(group.kindDescription)", at: group.location)
            }
            reader.finish(&diagnostics, context: "a group of resources")
        }
    }
}
