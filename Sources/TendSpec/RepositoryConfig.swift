internal import Glibc

/// The decoded `tend.yaml`: which manifests apply to which hosts, and the vars.
public struct RepositoryConfig: Sendable {
    /// Repository-wide vars, for templates.
    public var vars: YAMLNode?
    /// `vars_files:`: files of repository-wide vars, merged in order before `vars`.
    public var varsFiles: [Located<String>] = []
    /// `vars_schema:`: the vars the repository knows, if it says.
    public var varsSchema: VarSchema?
    /// The host entries in the order written.
    public var hosts: [HostEntry]
    /// `prune:`: resources that an earlier apply managed and this commit no longer declares are
    /// removed, at most `maximum` of them at once (nil: 10% of what is managed, at least 5).
    public var prune: Prune?
    /// `rollout:`: the waves in which a new commit reaches the fleet; nil takes it everywhere at once.
    public var rollout: Rollout?

    public struct Prune: Sendable {
        public var maximum: Int?
        public var location: SourceLocation

        public init(maximum: Int?, location: SourceLocation) {
            self.maximum = maximum
            self.location = location
        }

        /// How many may go at once out of `managed` resources.
        public func limit(managed: Int) -> Int { maximum ?? max(5, managed / 10) }
    }

    public init(vars: YAMLNode? = nil, hosts: [HostEntry]) {
        self.vars = vars
        self.hosts = hosts
    }

    /// The manifest folders (and files) that apply to a host with these facts, each once, in the
    /// order the host entries name them.
    public func applied(to facts: HostFacts) -> [String] {
        var seen: Set<String> = []
        var result: [String] = []
        for entry in hosts where entry.match?.matches(facts) ?? true {
            for path in entry.apply where seen.insert(path.value).inserted {
                result.append(path.value)
            }
        }
        return result
    }

    /// The layers of vars for a host with these facts, lowest first: the schema's defaults, the
    /// repository's var files and `vars`, then each matching entry's var files and `vars`. Each
    /// is a mapping; `varFiles` holds the files' contents by path.
    public func varLayers(for facts: HostFacts, varFiles: [String: YAMLNode]) -> [YAMLNode] {
        var layers: [YAMLNode] = []
        if let schema = varsSchema {
            let defaults = schema.vars.sorted { $0.key < $1.key }.compactMap { name, declared in
                declared.defaultValue.map { YAMLPair(key: YAMLNode(.scalar(YAMLScalar(name)), at: declared.location), value: $0) }
            }
            if !defaults.isEmpty { layers.append(YAMLNode(.mapping(defaults), at: defaults[0].key.location)) }
        }
        layers += varsFiles.compactMap { varFiles[$0.value] }
        if let vars { layers.append(vars) }
        for entry in hosts where entry.match?.matches(facts) ?? true {
            layers += entry.varsFiles.compactMap { varFiles[$0.value] }
            if let vars = entry.vars { layers.append(vars) }
        }
        return layers
    }

    /// The vars of a host with these facts: its layers (`varLayers`) merged, a later layer
    /// winning; two mappings merge key by key at every depth, anything else is replaced whole.
    public func vars(for facts: HostFacts, varFiles: [String: YAMLNode]) -> [String: YAMLNode] {
        var merged: [String: YAMLNode] = [:]
        for layer in varLayers(for: facts, varFiles: varFiles) {
            for pair in layer.mapping ?? [] {
                if let key = pair.keyText { merged[key] = Self.merged(merged[key], pair.value) }
            }
        }
        return merged
    }

    /// `new` over `old`: two mappings merge key by key, at every depth; anything else is replaced.
    private static func merged(_ old: YAMLNode?, _ new: YAMLNode) -> YAMLNode {
        guard let old, let oldPairs = old.mapping, let newPairs = new.mapping else { return new }
        var pairs = oldPairs
        var index: [String: Int] = [:]
        for (position, pair) in pairs.enumerated() { if let key = pair.keyText { index[key] = position } }
        for pair in newPairs {
            if let key = pair.keyText, let position = index[key] {
                pairs[position].value = merged(pairs[position].value, pair.value)
            } else {
                if let key = pair.keyText { index[key] = pairs.count }
                pairs.append(pair)
            }
        }
        return YAMLNode(.mapping(pairs), at: new.location, tag: new.tag)
    }

    /// Every folder that any host entry names, each once.
    public var allApplied: [Located<String>] {
        var seen: Set<String> = []
        return hosts.flatMap(\.apply).filter { seen.insert($0.value).inserted }
    }
}

/// One entry of `hosts:`: a selector and what it applies.
public struct HostEntry: Sendable {
    public var match: HostMatch?
    public var apply: [Located<String>]
    public var vars: YAMLNode?
    /// `vars_files:`: files of vars for the hosts this entry matches, merged in order before its
    /// `vars`.
    public var varsFiles: [Located<String>] = []
    /// `health:`: checked on the hosts this entry matches.
    public var health: [HealthCheck]
    public var location: SourceLocation

    public init(match: HostMatch?, apply: [Located<String>], vars: YAMLNode?, health: [HealthCheck] = [], location: SourceLocation) {
        self.match = match
        self.apply = apply
        self.vars = vars
        self.health = health
        self.location = location
    }
}

