public import Logging

/// Apply: carries out a plan's steps in order. The only holder of a `HostWriter`.
///
/// A step whose dependency failed or was skipped is skipped, with the reason; independent steps
/// still run. In a stretch of steps that only change paths (`ResourceProvider.stagesWrites`),
/// the steps that write a file's content stage it: their files are written to temporary names,
/// made durable together (an fsync each up to 64 files, one `syncfs` past that), and only then
/// renamed into place, checked and reported done. The stretch's other steps (folders, links,
/// removals, modes) are done and checked at once, as outside a stretch; their folders are synced
/// with the stretch's, or at the end of the apply. After each step the resource is observed again, and if it still differs from the
/// desired state the step fails ("inconsistent result after apply").
///
/// A package or user step does more than its plan says (a package brings files, its scripts add
/// groups): a step that comes after one that ran is planned again just before it runs, and a
/// resource the plan found converged that comes after one is planned again at the end and done
/// then if it now differs (`ResourceProvider.changesOtherResources`).
public struct Executor: Sendable {
    public let catalog: Catalog
    public let logger: Logger
    /// Whether steps after a package or user step are planned again, and what they made differ
    /// is done at the end (see above). Off for a saved plan (`tend apply --plan`), which is applied
    /// exactly as it was reviewed.
    public var replans = true

    public init(catalog: Catalog, logger: Logger) {
        self.catalog = catalog
        self.logger = logger
    }

    /// Lets each kind refresh the caches its planning reads (apt's package lists), on the run's
    /// `host`, before `tend apply` plans.
    /// Returns the warnings the refresh gave (`HostWriter.warn`).
    @discardableResult
    public func refresh(host: HostReader, services: (any ServiceManager)? = nil, toolOutput: (@Sendable (String) -> Void)? = nil) async throws(HostError) -> [String] {
        let writer = HostWriter(reader: host, services: services)
        writer.toolOutput = toolOutput
        var byKind: [String: [any BoundResource]] = [:]
        var order: [String] = []
        for entry in catalog.entries where entry.resource.prefetches {
            if byKind[entry.id.kind] == nil { order.append(entry.id.kind) }
            byKind[entry.id.kind, default: []].append(entry.resource)
        }
        for kind in order {
            guard let resources = byKind[kind], let first = resources.first else { continue }
            try await first.refresh(with: resources, host: writer)
        }
        return writer.warnings
    }

    /// Removes the temporary files that interrupted runs of tend left beside the catalog's paths
    /// (`AtomicFile.isLeftover`), on the run's `host`, or beside those of `scope` only; returns
    /// their paths. Every apply starts with it, also one with nothing to change.
    public func removeLeftovers(host: HostReader, scope: Set<ResourceID>? = nil) throws(HostError) -> [String] {
        let writer = HostWriter(reader: host, services: nil)
        let entries = scope.map { ids in catalog.entries.filter { ids.contains($0.id) } } ?? catalog.entries
        let removed = writer.removeLeftovers(inFoldersOf: entries.flatMap(\.resource.paths))
        for path in removed {
            logger.info("removed \(path), a temporary file an interrupted run left", metadata: ["action": "delete", "result": "done"])
        }
        try writer.syncDirectories()
        return removed
    }

