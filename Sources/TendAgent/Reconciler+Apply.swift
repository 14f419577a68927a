public import TendCore
public import TendGit
public import TendSpec
import TendSystemd
import FoundationEssentials

// The Apply and Report stages of a run.
extension Reconciler {
    /// Applies `plan` once approved, checks the health of a commit new to this host, and records
    /// what was applied; jobs on tend's own units are queued last of all.
    func apply(_ plan: Plan, _ mode: Mode, _ loaded: Loaded, _ opened: Opened, observing: Observing, executor: Executor, root: String,
               events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) {
        let asked = ContinuousClock.now
        if plan.hasChanges || !plan.errors.isEmpty, !(await events.approve(plan)) {
            result.declined = true
            return
        }
        // A person read the plan before approving it (the agent, --yes and a pipe approve at once;
        // a second is longer than that ever takes): what the plan read may have changed since.
        // It is read again, bulk reads too, as planning read them.
        if ContinuousClock.now - asked > .seconds(1) {
            observing.host.forgetReads()
            _ = await Planner(catalog: loaded.catalog, snapshot: opened.snapshot, facts: loaded.facts, tendVersion: tendVersion).prefetch(host: observing.host)
        }
        do {
            result.removedLeftovers = try executor.removeLeftovers(host: observing.host)
        } catch {
            throw ReconcileFailure(.unusableHost, error.description)
        }
        for path in result.removedLeftovers {
            result.note("removed \(path), a temporary file an interrupted run left", events)
        }
        let services = observing.services
        if plan.hasChanges || !plan.errors.isEmpty {
            events.applying(plan)
            do {
                result.report = try await executor.apply(plan, host: observing.host, services: services, stop: events.shouldStop, toolOutput: events.toolOutput, progress: events.step)
                result.interrupted = result.report?.interrupted ?? false
                for warning in result.report?.warnings ?? [] { result.note(warning, events) }
            } catch {
                throw ReconcileFailure(.unusableHost, error.description)
            }
        }
        // Once everything else, records included, is done: a restart of tend may stop this process.
        defer { Self.queueJobsAfterRun(&result, services: services, events: events) }
        let catalog = loaded.catalog
        let inventory = loaded.inventory.value
        // A commit new to this host is checked once, after its first apply, before it is recorded
        // as applied: a check that failed or never ran (tend stopped between the apply and the
        // verdict) leaves it unrecorded, so the next run checks it again. Later runs of the same
        // commit (drift repairs) are not checked.
        if policy.checksHealth, source.pinnedCommit == nil, !catalog.health.isEmpty, let git = opened.snapshot as? GitSnapshot,
           opened.lastGood != git.commit.id.description {
            result.healthFailures = await HealthProbe.failures(of: catalog.health, services: services)
        }
        guard result.healthFailures.isEmpty else {
            // What is on the host now is recorded (the inventory, for the put-back and blame), but
            // not the commit: the agent's next run puts the last good one back.
            if state(for: mode).root == "/" || result.report != nil {
                try? record(catalog: catalog, plan: plan, result: result, prefix: opened.snapshot.displayPrefix, state: state(for: mode),
                            previous: inventory ?? Inventory(), inventoryOnly: true)
            }
            throw ReconcileFailure(.unhealthy, Self.unhealthyMessage(result.commit ?? "", reason: HealthFailure.line(result.healthFailures)))
        }
        caches.catalogs?.enforce(opened.snapshot.origin)
        // The commit was good enough to apply: a failed apply still records it as the last good
        // commit (the rewind check's, and the one the agent keeps applying), but only one that
        // converged is recorded as applied (`record`). Another root keeps its records inside it:
        // a run that changed nothing there leaves it exactly as it was (an image built twice is
        // the same image), unless its record names another commit or none (a run killed after
        // its last step and before its records: the next finds nothing to change, and writes
        // them). The applied commit is written last, so a record that names this commit comes
        // with the rest.
        let records = state(for: mode)
        guard records.root == "/" || result.report != nil
              || records.read(.applied, as: CommitRecord.self)?.commit != result.commitInfo?.commit else { return }
        do {
            try record(catalog: catalog, plan: plan, result: result, prefix: opened.snapshot.displayPrefix, state: state(for: mode), previous: inventory ?? Inventory())
        } catch {
            throw ReconcileFailure(.unusableHost, "applied, but cannot record it in the state directory: \(error)")
        }
    }

