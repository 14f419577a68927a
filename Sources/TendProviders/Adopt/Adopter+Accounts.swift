import TendCore
import TendSpec

extension Adopter {
    /// Groups and users that no package created: those in login.defs' ranges for people (1000
    /// to 60000 unless it says), with their supplementary groups and SSH keys, written as loops
    /// over a var file. Password hashes are left out, and said so.
    func adoptAccounts(into result: inout Result) throws(HostError) -> String? {
        let database = try AccountDatabase.of(host)
        let defs = String(decoding: (try? host.read("/etc/login.defs")) ?? [], as: UTF8.self)
        func setting(_ name: String, _ fallback: UInt32) -> UInt32 {
            for line in defs.split(separator: "\n") {
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if words.count >= 2, words[0] == name, let value = UInt32(words[1]) { return value }
            }
            return fallback
        }
        let users = setting("UID_MIN", 1000)...setting("UID_MAX", 60000)
        let groups = setting("GID_MIN", 1000)...setting("GID_MAX", 60000)
        let people = database.users.values.filter { users.contains($0.uid) }.sorted { $0.name < $1.name }
        let ownGroups = database.groups.values.filter { groups.contains($0.gid) }.sorted { $0.name < $1.name }
        guard !people.isEmpty || !ownGroups.isEmpty else { return nil }
        var vars = "# Groups and users no package created (login.defs' ranges for people).\n"
        var manifest = "resources:\n"
        if !ownGroups.isEmpty {
            vars += "groups:\n" + ownGroups.map { "  - { name: \(YAMLText.quoted($0.name)), gid: \($0.gid) }\n" }.joined()
            manifest += "  # Groups no package created.\n  - for_each: groups\n    group: \"{{item.name}}\"\n    gid: \"{{item.gid}}\"\n"
            for group in ownGroups { result.taken.append(Taken(id: "group:\(group.name)", why: "gid \(group.gid), in login.defs' range for people")) }
        }
        if !people.isEmpty {
            vars += "users:\n"
            for user in people {
                let primary = database.groups.values.first { $0.gid == user.gid }?.name ?? String(user.gid)
                let supplementary = database.groups.values.filter { $0.members.contains(user.name) }.map(\.name).sorted()
                let keys = (try? host.read(user.home + "/.ssh/authorized_keys")).map { String(decoding: $0, as: UTF8.self) }
                vars += "  - name: \(YAMLText.quoted(user.name))\n    uid: \(user.uid)\n    group: \(YAMLText.quoted(primary))\n"
                vars += "    groups: [\(supplementary.map(YAMLText.quoted).joined(separator: ", "))]\n"
                vars += "    home: \(YAMLText.quoted(user.home))\n    shell: \(YAMLText.quoted(user.shell))\n    comment: \(YAMLText.quoted(user.comment))\n"
                if let keys { vars += "    keys: \(YAMLText.quoted(keys))\n" }
                result.taken.append(Taken(id: "user:\(user.name)", why: "uid \(user.uid), in login.defs' range for people" + (keys == nil ? "" : ", with its authorized_keys")))
                if let shadow = database.shadows[user.name], !shadow.hash.isEmpty, !["*", "!", "!!"].contains(shadow.hash) {
                    result.leftOut.append(LeftOut(path: "user:\(user.name)", why: "its password hash: set it again with passwd, or declare it with password: (a hash, which is sensitive)"))
                }
            }
            manifest += "  # Users no package created, with their SSH keys.\n  - for_each: users\n    as: person\n"
            manifest += "    user: \"{{person.name}}\"\n    uid: \"{{person.uid}}\"\n    group: \"{{person.group}}\"\n    groups: \"{{person.groups}}\"\n"
            manifest += "    home: \"{{person.home}}\"\n    shell: \"{{person.shell}}\"\n    comment: \"{{person.comment}}\"\n"
            manifest += "    authorized_keys: \"{{person.keys?}}\"\n"
        }
        result.counts["accounts"] = people.count + ownGroups.count
        result.files["vars/accounts.yaml"] = Array(vars.utf8)
        result.files["\(Self.manifests)/accounts.yaml"] = Array(manifest.utf8)
        return "vars/accounts.yaml"
    }
}
