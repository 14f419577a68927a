public import TendCore
public import TendSpec

/// `group`: a group of the root's /etc/group, with its gid and, when given, its exact members.
/// Changed with groupadd, groupmod and groupdel (`--prefix` under another root).
public struct GroupProvider: ResourceProvider {
    public init() {}

    public var kind: String { "group" }
    public var appliesInBatches: Bool { true }

    public struct Desired: DesiredState {
        var name: String
        var gid: UInt32?
        var system = false
        /// The exact member list; nil leaves the members as they are.
        var members: [String]?
        var state: Presence = .present
        var location: SourceLocation

        public var id: ResourceID { ResourceID(kind: "group", name: name) }
        public var isRemoval: Bool { state == .absent }
        /// Removed after the user of its name, whose userdel may take it along (USERGROUPS_ENAB).
        public var implicitDependencies: [ResourceID] { state == .absent ? [ResourceID(kind: "user", name: name)] : [] }

        public func digest(into digest: inout Digest) {
            digest.add("name", name)
            digest.add("gid", gid.map(String.init))
            digest.add("system", system ? "true" : "false")
            digest.add("members", members?.joined(separator: ","))
            digest.add("state", state.rawValue)
        }
    }

    public struct Observed: ObservedState {
        var group: AccountDatabase.Group?
        /// Members that are not users yet but whose `user:` the configuration declares: that
        /// step comes later (a user comes after its groups) and joins with its own `groups:`.
        var pendingMembers: [String] = []

        public func fingerprint(into digest: inout Digest) {
            digest.add("group", group.map { "\($0.gid) \($0.members.joined(separator: ","))" })
        }
    }

    // MARK: Decoding

    public func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired? {
        var declaration = declaration
        defer { declaration.attributes.finish(&context.diagnostics, context: "a group") }
        if let problem = AccountDatabase.problem(inName: declaration.name) {
            context.diagnostics.error("group name \(Printable.quoted(declaration.name)) \(problem)", at: declaration.nameLocation)
            return nil
        }
        var desired = Desired(name: declaration.name, location: declaration.nameLocation)
        if let node = declaration.attributes.take("gid") {
            desired.gid = Self.id(node, "'gid'", &context.diagnostics)
        }
        if let node = declaration.attributes.take("system") { desired.system = node.bool("'system'", &context.diagnostics) ?? false }
        if let node = declaration.attributes.take("members"), let list = node.stringList("'members'", &context.diagnostics) {
            for member in list where AccountDatabase.problem(inName: member.value) != nil {
                context.diagnostics.error("member \(Printable.quoted(member.value)) is not a user name useradd takes", at: member.location)
            }
            desired.members = Array(Set(list.map(\.value))).sorted()
        }
        if let node = declaration.attributes.take("state"), let text = node.string("'state'", &context.diagnostics) {
            if let state = Presence(rawValue: text) { desired.state = state } else {
                context.diagnostics.error("'state' must be present or absent, found '\(text)'", at: node.location)
            }
        }
        return desired
    }

    /// A uid or gid: a whole number below 4294967295 (which means "none").
    static func id(_ node: YAMLNode, _ what: String, _ diagnostics: inout Diagnostics) -> UInt32? {
        guard let value = node.integer(what, &diagnostics) else { return nil }
        guard value >= 0, value < 4_294_967_295 else {
            diagnostics.error("\(what) must be a number from 0 to 4294967294", at: node.location)
            return nil
        }
        return UInt32(value)
    }

    // MARK: Observing

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        let database = try AccountDatabase.of(host)
        if desired.state == .present, let gid = desired.gid, let other = database.group(withGID: gid), other.name != desired.name {
            throw HostError(path: desired.name, message: "gid \(gid) already belongs to the group \(Printable.quoted(other.name))")
        }
        let pending = (desired.members ?? []).filter { database.users[$0] == nil && host.declares(ResourceID(kind: "user", name: $0)) }
        return Observed(group: database.groups[desired.name], pendingMembers: pending)
    }

    // MARK: Planning

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        guard desired.state == .present else {
            guard let group = observed.group else { return nil }
            return Change(.delete, attributes: [AttributeChange("gid", before: String(group.gid), after: nil, afterNote: "absent")])
        }
        var attributes: [AttributeChange] = []
        let current = observed.group
        if let gid = desired.gid, gid != current?.gid {
            attributes.append(AttributeChange("gid", before: current.map { String($0.gid) }, after: String(gid), beforeNote: current == nil ? "absent" : nil))
        } else if current == nil {
            attributes.append(AttributeChange("gid", before: String?.none, after: String?.none, beforeNote: "absent", afterNote: desired.system ? "next free system gid" : "next free gid"))
        }
        if let members = desired.members, members.filter({ !observed.pendingMembers.contains($0) }) != (current?.members.sorted() ?? []) {
            let note = observed.pendingMembers.isEmpty ? nil : observed.pendingMembers.joined(separator: ", ") + " join with their user: steps"
            attributes.append(AttributeChange("members", before: current.map { $0.members.sorted().joined(separator: ",") }, after: members.joined(separator: ","),
                                              afterNote: note))
        }
        guard !attributes.isEmpty else { return nil }
        return Change(current == nil ? .create : .update, attributes: attributes)
    }

    // MARK: Applying

    /// The members that are users now; the others are declared users whose steps come later.
    static func existingMembers(_ desired: Desired, host: HostWriter) throws(HostError) -> [String] {
        let database = try AccountDatabase.of(host.reader)
        return (desired.members ?? []).filter { database.users[$0] != nil || !host.reader.declares(ResourceID(kind: "user", name: $0)) }
    }

    public func apply(_ change: Change, desired: Desired, host: HostWriter) throws(HostError) {
        throw HostError(path: desired.name, message: "groups are applied in batches")
    }

    /// Each group in turn (the tools lock the files themselves), then the database is read again
    /// for later steps and for the check of each.
    public func apply(batch: [(change: Change, desired: Desired)], host: HostWriter) async -> [StepFailure?] {
        var failures: [StepFailure?] = []
        for (change, desired) in batch {
            do throws(HostError) {
                switch change.action {
                case .delete:
                    // userdel of the user of the same name may have removed it already.
                    try AccountDatabase.refresh(host.reader)
                    if try AccountDatabase.of(host.reader).groups[desired.name] != nil {
                        try await ShadowTools.run("groupdel", ["--", desired.name], for: desired.name, host: host)
                    }
                case .create:
                    var arguments: [String] = []
                    if let gid = desired.gid { arguments += ["--gid", String(gid)] }
                    if desired.system { arguments.append("--system") }
                    try await ShadowTools.run("groupadd", arguments + ["--", desired.name], for: desired.name, host: host)
                    let existing = try Self.existingMembers(desired, host: host)
                    if !existing.isEmpty {
                        try await ShadowTools.run("groupmod", ["--users", existing.joined(separator: ","), "--", desired.name], for: desired.name, host: host)
                    }
                default:
                    if change.changes("gid"), let gid = desired.gid {
                        try await ShadowTools.run("groupmod", ["--gid", String(gid), "--", desired.name], for: desired.name, host: host)
                    }
                    if change.changes("members") {
                        let existing = try Self.existingMembers(desired, host: host)
                        try await ShadowTools.run("groupmod", ["--users", existing.joined(separator: ","), "--", desired.name], for: desired.name, host: host)
                    }
                }
                failures.append(nil)
            } catch {
                failures.append(StepFailure(error))
            }
            try? AccountDatabase.refresh(host.reader)
        }
        return failures
    }
}
