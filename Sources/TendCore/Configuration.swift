public import TendSpec

/// Load, Select and Catalog in one call: the catalog of this host from one snapshot.
public enum Configuration {
    /// Loads the whole repository, reporting every problem in it; then builds the catalog of the
    /// host described by `facts`. Throws every problem found, in file order.
    ///
    /// `managed` is what an earlier apply managed, with where each was declared and the path it
    /// wrote, asked for only when tend.yaml says `prune:`; those no longer declared join the catalog as removals
    /// (`Catalog.retired`). One whose path the configuration now gives to another resource (a
    /// file that became a link) is not removed: the new resource takes the path over. Nor is one
    /// of tend's own (`protected`), which no commit may remove.
    public static func catalog(from snapshot: any Snapshot, providers: ProviderSet, facts: HostFacts, protected: ProtectedPaths? = nil,
                               secrets: (any SecretOpener)? = nil, managed: () -> [ResourceID: Retirable] = { [:] }) throws(ConfigurationError) -> Catalog {
        let loaded = RepositoryLoader(snapshot: snapshot, kinds: providers.kinds).load()
        defer { OneShot.keep(loaded) }
        return try catalog(loaded: loaded, snapshot: snapshot, providers: providers, facts: facts, protected: protected, secrets: secrets, managed: managed)
    }

    /// The catalog of the host described by `facts` from a repository loaded once (`tend
    /// validate --all-hosts` builds every host's from one load).
    public static func catalog(loaded: RepositoryLoader.Result, snapshot: any Snapshot, providers: ProviderSet, facts: HostFacts,
                               protected: ProtectedPaths? = nil, secrets: (any SecretOpener)? = nil,
                               managed: () -> [ResourceID: Retirable] = { [:] }) throws(ConfigurationError) -> Catalog {
        var diagnostics = loaded.diagnostics
        // Every declaration of every manifest is decoded, so that an error in a manifest that
        // applies to other hosts is still found here.
        let vars = loaded.vars(for: facts)
        let (selected, others) = loaded.declarations(for: facts, vars: vars, &diagnostics)
        let variables = TemplateVariables(vars: vars, facts: facts, secrets: secrets)
        diagnostics.append(contentsOf: providers.check(others, snapshot: snapshot, variables: variables.lenient))
        var catalog: Catalog?
        do {
            catalog = try Catalog.build(selected, providers: providers, snapshot: snapshot, variables: variables, protected: protected)
        } catch {
            diagnostics.append(contentsOf: error.diagnostics)
        }
        guard var catalog, diagnostics.isEmpty else { throw ConfigurationError(diagnostics.sorted) }
        catalog.rollout = loaded.config?.rollout
        catalog.health = loaded.health(for: facts)
        guard let prune = loaded.config?.prune else { return catalog }
        let declaredPaths = catalog.planContext.managedPaths
        let retired = managed().filter { id, old in
            guard catalog[id] == nil, removalAttributes[id.kind] != nil, providers.kinds.contains(id.kind) else { return false }
            // A unit is removed only if tend wrote its file: one whose state alone was managed
            // (a package's unit) is left as it is.
            if id.kind == "unit", old.path == nil { return false }
            if let protected, protected.verdict(id: id, path: old.path, paths: old.path.map { [$0] } ?? [], reachesBelow: true) != .anyones { return false }
            return old.path.map { !declaredPaths.contains($0) } ?? true
        }
        catalog.prune = prune
        guard !retired.isEmpty else { return catalog }
        let removals = retired.sorted { $0.key < $1.key }.map { removal(of: $0.key, declaredAt: $0.value.location) }
        do {
            var pruning = try Catalog.build(selected + removals, providers: providers, snapshot: snapshot, variables: variables, protected: protected)
            pruning.retired = Set(retired.keys)
            pruning.prune = prune
            pruning.rollout = catalog.rollout
            pruning.health = catalog.health
            return pruning
        } catch {
            // The configuration is valid; only the removals do not fit it. Apply it without them.
            catalog.pruneProblem = "nothing is pruned: " + error.diagnostics.prefix(3).map(\.description).joined(separator: "; ")
            return catalog
        }
    }

    /// What the last apply managed, for `prune:`: where it was declared and the path it wrote.
    public struct Retirable: Sendable {
        public var location: SourceLocation
        public var path: String?

        public init(location: SourceLocation, path: String?) {
            self.location = location
            self.path = path
        }
    }

    /// How each kind is removed when pruned.
    static let removalAttributes: [String: [(String, String)]] = [
        "file": [("state", "absent")], "directory": [("state", "absent")], "symlink": [("state", "absent")],
        "package": [("state", "absent")], "unit": [("state", "absent")],
    ]

    /// The declaration that removes `id`, positioned where it was last declared.
    static func removal(of id: ResourceID, declaredAt location: SourceLocation) -> ResourceDeclaration {
        func scalar(_ text: String) -> YAMLNode { YAMLNode(.scalar(YAMLScalar(text)), at: location) }
        let pairs = [YAMLPair(key: scalar(id.kind), value: scalar(id.name))]
            + (removalAttributes[id.kind] ?? []).map { YAMLPair(key: scalar($0.0), value: scalar($0.1)) }
        var diagnostics = Diagnostics()
        var reader = MappingReader(YAMLNode(.mapping(pairs), at: location), what: "a removal", diagnostics: &diagnostics)!
        _ = reader.take(id.kind)
        return ResourceDeclaration(kind: id.kind, name: id.name, nameLocation: location, attributes: reader, requires: [], notify: [], manifest: location.file)
    }
}
