/// Load: reads `tend.yaml` and every manifest it names from a snapshot, and decodes them into
/// declarations, collecting every problem in the repository before returning.
public struct RepositoryLoader: Sendable {
    /// The name of the file at the repository root that says which manifests apply where.
    public static let configFile = "tend.yaml"

    public let snapshot: any Snapshot
    /// The resource kinds that exist (the kind key of each entry must be one of them).
    public let kinds: Set<String>

    public init(snapshot: any Snapshot, kinds: Set<String>) {
        self.snapshot = snapshot
        self.kinds = kinds
    }

    /// The whole repository: the config, every manifest that any host entry names, and every
    /// problem found on the way.
    public struct Result: Sendable {
        public var config: RepositoryConfig?
        /// Manifests by repository path.
        public var manifests: [String: Manifest]
        /// For each `apply:` path, the manifest paths it contributes, in name order.
        public var contributions: [String: [String]]
        /// The var files of tend.yaml (`vars_files:`), each a mapping, by repository path.
        public var varFiles: [String: YAMLNode] = [:]
        /// The components that manifests use, by name.
        public var components: [String: Component] = [:]
        /// The resource kinds that exist.
        public var kinds: Set<String> = []
        public var diagnostics: Diagnostics

        /// The vars of a host with `facts` (`RepositoryConfig.vars(for:varFiles:)`).
        public func vars(for facts: HostFacts) -> [String: YAMLNode] {
            config?.vars(for: facts, varFiles: varFiles) ?? [:]
        }

        /// The declarations that apply to a host with `facts` and `vars`, in the order of the
        /// host entries, their `apply:` lists, the manifests' names and their entries, loops and
        /// components expanded (`Expander`); and those of every other manifest, for checking,
        /// expanded where this host's vars allow. Problems of expanding go to `diagnostics`.
        public func declarations(for facts: HostFacts, vars: [String: YAMLNode],
                                 _ diagnostics: inout Diagnostics) -> (selected: [ResourceDeclaration], others: [ResourceDeclaration]) {
            guard let config else { return ([], []) }
            var seen: Set<String> = []
            var selected: [ResourceDeclaration] = []
            var expander = Expander(kinds: kinds, components: components, vars: vars, facts: facts)
            for applied in config.applied(to: facts) {
                for path in contributions[applied] ?? [] where seen.insert(path).inserted {
                    for entry in manifests[path]?.entries ?? [] {
                        switch entry {
                        case .resource(let declaration): selected.append(declaration)
                        case .expanded(let node): expander.expand(node, manifest: path, into: &selected)
                        }
                    }
                }
            }
            var others: [ResourceDeclaration] = []
            var lenient = Expander(kinds: kinds, components: components, vars: vars, facts: facts, lenient: true)
            for (path, manifest) in manifests.sorted(by: { $0.key < $1.key }) where !seen.contains(path) {
                for entry in manifest.entries {
                    switch entry {
                    case .resource(let declaration): others.append(declaration)
                    case .expanded(let node): lenient.expand(node, manifest: path, into: &others)
                    }
                }
            }
            diagnostics.append(contentsOf: expander.diagnostics)
            diagnostics.append(contentsOf: lenient.diagnostics)
            return (selected, others)
        }

        /// The health checks of a host with `facts`: its host entries' and then its manifests',
        /// in that order, each once.
        public func health(for facts: HostFacts) -> [HealthCheck] {
            guard let config else { return [] }
            var checks: [HealthCheck] = []
            for entry in config.hosts where entry.match?.matches(facts) ?? true {
                checks += entry.health.filter { !checks.contains($0) }
            }
            var seen: Set<String> = []
            for applied in config.applied(to: facts) {
                for path in contributions[applied] ?? [] where seen.insert(path).inserted {
                    checks += (manifests[path]?.health ?? []).filter { !checks.contains($0) }
                }
            }
            return checks
        }
    }

