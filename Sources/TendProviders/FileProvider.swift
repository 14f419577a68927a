public import TendCore
public import TendSpec
import Synchronization

/// `file`: a regular file's content, mode, owner and group, or its absence.
///
/// Content comes from `content` (text in the manifest), `source` (a file of the repository,
/// relative to the manifest) or `template` (a Mustache template there, rendered with the vars). Without either, only the file's existence and attributes are managed.
public struct FileProvider: ResourceProvider {
    public init() {}

    public var kind: String { "file" }

    public var observesInParallel: Bool { true }
    public var stagesWrites: Bool { true }

    public struct Desired: DesiredState {
        var attributes: PathAttributes
        /// The bytes the file must hold, or nil to leave content alone.
        var content: [UInt8]?
        var sensitive: Bool
        /// Show the content of a file that others may not read (`show_diff: true`).
        var showDiff: Bool
        /// `validate:`: a command (its `%s` the new content's temporary file) that must accept
        /// the new content before it replaces the old.
        var validate: [String]?
        /// How long `validate` may run.
        var validateTimeout = Validation.limit
        /// The content is, or shows, a secret: always sensitive, never in the stat cache, and
        /// its digest is keyed with the host's key (`SecretDigest`), not a plain hash of it.
        var secretDigest: String?
        /// Why the secret could not be opened here: observing fails with it.
        var unopened: String?
        /// `StatCache.digest(of: content)`, worked out once per catalog, when a stat cache asks.
        let contentDigest = ContentDigest()

        public var id: ResourceID { ResourceID(kind: "file", name: attributes.path) }
        public var path: String? { attributes.path }
        public var implicitDependencies: [ResourceID] { attributes.implicitDependencies }
        public var isRemoval: Bool { attributes.state == .absent }
        public var isSensitive: Bool { sensitive || secretDigest != nil }
        public var holdsSecret: Bool { secretDigest != nil }
        public var lacksSecret: Bool { unopened != nil }

        public func digest(into digest: inout Digest) {
            attributes.digest(into: &digest)
            if let secretDigest {
                digest.add("secret", secretDigest)
            } else {
                digest.add("content", content ?? Array("\u{0}unmanaged".utf8))
            }
            digest.add("sensitive", sensitive ? "true" : "false")
            digest.add("show_diff", showDiff ? "true" : "false")
            if let validate { digest.add("validate", validate.joined(separator: "\u{0}") + "\u{0}" + DurationText.format(validateTimeout)) }
        }

        /// The mode a new file gets: the declared one; else 0600 for a sensitive file, 0644 otherwise.
        var modeWhenCreated: UInt32 { attributes.mode ?? (isSensitive ? 0o600 : 0o644) }

        /// Whether content diffs must be hidden: the file is `sensitive`, or (unless `show_diff`)
        /// its current or its new mode lets others not read it, as /etc/shadow's does.
        func hidesContent(current: FileStatus?) -> Bool {
            if isSensitive { return true }
            if showDiff { return false }
            let othersMayNotRead = { (mode: UInt32) in mode & 0o004 == 0 }
            if let current, current.type == .regular, othersMayNotRead(current.permissions) { return true }
            return othersMayNotRead(attributes.mode ?? current.map(\.permissions) ?? modeWhenCreated)
        }
    }