    /// Applies `plan` on the run's `host` (the reader it was planned with, at the plan's root:
    /// what it read in bulk, dpkg's status, is used as read until a step changes it, as apt does),
    /// calling `progress` as each step starts and ends. Throws only when the changed folders cannot be synced at the end.
    /// `stop` is asked before each step: once it says yes (the agent was told to stop), the steps
    /// left are reported as skipped and not started, so a step is never cut in half.
    public func apply(_ plan: Plan, host: HostReader, services: (any ServiceManager)? = nil, stop: () -> Bool = { false },
                      toolOutput: (@Sendable (String) -> Void)? = nil, progress: (ApplyEvent) -> Void = { _ in }) async throws(HostError) -> ApplyReport {
        precondition(host.root == plan.root && !host.replaysSnapshot && host.recorder == nil, "a plan is applied with a live reader of its root")
        // Folders are walked anew from the root: one replaced since planning (by a link, even) is
        // not written into through a descriptor held from before.
        host.forgetDirectories()
        let writer = HostWriter(reader: host, services: services)
        writer.toolOutput = toolOutput
        writer.reader.declaredResources = catalog.declaredPresent
        let context = catalog.planContext
        var report = ApplyReport()
        var failed: Set<ResourceID> = []
        logger.info("apply started: \(plan.steps.count) steps from \(plan.sourceDescription)",
                    metadata: ["message_id": "\(LogMessageID.runStarted)", "action": "apply"])
        var lines = StepLog()
        var completed: Set<ResourceID> = []
        // Done steps of kinds that may have changed what later steps planned against
        // (`ResourceProvider.changesOtherResources`): those later steps are planned again.
        var reshaping: Set<ResourceID> = []
        func record(_ step: Plan.Step, _ outcome: StepResult.Outcome) {
            // The resource goes in each message's own metadata, made only when the message is
            // logged: a logger copy with it set cost more than the rest of recording a step.
            let result = StepResult(id: step.id, action: step.change?.action, outcome: outcome)
            let action = result.action?.rawValue ?? "none"
            let shown = lines.shows(step.id, action: action, outcome: outcome)
            switch outcome {
            case .done:
                completed.insert(step.id)
                if catalog[step.id]?.resource.changesOtherResources == true { reshaping.insert(step.id) }
                if shown {
                    logger.info("\(step.id): \(action) done\(Self.describe(step.change))", metadata: ["message_id": "\(LogMessageID.stepDone)", "action": "\(action)", "result": "done", "resource": "\(step.id)"])
                }
            case .failed(let failure):
                failed.insert(step.id)
                if shown {
                    logger.info("\(step.id): \(action) failed: \(failure)", metadata: ["message_id": "\(LogMessageID.stepFailed)", "action": "\(action)", "result": "failed", "resource": "\(step.id)"])
                }
            case .skipped(let skip):
                failed.insert(step.id)
                if shown {
                    logger.info("\(step.id): \(action) skipped: \(skip)", metadata: ["message_id": "\(LogMessageID.stepSkipped)", "action": "\(action)", "result": "skipped", "resource": "\(step.id)"])
                }
            }
            report.results.append(result)
            progress(.finished(result))
        }
        // Steps whose files are staged: they are done only once `flush` made those files durable
        // and put them in place, and only then checked, reported and available to what depends on them.
        var staged: [(step: Plan.Step, entry: Catalog.Entry, paths: [String])] = []
        var stagedIDs: Set<ResourceID> = []
        func flush() {
            guard !staged.isEmpty else { return }
            let failures = writer.commitStaged()
            let committed = staged.map { !$0.paths.contains { failures[$0] != nil } }
            // Each step put in place is checked as `verify` checks it, a long stretch on several
            // threads as planning observes (checking 10,000 new files one by one took a sixth of
            // converging them).
            let after = Planner.observeAndPlan(staged.map(\.entry), host: writer.reader, context: context, inScope: committed).steps
            for (((step, _, paths), placed), after) in zip(zip(staged, committed), after) {
                let failure = placed ? nil : paths.lazy.compactMap({ failures[$0] }).first
                record(step, failure.map { .failed(StepFailure($0)) } ?? Self.outcome(after: after))
            }
            staged.removeAll()
            stagedIDs.removeAll()
        }
        // Runs `steps` in order: batches of one kind together, stretches of path steps staged.
        func run(_ steps: [Plan.Step]) async {
            var handled: Set<Int> = []
            // Which changing steps of these notify each resource, found once: `current` asks for
            // every step that comes after a done package or user.
            var notifiers: [ResourceID: [Notifier]] = [:]
            for step in steps where step.change != nil {
                guard let notifier = catalog[step.id] else { continue }
                for target in notifier.notify { notifiers[target, default: []].append(notifier.notifier(of: target)) }
            }
            for (index, planned) in steps.enumerated() where !handled.contains(index) {
                let entry = catalog[planned.id]
                let step = current(planned, entry: entry, after: reshaping, notifiers: notifiers, writer: writer, context: context)
                let stages = step.error == nil && step.change != nil && entry?.resource.stagesWrites == true
                if !stages || step.dependsOn.contains(where: stagedIDs.contains) || writer.changedFolderCount >= HostWriter.stagedFolderLimit { flush() }
                var outcomes: [(step: Plan.Step, outcome: StepResult.Outcome)] = []
                if let error = step.error {
                    outcomes = [(step, .failed(StepFailure(.unobservable, error)))]
                } else if step.change != nil, stop() {
                    outcomes = [(step, .skipped(.stopping))]
                } else if let blocker = step.dependsOn.first(where: failed.contains) {
                    outcomes = [(step, .skipped(.blocked(by: blocker)))]
                } else if step.change == nil, entry != nil {
                    // Planned again after a package or user step: nothing is left to do.
                    outcomes = [(step, .done)]
                } else if let change = step.change, let entry {
                    if entry.resource.appliesInBatches {
                        let batch = readyBatch(from: index, in: steps, kind: step.id.kind, completed: completed, failed: failed)
                        handled.formUnion(batch)
                        for member in batch { progress(.started(steps[member].id, steps[member].change?.action ?? change.action)) }
                        let members = batch.map { $0 == index ? step : current(steps[$0], entry: catalog[steps[$0].id], after: reshaping, notifiers: notifiers, writer: writer, context: context) }
                        outcomes = Array(zip(members, await runBatch(members, writer: writer, context: context)))
                    } else {
                        progress(.started(step.id, change.action))
                        if stages { writer.beginStaging() }
                        let before = writer.stagedCount
                        do {
                            try await entry.resource.apply(change, host: writer)
                            if writer.stagedCount > before {
                                staged.append((step, entry, writer.stagedPaths(from: before)))
                                stagedIDs.insert(step.id)
                                continue
                            }
                            outcomes = [(step, verify(entry, writer: writer, context: context))]
                        } catch {
                            // What it staged before failing is not put in place by the next commit.
                            writer.discardStaged(from: before)
                            outcomes = [(step, .failed(StepFailure(error)))]
                        }
                    }
                } else {
                    outcomes = [(step, .failed(Self.notInCatalog))]
                }
                for (step, outcome) in outcomes { record(step, outcome) }
            }
        }
        await run(plan.steps)
        flush()
        // What the plan found converged but comes after a done package or user step is planned
        // again: that step's work was not in the plan (openssh-server's installation makes the
        // host keys that an image declares absent). What differs now is done after the rest,
        // linked as the planner links a plan: a late change notifies (a file a postinst rewrote
        // restarts its unit, and that restart notifies in turn), and a late step that is also
        // notified is one step.
        if replans, !reshaping.isEmpty {
            let inPlan = Set(plan.steps.map(\.id))
            let candidates = catalog.entries.map { !inPlan.contains($0.id) && $0.dependencies.contains(where: reshaping.contains) }
            let own = Planner.observeAndPlan(catalog.entries, host: writer.reader, context: context, inScope: candidates)
            var late = Planner.link(catalog.entries, own: own, host: writer.reader, context: context) { _ in true }
            if !late.isEmpty {
                // A step of the plan that did not converge still holds back what requires it,
                // directly or through resources that needed nothing, as in the plan. (Only those:
                // a done package among its dependencies would have `current` plan it yet again.)
                var failedBefore = [[ResourceID]](repeating: [], count: catalog.entries.count)
                for (position, entry) in catalog.entries.enumerated() {
                    for dependency in entry.dependencyPositions {
                        let id = catalog.entries[dependency].id
                        let through = inPlan.contains(id) ? (failed.contains(id) ? [id] : []) : failedBefore[dependency]
                        for blocker in through where !failedBefore[position].contains(blocker) { failedBefore[position].append(blocker) }
                    }
                }
                for index in late.indices {
                    late[index].dependsOn += failedBefore[catalog.position(of: late[index].id)!].filter { !late[index].dependsOn.contains($0) }
                }
                await run(late)
                flush()
            }
        }
        try writer.syncDirectories()
        lines.logSummary(logger)
        logger.info("apply finished: \(report.results.count - report.failures.count - report.skipped.count) done, \(report.failures.count) failed, \(report.skipped.count) skipped",
                    metadata: ["message_id": "\(LogMessageID.runFinished)", "action": "apply", "result": "\(report.succeeded ? "done" : "failed")"])
        report.jobsAfterRun = writer.jobsAfterRun
        report.warnings = writer.warnings
        return report
    }

