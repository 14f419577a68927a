internal import TendCore
internal import TendSpec
internal import Glibc

/// `present` or `absent`.
public enum Presence: String, Sendable, Hashable {
    case present, absent
}

/// An owner or group given by name or by number.
public enum AccountReference: Sendable, Hashable, CustomStringConvertible {
    case name(String)
    case id(UInt32)

    public var description: String {
        switch self {
        case .name(let name): name
        case .id(let id): String(id)
        }
    }
}

/// The attributes that every path resource (file, directory, symlink) reads the same way.
struct PathAttributes {
    var path: String
    var state: Presence = .present
    var mode: UInt32?
    var owner: AccountReference?
    var group: AccountReference?
    /// Replace something of another type (a link where a file should be, a folder) or remove a
    /// folder with its contents. Without it, such a path is reported and left alone.
    var force = false

    /// Reads the name, `state`, `force` and, when `ownership` is true, `mode`, `owner` and `group`.
    init?(_ declaration: inout ResourceDeclaration, ownership: Bool, context: inout DecodeContext) {
        if let problem = HostPath.problem(in: declaration.name) {
            context.diagnostics.error(problem, at: declaration.nameLocation)
            return nil
        }
        if declaration.name == "/" {
            context.diagnostics.error("the root folder '/' cannot be managed as a \(declaration.kind)", at: declaration.nameLocation)
            return nil
        }
        path = declaration.name
        if let node = declaration.attributes.take("state"), let text = node.string("'state'", &context.diagnostics) {
            if let value = Presence(rawValue: text) {
                state = value
            } else {
                context.diagnostics.error("'state' must be present or absent, found '\(text)'", at: node.location)
            }
        }
        if let node = declaration.attributes.take("force"), let value = node.bool("'force'", &context.diagnostics) {
            force = value
        }
        guard ownership else { return }
        if let node = declaration.attributes.take("mode"), let text = node.string("'mode'", &context.diagnostics) {
            if let value = FileMode.parse(text) {
                mode = value
            } else {
                context.diagnostics.error("'mode' must be three or four octal digits such as \"0644\", found '\(text)'", at: node.location)
            }
        }
        owner = Self.account(declaration.attributes.take("owner"), "owner", &context)
        group = Self.account(declaration.attributes.take("group"), "group", &context)
    }

    private static func account(_ node: YAMLNode?, _ key: String, _ context: inout DecodeContext) -> AccountReference? {
        guard let node, let text = node.string("'\(key)'", &context.diagnostics) else { return nil }
        if let id = UInt32(text) {
            // (uid_t)-1 means "leave unchanged" to chown: it can never be an owner.
            guard id != UInt32.max else {
                context.diagnostics.error("'\(key)' \(id) is not a valid id: \(UInt32.max) means 'no change' to the kernel", at: node.location)
                return nil
            }
            return .id(id)
        }
        // A leading '-' is an option to the tools and a negative number to the eye (`-1`), a
        // leading '+' NSS's compat syntax: no account is named so by useradd.
        let valid = !text.isEmpty && text.utf8.count <= 32 && !text.contains(where: { $0 == ":" || $0 == "/" || $0.isWhitespace })
            && !Printable.hasControlCharacters(text) && !text.allSatisfy(\.isNumber) && !text.hasPrefix("-") && !text.hasPrefix("+")
        guard valid else {
            context.diagnostics.error("'\(key)' must be a \(key == "owner" ? "user" : "group") name or a number below \(UInt32.max), found \(Printable.quoted(text))", at: node.location)
            return nil
        }
        return .name(text)
    }

    /// `user:NAME` and `group:NAME` for owners given by name: declared accounts come first.
    var implicitDependencies: [ResourceID] {
        var ids: [ResourceID] = []
        if case .name(let name)? = owner { ids.append(ResourceID(kind: "user", name: name)) }
        if case .name(let name)? = group { ids += [ResourceID(kind: "group", name: name), ResourceID(kind: "user", name: name)] }
        return ids
    }

    func digest(into digest: inout Digest) {
        digest.add("path", path)
        digest.add("state", state.rawValue)
        digest.add("mode", mode.map(FileMode.format))
        digest.add("owner", owner?.description)
        digest.add("group", group?.description)
        digest.add("force", force ? "true" : "false")
    }

    /// The uid and gid the desired owner and group name on this host.
    func resolveAccounts(_ host: HostReader) throws(HostError) -> (owner: UInt32?, group: UInt32?) {
        (try Self.resolve(owner, host, user: true, path: path), try Self.resolve(group, host, user: false, path: path))
    }