    public func load() -> Result {
        var diagnostics = Diagnostics()
        var result = Result(config: nil, manifests: [:], contributions: [:], diagnostics: diagnostics)
        let bytes: [UInt8]
        do {
            bytes = try snapshot.read(Self.configFile)
        } catch {
            let reason = error.code == .notFound ? "not found" : error.message
            diagnostics.error("\(Self.configFile): \(reason); a configuration repository has tend.yaml at its root", at: nil)
            result.diagnostics = diagnostics
            return result
        }
        let config = Self.checkSize(bytes, file: Self.configFile, &diagnostics) ? decodeConfig(bytes, &diagnostics) : nil
        result.config = config
        for file in (config?.varsFiles ?? []) + (config?.hosts.flatMap(\.varsFiles) ?? []) where result.varFiles[file.value] == nil {
            if let vars = loadVarFile(file, &diagnostics) { result.varFiles[file.value] = vars }
        }
        if let schema = config?.varsSchema {
            for layer in [config?.vars].compactMap({ $0 }) + (config?.hosts.compactMap(\.vars) ?? []) + result.varFiles.sorted(by: { $0.key < $1.key }).map(\.value) {
                schema.check(layer, &diagnostics)
            }
        }
        var uses: [Located<String>] = []
        for applied in config?.allApplied ?? [] {
            let paths = manifestPaths(for: applied, &diagnostics)
            result.contributions[applied.value] = paths
            for path in paths where result.manifests[path] == nil {
                result.manifests[path] = loadManifest(path, uses: &uses, &diagnostics)
            }
        }
        result.components = loadComponents(uses, &diagnostics)
        result.kinds = kinds
        result.diagnostics = diagnostics
        return result
    }

    // MARK: Components

    /// Every component that `uses` name, and those they use in turn, each read once; a name
    /// with no component is reported where it is used.
    private func loadComponents(_ uses: [Located<String>], _ diagnostics: inout Diagnostics) -> [String: Component] {
        var components: [String: Component] = [:]
        var failed: Set<String> = []
        var pending = uses
        while let use = pending.popLast() {
            guard components[use.value] == nil else { continue }
            guard !failed.contains(use.value) else {
                continue
            }
            let path = Component.path(of: use.value)
            guard let bytes = try? snapshot.read(path) else {
                let known = ((try? snapshot.entries(in: Component.folder)) ?? []).filter { $0.kind == .directory }.map(\.name)
                var message = "no component '\(use.value)': components are read from \(path)"
                if let near = Suggestion.nearest(to: use.value, in: known) { message += "; did you mean '\(near)'?" }
                diagnostics.error(message, at: use.location)
                failed.insert(use.value)
                continue
            }
            guard Self.checkSize(bytes, file: path, &diagnostics) else {
                failed.insert(use.value)
                continue
            }
            let parsed = YAMLParser.parse(bytes, file: path)
            diagnostics.append(contentsOf: parsed.diagnostics)
            guard parsed.diagnostics.isEmpty, parsed.documents.count == 1, let root = parsed.documents.first,
                  let component = Component.decode(root, name: use.value, path: path, &diagnostics) else {
                if parsed.diagnostics.isEmpty, parsed.documents.count != 1 {
                    diagnostics.error("a component's file holds one YAML document, found \(parsed.documents.count)", at: SourceLocation(file: path, line: 1, column: 1))
                }
                failed.insert(use.value)
                continue
            }
            components[use.value] = component
            for entry in component.resources {
                if Expander.expands(entry) {
                    Expander.check(entry, manifest: path, kinds: kinds, uses: &pending, &diagnostics)
                } else if let pairs = entry.mapping, let vars = pairs.first(where: { $0.keyText == "vars" })?.value, vars.mapping == nil {
                    diagnostics.error("'vars' must be a mapping of names to values for the template, found \(vars.kindDescription)", at: vars.location)
                }
            }
        }
        return components
    }

    // MARK: tend.yaml

