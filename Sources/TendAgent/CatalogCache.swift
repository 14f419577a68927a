import Synchronization
public import TendCore
public import TendSpec

/// The catalog of the last run, kept by the agent between cycles: a commit is immutable, so while
/// the commit, the host's facts and the inventory that `prune:` reads stay the same, so does the
/// catalog, and a cycle skips loading, parsing and decoding the whole repository again. Folder
/// sources, which can change under the same name, are never reused; the catalog a cycle applied,
/// of any source, is what the watches follow and what a repair plans with (`current`).
public final class CatalogCache: Sendable {
    struct Key: Equatable, Sendable {
        var origin: SnapshotOrigin
        var facts: HostFacts
        /// The inventory's resource ids, as written (parsing 10,000 of them each check would cost more).
        var managed: Set<String>
        /// Whether the host lets the repository manage tend itself (`ProtectedPaths`).
        var selfManagement: Bool
    }

    /// What a repair needs besides the catalog: where it came from, and the facts it was made for.
    public struct Kept: Sendable {
        var key: Key
        public var catalog: Catalog
        public var sourceDescription: String
        /// Which build of a catalog this is: a new number each time one is built, not reused.
        var generation: Int
        public var origin: SnapshotOrigin { key.origin }
        var facts: HostFacts { key.facts }
    }

    private let kept = Mutex<Kept?>(nil)
    /// The catalog of the last run, reused or built, of any source (a folder's too).
    private let latest = Mutex<Kept?>(nil)
    /// The catalog that the last full cycle applied, once one did: the watches follow it, and a
    /// repair plans with it.
    private let enforced = Mutex<Kept?>(nil)
    private let builds = Mutex(0)

    public init() {}

    /// The kept catalog when `key` matches, else `build`'s, kept for next time if it has a commit.
    func catalog(for key: Key, description: String, build: () throws(ConfigurationError) -> Catalog) throws(ConfigurationError) -> Catalog {
        if let kept = kept.withLock({ $0 }), kept.key == key {
            latest.withLock { $0 = kept }
            return kept.catalog
        }
        let generation = builds.withLock { count in
            count += 1
            return count
        }
        let built = Kept(key: key, catalog: try build(), sourceDescription: description, generation: generation)
        // A catalog with a secret this host could not open is built again next time: the key may
        // be installed meanwhile, or age may have run out of time on a busy host.
        kept.withLock { $0 = key.origin.commit == nil || built.catalog.hasUnopenedSecrets ? nil : built }
        latest.withLock { $0 = built }
        return built.catalog
    }

    /// Marks the catalog of `origin`, of the run that just applied it, as the one enforced.
    func enforce(_ origin: SnapshotOrigin) {
        let current = latest.withLock { $0 }
        enforced.withLock { $0 = current?.key.origin == origin ? current : nil }
    }

    /// The catalog last applied by a full cycle, if any.
    public var current: Kept? { enforced.withLock { $0 } }
}
