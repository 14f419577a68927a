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
    public var notify: [NotifyTarget]
    /// The repository path of the manifest that declares it (`source:` is relative to its folder).
    public var manifest: String
    /// What its template sees besides the host's vars: its `vars:`, and the loop item and the
    /// component inputs it was expanded with.
    public var vars: [String: YAMLNode] = [:]
    /// The component instance it came from (`nginx-site[shop]`, `web/nginx-site[shop]` inside
    /// another), shown by plan and blame; nil when written in a manifest.
    public var instance: String?

    public init(kind: String, name: String, nameLocation: SourceLocation, attributes: MappingReader,
                requires: [Located<String>], notify: [NotifyTarget], manifest: String) {
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

/// One entry of `notify:`: the resource to tell when this one changes, and what to ask of it
/// (`unit:nginx.service` restarts it; `{reload: unit:nginx.service}` reloads it).
public struct NotifyTarget: Sendable {
    public var id: Located<String>
    public var refresh: Refresh

    public init(_ id: Located<String>, refresh: Refresh = .restart) {
        self.id = id
        self.refresh = refresh
    }
}

/// What a notification asks of a unit.
public enum Refresh: String, Sendable, Codable, CaseIterable, Comparable {
    case reload
    /// Reload if the unit can (it has `ExecReload=`), restart otherwise.
    case reloadOrRestart = "reload-or-restart"
    case restart

    /// A restart asks more than a reload: several notifications ask the most any of them does.
    public static func < (lhs: Refresh, rhs: Refresh) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
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
}