    private func decodeConfig(_ bytes: [UInt8], _ diagnostics: inout Diagnostics) -> RepositoryConfig? {
        let parsed = YAMLParser.parse(bytes, file: Self.configFile)
        diagnostics.append(contentsOf: parsed.diagnostics)
        guard parsed.diagnostics.isEmpty else { return nil }
        guard parsed.documents.count == 1, let root = parsed.documents.first, !root.isNull else {
            let message = parsed.documents.count > 1 ? "tend.yaml must hold one YAML document, found \(parsed.documents.count)" : "tend.yaml is empty; it needs a 'hosts:' list"
            diagnostics.error(message, at: SourceLocation(file: Self.configFile, line: 1, column: 1))
            return nil
        }
        guard var reader = MappingReader(root, what: "tend.yaml", diagnostics: &diagnostics) else { return nil }
        var config = RepositoryConfig(hosts: [])
        if let vars = reader.take("vars"), vars.mapping == nil {
            diagnostics.error("'vars' must be a mapping, found \(vars.kindDescription)", at: vars.location)
        } else {
            config.vars = reader.peek("vars")?.value
        }
        config.varsFiles = reader.take("vars_files").map { varsFiles($0, &diagnostics) } ?? []
        if let schema = reader.take("vars_schema") {
            config.varsSchema = VarSchema.decode(schema, &diagnostics)
        }
        if let prune = reader.take("prune") {
            if prune.mapping != nil, var settings = MappingReader(prune, what: "'prune'", diagnostics: &diagnostics) {
                if let node = settings.take("max"), let maximum = node.integer("'max' of 'prune'", &diagnostics) {
                    if maximum < 0 {
                        diagnostics.error("'max' of 'prune' must be 0 or more, found \(maximum)", at: node.location)
                    } else {
                        config.prune = RepositoryConfig.Prune(maximum: maximum, location: prune.location)
                    }
                } else {
                    config.prune = RepositoryConfig.Prune(maximum: nil, location: prune.location)
                }
                settings.finish(&diagnostics, context: "'prune'")
            } else if prune.bool("'prune'", &diagnostics) == true {
                config.prune = RepositoryConfig.Prune(maximum: nil, location: prune.location)
            }
        }
        if let rollout = reader.take("rollout") {
            config.rollout = Rollout.decode(rollout, &diagnostics)
        }
        if let hosts = reader.take("hosts") {
            if let items = hosts.sequence {
                config.hosts = items.compactMap { decodeHostEntry($0, &diagnostics) }
            } else {
                diagnostics.error("'hosts' must be a list of host entries, found \(hosts.kindDescription)", at: hosts.location)
            }
        } else {
            diagnostics.error("tend.yaml needs a 'hosts:' list that says which manifests to apply", at: root.location)
        }
        reader.finish(&diagnostics, context: "tend.yaml")
        return config
    }

