public import TendSpec
internal import Glibc

/// Load, Select and Catalog in one call: the catalog of this host from one snapshot.
public enum Configuration {
    /// Loads the whole repository, reporting every problem in it; then builds the catalog of the
    /// host described by `facts`. Throws every problem found, in file order.
    public static func catalog(from snapshot: any Snapshot, providers: ProviderSet, facts: HostFacts) throws(ConfigurationError) -> Catalog {
        let loaded = RepositoryLoader(snapshot: snapshot, kinds: providers.kinds).load()
        var diagnostics = loaded.diagnostics
        // Every declaration of every manifest is decoded, so that an error in a manifest that
        // applies to other hosts is still found here.
        let selected = loaded.declarations(for: facts)
        let selectedManifests = Set(selected.map(\.manifest))
        let others = loaded.manifests.values.filter { !selectedManifests.contains($0.path) }.flatMap(\.resources)
        let variables = TemplateVariables(config: loaded.config, facts: facts)
        diagnostics.append(contentsOf: providers.check(others, snapshot: snapshot, variables: variables))
        var catalog: Catalog?
        do {
            catalog = try Catalog.build(selected, providers: providers, snapshot: snapshot, variables: variables)
        } catch {
            diagnostics.append(contentsOf: error.diagnostics)
        }
        guard let catalog, diagnostics.isEmpty else { throw ConfigurationError(diagnostics.sorted) }
        return catalog
    }
}

/// What tend knows about the host it plans for: its name, its operating system, its labels.
public enum Facts {
    /// The facts of the host under `host`'s root. The hostname is the machine's own unless given;
    /// the operating system is read from the root's os-release.
    public static func gather(host: HostReader, hostname: String? = nil, labels: [String: String] = [:]) -> HostFacts {
        var facts = HostFacts(hostname: hostname ?? systemHostname(), labels: labels)
        let release = (try? host.read("/etc/os-release")) ?? (try? host.read("/usr/lib/os-release")) ?? []
        for line in String(decoding: release, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals]
            var value = String(line[line.index(after: equals)...])
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            switch key {
            case "ID": facts.os = value
            case "ID_LIKE": facts.osLike = value.split(separator: " ").map(String.init)
            case "VERSION_ID": facts.osVersion = value
            default: break
            }
        }
        return facts
    }

    private static func systemHostname() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let ok = buffer.withUnsafeMutableBytes { gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) } == 0
        return ok ? String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self) : "localhost"
    }
}
