import ArgumentParser
import TendCore
import TendGit
import Logging
import TendSpec
import Glibc

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Make the host match the configuration.",
        discussion: """
            Plans, then applies every change in dependency order, printing each step as it \
            happens and a summary. A step that fails fails the steps that depend on it (reported \
            as skipped, with the reason); independent steps still run. apply never waits for \
            input unless --confirm is given.

            Examples:
              tend apply examples/webhost --root /mnt/image
              tend apply --plan plan.json
              tend apply examples/webhost --confirm
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Apply exactly this saved plan (from `tend plan --out`); refused if the host or the configuration changed since.")
    var plan: String?

    @Flag(help: "Show the plan first and ask before applying (needs a terminal).")
    var confirm = false

    func validate() throws {
        if confirm, isatty(STDIN_FILENO) != 1 {
            throw ValidationError("--confirm asks on a terminal, and standard input is not one; run without --confirm to apply unattended")
        }
    }

    func run() async throws {
        let style = output.style
        var logger = output.logger()
        let savedPlan = try plan.map(PlanFile.read)
        let rootPath = savedPlan?.root ?? root.root
        // Taken before the source is opened and held until this command ends: the commit checked
        // against the last applied one and the plan made are the ones applied.
        let lock = try await Console.lock(rootPath, timeout: source.lockTimeout)
        defer { withExtendedLifetime(lock) {} }
        let opened: Console.OpenedSource
        if let savedPlan {
            if root.root != "/", root.root != savedPlan.root {
                throw ValidationError("the plan was made for root \(savedPlan.root), not \(root.root)")
            }
            // Open exactly the source the plan was made from: the same folder, or the same commit.
            var options = source
            switch savedPlan.source.type {
            case "directory":
                if let given = source.source, (try? DirectorySnapshot(path: given))?.origin != savedPlan.source {
                    throw ValidationError("the plan was made from \(savedPlan.sourceDescription), not \(given)")
                }
                options.source = savedPlan.source.location
                options.repo = nil
            case "git":
                options.source = nil
                options.repo = savedPlan.source.location
                options.path = savedPlan.source.path
            default:
                throw ValidationError("the plan was made from a \(savedPlan.source.type) source, which this tend cannot open")
            }
            opened = try await Console.openSource(options, root: rootPath, logger: logger, pinnedCommit: savedPlan.source.commit)
        } else {
            opened = try await Console.openSource(source, root: rootPath, logger: logger)
        }
        let snapshot = opened.snapshot
        if let commit = opened.snapshot.origin.commit { logger[metadataKey: "commit"] = "\(commit)" }
        let services = Console.serviceManager(for: rootPath, logger: logger)
        let host = try Console.openRoot(rootPath, services: services)
        let facts = try savedPlan?.facts ?? Console.facts(host, options: source)
        let catalog = try Console.catalog(snapshot, facts: facts, providers: source.providers)
        let planner = Planner(catalog: catalog, snapshot: snapshot, facts: facts, tendVersion: Tend.version)
        let toApply: Plan
        if savedPlan == nil {
            // Caches the plan reads (apt's package lists) are refreshed first, so that the plan
            // applied is made from them; a saved plan is applied as it was made.
            do {
                try await Executor(catalog: catalog, logger: logger).refresh(root: rootPath, services: services)
            } catch {
                Console.error("tend: \(error); planning with what is there")
            }
        }
        if let savedPlan {
            let stale = await planner.staleSteps(of: savedPlan, host: host)
            guard stale.isEmpty else {
                Console.error("tend: the saved plan no longer matches; nothing was changed:")
                for step in stale { Console.error("  \(step)") }
                Console.error("Make a new plan with: tend plan \(savedPlan.sourceDescription) --out \(plan ?? "plan.json")")
                throw TendExit.stalePlan
            }
            toApply = savedPlan
        } else {
            toApply = await planner.plan(host: host)
        }
        if confirm {
            Console.out(toApply.rendered(style: style))
            guard toApply.hasChanges else { return }
            Console.out("\nApply these changes? Only 'yes' is accepted: ")
            guard readLine()?.split(separator: " ").joined() == "yes" else {
                Console.out("Not applied.\n")
                return
            }
        } else if !toApply.hasChanges, toApply.errors.isEmpty {
            try removeLeftovers(catalog, root: rootPath, logger: logger)
            Console.out("No changes. The host matches the configuration (\(toApply.resourceCount) resources).\n")
            try record(opened)
            return
        }
        try removeLeftovers(catalog, root: rootPath, logger: logger)
        Console.out(style.bold("Applying \(Printable.escaped(toApply.sourceDescription))") + (toApply.root == "/" ? "" : " into root \(toApply.root)") + "\n")
        let report: ApplyReport
        do {
            report = try await Executor(catalog: catalog, logger: logger).apply(toApply, services: services) { event in
                if case .finished(let result) = event { Console.out(result.rendered(style: style)) }
            }
        } catch {
            Console.error("tend: \(error)")
            throw TendExit.unusableHost
        }
        Console.out(report.summary(style: style) + "\n")
        try record(opened)
        if !report.succeeded { throw TendExit.failures }
    }

    /// Removes the temporary files interrupted runs left beside the catalog's paths: part of every
    /// apply, also one with nothing else to do, once the plan is made.
    private func removeLeftovers(_ catalog: Catalog, root: String, logger: Logger) throws {
        do {
            for path in try Executor(catalog: catalog, logger: logger).removeLeftovers(root: root) {
                Console.out("Removed \(Printable.escaped(path)), a temporary file an interrupted run left.\n")
            }
        } catch {
            Console.error("tend: \(error)")
            throw TendExit.unusableHost
        }
    }

    /// Records a Git source's commit as the last applied, for rewind protection.
    private func record(_ opened: Console.OpenedSource) throws {
        guard let git = opened.git, let applied = opened.applied else { return }
        do {
            try applied.record(git)
        } catch {
            Console.error("tend: applied, but cannot record commit \(git.commit.id.short) as the last applied: \(error)")
            throw TendExit.unusableHost
        }
    }
}

