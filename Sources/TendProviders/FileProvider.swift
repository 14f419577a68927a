public import TendCore
public import TendSpec

/// `file`: a regular file's content, mode, owner and group, or its absence.
///
/// Content comes from `content` (text in the manifest), `source` (a file of the repository,
/// relative to the manifest) or `template` (a Mustache template there, rendered with the vars). Without either, only the file's existence and attributes are managed.
public struct FileProvider: ResourceProvider {
    public init() {}

    public var kind: String { "file" }

    public var observesInParallel: Bool { true }

    public struct Desired: DesiredState {
        var attributes: PathAttributes
        /// The bytes the file must hold, or nil to leave content alone.
        var content: [UInt8]?
        var sensitive: Bool

        public var id: ResourceID { ResourceID(kind: "file", name: attributes.path) }
        public var path: String? { attributes.path }
        public var implicitDependencies: [ResourceID] { attributes.implicitDependencies }

        public func digest(into digest: inout Digest) {
            attributes.digest(into: &digest)
            digest.add("content", content ?? Array("\u{0}unmanaged".utf8))
            digest.add("sensitive", sensitive ? "true" : "false")
        }
    }

    public struct Observed: ObservedState {
        var status: FileStatus?
        var content: [UInt8]?
        var linkTarget: String?
        var ownership: Ownership
        var names: AccountNames

        public func fingerprint(into digest: inout Digest) {
            status?.fingerprint(into: &digest)
            digest.add("link", linkTarget)
        }
    }

    public func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired? {
        var declaration = declaration
        guard let attributes = PathAttributes(&declaration, ownership: true, context: &context) else { return nil }
        defer { declaration.attributes.finish(&context.diagnostics, context: "a file") }
        let (content, contentNode) = UnitProvider.decodeContent(&declaration, what: "a file", context: &context)
        if contentNode != nil, content == nil { return nil }
        if attributes.state == .absent, let node = contentNode {
            context.diagnostics.error("an absent file has no content; remove '\(node.key)' or the 'state: absent'", at: node.location)
        }
        let sensitive = declaration.attributes.take("sensitive")?.bool("'sensitive'", &context.diagnostics) ?? false
        return Desired(attributes: attributes, content: content, sensitive: sensitive)
    }

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        let path = desired.attributes.path
        let status = try host.status(path)
        var observed = Observed(status: status, ownership: Ownership(), names: AccountNames())
        switch status?.type {
        case .regular?:
            if desired.content != nil, desired.attributes.state == .present { observed.content = try host.read(path) }
        case .symlink?:
            observed.linkTarget = try host.readLink(path)
            if desired.attributes.state == .present, !desired.attributes.force {
                throw HostError(path: path, message: "is a symbolic link to \(observed.linkTarget ?? "?"); tend never writes through a link. Set 'force: true' to replace the link with the file")
            }
        case .directory?:
            if !desired.attributes.force {
                throw HostError(path: path, message: "is a directory, not a file; set 'force: true' to replace it and everything in it")
            }
        case .other?:
            throw HostError(path: path, message: "is a special file (device, socket or FIFO); tend will not replace it")
        case nil:
            break
        }
        let (owner, group) = try desired.attributes.resolveAccounts(host)
        observed.ownership = Ownership(owner: owner, group: group, mode: desired.attributes.mode)
        observed.names = AccountNames(host: host, status: status, ownership: observed.ownership)
        return observed
    }

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        let path = desired.attributes.path
        guard desired.attributes.state == .present else {
            guard let status = observed.status else { return nil }
            let notes = status.type == .regular ? [] : ["removes \(status.type.article)"]
            let content: ContentChange? = status.type == .regular && !desired.sensitive ? .binary(before: status.size, after: nil) : nil
            return Change(.delete, content: content, notes: notes)
        }
        switch observed.status {
        case let status? where status.type == .regular:
            let attributes = observed.ownership.changes(from: status, host: observed.names)
            var content: ContentChange?
            if let wanted = desired.content, let current = observed.content, wanted != current {
                content = .between(current, wanted, path: path, sensitive: desired.sensitive)
            }
            guard !attributes.isEmpty || content != nil else { return nil }
            return Change(.update, attributes: attributes, content: content)
        case let status:
            var ownership = observed.ownership
            ownership.mode = ownership.mode ?? 0o644
            let content = ContentChange.between(nil, desired.content ?? [], path: path, sensitive: desired.sensitive)
            guard let status else {
                return Change(.create, attributes: ownership.changes(from: nil, host: observed.names), content: content)
            }
            let replaced = status.type == .symlink ? "replaces a symbolic link to \(observed.linkTarget ?? "?")" : "replaces \(status.type.article) and everything in it"
            return Change(.replace, attributes: ownership.changes(from: nil, host: observed.names), content: content, notes: [replaced])
        }
    }

    public func apply(_ change: Change, desired: Desired, host: HostWriter) throws(HostError) {
        let path = desired.attributes.path
        let current = try host.reader.status(path)
        let (owner, group) = try desired.attributes.resolveAccounts(host.reader)
        switch change.action {
        case .delete:
            try host.remove(path)
        case .create, .replace:
            if current?.type == .directory { try host.remove(path) }
            try host.makeParentDirectories(of: path)
            try host.writeFile(path, contents: desired.content ?? [], mode: desired.attributes.mode ?? 0o644,
                               owner: owner ?? ProcessIdentity.user, group: group ?? ProcessIdentity.group)
        case .update, .restart, .reload:
            guard let current, current.type == .regular else {
                throw HostError(path: path, message: "is no longer a regular file")
            }
            if change.content != nil, let content = desired.content {
                try host.writeFile(path, contents: content, mode: desired.attributes.mode ?? current.permissions,
                                   owner: owner ?? current.owner, group: group ?? current.group)
            } else {
                try host.setAttributes(path, type: .regular, mode: desired.attributes.mode, owner: owner, group: group)
            }
        }
    }
}