    public struct Observed: ObservedState {
        var status: FileStatus?
        var content: [UInt8]?
        /// The content is not `wanted`, and only its digest is known (a snapshot of content
        /// that may not be shown).
        var differsUnseen = false
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
        let secret = contentNode?.secret == true
        if contentNode != nil, content == nil { return nil }
        if attributes.state == .absent, let node = contentNode {
            context.diagnostics.error("an absent file has no content; remove '\(node.key)' or the 'state: absent'", at: node.location)
        }
        let sensitive = declaration.attributes.take("sensitive")?.bool("'sensitive'", &context.diagnostics) ?? false
        let showDiffNode = declaration.attributes.take("show_diff")
        let showDiff = showDiffNode?.bool("'show_diff'", &context.diagnostics) ?? false
        if sensitive || secret, showDiff, let node = showDiffNode {
            context.diagnostics.error("a \(secret ? "secret" : "sensitive") file never shows its content; remove 'show_diff'\(secret ? "" : " or 'sensitive'")", at: node.location)
        }
        var desired = Desired(attributes: attributes, content: content, sensitive: sensitive, showDiff: showDiff)
        if secret {
            desired.unopened = contentNode?.unopened
            desired.secretDigest = desired.unopened.map { "unopened \($0)" }
                ?? SecretDigest.of(content ?? [], key: context.variables.secrets?.digestKey ?? [])
        }
        if let node = declaration.attributes.take("validate") {
            desired.validate = Validation.decode(node, what: "a file", hasContent: content != nil, context: &context)
        }
        if let node = declaration.attributes.take("validate_timeout"), let limit = node.duration("'validate_timeout'", &context.diagnostics) {
            if desired.validate == nil { context.diagnostics.error("'validate_timeout' is how long 'validate' may run, and this file has none", at: node.location) }
            desired.validateTimeout = limit
        }
        return desired
    }

    /// What a plan says of a secret's content that changes.
    static let secretNote = "secret changed: opened on this host, never shown nor kept"

    /// The digest of a desired content, kept with the catalog entry: the agent's catalog lives as
    /// long as its commit, so each content is hashed once, not on every check.
    final class ContentDigest: Sendable {
        private let value = Mutex<String?>(nil)

        func of(_ content: [UInt8]) -> String {
            if let known = value.withLock({ $0 }) { return known }
            let digest = StatCache.digest(of: content)
            value.withLock { $0 = digest }
            return digest
        }
    }