    private func decodeHostEntry(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> HostEntry? {
        guard var reader = MappingReader(node, what: "a host entry", diagnostics: &diagnostics) else { return nil }
        var match: HostMatch?
        if let matchNode = reader.take("match"), var matchReader = MappingReader(matchNode, what: "'match'", diagnostics: &diagnostics) {
            var selector = HostMatch()
            selector.hostnames = matchReader.take("hostname")?.stringList("'hostname'", &diagnostics)?.map(\.value)
            selector.labels = matchReader.take("labels")?.stringMap("'labels'", &diagnostics)?.mapValues(\.value) ?? [:]
            selector.os = matchReader.take("os")?.stringList("'os'", &diagnostics)?.map(\.value)
            if let facts = matchReader.take("facts"), let pairs = facts.mapping {
                for pair in pairs {
                    guard let name = pair.keyText else { continue }
                    guard HostFacts.names.contains(name) else {
                        var message = "unknown fact '\(name)' in 'match' (facts: \(HostFacts.names.joined(separator: ", ")))"
                        if let near = Suggestion.nearest(to: name, in: HostFacts.names) { message += "; did you mean '\(near)'?" }
                        diagnostics.error(message, at: pair.key.location)
                        continue
                    }
                    if let globs = pair.value.stringList("'\(name)' of 'facts'", &diagnostics) { selector.facts[name] = globs.map(\.value) }
                }
            } else if let facts = matchReader.peek("facts")?.value {
                diagnostics.error("'facts' of 'match' must be a mapping of fact names to shell globs, found \(facts.kindDescription)", at: facts.location)
            }
            matchReader.finish(&diagnostics, context: "'match'")
            match = selector
        }
        var apply: [Located<String>] = []
        if let applyNode = reader.take("apply") {
            for path in applyNode.stringList("'apply'", &diagnostics) ?? [] {
                if let problem = Self.problem(inRepositoryPath: path.value) {
                    diagnostics.error("'\(path.value)' in 'apply': \(problem)", at: path.location)
                } else {
                    apply.append(Located(RepositoryPath.resolve(path.value, in: "") ?? path.value, at: path.location))
                }
            }
        } else {
            diagnostics.error("a host entry needs 'apply:', the list of manifest folders it applies", at: node.location)
        }
        let vars = reader.take("vars")
        if let vars, vars.mapping == nil {
            diagnostics.error("'vars' must be a mapping, found \(vars.kindDescription)", at: vars.location)
        }
        let files = reader.take("vars_files").map { varsFiles($0, &diagnostics) } ?? []
        let health = reader.take("health").map { HealthCheck.decodeList($0, &diagnostics) } ?? []
        reader.finish(&diagnostics, context: "a host entry")
        var entry = HostEntry(match: match, apply: apply, vars: vars, health: health, location: node.location)
        entry.varsFiles = files
        return entry
    }

    /// A `vars_files:` list: repository paths of YAML files.
    private func varsFiles(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> [Located<String>] {
        (node.stringList("'vars_files'", &diagnostics) ?? []).compactMap { path in
            if let problem = Self.problem(inRepositoryPath: path.value) {
                diagnostics.error("'\(path.value)' in 'vars_files': \(problem)", at: path.location)
                return nil
            }
            return Located(RepositoryPath.resolve(path.value, in: "") ?? path.value, at: path.location)
        }
    }

    /// A var file: one YAML document, a mapping of vars; nil after reporting what is wrong.
    private func loadVarFile(_ file: Located<String>, _ diagnostics: inout Diagnostics) -> YAMLNode? {
        let bytes: [UInt8]
        do {
            bytes = try snapshot.read(file.value)
        } catch {
            diagnostics.error("var file '\(file.value)': \(error.code == .notFound ? "not found" : error.message)", at: file.location)
            return nil
        }
        guard Self.checkSize(bytes, file: file.value, &diagnostics) else { return nil }
        let parsed = YAMLParser.parse(bytes, file: file.value)
        diagnostics.append(contentsOf: parsed.diagnostics)
        guard parsed.diagnostics.isEmpty else { return nil }
        guard parsed.documents.count == 1, let root = parsed.documents.first, root.mapping != nil else {
            let found = parsed.documents.count == 1 ? parsed.documents[0].kindDescription : "\(parsed.documents.count) documents"
            diagnostics.error("a var file holds one mapping of vars, found \(found)", at: SourceLocation(file: file.value, line: 1, column: 1))
            return nil
        }
        return root
    }

    /// Why a path written in tend.yaml cannot name a folder of the repository, or nil.
    static func problem(inRepositoryPath path: String) -> String? {
        if path.isEmpty { return "an empty path" }
        if let problem = RepositoryPath.problem(in: path) { return problem }
        if path.hasPrefix("/") { return "paths in tend.yaml are relative to the repository root" }
        if path.split(separator: "/").contains("..") { return "'..' would leave the repository" }
        return nil
    }

    // MARK: Manifests

    /// The manifests an `apply:` path contributes: a .yaml file itself, or the .yaml files
    /// directly in a folder in name order.
    private func manifestPaths(for applied: Located<String>, _ diagnostics: inout Diagnostics) -> [String] {
        let path = applied.value
        switch snapshot.kind(of: path) {
        case .file?:
            guard path.hasSuffix(".yaml") || path.hasSuffix(".yml") else {
                diagnostics.error("'\(path)' in 'apply' is a file but not a .yaml manifest", at: applied.location)
                return []
            }
            return [path]
        case .directory?:
            let entries = (try? snapshot.entries(in: path)) ?? []
            for link in entries where link.kind == .symlink && (link.name.hasSuffix(".yaml") || link.name.hasSuffix(".yml")) {
                diagnostics.error("'\(path.isEmpty ? link.name : "\(path)/\(link.name)")' is a symbolic link, which tend never follows in a configuration (as in a Git tree); it is not loaded", at: applied.location)
            }
            return entries
                .filter { $0.kind == .file && ($0.name.hasSuffix(".yaml") || $0.name.hasSuffix(".yml")) }
                .map { path.isEmpty ? $0.name : "\(path)/\($0.name)" }
        case .symlink?:
            diagnostics.error("'\(path)' in 'apply' is a symbolic link, which tend never follows in a configuration (as in a Git tree)", at: applied.location)
            return []
        case .submodule?:
            diagnostics.error("'\(path)' in 'apply' is a Git submodule, whose files are in another repository that tend does not fetch; commit them into this one", at: applied.location)
            return []
        case .other?:
            diagnostics.error("'\(path)' in 'apply' is neither a folder nor a .yaml file", at: applied.location)
            return []
        case nil:
            do {
                _ = try snapshot.entries(in: RepositoryPath.split(path).parent)
            } catch where error.code == .symbolicLink {
                diagnostics.error("'\(path)' in 'apply': \(error.message)", at: applied.location)
                return []
            } catch {}
            diagnostics.error("'\(path)' in 'apply' does not exist in \(snapshot.description)", at: applied.location)
            return []
        }
    }

    private func loadManifest(_ path: String, uses: inout [Located<String>], _ diagnostics: inout Diagnostics) -> Manifest {
        var manifest = Manifest(path: path, entries: [])
        let bytes: [UInt8]
        do {
            bytes = try snapshot.read(path)
        } catch {
            diagnostics.error("cannot read manifest: \(error.message)", at: SourceLocation(file: path, line: 1, column: 1))
            return manifest
        }
        guard Self.checkSize(bytes, file: path, &diagnostics) else { return manifest }
        let parsed = YAMLParser.parse(bytes, file: path)
        diagnostics.append(contentsOf: parsed.diagnostics)
        for document in parsed.documents where !document.isNull {
            guard var reader = MappingReader(document, what: "a manifest", diagnostics: &diagnostics) else { continue }
            if let resources = reader.take("resources") {
                if let items = resources.sequence {
                    manifest.entries += decodeEntries(items, manifest: path, uses: &uses, &diagnostics)
                } else if !resources.isNull {
                    diagnostics.error("'resources' must be a list, found \(resources.kindDescription)", at: resources.location)
                }
            }
            if let health = reader.take("health") {
                manifest.health += HealthCheck.decodeList(health, &diagnostics)
            }
            reader.finish(&diagnostics, context: "a manifest")
        }
        return manifest
    }

    /// Whether a YAML file is within `SnapshotLimits.yamlFileSize`; reports it at its start if not.
    private static func checkSize(_ bytes: [UInt8], file: String, _ diagnostics: inout Diagnostics) -> Bool {
        guard bytes.count > SnapshotLimits.yamlFileSize else { return true }
        diagnostics.error("the file is \(bytes.count) bytes; tend reads YAML files of at most \(SnapshotLimits.yamlFileSize >> 20) MiB", at: SourceLocation(file: file, line: 1, column: 1))
        return false
    }

    /// Kinds whose name other kinds take as an attribute.
    static let kindsThatAreAlsoAttributes: Set<String> = ["group"]

    /// Decodes a `resources:` list; a long one on several threads, problems kept in order. An
    /// entry that expands is checked as written and kept for each host's `Expander`.
    private func decodeEntries(_ items: [YAMLNode], manifest: String, uses: inout [Located<String>],
                               _ diagnostics: inout Diagnostics) -> [Manifest.Entry] {
        let kinds = kinds
        let slices = ParallelSlices.map(items.count, minimum: 1024) { _, range in
            var found = Diagnostics()
            var uses: [Located<String>] = []
            let entries: [Manifest.Entry] = items[range].compactMap { item in
                if Expander.expands(item) {
                    Expander.check(item, manifest: manifest, kinds: kinds, uses: &uses, &found)
                    return .expanded(item)
                }
                return Self.decodeEntry(item, manifest: manifest, kinds: kinds, &found).map(Manifest.Entry.resource)
            }
            return (entries, found, uses)
        }
        for (_, found, used) in slices {
            diagnostics.append(contentsOf: found)
            uses += used
        }
        return slices.flatMap(\.0)
    }

    /// `notify:`: ids to restart, or `{reload: ID}`, `{reload-or-restart: ID}`, `{restart: ID}`.
    static func decodeNotify(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> [NotifyTarget] {
        let items = node.sequence ?? [node]
        return items.compactMap { item in
            if let pairs = item.mapping {
                guard pairs.count == 1, let key = pairs[0].keyText, let refresh = Refresh(rawValue: key) else {
                    var message = "an entry of 'notify' is an id (restart it) or one of {reload: ID}, {reload-or-restart: ID}, {restart: ID}"
                    if let key = pairs.first?.keyText, let near = Suggestion.nearest(to: key, in: Refresh.allCases.map(\.rawValue)) { message += "; did you mean '\(near)'?" }
                    diagnostics.error(message, at: item.location)
                    return nil
                }
                return pairs[0].value.string("'\(key)' in 'notify'", &diagnostics).map { NotifyTarget(Located($0, at: pairs[0].value.location), refresh: refresh) }
            }
            return item.string("an entry of 'notify'", &diagnostics).map { NotifyTarget(Located($0, at: item.location)) }
        }
    }

    /// Decodes one resource as written (or as a loop or component made it): its kind key, name,
    /// `requires`, `notify` and `vars`; the kind decodes the rest.
    static func decodeEntry(_ node: YAMLNode, manifest: String, kinds: Set<String>, _ diagnostics: inout Diagnostics) -> ResourceDeclaration? {
        guard var reader = MappingReader(node, what: "a resource", diagnostics: &diagnostics) else { return nil }
        // `group` is also an attribute (the owner group of a file, a user's primary group): beside
        // another kind key it is that attribute, wherever it is written.
        var kindKeys = reader.keys.filter { kinds.contains($0) }
        if kindKeys.count > 1 {
            let others = kindKeys.filter { !Self.kindsThatAreAlsoAttributes.contains($0) }
            if !others.isEmpty { kindKeys = others }
        }
        guard let kind = kindKeys.first else {
            let first = reader.keys.first
            let location = first.flatMap { reader.peek($0)?.key.location } ?? node.location
            var message = "a resource needs exactly one kind key (\(kinds.sorted().joined(separator: ", ")))"
            if let first, let suggestion = Suggestion.nearest(to: first, in: kinds) {
                message = "unknown resource kind '\(first)'; did you mean '\(suggestion)'?"
            } else if let first {
                message = "unknown resource kind '\(first)'; \(message)"
            }
            diagnostics.error(message, at: location)
            return nil
        }
        if kindKeys.count > 1, let second = reader.peek(kindKeys[1]) {
            diagnostics.error("a resource has exactly one kind key, but this one has '\(kind)' and '\(kindKeys[1])'", at: second.key.location)
            return nil
        }
        guard let nameNode = reader.take(kind), let name = nameNode.string("the name of a \(kind)", &diagnostics) else { return nil }
        let requires = reader.take("requires")?.stringList("'requires'", &diagnostics) ?? []
        let notify = reader.take("notify").map { decodeNotify($0, &diagnostics) } ?? []
        var vars: [String: YAMLNode] = [:]
        if let node = reader.take("vars") {
            if let pairs = node.mapping {
                for pair in pairs { if let key = pair.keyText { vars[key] = pair.value } }
                if reader.peek("template") == nil {
                    diagnostics.error("'vars' gives values to a template, and this \(kind) has no 'template'", at: node.location)
                }
            } else {
                diagnostics.error("'vars' must be a mapping of names to values for the template, found \(node.kindDescription)", at: node.location)
            }
        }
        var declaration = ResourceDeclaration(kind: kind, name: name, nameLocation: nameNode.location, attributes: reader,
                                              requires: requires, notify: notify, manifest: manifest)
        declaration.vars = vars
        return declaration
    }
}
