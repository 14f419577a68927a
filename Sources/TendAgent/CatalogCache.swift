import Synchronization
public import TendCore
public import TendSpec

/// The catalog of the last run, kept by the agent between cycles: a commit is immutable, so while
/// the commit, the host's facts and the inventory that `prune:` reads stay the same, so does the
/// catalog, and a cycle skips loading, parsing and decoding the whole repository again. Folder
/// sources, which can change under the same name, are never kept.
public final class CatalogCache: Sendable {
    struct Key: Equatable, Sendable {
        var origin: SnapshotOrigin
        var facts: HostFacts
        var managed: Set<ResourceID>
    }

    private let kept = Mutex<(key: Key, catalog: Catalog)?>(nil)

    public init() {}

    /// The kept catalog when `key` matches, else `build`'s, kept for next time if it has a commit.
    func catalog(for key: Key, build: () throws(ConfigurationError) -> Catalog) throws(ConfigurationError) -> Catalog {
        if let kept = kept.withLock({ $0 }), kept.key == key { return kept.catalog }
        let catalog = try build()
        kept.withLock { $0 = key.origin.commit == nil ? nil : (key, catalog) }
        return catalog
    }
}
