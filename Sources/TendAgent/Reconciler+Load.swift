import Logging
public import TendCore
public import TendGit
public import TendSpec
import TendSystemd
import TendProviders
import FoundationEssentials

// The Observe set-up and the Load and Catalog stages of a run.
extension Reconciler {
    /// The host as a run reads it: live, recorded for a snapshot, or replayed from one; and the
    /// service manager that a run changing it uses.
    struct Observing {
        var host: HostReader
        var services: (any ServiceManager)?
    }

    /// The reader of the host for `mode`: nothing of this machine for a preview, which reads its
    /// snapshot.
    func observe(_ mode: Mode, root: String, events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) -> Observing {
        if let replaying = mode.replaying { return Observing(host: HostReader(replaying: replaying.observed), services: nil) }
        var services: (any ServiceManager)?
        var unreachable: String?
        if mode.readsHost {
            (services, unreachable) = await Self.serviceManager(for: root)
            if let unreachable { result.note(unreachable, events) }
        }
        do {
            let host = try HostReader(root: root, services: services, recorder: mode.recorder)
            host.statCache = caches.stat
            if let unreachable { host.servicesUnreachable = unreachable }
            return Observing(host: host, services: services)
        } catch {
            throw ReconcileFailure(.unusableHost, error.description)
        }
    }

    /// This host's facts now, as a run would gather them; nil when the root cannot be read.
    func facts() -> HostFacts? {
        guard let host = try? HostReader(root: root) else { return nil }
        return Facts.gather(host: host, hostname: identity.hostname, labels: identity.labels)
    }

    /// What the Load and Catalog stages give the next: the catalog of this host, the facts it was
    /// made for, and what the last apply managed (read once, if asked for).
    struct Loaded {
        var catalog: Catalog
        var facts: HostFacts
        var inventory: LazyRecord<Inventory>
    }

    /// Loads the snapshot and builds this host's catalog (or takes the one the agent kept for the
    /// same commit, facts and inventory), refusing what tend protects, and checks its rollout.
    func load(_ mode: Mode, _ opened: Opened, observing: Observing, root: String, events: ReconcileEvents,
              into result: inout ReconcileResult) throws(ReconcileFailure) -> Loaded {
        result.sourceDescription = opened.snapshot.description
        let host = observing.host
        let facts = mode.saved?.facts ?? mode.replaying?.facts ?? Facts.gather(host: host, hostname: identity.hostname, labels: identity.labels)
        // What the last apply managed: `prune:` removes what is no longer declared. An apply reads
        // it (it records the next one); a plan only when tend.yaml says `prune:` (decoding 10,000
        // entries is a fifth of a no-op plan).
        let inventoryRecord = LazyRecord(enabled: mode.readsHost) { [state = state(for: mode), replaying = mode.replaying] problems in
            if let replaying { return replaying.inventory }
            return state.read(.inventory, as: Inventory.self) { problems.append($0) }
        }
        let inventory = mode.changesHost ? inventoryRecord.value : nil
        let catalog: Catalog
        do {
            let build = { () throws(ConfigurationError) -> Catalog in
                try Configuration.catalog(from: opened.snapshot, providers: self.providers, facts: facts, protected: protectedPaths(root: root),
                                          secrets: AgeSecrets(identity: identity.ageIdentity ?? AgeSecrets.hostKey(root: root)),
                                          managed: { inventoryRecord.value?.retirable ?? [:] })
            }
            if let catalogs = caches.catalogs {
                let key = CatalogCache.Key(origin: opened.snapshot.origin, facts: facts, managed: Set(inventory?.resources.keys ?? [:].keys),
                                           selfManagement: policy.selfManagement)
                catalog = try catalogs.catalog(for: key, description: opened.snapshot.description, build: build)
            } else {
                catalog = try build()
            }
            if let problem = catalog.pruneProblem { result.note(problem, events) }
        } catch {
            throw ReconcileFailure(.invalidConfiguration, "\(opened.snapshot.description) is invalid: \(error.diagnostics.count) problem\(error.diagnostics.count == 1 ? "" : "s"); nothing was changed",
                                   diagnostics: error.shown.map { $0.displayed(under: opened.snapshot.displayPrefix) })
        }
        result.resourceCount = catalog.entries.count
        OneShot.keep(catalog)
        mode.recorder?.hide(catalog.sensitivePaths)
        mode.recorder?.omit(catalog.secretPaths)
        if let rollout = catalog.rollout, let git = opened.snapshot as? GitSnapshot {
            try checkRollout(rollout, commit: git, lastGood: opened.lastGood, host: host, into: &result)
        }
        return Loaded(catalog: catalog, facts: facts, inventory: inventoryRecord)
    }

    /// What no configuration may declare on `root`, and what only a self-managed host may.
    func protectedPaths(root: String, selfManagement: Bool? = nil) -> ProtectedPaths {
        let binary = Self.canonical("/proc/self/exe")
        return ProtectedPaths(root: Self.canonical(root), stateDirectory: Self.canonical(source.stateDirectory),
                              binary: binary == "/proc/self/exe" ? nil : binary, selfManagement: selfManagement ?? policy.selfManagement)
    }

    /// Where `commit` stands in its `rollout` for this host; with `followsRollout`, ends the run
    /// with `.notDue` while this host's wave is not due and there is a commit to keep enforcing.
    private func checkRollout(_ rollout: Rollout, commit: GitSnapshot, lastGood: String?, host: HostReader,
                              into result: inout ReconcileResult) throws(ReconcileFailure) {
        let machine = identity.machineID ?? host.machineID
        let position = Rollout.position(machineID: machine)
        let wave = rollout.wave(at: position)
        let committed = Date(timeIntervalSince1970: Double(commit.commit.committed))
        let due = committed + DurationText.seconds(rollout.waves[wave].after)
        result.rolloutPolicy = (rollout, committed)
        result.rollout = ReconcileResult.RolloutTiming(wave: wave + 1, waves: rollout.waves.count, share: rollout.waves[wave].share, due: due)
        guard policy.followsRollout, source.pinnedCommit == nil, Date() < due, !machine.isEmpty,
              let last = lastGood, last != commit.commit.id.description else { return }
        throw ReconcileFailure(.notDue, "commit \(commit.commit.id.short) reaches this host at \(due.formatted(Date.ISO8601FormatStyle())) (wave \(wave + 1) of \(rollout.waves.count): \(Rollout.format(share: rollout.waves[wave].share)) of the fleet, \(DurationText.format(rollout.waves[wave].after)) after the commit); enforcing \(last.prefix(7)) until then")
    }

}

/// A record read the first time it is asked for, if ever. Unchecked Sendable without a lock: a
/// run asks for it on its own task only, one call after another (the catalog's build closure, then
/// the prune); it crosses no thread boundary while in use.
final class LazyRecord<Value>: @unchecked Sendable {
    private let read: (inout [String]) -> Value?
    private let enabled: Bool
    private var loaded: Value??
    /// What reading it said, for the run's notes.
    private(set) var problems: [String] = []

    init(enabled: Bool, read: @escaping (inout [String]) -> Value?) {
        self.enabled = enabled
        self.read = read
    }

    var value: Value? {
        if let loaded { return loaded }
        let value = enabled ? read(&problems) : nil
        loaded = .some(value)
        return value
    }
}
