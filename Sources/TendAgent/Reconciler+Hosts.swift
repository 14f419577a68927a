public import TendCore
public import TendSpec

// `tend validate --all-hosts`: the Source stage once, then Load and Catalog for each host a
// hosts file lists, as each host's own run would make its catalog.
extension Reconciler {
    /// What validating every host found.
    public struct HostsValidation: Sendable {
        /// One host's catalog: how many resources it holds, or every problem in it.
        public struct Host: Sendable {
            public var host: HostsFile.Host
            public var resourceCount: Int
            public var diagnostics: [Diagnostic]
        }

        public var sourceDescription = ""
        public var hosts: [Host] = []
        /// Why no host could be validated: the source, or the hosts file.
        public var failure: ReconcileFailure?
        public var notes: [String] = []

        public var valid: Bool { failure == nil && hosts.allSatisfy(\.diagnostics.isEmpty) }
    }

    /// Validates each host of `hostsFile` (its bytes and the path to name in messages), or of
    /// the repository's own `hosts.yaml` when nil. Facts a host does not give are this machine's.
    public func validateHosts(_ hostsFile: (bytes: [UInt8], path: String)?, events: ReconcileEvents = ReconcileEvents()) async -> HostsValidation {
        var validation = HostsValidation()
        var result = ReconcileResult()
        defer { validation.notes = result.notes }
        let opened: Opened
        do {
            opened = try await open(.validate, root: root, events: events, into: &result)
        } catch {
            validation.failure = error
            return validation
        }
        validation.sourceDescription = opened.snapshot.description
        let prefix = opened.snapshot.displayPrefix
        var diagnostics = Diagnostics()
        let list: HostsFile
        if let hostsFile {
            list = HostsFile.decode(hostsFile.bytes, file: hostsFile.path, &diagnostics)
        } else {
            guard let bytes = try? opened.snapshot.read(HostsFile.name) else {
                validation.failure = ReconcileFailure(.usage, "\(opened.snapshot.description) has no \(HostsFile.name) at its top: list the fleet's hosts there, or name a file of them with --hosts")
                return validation
            }
            list = HostsFile.decode(bytes, file: HostsFile.name, &diagnostics)
            let shown = diagnostics.all.map { $0.displayed(under: prefix) }
            diagnostics = Diagnostics()
            diagnostics.append(contentsOf: shown)
        }
        guard diagnostics.isEmpty else {
            validation.failure = ReconcileFailure(.invalidConfiguration, "the hosts file is invalid: \(diagnostics.all.count) problem\(diagnostics.all.count == 1 ? "" : "s")",
                                                  diagnostics: diagnostics.sorted)
            return validation
        }
        let machine = facts() ?? HostFacts(hostname: "")
        // Loaded once; each host's catalog is then built from it, as that host's run would.
        let loaded = RepositoryLoader(snapshot: opened.snapshot, kinds: providers.kinds).load()
        for host in list.hosts {
            do {
                let catalog = try Configuration.catalog(loaded: loaded, snapshot: opened.snapshot, providers: providers, facts: host.applied(to: machine),
                                                        protected: protectedPaths(root: root, selfManagement: host.selfManage))
                validation.hosts.append(.init(host: host, resourceCount: catalog.entries.count, diagnostics: []))
            } catch {
                validation.hosts.append(.init(host: host, resourceCount: 0, diagnostics: error.shown.map { $0.displayed(under: prefix) }))
            }
        }
        return validation
    }
}