    /// Writes what an apply leaves on record: the last good commit, the applied one when every
    /// resource converged, and the inventory of what is managed now.
    /// With `inventoryOnly` (a commit that failed its health checks), only what is on the host
    /// now: the commit is neither good nor applied.
    func record(catalog: Catalog, plan: Plan, result: ReconcileResult, prefix: String, state: StateStore, previous: Inventory,
                        inventoryOnly: Bool = false) throws(StateStoreError) {
        let now = Date()
        guard var commit = result.commitInfo else { return }
        commit.recorded = now
        var inventory = Inventory()
        let changed = Set((result.report?.results ?? []).filter { $0.outcome == .done }.map(\.id))
        let unfinished = Set((result.report?.results ?? []).filter { $0.outcome != .done }.map(\.id))
        for entry in catalog.entries {
            let key = entry.id.description
            // A removal that was done, or had nothing left to do, leaves the inventory; one
            // refused, kept for later or failed stays in it.
            if catalog.retired.contains(entry.id) {
                if result.retiredKept.contains(entry.id) || unfinished.contains(entry.id), let before = previous.resources[key] {
                    inventory.resources[key] = before
                }
                continue
            }
            let before = previous.resources[key]
            let file = prefix.isEmpty ? entry.location.file : (prefix.hasSuffix("/") ? prefix : prefix + "/") + entry.location.file
            inventory.resources[key] = Inventory.Entry(
                declaredAt: "\(file):\(entry.location.line)", commit: commit.commit, since: before?.since ?? commit.commit,
                changed: changed.contains(entry.id) ? now : before?.changed, changedBy: changed.contains(entry.id) ? commit.commit : before?.changedBy,
                path: entry.path, instance: entry.instance, via: entry.location.via)
        }
        for id in Set(inventory.resources.values.flatMap { [$0.commit, $0.since, $0.changedBy] }.compactMap { $0 }) {
            inventory.commits[id] = previous.commits[id] ?? (id == commit.commit ? commit : nil)
        }
        // A no-op run of the same commit writes nothing.
        if inventory != previous { try state.writeInventory(inventory) }
        // Last: `apply` takes an applied record of this commit as all of them written.
        guard !inventoryOnly else { return }
        try state.write(.lastGood, commit)
        if result.report?.succeeded ?? plan.errors.isEmpty {
            try state.write(.applied, commit)
        }
    }

    /// The same words when the checks fail and on each later refusal, so the agent says it once.
    static func unhealthyMessage(_ commit: String, reason: String) -> String {
        "commit \(commit.prefix(7)) failed its health checks on this host (\(reason)); waiting for a new commit"
    }

    /// Queues the jobs on tend's own units that the apply asked for (`ApplyReport.jobsAfterRun`),
    /// now that the run is done: systemd restarts tend once this process has ended.
    static func queueJobsAfterRun(_ result: inout ReconcileResult, services: (any ServiceManager)?, events: ReconcileEvents) {
        guard let services else { return }
        for request in result.report?.jobsAfterRun ?? [] {
            do {
                try services.queue(request.job, unit: request.unit)
                result.note("\(request.job.rawValue) of \(request.unit) queued: it takes effect now that this run has ended", events)
            } catch {
                result.note("cannot queue the \(request.job.rawValue) of \(request.unit): \(error)", events)
            }
        }
    }

    /// The service manager for `root`: systemd over D-Bus when the root is "/" and systemd runs as
    /// PID 1; none otherwise (units are then managed through links, as `systemctl --root` does).
    /// With the problem to tell when systemd runs but cannot be reached. Tried for up to five
    /// seconds where the system bus is there: systemd does not answer while it re-executes
    /// (`systemctl daemon-reexec`, an upgrade of systemd), nor the bus while dbus restarts. A host
    /// without the bus is told at once.
    static func serviceManager(for root: String) async -> ((any ServiceManager)?, problem: String?) {
        guard root == "/", SystemdManager.isBooted else { return (nil, nil) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        while true {
            do {
                return (try SystemdManager.connectSystem(), nil)
            } catch {
                guard clock.now < deadline, SystemdManager.hasSystemBus else {
                    return (nil, "systemd runs, but did not answer on the bus (\(error)); units cannot be managed in this run")
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}
