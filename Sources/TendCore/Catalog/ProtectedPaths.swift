/// What a configuration repository may not declare because it is tend's own, or the kernel's:
/// one table (docs/security.md, "What a repository cannot declare"), checked as the catalog is
/// built, so that `tend validate`, `plan`, `apply` and the agent refuse the same commits, each
/// problem at its position, before anything runs, and such a commit never becomes last good.
///
/// Some rules no host can lift: tend's records and Git cache (a declared `suspended.json`
/// suspended the agent for good), its binary, its lock, and /proc, /sys and /dev. The others, the
/// agent's own control (/etc/tend, tend's units with everything systemd reads for them, and tend's
/// package), are lifted by the host's operator, never by the repository: `self_manage: true` in
/// the host's (or the root's) agent.yaml, or `--self-manage` for one run, such as an image build.
/// What they then let the repository declare is applied last in a run (`Catalog.build`), and a
/// job on one of tend's units is queued once the run has ended (`HostWriter.queueAfterRun`).
///
/// This keeps a repository from declaring tend's own files; it does not make a hostile commit
/// harmless (a unit with `Conflicts=tend.service`, a cron job), which only review and signed
/// commits guard against.
public struct ProtectedPaths: Sendable {
    /// One row of the table.
    public struct Rule: Sendable {
        public enum Kind: String, Sendable {
            case state, binary, lock, kernel, control, units, package
        }

        public let kind: Kind
        /// What it protects, for people: "… belongs to `what`".
        public let what: String
        /// Paths refused, each with everything below it.
        public let paths: [String]
        /// Whether `self_manage: true` lifts it.
        public let selfManaged: Bool
        /// Why, for people.
        public let why: String
    }

    /// tend's units, as the .deb and examples/systemd ship them.
    public static let tendUnits: Set<String> = ["tend.service", "tend-apply.service", "tend-apply.timer", "tend-snapshot.service", "tend-snapshot.timer"]

    /// Whether `unit` is one of tend's: a job on it is queued once the run has ended, never waited
    /// for, since tend may be what the job stops.
    public static func isTendUnit(_ unit: String) -> Bool { tendUnits.contains(unit) }

    /// Where systemd reads unit files, drop-ins and links from (systemd.unit(5), and the control,
    /// transient and generator folders it writes itself).
    static let unitDirectories = [
        "/etc/systemd/system", "/etc/systemd/system.control", "/run/systemd/system", "/run/systemd/system.control", "/run/systemd/transient",
        "/run/systemd/generator", "/run/systemd/generator.early", "/run/systemd/generator.late",
        "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system",
    ]

    /// The names in a unit folder that systemd reads for tend's units: each unit, its drop-in and
    /// dependency folders, the drop-ins of every service and timer, and those of the prefix `tend-`.
    static let unitNames: [String] = tendUnits.sorted().flatMap { [$0, $0 + ".d", $0 + ".wants", $0 + ".requires", $0 + ".upholds"] }
        + ["service.d", "timer.d", "tend-.service.d", "tend-.timer.d"]

    /// The folders of links that units make when enabled (`multi-user.target.wants`).
    static let linkFolderSuffixes = [".wants", ".requires", ".upholds"]

    /// The rules, in the order docs/security.md lists them.
    public let rules: [Rule]
    /// Each protected path with the position of its rule in `rules`: a path is looked up with its
    /// ancestors, a few lookups, rather than compared with the hundreds of paths of the table (a
    /// catalog of 10,000 files would make millions of comparisons).
    private let index: [String: Int]
    /// The first names of every protected path (`etc`, `var`, `proc`…): a path under none of them
    /// (most of a configuration: /srv, /opt, /home) is let through at once.
    private let tops: Set<Substring>
    /// Whether this host lets the repository manage tend itself.
    public let selfManagement: Bool

    /// The table for a run on `root`: `stateDirectory` is where the records of `/` are kept (a
    /// root's own are in its /var/lib/tend), `binary` the running tend when `root` is `/`.
    public init(root: String, stateDirectory: String, binary: String? = nil, selfManagement: Bool) {
        self.selfManagement = selfManagement
        var state = ["/var/lib/tend"]
        var binaries = ["/usr/bin/tend"]
        if root == "/" {
            state.append(Self.normalised(stateDirectory))
            if let binary { binaries.append(Self.normalised(binary)) }
        }
        rules = [
            Rule(kind: .state, what: "tend's records and Git cache", paths: Self.unique(state), selfManaged: false,
                 why: "a declared record would steer the agent (a suspended.json suspends it for good)"),
            Rule(kind: .binary, what: "the tend program", paths: Self.unique(binaries), selfManaged: false,
                 why: "the package manager installs it; a file resource would replace the program that is running"),
            Rule(kind: .lock, what: "tend's lock files", paths: ["/run/tend"], selfManaged: false,
                 why: "a declared lock file would stall every apply"),
            Rule(kind: .kernel, what: "the kernel's own file systems", paths: ["/proc", "/sys", "/dev"], selfManaged: false,
                 why: "a write there changes the running kernel instead of a file, and fails on every cycle"),
            Rule(kind: .control, what: "the agent's configuration, keys and allowed signers", paths: ["/etc/tend"], selfManaged: true,
                 why: "a commit could point the agent at another repository or drop its signature check"),
            Rule(kind: .units, what: "tend's units, their drop-ins and links", paths: Self.unitDirectories.flatMap { folder in Self.unitNames.map { folder + "/" + $0 } },
                 selfManaged: true, why: "a commit could replace how tend is started, or stop it"),
            Rule(kind: .package, what: "tend's own package", paths: [], selfManaged: true,
                 why: "a commit could remove tend, or hold it at a version"),
        ]
        var index: [String: Int] = [:]
        for (position, rule) in rules.enumerated() {
            for path in rule.paths where index[path] == nil { index[path] = position }
        }
        self.index = index
        tops = Set(index.keys.compactMap { Self.top(of: $0) }.map { Substring($0) })
    }

