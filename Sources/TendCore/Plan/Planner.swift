public import TendSpec

/// Observe and Plan: reads the host for every resource of a catalog and works out the plan.
///
/// Observing goes through a `HostReader`, which cannot change the host; planning itself is a pure
/// function of the catalog and the observations.
public struct Planner: Sendable {
    public let catalog: Catalog
    /// Where the catalog came from, and how people name it, for the plan.
    public let origin: SnapshotOrigin
    public let sourceDescription: String
    public let facts: HostFacts
    public let tendVersion: String

    public init(catalog: Catalog, origin: SnapshotOrigin, sourceDescription: String, facts: HostFacts, tendVersion: String) {
        self.catalog = catalog
        self.origin = origin
        self.sourceDescription = sourceDescription
        self.facts = facts
        self.tendVersion = tendVersion
    }

    public init(catalog: Catalog, snapshot: any Snapshot, facts: HostFacts, tendVersion: String) {
        self.init(catalog: catalog, origin: snapshot.origin, sourceDescription: snapshot.description, facts: facts, tendVersion: tendVersion)
    }

    /// Observes the host and plans every resource of the catalog; with `scope`, only those
    /// resources and what depends on them or is notified by them (the agent's repair of what a
    /// watch saw change), the rest taken as needing nothing.
    public func plan(host: HostReader, scope: Set<ResourceID>? = nil) async -> Plan {
        let context = catalog.planContext
        host.declaredResources = catalog.declaredPresent
        let inScope = scope.map { catalog.positions(reaching: $0) }
        let prefetchErrors = await prefetch(host: host, inScope: inScope)
        var own = Self.observeAndPlan(catalog.entries, host: host, context: context, inScope: inScope)
        for (position, entry) in catalog.entries.enumerated() where inScope?[position] ?? true {
            if let error = prefetchErrors[entry.id.kind] {
                own.steps[position] = Plan.Step(id: entry.id, change: nil, error: error.description, dependsOn: [],
                                                desiredDigest: entry.resource.desiredDigest(), observedFingerprint: nil, instance: entry.instance)
                own.notifiable[position] = nil
            }
        }
        let steps = Self.link(catalog.entries, own: own, host: host, context: context) { inScope?[$0] ?? true }
        return Plan(tendVersion: tendVersion, source: origin, sourceDescription: sourceDescription,
                    root: host.root, facts: facts, resourceCount: catalog.entries.count, steps: steps)
    }

    /// Puts each entry's own step (nil where it needs nothing) in the catalog's order as a plan's
    /// steps. A resource that a changing step notifies is planned again with its notifiers
    /// (`notified(by:)`), converged or not, where `notifiable` allows it (within a repair's scope),
    /// and then notifies in turn if it changes; notifiers always come first. Each step depends on
    /// the steps it requires, directly or through resources that need nothing. The planner and
    /// the executor's late pass (what a package step changed) both link their steps here, so a
    /// notification travels the same way in both.
    static func link(_ entries: [Catalog.Entry], own observation: Observation, host: HostReader, context: PlanContext,
                     notifiable: (Int) -> Bool) -> [Plan.Step] {
        var steps: [Plan.Step] = []
        // For each resource (by position), the positions of the steps it depends on, directly or
        // through resources that need no change.
        var stepAncestors = [[Int]](repeating: [], count: entries.count)
        var isStep = [Bool](repeating: false, count: entries.count)
        // Notifiers that change, by the resource they notify.
        var notifications: [ResourceID: [Notifier]] = [:]
        for (position, entry) in entries.enumerated() {
            var ancestors: [Int] = []
            for dependency in entry.dependencyPositions {
                for ancestor in stepAncestors[dependency] where !ancestors.contains(ancestor) { ancestors.append(ancestor) }
                if isStep[dependency], !ancestors.contains(dependency) { ancestors.append(dependency) }
            }
            stepAncestors[position] = ancestors
            var own = observation.steps[position]
            if let notifiers = notifications[entry.id], notifiable(position) {
                own = if let observed = observation.notifiable[position] {
                    step(for: entry, observed: observed, context: context, notifiedBy: notifiers)
                } else {
                    step(for: entry, host: host, context: context, notifiedBy: notifiers)
                }
            }
            guard var step = own else { continue }
            if step.change != nil {
                for target in entry.notify { notifications[target, default: []].append(entry.notifier(of: target)) }
            }
            step.dependsOn = ancestors.sorted().map { entries[$0].id }
            steps.append(step)
            isStep[position] = true
        }
        return steps
    }

    /// Lets each kind read in bulk what observing needs (for the entries in scope); returns the
    /// kinds whose bulk read failed.
    public func prefetch(host: HostReader, inScope: [Bool]? = nil) async -> [String: HostError] {
        var byKind: [String: [any BoundResource]] = [:]
        var order: [String] = []
        for (position, entry) in catalog.entries.enumerated() where entry.resource.prefetches && inScope?[position] ?? true {
            if byKind[entry.id.kind] == nil { order.append(entry.id.kind) }
            byKind[entry.id.kind, default: []].append(entry.resource)
        }
        var errors: [String: HostError] = [:]
        for kind in order {
            guard let resources = byKind[kind], let first = resources.first else { continue }
            do {
                try await first.prefetch(with: resources, host: host)
            } catch {
                errors[kind] = error
            }
        }
        return errors
    }