    /// The desired ownership for a plan: a name that is not on the host yet is pending when an
    /// earlier step makes it: the catalog's `user:` or `group:` of that name, or a package the
    /// resource comes after (`requires: [package:systemd]` for the group systemd-journal, which
    /// systemd's installation adds). It is resolved when the step runs.
    func desiredOwnership(_ host: HostReader) throws(HostError) -> Ownership {
        var ownership = Ownership(mode: mode)
        // Only a package not installed yet can still make a name: one installed already would
        // have, and a typo must fail here, at the plan.
        func package() -> ResourceID? {
            host.stepDependencies.first { dependency in
                guard dependency.kind == "package", host.declares(dependency) else { return false }
                let installed = try? PackageProvider.dpkgStatus(host)
                return installed?[dependency.name]?.isInstalled != true
            }
        }
        if case .name(let name)? = owner, try host.userID(named: name) == nil {
            let user = ResourceID(kind: "user", name: name)
            if let maker = host.declares(user) ? user : package() {
                ownership.pendingOwner = name
                ownership.ownerMadeBy = maker.description
            }
        }
        if ownership.pendingOwner == nil { ownership.owner = try Self.resolve(owner, host, user: true, path: path) }
        // A group is also made by useradd, for a user of its name declared without `group:`.
        if case .name(let name)? = group, try host.groupID(named: name) == nil {
            let declared = [ResourceID(kind: "group", name: name), ResourceID(kind: "user", name: name)].first { host.declares($0) }
            if let maker = declared ?? package() {
                ownership.pendingGroup = name
                ownership.groupMadeBy = maker.description
            }
        }
        if ownership.pendingGroup == nil { ownership.group = try Self.resolve(group, host, user: false, path: path) }
        return ownership
    }

    private static func resolve(_ reference: AccountReference?, _ host: HostReader, user: Bool, path: String) throws(HostError) -> UInt32? {
        switch reference {
        case nil: return nil
        case .id(let id)?: return id
        case .name(let name)?:
            let id = user ? try host.userID(named: name) : try host.groupID(named: name)
            guard let id else {
                throw HostError(path: path, message: "\(user ? "user" : "group") '\(name)' does not exist on the host, and no user:, group: or required package of the configuration makes it")
            }
            return id
        }
    }
}

/// Owner, group and mode as observed, and as desired after resolving names.
struct Ownership: Sendable, Hashable {
    var owner: UInt32?
    var group: UInt32?
    /// An owner or group an earlier step of the apply creates (`user:app`): no id yet.
    var pendingOwner: String?
    var pendingGroup: String?
    /// The step that makes the pending owner or group (`user:app`, `package:systemd-sysv`).
    var ownerMadeBy: String?
    var groupMadeBy: String?
    var mode: UInt32?

    /// The attribute changes from `status` (nil: nothing there yet) to this desired ownership.
    func changes(from status: FileStatus?, host names: AccountNames) -> [AttributeChange] {
        var changes: [AttributeChange] = []
        if let mode, mode != status?.permissions {
            changes.append(AttributeChange("mode", before: status.map { FileMode.format($0.permissions) }, after: FileMode.format(mode)))
        }
        if let owner, owner != status?.owner {
            changes.append(AttributeChange("owner", before: status.map { names.user($0.owner) }, after: names.user(owner)))
        } else if let name = pendingOwner {
            changes.append(AttributeChange("owner", before: status.map { names.user($0.owner) }, after: name, afterNote: "created by \(ownerMadeBy ?? "user:" + name)"))
        }
        if let group, group != status?.group {
            changes.append(AttributeChange("group", before: status.map { names.group($0.group) }, after: names.group(group)))
        } else if let name = pendingGroup {
            changes.append(AttributeChange("group", before: status.map { names.group($0.group) }, after: name, afterNote: "created by \(groupMadeBy ?? "group:" + name)"))
        }
        return changes
    }
}

/// uid and gid names as observed, so planning can show names without touching the host.
struct AccountNames: Sendable, Hashable {
    var users: [UInt32: String] = [:]
    var groups: [UInt32: String] = [:]

    init() {}

    /// The names a plan from `status` to `ownership` will show: only of ids that differ.
    init(host: HostReader, status: FileStatus?, ownership: Ownership) {
        if let owner = ownership.owner, owner != status?.owner {
            users[owner] = host.userName(owner)
            if let current = status?.owner { users[current] = host.userName(current) }
        }
        if let group = ownership.group, group != status?.group {
            groups[group] = host.groupName(group)
            if let current = status?.group { groups[current] = host.groupName(current) }
        }
    }

    func user(_ id: UInt32) -> String { users[id].map { "\($0) (\(id))" } ?? String(id) }
    func group(_ id: UInt32) -> String { groups[id].map { "\($0) (\(id))" } ?? String(id) }
}

/// The effective uid and gid of this process, the owner of what it creates by default. tend never
/// changes them, so they are asked once, not once per file created.
enum ProcessIdentity {
    static let user: UInt32 = geteuid()
    static let group: UInt32 = getegid()
}
