public import TendCore
public import TendSpec

/// `user`: an account of the root's /etc/passwd and /etc/shadow: uid, primary and supplementary
/// groups, home, shell, comment, password hash, lock and expiry, and the keys of its
/// `~/.ssh/authorized_keys`. Changed with useradd, usermod and userdel (`--prefix` under another
/// root); the keys file with the file provider's atomic rules, never through a link.
public struct UserProvider: ResourceProvider {
    public init() {}

    public var kind: String { "user" }
    public var appliesInBatches: Bool { true }
    /// useradd makes the home folder (and a group of the user's name).
    public var changesOtherResources: Bool { true }

    public struct Desired: DesiredState {
        var name: String
        var uid: UInt32?
        var group: AccountReference?
        /// The exact supplementary groups; nil leaves them as they are.
        var groups: [String]?
        var home: String?
        var createHome: Bool?
        var shell: String?
        var comment: String?
        var system = false
        /// A crypt(3) hash, never shown.
        var password: String?
        var locked: Bool?
        /// The last day the account may log in, as YYYY-MM-DD; "" for never.
        var expires: String?
        var authorizedKeys: String?
        var state: Presence = .present
        var removeHome = false

        public var id: ResourceID { ResourceID(kind: "user", name: name) }
        public var isRemoval: Bool { state == .absent }

        /// After its primary and supplementary groups, when they are declared: without `group:`,
        /// the group of its own name, which it then joins instead of making.
        public var implicitDependencies: [ResourceID] {
            guard state == .present else { return [] }
            var ids: [ResourceID] = []
            switch group {
            case .name(let group)?: ids.append(ResourceID(kind: "group", name: group))
            case nil: ids.append(ResourceID(kind: "group", name: name))
            case .id?: break
            }
            ids += (groups ?? []).map { ResourceID(kind: "group", name: $0) }
            return ids
        }

        public func digest(into digest: inout Digest) {
            digest.add("name", name)
            digest.add("uid", uid.map(String.init))
            digest.add("group", group?.description)
            digest.add("groups", groups?.joined(separator: ","))
            digest.add("home", home)
            digest.add("create_home", createHome.map { "\($0)" })
            digest.add("shell", shell)
            digest.add("comment", comment)
            digest.add("system", system ? "true" : "false")
            digest.add("password", password)
            digest.add("locked", locked.map { "\($0)" })
            digest.add("expires", expires)
            digest.add("authorized_keys", authorizedKeys)
            digest.add("state", state.rawValue)
            digest.add("remove_home", removeHome ? "true" : "false")
        }
    }

    public struct Observed: ObservedState {
        var user: AccountDatabase.User?
        var shadow: AccountDatabase.Shadow?
        var groups: [String]
        /// The primary group's name, when it has one.
        var groupName: String?
        /// The desired primary group's gid, nil when it does not exist yet (declared, to be created).
        var desiredGID: UInt32?
        var authorizedKeys: [UInt8]?
        /// The `.ssh` folder and the keys file as they are, to repair their mode and owner.
        var sshFolder: FileStatus?
        var keysFile: FileStatus?
        /// Read from a snapshot: the shadow's hashes are digests (`HostSnapshot.redacted`).
        var shadowRedacted = false
        /// Read from a snapshot that holds only a digest of the keys, which is not the wanted one.
        var keysDifferUnseen = false

        public func fingerprint(into digest: inout Digest) {
            sshFolder?.fingerprint(into: &digest)
            keysFile?.fingerprint(into: &digest)
            digest.add("user", user.map { "\($0.uid) \($0.gid) \($0.comment) \($0.home) \($0.shell)" })
            digest.add("shadow", shadow.map { "\($0.password) \($0.expires.map(String.init) ?? "")" })
            digest.add("groups", groups.joined(separator: ","))
            digest.add("keys", authorizedKeys ?? [])
        }
    }

    // MARK: Decoding

