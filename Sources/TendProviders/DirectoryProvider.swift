public import TendCore
public import TendSpec

/// `directory`: a folder's mode, owner and group, its absence, and with `purge: true` the removal
/// of every entry in it that the catalog does not manage.
///
/// Purge looks at the folder's own entries only: an entry is kept when the catalog manages it or
/// something below it; anything else is removed with its contents.
public struct DirectoryProvider: ResourceProvider {
    public init() {}

    public var kind: String { "directory" }

    public var observesInParallel: Bool { true }
    public var stagesWrites: Bool { true }

    public struct Desired: DesiredState {
        var attributes: PathAttributes
        var purge: Bool

        public var id: ResourceID { ResourceID(kind: "directory", name: attributes.path) }
        public var path: String? { attributes.path }
        public var implicitDependencies: [ResourceID] { attributes.implicitDependencies }
        public var isRemoval: Bool { attributes.state == .absent }
        public var reachesBelow: Bool { isRemoval || purge }

        public func digest(into digest: inout Digest) {
            attributes.digest(into: &digest)
            digest.add("purge", purge ? "true" : "false")
        }
    }

    public struct Observed: ObservedState {
        var status: FileStatus?
        var entries: [String]
        var ownership: Ownership
        var names: AccountNames

        public func fingerprint(into digest: inout Digest) {
            status?.fingerprint(into: &digest)
            digest.add("entries", entries.joined(separator: "/"))
        }
    }

    public func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired? {
        var declaration = declaration
        guard let attributes = PathAttributes(&declaration, ownership: true, context: &context) else { return nil }
        defer { declaration.attributes.finish(&context.diagnostics, context: "a directory") }
        let purge = declaration.attributes.take("purge")?.bool("'purge'", &context.diagnostics) ?? false
        return Desired(attributes: attributes, purge: purge)
    }

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        let path = desired.attributes.path
        let status = try host.status(path)
        var entries: [String] = []
        switch status?.type {
        case .directory?:
            if desired.purge || desired.attributes.state == .absent { entries = try host.entries(of: path) }
            if desired.attributes.state == .absent, !entries.isEmpty, !desired.attributes.force {
                throw HostError(path: path, message: "is not empty (\(entries.count) entries); set 'force: true' to remove it with its contents")
            }
        case .symlink?:
            if desired.attributes.state == .present, !desired.attributes.force {
                throw HostError(path: path, message: "is a symbolic link to \((try? host.readLink(path)) ?? "?"); tend never works through a link. Set 'force: true' to replace the link with a directory")
            }
        case .regular?:
            if !desired.attributes.force {
                throw HostError(path: path, message: "is a regular file, not a directory; set 'force: true' to replace it")
            }
        case .other?:
            throw HostError(path: path, message: "is a special file (device, socket or FIFO); tend will not replace it")
        case nil:
            break
        }
        let ownership = try desired.attributes.desiredOwnership(host)
        return Observed(status: status, entries: entries, ownership: ownership,
                        names: AccountNames(host: host, status: status, ownership: ownership))
    }

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        let path = desired.attributes.path
        guard desired.attributes.state == .present else {
            guard let status = observed.status else { return nil }
            let notes = status.type == .directory ? (observed.entries.isEmpty ? [] : ["removes \(observed.entries.count) entries inside"]) : ["removes \(status.type.article)"]
            return Change(.delete, notes: notes, found: status.type)
        }
        var ownership = observed.ownership
        guard let status = observed.status, status.type == .directory else {
            ownership.mode = ownership.mode ?? 0o755
            let attributes = ownership.changes(from: nil, host: observed.names)
            guard let status = observed.status else { return Change(.create, attributes: attributes) }
            return Change(.replace, attributes: attributes, notes: ["replaces \(status.type.article)"], found: status.type)
        }
        let attributes = ownership.changes(from: status, host: observed.names)
        let unmanaged = desired.purge ? observed.entries.filter { !context.isManaged(HostPath.join(path, $0)) } : []
        guard !attributes.isEmpty || !unmanaged.isEmpty else { return nil }
        return Change(.update, attributes: attributes, removes: unmanaged)
    }

    public func apply(_ change: Change, desired: Desired, host: HostWriter) throws(HostError) {
        let path = desired.attributes.path
        let (owner, group) = try desired.attributes.resolveAccounts(host.reader)
        switch change.action {
        case .delete:
            let found = change.found ?? .directory
            // Without force, observing refused a folder with entries: one that has some now is left.
            try host.remove(path, expected: found, recursive: found == .directory && desired.attributes.force)
        case .create, .replace:
            if change.action == .replace, let found = change.found {
                try host.remove(path, expected: found, recursive: false)
            }
            try host.makeParentDirectories(of: path)
            try host.makeDirectory(path, mode: desired.attributes.mode ?? 0o755,
                                   owner: owner ?? ProcessIdentity.user, group: group ?? ProcessIdentity.group)
        case .update, .restart, .reload, .reloadOrRestart, .run:
            for name in change.removes {
                // Purge: the plan listed these entries to be removed with what they hold.
                let entry = HostPath.join(path, name)
                if let found = try host.reader.status(entry)?.type {
                    try host.remove(entry, expected: found, recursive: true)
                }
            }
            if change.attributes.contains(where: { ["mode", "owner", "group"].contains($0.name) }) {
                try host.setAttributes(path, type: .directory, mode: desired.attributes.mode, owner: owner, group: group)
            }
        }
    }
}
