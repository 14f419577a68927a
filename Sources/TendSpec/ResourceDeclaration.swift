/// One entry of a manifest's `resources:` list, before its kind has decoded its attributes.
public struct ResourceDeclaration: Sendable {
    /// The kind key (`file`, `directory`, …).
    public var kind: String
    /// The kind key's value: the resource's name.
    public var name: String
    /// Where the name was written (errors about the name point here).
    public var nameLocation: SourceLocation
    /// The other keys of the entry; the kind key, `requires` and `notify` are already taken.
    public var attributes: MappingReader
    /// `requires:` as written.
    public var requires: [Located<String>]
    /// `notify:` as written.
    public var notify: [Located<String>]
    /// The repository path of the manifest that declares it (`source:` is relative to its folder).
    public var manifest: String
    /// What its template sees besides the host's vars: its `vars:`, and the loop item and the
    /// component inputs it was expanded with.
    public var vars: [String: YAMLNode] = [:]
    /// The component instance it came from (`nginx-site[shop]`, `web/nginx-site[shop]` inside
    /// another), shown by plan and blame; nil when written in a manifest.
    public var instance: String?

    public init(kind: String, name: String, nameLocation: SourceLocation, attributes: MappingReader,
                requires: [Located<String>], notify: [Located<String>], manifest: String) {
        self.kind = kind
        self.name = name
        self.nameLocation = nameLocation
        self.attributes = attributes
        self.requires = requires
        self.notify = notify
        self.manifest = manifest
    }

    /// The folder of the manifest, against which `source:` paths resolve.
    public var manifestDirectory: String { RepositoryPath.split(manifest).parent }

    /// Where the entry starts.
    public var location: SourceLocation { attributes.node.location }
}

/// One manifest file and what it declares.
public struct Manifest: Sendable {
    /// One entry of `resources:`.
    public enum Entry: Sendable {
        /// A resource as written.
        case resource(ResourceDeclaration)
        /// An entry with `for_each:`, `use:` or a `resources:` group, expanded for each host with
        /// its vars (`Expander`).
        case expanded(YAMLNode)
    }

    public var path: String
    public var entries: [Entry]
    /// `health:` of the manifest: checked on every host it applies to.
    public var health: [HealthCheck] = []

    public init(path: String, entries: [Entry]) {
        self.path = path
        self.entries = entries
    }

    /// The resources written as they are, without those a loop or a component makes.
    public var written: [ResourceDeclaration] {
        entries.compactMap { if case .resource(let declaration) = $0 { declaration } else { nil } }
    }
}