    public func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired? {
        var declaration = declaration
        defer { declaration.attributes.finish(&context.diagnostics, context: "a user") }
        if let problem = AccountDatabase.problem(inName: declaration.name) {
            context.diagnostics.error("user name \(Printable.quoted(declaration.name)) \(problem)", at: declaration.nameLocation)
            return nil
        }
        var desired = Desired(name: declaration.name)
        let attributes = { (key: String) -> YAMLNode? in declaration.attributes.take(key) }
        if let node = attributes("uid") { desired.uid = GroupProvider.id(node, "'uid'", &context.diagnostics) }
        if let node = attributes("group") {
            if let gid = node.scalar.flatMap({ UInt32($0.text) }) {
                desired.group = .id(gid)
            } else if let name = node.string("'group'", &context.diagnostics) {
                if let problem = AccountDatabase.problem(inName: name) {
                    context.diagnostics.error("'group' \(Printable.quoted(name)) \(problem)", at: node.location)
                } else {
                    desired.group = .name(name)
                }
            }
        }
        if let node = attributes("groups"), let list = node.stringList("'groups'", &context.diagnostics) {
            for group in list where AccountDatabase.problem(inName: group.value) != nil {
                context.diagnostics.error("group \(Printable.quoted(group.value)) is not a group name groupadd takes", at: group.location)
            }
            desired.groups = Array(Set(list.map(\.value))).sorted()
        }
        if let node = attributes("home"), let home = node.string("'home'", &context.diagnostics) {
            if let problem = HostPath.problem(in: home) {
                context.diagnostics.error("'home' \(problem)", at: node.location)
            } else {
                desired.home = home
            }
        }
        if let node = attributes("create_home") { desired.createHome = node.bool("'create_home'", &context.diagnostics) }
        for (key, what) in [("shell", "'shell'"), ("comment", "'comment'")] {
            guard let node = attributes(key), let text = node.string(what, &context.diagnostics) else { continue }
            if text.contains(":") || Printable.hasControlCharacters(text) {
                context.diagnostics.error("\(what) may not hold ':' or a control character", at: node.location)
            } else if key == "shell" {
                desired.shell = text
            } else {
                desired.comment = text
            }
        }
        if let node = attributes("system") { desired.system = node.bool("'system'", &context.diagnostics) ?? false }
        if let node = attributes("password"), let hash = node.string("'password'", &context.diagnostics) {
            // A hash, never a clear-text password: `$id$…` of crypt(3). No password at all is
            // `locked: true`, not a `!` here.
            if hash.hasPrefix("$") {
                if hash.contains(":") || Printable.hasControlCharacters(hash) {
                    context.diagnostics.error("'password' may not hold ':' or a control character", at: node.location)
                } else {
                    desired.password = hash
                }
            } else {
                context.diagnostics.error("'password' must be a crypt(3) hash such as $y$… or $6$… (mkpasswd makes one), not a clear-text password; for none, set locked: true", at: node.location)
            }
        }
        if let node = attributes("locked") { desired.locked = node.bool("'locked'", &context.diagnostics) }
        if let node = attributes("expires"), let text = node.string("'expires'", &context.diagnostics) {
            if text == "never" {
                desired.expires = ""
            } else if let days = Self.days(since1970: text), Self.date(fromDays: days) == text {
                desired.expires = text
            } else {
                context.diagnostics.error("'expires' must be a real date as YYYY-MM-DD (the day the account is disabled), or never", at: node.location)
            }
        }
        if let node = attributes("authorized_keys") {
            if let list = node.sequence {
                var lines: [String] = []
                for item in list {
                    if let line = item.string("an authorized key", &context.diagnostics) { lines.append(line) }
                }
                desired.authorizedKeys = lines.map { $0 + "\n" }.joined()
            } else if let text = node.string("'authorized_keys'", &context.diagnostics) {
                desired.authorizedKeys = text.isEmpty || text.hasSuffix("\n") ? text : text + "\n"
            }
        }
        if let node = attributes("state"), let text = node.string("'state'", &context.diagnostics) {
            if let state = Presence(rawValue: text) { desired.state = state } else {
                context.diagnostics.error("'state' must be present or absent, found '\(text)'", at: node.location)
            }
        }
        if let node = attributes("remove_home") { desired.removeHome = node.bool("'remove_home'", &context.diagnostics) ?? false }
        return desired
    }

