import TendCore
import TendSpec

/// A root's accounts as its files say: /etc/passwd, /etc/group and /etc/shadow, read once per run
/// (by the first user or group resource observed) and again after tend changed them.
struct AccountDatabase: Sendable {
    struct User: Sendable, Hashable {
        var name: String
        var uid: UInt32
        var gid: UInt32
        var comment: String
        var home: String
        var shell: String
    }

    struct Group: Sendable, Hashable {
        var name: String
        var gid: UInt32
        var members: [String]
    }

    /// A user's /etc/shadow line: the password field and the expiry (days since 1970).
    struct Shadow: Sendable, Hashable {
        var password: String
        var expires: Int?

        /// `!` before the hash, as `usermod -L` puts it.
        var isLocked: Bool { password.hasPrefix("!") }
        /// The hash without the lock.
        var hash: String { isLocked ? String(password.dropFirst()) : password }
    }

    var users: [String: User] = [:]
    var groups: [String: Group] = [:]
    var shadows: [String: Shadow] = [:]

    private static let database = BulkRead<AccountDatabase>("account.database")

    /// The database of `host`'s root, as this run read it, or read now.
    static func of(_ host: HostReader) throws(HostError) -> AccountDatabase {
        if let known = host[database] { return known }
        let read = try read(host)
        host[database] = read
        return read
    }

    /// Reads the files again, after tend changed them, for later steps and for the check of each.
    static func refresh(_ host: HostReader) throws(HostError) {
        host[database] = try read(host)
        host.forgetAccounts()
    }

    private static func read(_ host: HostReader) throws(HostError) -> AccountDatabase {
        func lines(_ path: String) throws(HostError) -> [[Substring]] {
            guard try host.status(path) != nil else { return [] }
            return String(decoding: try host.read(path), as: UTF8.self).split(separator: "\n")
                .map { $0.split(separator: ":", omittingEmptySubsequences: false) }
        }
        var database = AccountDatabase()
        for fields in try lines("/etc/passwd") where fields.count >= 7 {
            guard let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else { continue }
            let name = String(fields[0])
            if database.users[name] == nil {
                database.users[name] = User(name: name, uid: uid, gid: gid, comment: String(fields[4]), home: String(fields[5]), shell: String(fields[6]))
            }
        }
        for fields in try lines("/etc/group") where fields.count >= 4 {
            guard let gid = UInt32(fields[2]) else { continue }
            let name = String(fields[0])
            if database.groups[name] == nil {
                database.groups[name] = Group(name: name, gid: gid, members: fields[3].split(separator: ",").map(String.init))
            }
        }
        for fields in try lines("/etc/shadow") where fields.count >= 8 {
            // Days since 1970, up to the year 9999; anything else is no date.
            let expires = Int(fields[7]).flatMap { (0...2_932_896).contains($0) ? $0 : nil }
            database.shadows[String(fields[0])] = Shadow(password: String(fields[1]), expires: expires)
        }
        return database
    }

    /// The user whose uid is `uid`, if any.
    func user(withUID uid: UInt32) -> User? { users.values.first { $0.uid == uid } }

    /// The group whose gid is `gid`, if any.
    func group(withGID gid: UInt32) -> Group? { groups.values.first { $0.gid == gid } }

    /// The supplementary groups of `user`, by name, sorted.
    func groups(of user: String) -> [String] {
        groups.values.filter { $0.members.contains(user) }.map(\.name).sorted()
    }

    /// A name `useradd` and `groupadd` take on Debian with its default rules: a lowercase letter
    /// or `_` first, then lowercase letters, digits, `_` and `-`, an optional `$` last (machine
    /// accounts), at most 32 bytes; nil, or why not.
    static func problem(inName name: String) -> String? {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 32 else { return "must be 1 to 32 characters" }
        func lower(_ b: UInt8) -> Bool { b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }
        func digit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        guard lower(bytes[0]) || bytes[0] == UInt8(ascii: "_") else { return "must start with a lowercase letter or '_'" }
        for (index, byte) in bytes.enumerated().dropFirst() {
            let last = index == bytes.count - 1
            guard lower(byte) || digit(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || (last && byte == UInt8(ascii: "$")) else {
                return "may hold only lowercase letters, digits, '_' and '-' (and '$' last)"
            }
        }
        return nil
    }
}

/// Debian's tools for accounts (useradd, usermod, userdel, groupadd, groupmod, groupdel), so that
/// the files stay consistent and locked as the system expects. Under another root they work on
/// that root's /etc through `--prefix`, without chroot (the root needs no tools of its own).
enum ShadowTools {
    static func run(_ tool: String, _ arguments: [String], for name: String, host: HostWriter) async throws(HostError) {
        let root = host.reader.root
        let prefix = root == "/" ? [] : ["--prefix", root]
        let run = await Tool.run([tool] + prefix + arguments, root: "/")
        guard run.status == 0 else {
            let said = (run.error.isEmpty ? run.output : run.error).trimmingWhitespace()
            throw HostError(path: name, message: "\(tool) exited \(run.status)" + (said.isEmpty ? "" : ": " + said))
        }
    }
}