/// `match:` of a host entry; every condition given must hold.
public struct HostMatch: Sendable {
    /// Shell-style globs; the hostname must match one of them.
    public var hostnames: [String]?
    /// Labels the host must carry with exactly these values.
    public var labels: [String: String]
    /// Operating system ids (`debian`, `ubuntu`); the host's ID or one of its ID_LIKE must be one.
    public var os: [String]?
    /// `facts:`: for each fact named (`architecture`, `virtualization`, `codename`), shell globs,
    /// one of which its value must match.
    public var facts: [String: [String]] = [:]

    public init(hostnames: [String]? = nil, labels: [String: String] = [:], os: [String]? = nil) {
        self.hostnames = hostnames
        self.labels = labels
        self.os = os
    }

    public func matches(_ facts: HostFacts) -> Bool {
        if let hostnames, !hostnames.contains(where: { fnmatch($0, facts.hostname, 0) == 0 }) { return false }
        for (key, value) in labels where facts.labels[key] != value { return false }
        if let os, !os.contains(where: { $0 == facts.os || facts.osLike.contains($0) }) { return false }
        if !self.facts.isEmpty {
            let known = facts.named
            for (name, globs) in self.facts {
                // A fact the host does not know matches nothing, not even `*`.
                guard let value = known.first(where: { $0.name == name })?.value else { return false }
                if !globs.contains(where: { fnmatch($0, value, 0) == 0 }) { return false }
            }
        }
        return true
    }
}

/// What tend knows about a host: what selection (`match:`) and templates (`{{host.NAME}}`)
/// use. Gathered once a run (`Facts.gather`); `tend facts` prints them.
public struct HostFacts: Sendable, Codable, Hashable {
    public var hostname: String
    /// `ID` from os-release (`debian`).
    public var os: String
    /// `ID_LIKE` from os-release.
    public var osLike: [String]
    /// `VERSION_ID` from os-release.
    public var osVersion: String
    /// Labels given to the host by its operator.
    public var labels: [String: String]
    /// `VERSION_CODENAME` from os-release (`bookworm`).
    public var codename: String?
    /// Debian's name of the machine's architecture (`amd64`, `arm64`).
    public var architecture: String?
    /// The memory the kernel manages, in MiB.
    public var memoryMB: Int?
    /// The CPUs online.
    public var cpus: Int?
    /// The address the host reaches others from by default (its default route's source).
    public var ipv4: String?
    public var ipv6: String?
    /// The root's /etc/machine-id.
    public var machineID: String?
    /// The DNS domain: the host name's after its first dot, else resolv.conf's `domain` or
    /// first `search`.
    public var domain: String?
    /// What the host runs in, named as `systemd-detect-virt` names it (`none`, `kvm`, `qemu`,
    /// `vmware`, `microsoft`, `xen`, `amazon`, `google`, `vm` when unknown; `systemd-nspawn`,
    /// `docker`, `podman`, `lxc` for containers).
    public var virtualization: String?

    enum CodingKeys: String, CodingKey {
        case hostname, os, osLike = "os_like", osVersion = "os_version", labels, codename, architecture
        case memoryMB = "memory_mb", cpus, ipv4, ipv6, machineID = "machine_id", domain, virtualization
    }

    public init(hostname: String, os: String = "", osLike: [String] = [], osVersion: String = "", labels: [String: String] = [:]) {
        self.hostname = hostname
        self.os = os
        self.osLike = osLike
        self.osVersion = osVersion
        self.labels = labels
    }

    /// Every fact with a single value, by the name templates and `match: {facts:}` use
    /// (`labels` and `os_like` aside).
    public var named: [(name: String, value: String?)] {
        [("hostname", hostname), ("fqdn", domain.flatMap { $0.isEmpty || hostname.contains(".") ? nil : "\(hostname).\($0)" } ?? hostname),
         ("os", os), ("os_version", osVersion), ("codename", codename), ("architecture", architecture),
         ("memory_mb", memoryMB.map(String.init)), ("cpus", cpus.map(String.init)), ("ipv4", ipv4), ("ipv6", ipv6),
         ("machine_id", machineID), ("domain", domain), ("virtualization", virtualization)]
    }

    /// The names of `named`.
    public static let names = HostFacts(hostname: "").named.map(\.name)

    /// The facts as one mapping (`{{host.memory_mb}}` in an entry that expands); a fact not
    /// known is an empty text, and `labels` a mapping.
    public func node(at location: SourceLocation) -> YAMLNode {
        func scalar(_ text: String) -> YAMLNode { YAMLNode(.scalar(YAMLScalar(text, style: .doubleQuoted)), at: location) }
        var pairs = named.map { YAMLPair(key: scalar($0.name), value: scalar($0.value ?? "")) }
        pairs.append(YAMLPair(key: scalar("labels"), value: YAMLNode(.mapping(labels.sorted { $0.key < $1.key }.map {
            YAMLPair(key: scalar($0.key), value: scalar($0.value))
        }), at: location)))
        return YAMLNode(.mapping(pairs), at: location)
    }
}
