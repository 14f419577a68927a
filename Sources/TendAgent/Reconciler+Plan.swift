public import TendCore
public import TendSpec
import FoundationEssentials

// The Observe and Plan stages of a run.
extension Reconciler {
    /// Observes the host and plans: exactly a saved plan while the host still matches it, or a new
    /// plan, made after the caches planning reads were refreshed when the run applies it, with
    /// the removals `prune:` asks for.
    func makePlan(_ mode: Mode, _ loaded: Loaded, _ opened: Opened, observing: Observing, executor: Executor, root: String,
                  events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) -> Plan {
        let planner = Planner(catalog: loaded.catalog, snapshot: opened.snapshot, facts: loaded.facts, tendVersion: tendVersion)
        let host = observing.host
        if let saved = mode.saved {
            let stale = await planner.staleSteps(of: saved, host: host)
            guard stale.isEmpty else {
                throw ReconcileFailure(.stalePlan, "the saved plan no longer matches; nothing was changed", staleSteps: stale.map(\.description))
            }
            return saved
        }
        if mode.changesHost {
            // Caches the plan reads (apt's package lists) are refreshed first, so that the plan
            // applied is made from them; a saved plan is applied as it was made.
            do {
                for warning in try await executor.refresh(host: host, services: observing.services, toolOutput: events.toolOutput) {
                    result.note(warning, events)
                }
            } catch {
                result.note("\(error); planning with what is there", events)
            }
        }
        let planned = await planner.plan(host: host)
        result.assumedAbsent = host.unrecorded.sorted()
        if mode.recorder != nil { Self.recordWhatPreviewsNeed(loaded.catalog, host: host) }
        let inventory = loaded.catalog.retired.isEmpty ? Inventory() : loaded.inventory.value ?? Inventory()
        return prune(planned, catalog: loaded.catalog, inventory: inventory, into: &result, events: events)
    }

    /// Reads, for the snapshot being recorded, what another commit's plan may need beyond what
    /// this one's read: the content or listing of every managed path (a commit may start
    /// managing a file's content or a folder's purge) and the host's account and package
    /// databases (a commit may add the first user or package).
    static func recordWhatPreviewsNeed(_ catalog: Catalog, host: HostReader) {
        let databases = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/var/lib/dpkg/status"]
        for path in databases + catalog.planContext.managedPaths.sorted() {
            switch (try? host.status(path))??.type {
            case .regular?: _ = try? host.read(path)
            case .directory?: _ = try? host.entries(of: path)
            case .symlink?: _ = try? host.readLink(path)
            default: break
            }
        }
    }

    /// The removals of resources no longer declared, checked against the prune budget: each says
    /// why it goes; one that cannot be planned (a folder that still holds files) waits for a later
    /// run; and when more would go than the budget allows, none goes. What stays on the host is
    /// kept in `result.retiredKept`, so that the inventory still lists it.
    private func prune(_ plan: Plan, catalog: Catalog, inventory: Inventory, into result: inout ReconcileResult, events: ReconcileEvents) -> Plan {
        guard !catalog.retired.isEmpty, let prune = catalog.prune else { return plan }
        var plan = plan
        let now = result.commit.map { String($0.prefix(7)) } ?? "this configuration"
        var going: [ResourceID] = []
        var kept: Set<ResourceID> = []
        plan.steps = plan.steps.compactMap { step in
            guard catalog.retired.contains(step.id) else { return step }
            if let error = step.error {
                kept.insert(step.id)
                result.note("\(step.id) is no longer declared, but is kept for now: \(error)", events)
                return nil
            }
            guard var change = step.change else { return nil }
            let last = inventory.resources[step.id.description]
            change.notes.append("no longer declared since \(now)" + (last.map { "; last declared at \($0.declaredAt)" + ($0.commit.map { " in \($0.prefix(7))" } ?? "") } ?? ""))
            going.append(step.id)
            var pruned = step
            pruned.change = change
            return pruned
        }
        let limit = prune.limit(managed: inventory.resources.count)
        if going.count > limit, !policy.allowPrune {
            let gone = Set(going)
            plan.steps.removeAll { gone.contains($0.id) }
            kept.formUnion(gone)
            result.pruneRefused = ReconcileResult.PruneRefusal(wanted: going.count, limit: limit)
            result.note("refusing to prune \(going.count) resources no longer declared: more than the budget of \(limit) (prune: {max: N} in tend.yaml); "
                        + "nothing is pruned. If that is meant, run tend apply --allow-prune once. The first: "
                        + going.prefix(5).map(\.description).joined(separator: ", "), events)
        }
        result.retiredKept = kept
        return plan
    }

}