    /// Days since 1970-01-01 of a YYYY-MM-DD date, as /etc/shadow counts them.
    static func days(since1970 text: String) -> Int? {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day) else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    // MARK: Observing

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        let database = try AccountDatabase.of(host)
        let user = database.users[desired.name]
        if desired.state == .present, let uid = desired.uid, let other = database.user(withUID: uid), other.name != desired.name {
            throw HostError(path: desired.name, message: "uid \(uid) already belongs to the user \(Printable.quoted(other.name))")
        }
        var desiredGID: UInt32?
        switch desired.group {
        case .id(let gid)?: desiredGID = gid
        case .name(let name)?:
            desiredGID = database.groups[name]?.gid
            if desiredGID == nil, desired.state == .present, name != desired.name {
                // useradd makes a group of the user's own name; any other must exist or be
                // declared (then it comes first, by the implicit edge).
                if !host.declares(ResourceID(kind: "group", name: name)) {
                    throw HostError(path: desired.name, message: "primary group \(Printable.quoted(name)) is neither on the host nor declared")
                }
            }
        case nil: break
        }
        for group in desired.groups ?? [] where database.groups[group] == nil && !host.declares(ResourceID(kind: "group", name: group)) {
            throw HostError(path: desired.name, message: "group \(Printable.quoted(group)) is neither on the host nor declared")
        }
        if desired.state == .present, desired.locked == false, desired.password == nil, database.shadows[desired.name].map({ $0.hash.isEmpty || $0.hash == "*" }) ?? true {
            throw HostError(path: desired.name, message: "locked: false needs a password: the account has none to unlock (give 'password:')")
        }
        var keys: [UInt8]?
        var sshFolder: FileStatus?
        var keysFile: FileStatus?
        var keysDifferUnseen = false
        if let user, desired.authorizedKeys != nil, !(desired.home ?? user.home).isEmpty {
            let path = Self.keysPath(home: desired.home ?? user.home)
            sshFolder = try host.status(HostPath.parent(of: path) ?? "/")
            if let status = try host.status(path) {
                guard status.type == .regular else {
                    throw HostError(path: path, message: "is \(status.type.article), not a file; tend writes authorized keys only to a file of its own")
                }
                if let recorded = host.recordedDigest(path), let wanted = desired.authorizedKeys.map({ Array($0.utf8) }) {
                    // A snapshot keeps only a digest of a file others may not read.
                    keys = wanted
                    keysDifferUnseen = recorded != StatCache.digest(of: wanted)
                } else {
                    keys = try host.read(path)
                }
                keysFile = status
            }
        }
        var observed = Observed(user: user, shadow: database.shadows[desired.name], groups: database.groups(of: desired.name),
                                groupName: user.flatMap { database.group(withGID: $0.gid)?.name }, desiredGID: desiredGID, authorizedKeys: keys)
        observed.sshFolder = sshFolder
        observed.keysFile = keysFile
        observed.shadowRedacted = host.replaysSnapshot
        observed.keysDifferUnseen = keysDifferUnseen
        return observed
    }

    static func keysPath(home: String) -> String {
        (home == "/" ? "" : home) + "/.ssh/authorized_keys"
    }

    // MARK: Planning

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        guard desired.state == .present else {
            guard let user = observed.user else { return nil }
            var notes: [String] = []
            notes.append(desired.removeHome ? "its home \(user.home) is removed with it" : "its home \(user.home) is kept (remove_home: true removes it)")
            return Change(.delete, attributes: [AttributeChange("uid", before: String(user.uid), after: nil, afterNote: "absent")], notes: notes)
        }
        let user = observed.user
        var attributes: [AttributeChange] = []
        func compare(_ name: String, _ wanted: String?, _ current: String?) {
            guard let wanted, wanted != current else { return }
            attributes.append(AttributeChange(name, before: current, after: wanted, beforeNote: current == nil ? "absent" : nil))
        }
        compare("uid", desired.uid.map(String.init), user.map { String($0.uid) })
        if let group = desired.group {
            let wantedName: String = switch group {
            case .name(let name): name
            case .id(let gid): String(gid)
            }
            if user == nil || observed.desiredGID != user?.gid {
                attributes.append(AttributeChange("group", before: observed.groupName ?? user.map { String($0.gid) }, after: wantedName,
                                                  beforeNote: user == nil ? "absent" : nil,
                                                  afterNote: observed.desiredGID == nil && user != nil ? "created by group:\(wantedName)" : nil))
            }
        }
        if let groups = desired.groups, groups != observed.groups {
            attributes.append(AttributeChange("groups", before: user == nil ? nil : observed.groups.joined(separator: ","), after: groups.joined(separator: ","),
                                              beforeNote: user == nil ? "absent" : nil))
        }
        compare("home", desired.home, user?.home)
        compare("shell", desired.shell, user?.shell)
        compare("comment", desired.comment, user?.comment)
        let samePassword = { (password: String) in
            observed.shadowRedacted ? HostSnapshot.secret(observed.shadow?.hash, is: password) : observed.shadow?.hash == password
        }
        if let password = desired.password, !samePassword(password) {
            // Never the hash itself: only that it changes.
            attributes.append(AttributeChange("password", before: String?.none, after: String?.none, beforeNote: observed.shadow == nil ? "absent" : "sensitive value",
                                              afterNote: "sensitive value changed"))
        }
        if let locked = desired.locked, locked != (observed.shadow?.isLocked ?? false) || user == nil {
            if user != nil || locked { attributes.append(AttributeChange("locked", before: observed.shadow?.isLocked ?? false, after: locked)) }
        }
        if let expires = desired.expires {
            let current = observed.shadow?.expires.map(Self.date(fromDays:)) ?? ""
            if expires != current {
                attributes.append(AttributeChange("expires", before: current.isEmpty ? "never" : current, after: expires.isEmpty ? "never" : expires))
            }
        }
        var content: ContentChange?
        if let keys = desired.authorizedKeys, Array(keys.utf8) != (observed.authorizedKeys ?? []) || observed.authorizedKeys == nil {
            content = ContentChange.between(observed.authorizedKeys, Array(keys.utf8), path: Self.keysPath(home: desired.home ?? user?.home ?? "/home/\(desired.name)"), sensitive: false)
        } else if observed.keysDifferUnseen {
            content = .sensitive
        }
        // Keys only the user can change: the file 0600 and `.ssh` 0700, both the user's.
        if desired.authorizedKeys != nil, let user {
            if let folder = observed.sshFolder, folder.type == .directory, folder.permissions != 0o700 || folder.owner != user.uid {
                attributes.append(AttributeChange(".ssh", before: "\(FileMode.format(folder.permissions)) uid \(folder.owner)", after: "0700 uid \(user.uid)"))
            }
            if let file = observed.keysFile, file.permissions != 0o600 || file.owner != user.uid {
                attributes.append(AttributeChange("authorized_keys", before: "\(FileMode.format(file.permissions)) uid \(file.owner)", after: "0600 uid \(user.uid)"))
            }
        }
        if user == nil, attributes.first(where: { $0.name == "uid" }) == nil {
            attributes.insert(AttributeChange("uid", before: String?.none, after: String?.none, beforeNote: "absent", afterNote: desired.system ? "next free system uid" : "next free uid"), at: 0)
        }
        guard !attributes.isEmpty || content != nil else { return nil }
        var notes: [String] = []
        if user == nil, desired.createHome ?? !desired.system { notes.append("its home \(desired.home ?? "/home/\(desired.name)") is created") }
        return Change(user == nil ? .create : .update, attributes: attributes, content: content, notes: notes)
    }

    /// YYYY-MM-DD of a day count since 1970.
    static func date(fromDays days: Int) -> String {
        // Civil from days (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))"
    }

    // MARK: Applying

    public func apply(_ change: Change, desired: Desired, host: HostWriter) throws(HostError) {
        throw HostError(path: desired.name, message: "users are applied in batches")
    }

    public func apply(batch: [(change: Change, desired: Desired)], host: HostWriter) async -> [StepFailure?] {
        var failures: [StepFailure?] = []
        for (change, desired) in batch {
            do throws(HostError) {
                try await apply(change, desired, host: host)
                failures.append(nil)
            } catch {
                failures.append(StepFailure(error))
            }
            try? AccountDatabase.refresh(host.reader)
        }
        return failures
    }

    private func apply(_ change: Change, _ desired: Desired, host: HostWriter) async throws(HostError) {
        let name = desired.name
        let database = try AccountDatabase.of(host.reader)
        if change.action == .delete {
            if desired.removeHome, let home = database.users[name]?.home { try Self.checkHome(home, host: host) }
            try await ShadowTools.run("userdel", (desired.removeHome ? ["--remove"] : []) + ["--", name], for: name, host: host)
            return
        }
        // Under another root the tools follow links inside it: no home they make, move or remove
        // may lead out of it.
        if change.action == .create, desired.createHome ?? !desired.system { try Self.checkHome(desired.home ?? "/home/\(name)", host: host) }
        if change.action != .create, change.changes("home"), let home = desired.home {
            try Self.checkHome(home, host: host)
            if let old = database.users[name]?.home { try Self.checkHome(old, host: host) }
        }
        let wasLocked = database.shadows[name]?.isLocked ?? false
        var arguments: [String] = []
        if let uid = desired.uid, change.changes("uid") { arguments += ["--uid", String(uid)] }
        if let group = desired.group, change.changes("group") { arguments += ["--gid", group.description] }
        if let groups = desired.groups, change.changes("groups") { arguments += ["--groups", groups.joined(separator: ",")] }
        if let home = desired.home, change.changes("home") { arguments += ["--home", home] + (change.action == .create ? [] : ["--move-home"]) }
        if let shell = desired.shell, change.changes("shell") { arguments += ["--shell", shell] }
        if let comment = desired.comment, change.changes("comment") { arguments += ["--comment", comment] }
        if let expires = desired.expires, change.changes("expires") { arguments += ["--expiredate", expires] }
        // On the host itself the hash goes to chpasswd on its standard input, not on a command
        // line every local user could read; an image (no other users) takes it through --prefix.
        let hashByStandardInput = host.reader.root == "/"
        if let password = desired.password, change.changes("password"), !hashByStandardInput { arguments += ["--password", password] }
        // useradd and usermod --move-home make the home itself, not the folders above it.
        if let home = desired.home, change.changes("home") { try host.makeParentDirectories(of: home) }
        if change.action == .create {
            if desired.system { arguments.append("--system") }
            arguments.append(desired.createHome ?? !desired.system ? "--create-home" : "--no-create-home")
            // Without `group:`, the group of the user's own name: joined if it exists (declared, or
            // made by a package), made with the user otherwise, as adduser does.
            if desired.group == nil {
                arguments += database.groups[name] != nil ? ["--gid", name] : ["--user-group"]
            }
            // `group:` naming the user's own group, which nothing else makes: useradd makes it.
            if case .name(let group)? = desired.group, group == name, try AccountDatabase.of(host.reader).groups[group] == nil,
               let flag = arguments.firstIndex(of: "--gid") {
                arguments.removeSubrange(flag...(flag + 1))
                arguments.append("--user-group")
            }
            try await ShadowTools.run("useradd", arguments + ["--", name], for: name, host: host)
        } else if !arguments.isEmpty {
            try await ShadowTools.run("usermod", arguments + ["--", name], for: name, host: host)
        }
        if let password = desired.password, change.changes("password"), hashByStandardInput {
            let run = await Tool.run(["chpasswd", "--encrypted"], root: "/", input: "\(name):\(password)\n")
            guard run.status == 0 else {
                throw HostError(path: name, message: "chpasswd exited \(run.status): " + run.error.trimmingWhitespace())
            }
        }
        // A new hash is written unlocked: a locked account is locked again after it, unless
        // `locked: false` says otherwise.
        if let locked = desired.locked, change.changes("locked") {
            try await ShadowTools.run("usermod", [locked ? "--lock" : "--unlock", "--", name], for: name, host: host)
        } else if change.changes("password"), wasLocked || desired.locked == true, desired.locked != false {
            try await ShadowTools.run("usermod", ["--lock", "--", name], for: name, host: host)
        }
        if let keys = desired.authorizedKeys, change.content != nil || change.changes(".ssh") || change.changes("authorized_keys") {
            try AccountDatabase.refresh(host.reader)
            try writeKeys(keys, desired, host: host)
        }
    }

    /// Under another root: `home` has no link at or above it inside the root and is a folder if
    /// it exists, since useradd, usermod and userdel follow links (a `home -> /var/home` would
    /// make or remove a folder of the machine's own). HostReader never follows one, so its
    /// walk is the check.
    static func checkHome(_ home: String, host: HostWriter) throws(HostError) {
        guard host.reader.root != "/" else { return }
        if let problem = HostPath.problem(in: home) { throw HostError(path: home, message: "the home \(problem)") }
        if let status = try host.reader.status(home), status.type != .directory {
            throw HostError(path: home, message: "is \(status.type.article), not a folder; the account tools would follow or replace it, so tend leaves it")
        }
    }

    /// `~/.ssh/authorized_keys`, owned by the user, its folder at 0700: written as the file
    /// provider writes (a temporary file with its owner, synced, renamed), through no link a user
    /// could have planted at `.ssh` or at the file.
    private func writeKeys(_ keys: String, _ desired: Desired, host: HostWriter) throws(HostError) {
        let database = try AccountDatabase.of(host.reader)
        guard let user = database.users[desired.name] else {
            throw HostError(path: desired.name, message: "the user does not exist after useradd")
        }
        let home = desired.home ?? user.home
        guard try host.reader.status(home)?.type == .directory else {
            throw HostError(path: home, message: "the home folder does not exist; set create_home: true or make it")
        }
        let folder = (home == "/" ? "" : home) + "/.ssh"
        switch try host.reader.status(folder)?.type {
        case nil:
            try host.makeDirectory(folder, mode: 0o700, owner: user.uid, group: user.gid)
        case .directory?:
            try host.setAttributes(folder, type: .directory, mode: 0o700, owner: user.uid, group: user.gid)
        case let other?:
            throw HostError(path: folder, message: "is \(other.article), not a folder; tend writes authorized keys only into a folder")
        }
        let path = folder + "/authorized_keys"
        try host.writeFile(path, contents: Array(keys.utf8), mode: 0o600, owner: user.uid, group: user.gid, replacing: try host.reader.status(path)?.type)
    }
}
