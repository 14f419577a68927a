import TendCore
import TendSpec

extension Adopter {
    /// Files that belong to the machine, not to its configuration, or that a package's scripts or
    /// a distribution tool make on their own: never adopted, each reported with why.
    static let leftOutFiles: [(prefix: String, why: String)] = [
        ("/etc/machine-id", "machine-specific: made at first boot"),
        ("/etc/hostname", "machine-specific: the host's name"),
        ("/etc/hosts", "machine-specific: the host's name and addresses"),
        ("/etc/fstab", "machine-specific: its disks' UUIDs"),
        ("/etc/crypttab", "machine-specific: its disks"),
        ("/etc/adjtime", "machine-specific: its clock"),
        ("/etc/resolv.conf", "machine-specific: written by its network setup"),
        ("/etc/mtab", "made by the kernel"),
        ("/etc/ssh/ssh_host_", "machine-specific: the host's SSH keys"),
        ("/etc/passwd", "accounts are adopted as user and group resources"),
        ("/etc/group", "accounts are adopted as user and group resources"),
        ("/etc/shadow", "accounts are adopted as user resources; password hashes are left out"),
        ("/etc/gshadow", "accounts are adopted as group resources"),
        ("/etc/subuid", "made by useradd"),
        ("/etc/subgid", "made by useradd"),
        ("/etc/.pwd.lock", "a lock file"),
        ("/etc/ld.so.cache", "made by ldconfig"),
        ("/etc/alternatives", "made by update-alternatives from the packages"),
        ("/etc/ssl/certs", "made by update-ca-certificates from the packages"),
        ("/etc/pam.d/common-", "made by pam-auth-update from the packages"),
        ("/etc/systemd/system", "adopted as unit resources"),
        ("/etc/tend", "tend's own configuration, written by whoever installs tend"),
        ("/etc/initramfs-tools/conf.d/resume", "machine-specific: its swap"),
        ("/etc/udev/rules.d/70-persistent-", "machine-specific: its devices"),
        ("/etc/NetworkManager/system-connections", "machine-specific: its networks, and their secrets"),
        ("/etc/lvm/archive", "made by LVM"),
        ("/etc/lvm/backup", "made by LVM"),
        ("/etc/apparmor.d/cache", "made by apparmor_parser"),
        ("/etc/ca-certificates.conf", "made by the ca-certificates package's scripts"),
        ("/etc/rc0.d", "made by update-rc.d"), ("/etc/rc1.d", "made by update-rc.d"), ("/etc/rc2.d", "made by update-rc.d"),
        ("/etc/rc3.d", "made by update-rc.d"), ("/etc/rc4.d", "made by update-rc.d"), ("/etc/rc5.d", "made by update-rc.d"),
        ("/etc/rc6.d", "made by update-rc.d"), ("/etc/rcS.d", "made by update-rc.d"),
        ("/etc/.resolv.conf", "made by the network setup"),
        ("/etc/.updated", "made by systemd-update-done"),
        ("/etc/dpkg/dpkg.cfg.d/", "dpkg's own settings"),
        ("/etc/xml", "made by update-xmlcatalog from the packages"),
        ("/etc/sgml", "made by update-catalog from the packages"),
        ("/etc/perl/XML/SAX/ParserDetails.ini", "made by update-perl-sax-parsers from the packages"),
        ("/etc/systemd/user", "user units enabled by their packages"),
        ("/etc/security/opasswd", "made by pam_pwhistory: old password hashes"),
        ("/etc/.java", "made by Java's preferences"),
    ]

    /// Names of backups that packaging tools leave: never adopted.
    static let backupSuffixes = [".old", ".dpkg-old", ".dpkg-dist", ".dpkg-new", ".dpkg-bak", ".ucf-old", ".ucf-dist", ".ucf-new", "~"]