    /// What changed, for the record: each attribute before → after, and that the content changed
    /// (never the content itself, so nothing sensitive reaches a log).
    static func describe(_ change: Change?) -> String {
        guard let change else { return "" }
        var parts = change.attributes.map(\.summary)
        if change.content != nil { parts.append("content changed") }
        if !change.removes.isEmpty { parts.append("removed \(change.removes.count) unmanaged entries") }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")"
    }

    /// The steps of `kind` that can run together with step `first`: later ones whose dependencies
    /// are all done already or in the batch, and nothing blocks.
    private func readyBatch(from first: Int, in steps: [Plan.Step], kind: String, completed: Set<ResourceID>, failed: Set<ResourceID>) -> [Int] {
        var batch = [first]
        var members: Set<ResourceID> = [steps[first].id]
        for index in (first + 1)..<steps.count {
            let step = steps[index]
            guard step.id.kind == kind, step.error == nil, step.change != nil,
                  step.dependsOn.allSatisfy({ completed.contains($0) || members.contains($0) }),
                  !step.dependsOn.contains(where: failed.contains) else { continue }
            batch.append(index)
            members.insert(step.id)
        }
        return batch
    }

    private func runBatch(_ steps: [Plan.Step], writer: HostWriter, context: PlanContext) async -> [StepResult.Outcome] {
        let entries = steps.compactMap { catalog[$0.id] }
        guard entries.count == steps.count else {
            return steps.map { _ in .failed(Self.notInCatalog) }
        }
        // A member planned again may have failed to plan, or have nothing left to do.
        var outcomes = steps.map { step -> StepResult.Outcome? in
            if let error = step.error { return .failed(StepFailure(.unobservable, error)) }
            return step.change == nil ? .done : nil
        }
        let running = outcomes.indices.filter { outcomes[$0] == nil }
        guard let first = running.first else { return outcomes.map { $0! } }
        let failures = await entries[first].resource.apply(batch: running.map { (steps[$0].change!, entries[$0].resource) }, host: writer)
        for (position, failure) in zip(running, failures) {
            outcomes[position] = failure.map { .failed($0) } ?? verify(entries[position], writer: writer, context: context)
        }
        return outcomes.map { $0! }
    }