    /// What the table says of one resource.
    public enum Verdict: Sendable, Equatable {
        /// Not tend's: anyone's to declare.
        case anyones
        /// tend's own control, on a host that lets the repository manage it: applied last.
        case managesTend
        /// Refused, with why and how to opt in where a host can.
        case refused(String)
    }

    /// What the table says of a resource. `paths` are those it writes; `reachesBelow` says
    /// whether it may also change what lies below its `path` (a link put in place of a folder, a
    /// removal, a folder purged), so that a protected path below counts too.
    public func verdict(id: ResourceID, path: String?, paths: [String], reachesBelow: Bool) -> Verdict {
        guard let (rule, hit) = match(id: id, path: path, paths: paths, reachesBelow: reachesBelow) else { return .anyones }
        if rule.selfManaged, selfManagement { return .managesTend }
        let reached = hit != id.name && !paths.contains(hit) ? "it would reach \(hit), which" : hit
        var message = "\(id) may not be declared: \(reached) belongs to \(rule.what) (rule '\(rule.kind.rawValue)' of docs/security.md): \(rule.why)"
        if rule.selfManaged {
            message += ". A host that manages tend from its repository opts in: self_manage: true in its agent.yaml, or --self-manage for one run"
        }
        return .refused(message)
    }

    /// The first rule the resource falls under, with the path (or name) that does.
    private func match(id: ResourceID, path: String?, paths: [String], reachesBelow: Bool) -> (rule: Rule, hit: String)? {
        if id.kind == "unit", Self.tendUnits.contains(id.name), let rule = rules.first(where: { $0.kind == .units }) { return (rule, id.name) }
        if id.kind == "package", id.name == "tend", let rule = rules.first(where: { $0.kind == .package }) { return (rule, id.name) }
        var found: (position: Int, hit: String)?
        func consider(_ position: Int, _ hit: String) {
            if found.map({ position < $0.position }) ?? true { found = (position, hit) }
        }
        for written in paths {
            guard let top = Self.top(of: written), tops.contains(top) else { continue }
            // The path and each folder above it, whole names by construction.
            var current: Substring = Substring(written)
            while true {
                if let position = index[String(current)] { consider(position, written) }
                guard let slash = current.utf8.lastIndex(of: UInt8(ascii: "/")), slash != current.utf8.startIndex else { break }
                current = current[..<slash]
            }
            // Enablement links (multi-user.target.wants/tend.service).
            if Self.isTendUnitLink(written), let position = rules.firstIndex(where: { $0.kind == .units }) { consider(position, written) }
        }
        // What a removal, a purge or a link reaches below it: rare, so the whole table is read.
        if reachesBelow, let path {
            for (position, rule) in rules.enumerated() {
                if let protected = rule.paths.first(where: { Self.isSameOrBelow($0, path) }) { consider(position, protected) }
                if rule.kind == .units, Self.isLinkFolder(path) { consider(position, path + "/tend.service") }
            }
        }
        return found.map { (rules[$0.position], $0.hit) }
    }

    /// The first name of an absolute path (`etc` of `/etc/tend`), or nil for `/`.
    private static func top(of path: String) -> Substring? {
        let name = path.utf8.dropFirst().prefix { $0 != UInt8(ascii: "/") }
        return name.isEmpty ? nil : Substring(name)
    }

    /// `…/system/X.wants/tend.service` (or `.requires`, `.upholds`).
    private static func isTendUnitLink(_ path: String) -> Bool {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), tendUnits.contains(String(path[path.index(after: slash)...])) else { return false }
        return isLinkFolder(String(path[..<slash]))
    }

    /// `…/system/X.wants` (or `.requires`, `.upholds`), in a unit folder.
    private static func isLinkFolder(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        guard let folder = parts.last else { return false }
        let parent = "/" + parts.dropLast().joined(separator: "/")
        return unitDirectories.contains(parent) && linkFolderSuffixes.contains { folder.hasSuffix($0) }
    }

    /// Whether `path` is `ancestor` or lies below it, by whole names (/etc/tend-x is not below
    /// /etc/tend), compared byte by byte: String's comparison would join a combining mark after
    /// a `/` to it, and take `/etc/tend/\u{301}x` for a path that is not below `/etc/tend`.
    static func isSameOrBelow(_ path: String, _ ancestor: String) -> Bool {
        if ancestor == "/" { return true }
        let (path, ancestor) = (path.utf8, ancestor.utf8)
        guard path.starts(with: ancestor) else { return false }
        return path.count == ancestor.count || path.dropFirst(ancestor.count).first == UInt8(ascii: "/")
    }

    private static func normalised(_ path: String) -> String {
        "/" + path.split(separator: "/").joined(separator: "/")
    }

    private static func unique(_ paths: [String]) -> [String] {
        var seen: Set<String> = []
        return paths.filter { seen.insert($0).inserted }
    }
}
