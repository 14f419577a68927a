/// `hosts.yaml`: the fleet's hosts, each with its labels and any facts to take as given, so that
/// `tend validate --all-hosts` can check every host's catalog at once (in CI, before a commit
/// reaches any of them).
///
/// ```yaml
/// - { hostname: web-01, labels: { env: prod } }
/// - hostname: db-11
///   labels: { env: prod }
///   facts: { memory_mb: 65536, cpus: 16 }
/// - { hostname: img-web, self_manage: true }
/// ```
public struct HostsFile: Sendable {
    /// Its name at the repository's top, where `--all-hosts` looks unless `--hosts` names one.
    public static let name = "hosts.yaml"
    /// The most hosts one file lists.
    public static let maximumHosts = 10_000

    public struct Host: Sendable {
        public var hostname: String
        public var labels: [String: String]
        /// Facts to take as given (`memory_mb`, `architecture`, …), by name; the others are the
        /// machine's that validates.
        public var facts: [String: String]
        /// `self_manage: true`: the host opts in to tend managing its own files (agent.yaml's
        /// `self_manage`), so its catalog may declare them.
        public var selfManage = false
        public var location: SourceLocation

        /// `facts`, with this host's name, labels and given facts over them.
        public func applied(to facts: HostFacts) -> HostFacts {
            var result = facts
            result.hostname = hostname
            result.labels = labels
            for (name, value) in self.facts {
                switch name {
                case "os": result.os = value
                case "os_version": result.osVersion = value
                case "codename": result.codename = value
                case "architecture": result.architecture = value
                case "memory_mb": result.memoryMB = Int(value)
                case "cpus": result.cpus = Int(value)
                case "ipv4": result.ipv4 = value
                case "ipv6": result.ipv6 = value
                case "machine_id": result.machineID = value
                case "domain": result.domain = value
                case "virtualization": result.virtualization = value
                default: break
                }
            }
            return result
        }
    }

    public var hosts: [Host]

    /// The facts a host may give (`fqdn` and `hostname` come from its name).
    static let givenFacts = HostFacts.names.filter { $0 != "hostname" && $0 != "fqdn" }

    /// Reads a hosts file, reporting every problem at its `path:line:col`.
    public static func decode(_ bytes: [UInt8], file: String, _ diagnostics: inout Diagnostics) -> HostsFile {
        var result = HostsFile(hosts: [])
        guard bytes.count <= SnapshotLimits.yamlFileSize else {
            diagnostics.error("the file is \(bytes.count) bytes; tend reads YAML files of at most \(SnapshotLimits.yamlFileSize >> 20) MiB", at: SourceLocation(file: file, line: 1, column: 1))
            return result
        }
        let parsed = YAMLParser.parse(bytes, file: file)
        diagnostics.append(contentsOf: parsed.diagnostics)
        guard parsed.diagnostics.isEmpty else { return result }
        guard parsed.documents.count == 1, let items = parsed.documents[0].sequence else {
            diagnostics.error("a hosts file is one list of hosts ({hostname: web-01, labels: {env: prod}})", at: SourceLocation(file: file, line: 1, column: 1))
            return result
        }
        if items.count > maximumHosts {
            diagnostics.error("\(items.count) hosts; a hosts file lists at most \(maximumHosts)", at: items[maximumHosts].location)
            return result
        }
        var seen: [String: SourceLocation] = [:]
        for item in items {
            guard var reader = MappingReader(item, what: "a host", diagnostics: &diagnostics) else { continue }
            guard let nameNode = reader.take("hostname") else {
                diagnostics.error("a host needs a 'hostname'", at: item.location)
                continue
            }
            let labels = reader.take("labels")?.stringMap("'labels'", &diagnostics)?.mapValues(\.value) ?? [:]
            var facts: [String: String] = [:]
            if let node = reader.take("facts") {
                if let pairs = node.mapping {
                    for pair in pairs {
                        guard let name = pair.keyText else { continue }
                        guard givenFacts.contains(name) else {
                            var message = "unknown fact '\(name)' (facts: \(givenFacts.joined(separator: ", ")))"
                            if let near = Suggestion.nearest(to: name, in: givenFacts) { message += "; did you mean '\(near)'?" }
                            diagnostics.error(message, at: pair.key.location)
                            continue
                        }
                        if (name == "memory_mb" || name == "cpus"), pair.value.integer("'\(name)'", &diagnostics) == nil { continue }
                        if let value = pair.value.string("'\(name)'", &diagnostics) { facts[name] = value }
                    }
                } else {
                    diagnostics.error("'facts' must be a mapping of fact names to values, found \(node.kindDescription)", at: node.location)
                }
            }
            let selfManage = reader.take("self_manage")?.bool("'self_manage'", &diagnostics) ?? false
            reader.finish(&diagnostics, context: "a host")
            guard let hostname = nameNode.string("'hostname'", &diagnostics) else { continue }
            if let first = seen[hostname] {
                diagnostics.error("host '\(Printable.escaped(hostname))' is listed twice (first at \(first))", at: nameNode.location)
                continue
            }
            seen[hostname] = nameNode.location
            result.hosts.append(Host(hostname: hostname, labels: labels, facts: facts, selfManage: selfManage, location: nameNode.location))
        }
        return result
    }
}