    /// The file's content, or nil when the stat cache vouches that it is `wanted` (its status is
    /// the one recorded when it was last read and found so). What is read and found to be
    /// `wanted` is recorded, unless racy.
    private func content(of path: String, status: FileStatus, wanted: [UInt8], desired: Desired, host: HostReader) throws(HostError) -> [UInt8]? {
        guard host.recordedDigest(path) == nil else { return nil }
        // The stat cache is saved to disk with a plain digest of what it vouches for: a secret's is not put there.
        guard let cache = host.statCache, desired.secretDigest == nil else { return try host.read(path) }
        let digest = desired.contentDigest.of(wanted)
        if cache.trustedDigest(path, status: status) == digest { return nil }
        let readAt = StatCache.now()
        let content = try host.read(path)
        if content == wanted {
            cache.record(path, status: status, digest: digest, readAt: readAt)
        } else {
            cache.forget(path)
        }
        return content
    }

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        let path = desired.attributes.path
        // A secret this host cannot open fails its resource alone; nothing is written.
        if let unopened = desired.unopened { throw HostError(path: path, message: unopened) }
        let status = try host.status(path)
        var observed = Observed(status: status, ownership: Ownership(), names: AccountNames())
        switch status?.type {
        case .regular?:
            if let wanted = desired.content, desired.attributes.state == .present, let status {
                observed.content = try content(of: path, status: status, wanted: wanted, desired: desired, host: host)
                if let recorded = host.recordedDigest(path) { observed.differsUnseen = recorded != desired.contentDigest.of(wanted) }
            }
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
        observed.ownership = try desired.attributes.desiredOwnership(host)
        observed.names = AccountNames(host: host, status: status, ownership: observed.ownership)
        return observed
    }

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        let path = desired.attributes.path
        let hidden = desired.hidesContent(current: observed.status)
        guard desired.attributes.state == .present else {
            guard let status = observed.status else { return nil }
            let notes = status.type == .regular ? [] : ["removes \(status.type.article)"]
            let content: ContentChange? = status.type == .regular && !hidden ? .binary(before: status.size, after: nil) : nil
            return Change(.delete, content: content, notes: notes, found: status.type)
        }
        switch observed.status {
        case let status? where status.type == .regular:
            let attributes = observed.ownership.changes(from: status, host: observed.names)
            var content: ContentChange?
            if let wanted = desired.content, let current = observed.content, wanted != current {
                content = .between(current, wanted, path: path, sensitive: hidden)
            } else if observed.differsUnseen {
                content = .sensitive
            }
            guard !attributes.isEmpty || content != nil else { return nil }
            var notes: [String] = []
            if content == nil, status.linkCount > 1 {
                notes.append(desired.attributes.force
                    ? "changes all \(status.linkCount) hard links to this file (force: true)"
                    : "is one of \(status.linkCount) hard links to one file: replaced by a copy, so the other names keep their owner and mode")
            }
            if content != nil, let validate = desired.validate { notes.append(Validation.note(validate)) }
            if content != nil, desired.holdsSecret { notes.append(Self.secretNote) }
            return Change(.update, attributes: attributes, content: content, notes: notes, found: .regular)
        case let status:
            var ownership = observed.ownership
            ownership.mode = desired.modeWhenCreated
            let content = ContentChange.between(nil, desired.content ?? [], path: path, sensitive: hidden)
            guard let status else {
                return Change(.create, attributes: ownership.changes(from: nil, host: observed.names), content: content,
                              notes: (desired.validate.map { [Validation.note($0)] } ?? []) + (desired.holdsSecret ? [Self.secretNote] : []))
            }
            let replaced = status.type == .symlink ? "replaces a symbolic link to \(observed.linkTarget ?? "?")" : "replaces \(status.type.article) and everything in it"
            return Change(.replace, attributes: ownership.changes(from: nil, host: observed.names), content: content, notes: [replaced], found: status.type)
        }
    }

    /// Carries out `change`, checking at each write that the host still holds what the plan found
    /// (`Change.found`): a path that appeared since is never replaced, a folder is removed with
    /// its contents only when the plan said so.
    public func apply(_ change: Change, desired: Desired, host: HostWriter) async throws(HostError) {
        let path = desired.attributes.path
        let (owner, group) = try desired.attributes.resolveAccounts(host.reader)
        switch change.action {
        case .delete:
            let found = change.found ?? .regular
            try host.remove(path, expected: found, recursive: found == .directory && desired.attributes.force)
        case .create, .replace:
            var replacing = change.action == .replace ? change.found : nil
            if replacing == .directory {
                try host.remove(path, expected: .directory, recursive: true)
                replacing = nil
            }
            try host.makeParentDirectories(of: path)
            try await write(desired, contents: desired.content ?? [], mode: desired.modeWhenCreated,
                            owner: owner ?? ProcessIdentity.user, group: group ?? ProcessIdentity.group, replacing: replacing, host: host)
        case .update, .restart, .reload, .reloadOrRestart, .run:
            guard let current = try host.reader.status(path), current.type == .regular else {
                throw HostError(path: path, message: "is no longer a regular file; it was left as it is")
            }
            let content: [UInt8]?
            if change.content != nil, let wanted = desired.content {
                content = wanted
            } else if current.linkCount > 1, !desired.attributes.force {
                // A hard link shares its inode with names outside tend's reach (perhaps outside the
                // root): change this name only, by replacing it with a copy.
                content = try host.reader.read(path)
            } else {
                content = nil
            }
            if let content {
                try await write(desired, contents: content, mode: desired.attributes.mode ?? current.permissions,
                                owner: owner ?? current.owner, group: group ?? current.group, replacing: .regular, host: host)
            } else {
                try host.setAttributes(path, type: .regular, mode: desired.attributes.mode, owner: owner, group: group,
                                       throughHardLinks: desired.attributes.force)
            }
        }
    }

    /// Writes the file, checked by its `validate:` command first when it has one.
    private func write(_ desired: Desired, contents: [UInt8], mode: UInt32, owner: UInt32, group: UInt32,
                       replacing: FileStatus.FileType?, host: HostWriter) async throws(HostError) {
        let path = desired.attributes.path
        guard let validate = desired.validate else {
            try host.writeFile(path, contents: contents, mode: mode, owner: owner, group: group, replacing: replacing)
            return
        }
        let hidden = desired.hidesContent(current: try host.reader.status(path))
        try await host.writeFile(path, contents: contents, mode: mode, owner: owner, group: group, replacing: replacing) { temporary throws(HostError) in
            try await Validation.run(validate, on: temporary, for: path, root: host.reader.root, hidesOutput: hidden, limit: desired.validateTimeout)
        }
    }
}
