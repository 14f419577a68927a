/// What a configuration repository may not declare because it is tend's own, or the kernel's:
/// one table (docs/security.md, "What a repository cannot declare"), checked as the catalog is
/// built, so that `tend validate`, `plan`, `apply` and the agent refuse the same commits, each
/// problem at its position, before anything runs, and such a commit never becomes last good.
///
/// Some rules no host can lift: tend's records and Git cache (a declared `suspended.json`
/// suspended the agent for good), its binary, its lock, and /proc, /sys and /dev. The others, the
/// agent's own control (/etc/tend and tend's units with their drop-ins), are lifted by the host's
/// operator, never by the repository: `self_manage: true` in the host's (or the root's)
/// agent.yaml, or `--self-manage` for one run, such as an image build. What they then let the
/// repository declare is applied last in a run (`Catalog.build`), and tend never waits on a job
/// of its own units (`ProtectedPaths.isTendUnit`).
public struct ProtectedPaths: Sendable {
    /// One row of the table.
    public struct Rule: Sendable {
        /// A short name for messages and docs (`state`, `control`).
        public let name: String
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

    /// Where systemd reads unit files, drop-ins and enablement links from (systemd.unit(5)).
    static let unitDirectories = ["/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"]

    /// Whether `unit` is one of tend's: a job on it is queued, never waited for, since tend may
    /// be what the job stops.
    public static func isTendUnit(_ unit: String) -> Bool { tendUnits.contains(unit) }

    /// The rules, in the order docs/security.md lists them.
    public let rules: [Rule]
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
            Rule(name: "state", what: "tend's records and Git cache", paths: Self.unique(state), selfManaged: false,
                 why: "a declared record would steer the agent (a suspended.json suspends it for good)"),
            Rule(name: "binary", what: "the tend program", paths: Self.unique(binaries), selfManaged: false,
                 why: "the package manager installs it; a file resource would replace the program that is running"),
            Rule(name: "lock", what: "tend's lock files", paths: ["/run/tend"], selfManaged: false,
                 why: "a declared lock file would stall every apply"),
            Rule(name: "kernel", what: "the kernel's own file systems", paths: ["/proc", "/sys", "/dev"], selfManaged: false,
                 why: "a write there changes the running kernel instead of a file, and fails on every cycle"),
            Rule(name: "control", what: "the agent's configuration, keys and allowed signers", paths: ["/etc/tend"], selfManaged: true,
                 why: "a commit could point the agent at another repository or drop its signature check"),
            Rule(name: "units", what: "tend's units and their drop-ins",
                 paths: Self.unitDirectories.flatMap { folder in Self.tendUnits.sorted().flatMap { [folder + "/" + $0, folder + "/" + $0 + ".d"] } },
                 selfManaged: true, why: "a commit could replace how tend is started, or stop it"),
        ]
    }

    /// Why a resource may not be declared, or nil when it may. `paths` are those it writes;
    /// `reachesBelow` says whether it may also change what lies below its `path` (a link put in
    /// place of a folder, a removal, a folder purged), so that a protected path below counts too.
    public func refusal(id: ResourceID, path: String?, paths: [String], reachesBelow: Bool) -> String? {
        guard let (rule, hit) = match(id: id, path: path, paths: paths, reachesBelow: reachesBelow) else { return nil }
        guard !rule.selfManaged || !selfManagement else { return nil }
        let reached = hit != id.name && !paths.contains(hit) ? "it would reach \(hit), which" : hit
        var message = "\(id) may not be declared: \(reached) belongs to \(rule.what) (rule '\(rule.name)' of docs/security.md): \(rule.why)"
        if rule.selfManaged {
            message += ". A host that manages tend from its repository opts in: self_manage: true in its agent.yaml, or --self-manage for one run"
        }
        return message
    }

    /// Whether the resource manages tend itself (allowed by `selfManagement`): it is applied last.
    public func managesTend(id: ResourceID, path: String?, paths: [String], reachesBelow: Bool) -> Bool {
        match(id: id, path: path, paths: paths, reachesBelow: reachesBelow)?.rule.selfManaged ?? false
    }

    /// The first rule the resource falls under, with the path (or unit) that does.
    private func match(id: ResourceID, path: String?, paths: [String], reachesBelow: Bool) -> (rule: Rule, hit: String)? {
        for rule in rules {
            if rule.name == "units", id.kind == "unit", Self.tendUnits.contains(id.name) { return (rule, id.name) }
            for protected in rule.paths {
                if let hit = paths.first(where: { Self.isSameOrBelow($0, protected) }) { return (rule, hit) }
                if reachesBelow, let path, Self.isSameOrBelow(protected, path) { return (rule, protected) }
            }
            // Enablement links: multi-user.target.wants/tend.service and the like.
            if rule.name == "units", let hit = paths.first(where: Self.isTendUnitLink) { return (rule, hit) }
        }
        return nil
    }

    /// `…/system/X.wants/tend.service` (or `.requires`, `.upholds`).
    private static func isTendUnitLink(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        guard parts.count >= 2, tendUnits.contains(String(parts[parts.count - 1])) else { return false }
        let folder = parts[parts.count - 2]
        let parent = "/" + parts.dropLast(2).joined(separator: "/")
        return unitDirectories.contains(parent) && [".wants", ".requires", ".upholds"].contains { folder.hasSuffix($0) }
    }

    /// Whether `path` is `ancestor` or lies below it, by whole names (/etc/tend-x is not below /etc/tend).
    static func isSameOrBelow(_ path: String, _ ancestor: String) -> Bool {
        path == ancestor || ancestor == "/" || path.hasPrefix(ancestor + "/")
    }

    private static func normalised(_ path: String) -> String {
        "/" + path.split(separator: "/").joined(separator: "/")
    }

    private static func unique(_ paths: [String]) -> [String] {
        var seen: Set<String> = []
        return paths.filter { seen.insert($0).inserted }
    }
}
