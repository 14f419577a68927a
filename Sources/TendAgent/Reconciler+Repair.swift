import Logging
public import TendCore
import TendSpec
import FoundationEssentials

// The agent's repair of what a watch saw drift, between full runs.
extension Reconciler {
    /// A run limited to `scope` (`Mode.repair`; nil for every resource), under the lock already
    /// taken: the same Observe, Plan and Apply as a full run, with the enforced catalog and facts.
    func repair(_ scope: Set<ResourceID>?, events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) {
        guard let kept = caches.catalogs?.current else {
            throw ReconcileFailure(.usage, "no configuration applied yet to repair against")
        }
        result.sourceDescription = kept.sourceDescription
        result.commit = kept.origin.commit
        if let good = state(for: .apply).read(.lastGood, as: CommitRecord.self), good.commit == kept.origin.commit { result.commitInfo = good }
        result.resourceCount = kept.catalog.entries.count
        var logger = self.logger
        if let commit = kept.origin.commit { logger[metadataKey: "commit"] = "\(commit)" }
        let (services, unreachable) = await Self.serviceManager(for: root)
        if let unreachable { result.note(unreachable, events) }
        let host: HostReader
        do {
            host = try HostReader(root: root, services: services)
            host.statCache = caches.stat
            host.servicesUnreachable = unreachable
        } catch {
            throw ReconcileFailure(.unusableHost, error.description)
        }
        let planner = Planner(catalog: kept.catalog, origin: kept.origin, sourceDescription: kept.sourceDescription, facts: kept.facts, tendVersion: tendVersion)
        let executor = Executor(catalog: kept.catalog, logger: logger)
        // A repair never prunes: what is no longer declared goes in a full run, under the prune
        // budget (`prune`), which a repair does not weigh; so the retired are out of its scope.
        let retired = kept.catalog.retired
        let inScope = retired.isEmpty ? scope : (scope ?? Set(kept.catalog.entries.map(\.id))).subtracting(retired)
        let plan = await planner.plan(host: host, scope: inScope)
        result.plan = plan
        do {
            result.removedLeftovers = try executor.removeLeftovers(host: host, scope: inScope)
            if plan.hasChanges || !plan.errors.isEmpty {
                events.applying(plan)
                result.report = try await executor.apply(plan, host: host, services: services, stop: events.shouldStop, toolOutput: events.toolOutput, progress: events.step)
            }
        } catch {
            throw ReconcileFailure(.unusableHost, error.description)
        }
        defer { Self.queueJobsAfterRun(&result, services: services, events: events) }
        let done = Set((result.report?.results ?? []).filter { $0.outcome == .done }.map(\.id))
        guard !done.isEmpty, let commit = kept.origin.commit else { return }
        // What tend changed, and when: `tend blame` names the repair.
        let state = state(for: .apply)
        var inventory = state.read(.inventory, as: Inventory.self) { result.note($0, events) } ?? Inventory()
        let now = Date()
        for id in done where inventory.resources[id.description] != nil {
            inventory.resources[id.description]?.changed = now
            inventory.resources[id.description]?.changedBy = commit
        }
        do {
            try state.writeInventory(inventory)
        } catch {
            throw ReconcileFailure(.unusableHost, "repaired, but cannot record it in the state directory: \(error)")
        }
    }

}