    /// Why `path` is left out, if it is.
    static func leftOutReason(_ path: String) -> String? {
        // By the name under /etc first: each path is asked about, and /etc holds thousands.
        let name = path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: true).dropFirst().first.map(String.init) ?? ""
        for (prefix, why) in leftOutByName[leftOutKey(name)] ?? [] {
            if let last = prefix.last, last == "/" || last == "_" || last == "-" {
                if path.hasPrefix(prefix) { return why }
            } else if path == prefix || path.hasPrefix(prefix + "/") || path == prefix + "-" {
                return why
            }
        }
        return nil
    }

    /// `leftOutFiles` by the first letters of the name under /etc they are about.
    private static let leftOutByName: [String: [(prefix: String, why: String)]] = Dictionary(grouping: leftOutFiles) {
        leftOutKey($0.prefix.split(separator: "/").dropFirst().first.map(String.init) ?? "")
    }

    private static func leftOutKey(_ name: String) -> String { String(name.prefix(3)) }

    /// The most entries of /etc walked.
    static let maximumEntries = 200_000
    /// The largest file adopted.
    static let largestFile = SnapshotLimits.fileSize

    /// Conffiles that differ from what their package shipped, and what no package owns under
    /// /etc: each a resource with its owner and mode, its content in `files/` beside it.
    func adoptFiles(packages: [String: Installed], into result: inout Result) throws(HostError) {
        let owned = try readOwned()
        let ucf = readUCF()
        // Owned files by name, to tell a file that a package's scripts copied from /usr/share.
        var shipped: [Substring: [String]] = [:]
        for path in owned where path.hasPrefix("/usr/share/") {
            if let name = path.split(separator: "/").last { shipped[name, default: []].append(path) }
        }
        var manifests = Concerns()
        var conffiles: Set<String> = []
        for package in packages.values.sorted(by: { $0.name < $1.name }) {
            for (path, md5) in package.conffiles {
                conffiles.insert(path)
                if Self.leftOutReason(path) != nil { continue }
                guard let status = try host.status(path) else {
                    manifests.add(path: path, "  # A conffile of \(package.name) \(YAMLText.comment(package.version)), removed by hand.\n  - file: \(YAMLText.quoted(path))\n    state: absent\n")
                    result.taken.append(Taken(id: "file:\(path)", why: "conffile of \(package.name), removed"))
                    continue
                }
                guard status.type == .regular, status.size <= Self.largestFile else {
                    result.leftOut.append(LeftOut(path: path, why: status.type == .regular ? "a conffile of \(status.size) bytes, more than tend reads of one file"
                                                                                          : "a conffile of \(package.name) that is now \(status.type.article)"))
                    continue
                }
                let bytes = try host.read(path)
                guard Digest.md5(bytes) != md5 else { continue }
                adopt(path: path, status: status, bytes: bytes, why: "conffile changed from \(package.name) \(package.version)", into: &manifests, &result)
            }
        }
        // What no package owns, walked depth first in name order.
        var pending = ["/etc"]
        var seen = 0
        while let folder = pending.popLast() {
            for name in try host.entries(of: folder).sorted().reversed() {
                seen += 1
                guard seen <= Self.maximumEntries else {
                    result.leftOut.append(LeftOut(path: folder, why: "more than \(Self.maximumEntries) entries under /etc; the rest was not read"))
                    pending.removeAll()
                    break
                }
                let path = folder + "/" + name
                if let why = Self.leftOutReason(path) {
                    if !owned.contains(path), !path.hasPrefix("/etc/systemd/system") { result.leftOut.append(LeftOut(path: path, why: why)) }
                    continue
                }
                guard let status = try host.status(path) else { continue }
                if status.type == .directory {
                    if !owned.contains(path), try host.entries(of: path).isEmpty || status.permissions != 0o755 || status.owner != 0 || status.group != 0 {
                        manifests.add(path: path, "  # No package owns it.\n  - directory: \(YAMLText.quoted(path))\n" + ownership(status))
                        result.taken.append(Taken(id: "directory:\(path)", why: "no package owns it"))
                    }
                    pending.append(path)
                    continue
                }
                guard !owned.contains(path), !conffiles.contains(path) else { continue }
                if let suffix = Self.backupSuffixes.first(where: path.hasSuffix) {
                    result.leftOut.append(LeftOut(path: path, why: "a backup (\(suffix)) a packaging tool left"))
                    continue
                }
                switch status.type {
                case .symlink:
                    let target = try host.readLink(path)
                    // A link to what a package ships (an enabled site, a font setting) is made by its scripts.
                    let resolved = target.hasPrefix("/") ? target : folder + "/" + target
                    if path != "/etc/localtime", owned.contains(Self.normalized(resolved)) {
                        result.leftOut.append(LeftOut(path: path, why: "a link to \(Self.normalized(resolved)), which a package ships: made by its scripts"))
                        continue
                    }
                    manifests.add(path: path, "  # No package owns it.\n  - symlink: \(YAMLText.quoted(path))\n    target: \(YAMLText.quoted(target))\n")
                    result.taken.append(Taken(id: "symlink:\(path)", why: "no package owns it"))
                case .regular where status.size <= Self.largestFile:
                    let bytes = try host.read(path)
                    var why = "no package owns it"
                    if let installed = ucf[path] {
                        // Installed by a package's scripts through ucf, which recorded its digest.
                        if installed == Digest.md5(bytes) {
                            result.leftOut.append(LeftOut(path: path, why: "installed by a package's scripts (ucf), unchanged"))
                            continue
                        }
                        why = "changed from what a package's scripts installed (ucf)"
                    } else if let name = path.split(separator: "/").last,
                              let copy = shipped[name]?.first(where: { (try? host.read($0)) == bytes }) {
                        result.leftOut.append(LeftOut(path: path, why: "a copy of \(copy), which a package ships: made by its scripts"))
                        continue
                    }
                    adopt(path: path, status: status, bytes: bytes, why: why, into: &manifests, &result)
                case .regular:
                    result.leftOut.append(LeftOut(path: path, why: "\(status.size) bytes, more than tend reads of one file"))
                default:
                    result.leftOut.append(LeftOut(path: path, why: "a special file (device, socket or FIFO)"))
                }
            }
        }
        for (name, text) in manifests.rendered() {
            result.files["\(Self.manifests)/\(name).yaml"] = Array(("resources:\n" + text).utf8)
        }
        result.counts["files"] = result.taken.filter { $0.id.hasPrefix("file:") || $0.id.hasPrefix("symlink:") || $0.id.hasPrefix("directory:") }.count
    }

    /// A regular file as a resource: its content in `files/` (encrypted to the host's recipient
    /// when it is private), its owner and mode.
    private func adopt(path: String, status: FileStatus, bytes: [UInt8], why: String, into manifests: inout Concerns, _ result: inout Result) {
        // Private: others may not read it (itself, or a folder above it keeps them out), or it holds a key.
        let privateFile = !host.othersMayRead(path, status: status) || String(decoding: bytes.prefix(1 << 16), as: UTF8.self).contains("PRIVATE KEY")
        var source = "files" + path
        if privateFile {
            guard let recipient else {
                result.leftOut.append(LeftOut(path: path, why: "private (others may not read it), and this host has no age recipient to encrypt it to"))
                return
            }
            switch AgeSecrets.encrypt(bytes, recipient: recipient) {
            case .success(let encrypted):
                source += ".age"
                result.files["\(Self.manifests)/\(source)"] = encrypted
            case .failure(let error):
                result.leftOut.append(LeftOut(path: path, why: "private, and it could not be encrypted: \(error.message)"))
                return
            }
        } else {
            result.files["\(Self.manifests)/\(source)"] = bytes
        }
        manifests.add(file: path, shape: Concerns.Shape(why: why, encrypted: privateFile, ownership: ownership(status)))
        result.taken.append(Taken(id: "file:\(path)", why: why + (privateFile ? " (private: encrypted)" : "")))
    }

    /// `owner:`, `group:` and `mode:` lines for what `status` says.
    private func ownership(_ status: FileStatus) -> String {
        let owner = host.userName(status.owner) ?? String(status.owner)
        let group = host.groupName(status.group) ?? String(status.group)
        return "    owner: \(YAMLText.quoted(owner))\n    group: \(YAMLText.quoted(group))\n    mode: \(YAMLText.mode(status.permissions))\n"
    }

    /// Adds `text` to the manifest of the concern `path` belongs to: the folder under /etc it is
    /// in (`etc-nginx`), or `etc` for files directly in /etc.
    /// The manifests being written, one per concern: the folder under /etc a path is in
    /// (`etc-nginx`), or `etc` for what is directly in /etc. Files of one shape (the same
    /// reason, owner, group and mode) are written as one loop over their paths when there are
    /// several, each otherwise.
    struct Concerns {
        struct Shape: Hashable {
            var why: String
            var encrypted: Bool
            var ownership: String
        }

        private var entries: [String: String] = [:]
        private var files: [String: [Shape: [String]]] = [:]
        private var order: [String: [Shape]] = [:]

        static func name(of path: String) -> String {
            let parts = path.split(separator: "/")
            return parts.count > 2 ? "etc-" + parts[1].filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." } : "etc"
        }

        mutating func add(path: String, _ text: String) {
            entries[Self.name(of: path), default: ""] += text
        }

        mutating func add(file path: String, shape: Shape) {
            let name = Self.name(of: path)
            if files[name]?[shape] == nil { order[name, default: []].append(shape) }
            files[name, default: [:]][shape, default: []].append(path)
        }

        func rendered() -> [String: String] {
            var result = entries
            for (name, shapes) in order {
                for shape in shapes {
                    let paths = files[name]?[shape] ?? []
                    let note = shape.encrypted ? " Private: encrypted to this host's age recipient." : ""
                    let why = YAMLText.comment(shape.why)
                    let sentence = why.prefix(1).uppercased() + why.dropFirst()
                    let suffix = shape.encrypted ? ".age" : ""
                    if paths.count >= 3 {
                        let many = sentence.hasSuffix(" it") ? sentence.dropLast(3) + " them" : Substring(sentence)
                        var text = "  # \(many).\(note)\n  - for_each:\n"
                        text += paths.map { "      - \(YAMLText.quoted($0))\n" }.joined()
                        text += "    file: \"{{item}}\"\n    source: \"files{{item}}\(suffix)\"\n" + shape.ownership
                        result[name, default: ""] += text
                    } else {
                        for path in paths {
                            result[name, default: ""] += "  # \(sentence).\(note)\n  - file: \(YAMLText.quoted(path))\n    source: \(YAMLText.quoted("files" + path + suffix))\n" + shape.ownership
                        }
                    }
                }
            }
            return result
        }
    }

    /// `path` with `.` and `..` components resolved, as text.
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// What ucf recorded of the files it installed for packages' scripts: their MD5 by path.
    func readUCF() -> [String: String] {
        guard let bytes = try? host.read("/var/lib/ucf/hashfile") else { return [:] }
        var digests: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if words.count == 2 { digests[String(words[1])] = String(words[0]) }
        }
        return digests
    }

    /// Every path a package owns (dpkg's file lists) or dpkg diverts.
    func readOwned() throws(HostError) -> Set<String> {
        var owned: Set<String> = []
        let info = "/var/lib/dpkg/info"
        for name in try host.entries(of: info) where name.hasSuffix(".list") || name.hasSuffix(".conffiles") {
            guard let bytes = try? host.read(info + "/" + name) else { continue }
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") { owned.insert(String(line)) }
        }
        if let diversions = try? host.read("/var/lib/dpkg/diversions") {
            for line in String(decoding: diversions, as: UTF8.self).split(separator: "\n") where line.hasPrefix("/") { owned.insert(String(line)) }
        }
        return owned
    }
}