    /// Observes and plans every entry; nil where nothing is needed. Large catalogs are observed by
    /// several threads, each with its own `HostReader` over the same root, on its own contiguous
    /// slice (so that one folder's files share one reader's open folders).
    static func observeAndPlan(_ entries: [Catalog.Entry], host: HostReader, context: PlanContext, inScope: [Bool]? = nil) -> Observation {
        var results = [Plan.Step?](repeating: nil, count: entries.count)
        var kept: [Int: any ObservedState] = [:]
        var parallel: [Int] = []
        for (index, entry) in entries.enumerated() where inScope?[index] ?? true {
            if entry.resource.observesInParallel {
                parallel.append(index)
            } else {
                let (step, observed) = observe(entry, host: host, context: context)
                results[index] = step
                if entry.resource.acceptsNotifications { kept[index] = observed }
            }
        }
        let workers = host.isPlain ? ParallelSlices.workers(for: parallel.count, minimum: 512) : 1
        var readers = [host]
        for _ in 1..<workers {
            guard let reader = try? HostReader(root: host.root) else { break }
            reader.declaredResources = host.declaredResources
            reader.statCache = host.statCache
            reader.shareBulkReads(of: host)
            readers.append(reader)
        }
        let indices = parallel
        let shared = Readers(readers: readers)
        let slices = ParallelSlices.map(indices.count, workers: readers.count) { worker, range in
            range.map { step(for: entries[indices[$0]], host: shared.readers[worker], context: context) }
        }
        for (slot, step) in slices.joined().enumerated() { results[indices[slot]] = step }
        return Observation(steps: results, notifiable: kept)
    }

    /// What `observeAndPlan` found: each entry's own step (nil where nothing is needed), and what
    /// was observed of those a notification may plan again (`acceptsNotifications`), by
    /// position, so that `link` plans them with their notifiers without observing them twice.
    struct Observation {
        var steps: [Plan.Step?]
        var notifiable: [Int: any ObservedState]
    }

    /// Observes and plans one resource; nil when it needs nothing.
    static func step(for entry: Catalog.Entry, host: HostReader, context: PlanContext, notifiedBy notifiers: [Notifier] = []) -> Plan.Step? {
        observe(entry, host: host, context: context, notifiedBy: notifiers).step
    }

    /// Observes and plans one resource: its step (nil when it needs nothing), and what was
    /// observed (nil when observing failed).
    static func observe(_ entry: Catalog.Entry, host: HostReader, context: PlanContext,
                        notifiedBy notifiers: [Notifier] = []) -> (step: Plan.Step?, observed: (any ObservedState)?) {
        let resource = entry.resource
        host.stepDependencies = entry.dependencies
        defer { host.stepDependencies = [] }
        do {
            let observed = try resource.observe(host)
            return (step(for: entry, observed: observed, context: context, notifiedBy: notifiers), observed)
        } catch {
            return (Plan.Step(id: entry.id, change: nil, error: error.description, dependsOn: [],
                              desiredDigest: resource.desiredDigest(), observedFingerprint: nil, instance: entry.instance), nil)
        }
    }

    /// Plans one resource from what was observed of it; nil when it needs nothing.
    static func step(for entry: Catalog.Entry, observed: any ObservedState, context: PlanContext, notifiedBy notifiers: [Notifier]) -> Plan.Step? {
        let resource = entry.resource
        var change = resource.plan(observed, context: context)
        if !notifiers.isEmpty { change = resource.notified(by: notifiers, observed: observed, planned: change) }
        guard let change else { return nil }
        var fingerprint = Digest()
        observed.fingerprint(into: &fingerprint)
        return Plan.Step(id: entry.id, change: change, error: nil, dependsOn: [],
                         desiredDigest: resource.desiredDigest(), observedFingerprint: fingerprint.finalize(), instance: entry.instance)
    }

    /// The steps of `plan` whose resource is no longer declared the same way, or whose host state
    /// is no longer what the plan observed; empty when the plan can be applied as it is.
    public func staleSteps(of plan: Plan, host: HostReader) async -> [StaleStep] {
        let context = catalog.planContext
        host.declaredResources = catalog.declaredPresent
        _ = await prefetch(host: host)
        var stale: [StaleStep] = []
        for step in plan.steps {
            guard let entry = catalog[step.id] else {
                stale.append(StaleStep(id: step.id, reason: "no longer declared by the configuration"))
                continue
            }
            if entry.resource.desiredDigest() != step.desiredDigest {
                stale.append(StaleStep(id: step.id, reason: "declared differently than when the plan was made"))
                continue
            }
            guard step.change != nil else { continue }
            let now = Self.step(for: entry, host: host, context: context)
            if now?.observedFingerprint != step.observedFingerprint {
                stale.append(StaleStep(id: step.id, reason: "changed on the host since the plan was made"))
            }
        }
        return stale
    }
}

/// The observing threads' readers. Unchecked Sendable because each thread uses only its own.
private struct Readers: @unchecked Sendable {
    let readers: [HostReader]
}

/// A step of a saved plan that no longer holds.
public struct StaleStep: Sendable, Hashable, CustomStringConvertible {
    public var id: ResourceID
    public var reason: String

    public var description: String { "\(id): \(reason)" }
}