    /// `step` as it must run now: planned again from what the host holds when it comes after a
    /// done step in `reshaping` (a package that brought the file it writes, a user whose group
    /// it sets), since that step's work was not in the plan; otherwise as planned. A planned
    /// creation is planned again after any such step, whatever it depends on: a package may have
    /// made the very path (unattended-upgrades' /etc/apt/apt.conf.d/20auto-upgrades, declared
    /// without `requires:`), which the step then replaces instead of refusing it as "appeared
    /// since it was planned". The changing steps run with it (the plan, or the late pass) that
    /// notify it, by resource (`notifiers`), still do (a restart is kept when the unit is
    /// otherwise converged).
    private func current(_ step: Plan.Step, entry: Catalog.Entry?, after reshaping: Set<ResourceID>, notifiers: [ResourceID: [Notifier]],
                         writer: HostWriter, context: PlanContext) -> Plan.Step {
        guard replans, let entry, step.error == nil, let change = step.change, !reshaping.isEmpty,
              change.action == .create || step.dependsOn.contains(where: reshaping.contains) else { return step }
        var now = step
        if let fresh = Planner.step(for: entry, host: writer.reader, context: context, notifiedBy: notifiers[entry.id] ?? []) {
            now.change = fresh.change
            now.error = fresh.error
        } else {
            now.change = nil
        }
        return now
    }

    private static let notInCatalog = StepFailure(.notInCatalog, "not in the catalog")

    /// Observes and plans the resource again: it must need nothing more.
    private func verify(_ entry: Catalog.Entry, writer: HostWriter, context: PlanContext) -> StepResult.Outcome {
        // Check the result against the plan, as Terraform does after apply.
        Self.outcome(after: Planner.step(for: entry, host: writer.reader, context: context))
    }

    /// How a step ended, from its resource observed and planned again after it: done when it
    /// needs nothing more.
    private static func outcome(after: Plan.Step?) -> StepResult.Outcome {
        if let error = after?.error { return .failed(StepFailure(.inconsistent, "inconsistent result after apply: \(error)")) }
        if let remaining = after?.change {
            let what = remaining.attributes.map(\.name) + (remaining.content == nil ? [] : ["content"])
            return .failed(StepFailure(.inconsistent, "inconsistent result after apply: \(what.joined(separator: ", ")) still \(what.count == 1 ? "differs" : "differ")"))
        }
        return .done
    }
}

/// The MESSAGE_ID of each kind of event tend logs, so that `journalctl MESSAGE_ID=…` finds them
/// (docs/journal.md).
public enum LogMessageID {
    public static let runStarted = "fb21935641c9441eaf9df53f629bb29a"
    public static let stepDone = "11342b278b194f0183efb57fe08b2f13"
    public static let stepFailed = "a95000009f9e43f09d7ad2c2035250e3"
    public static let stepSkipped = "d3ac648efbac414c952bf61ae5cb4d30"
    public static let runFinished = "83728d00a7214437bd156c0fb33c9236"
    public static let stepsSummarised = "c2c61bccfd05499f8465ef05603217e4"
}
