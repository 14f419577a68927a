import ArgumentParser
import TendAgent
import Logging
import TendCore
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
              tend apply examples/webhost --detailed-exitcode   # 0: nothing changed, 2: changes applied
              tend apply examples/webhost --json                # each resource's result and typed changes
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Apply exactly this saved plan (from `tend plan --out`); refused if the host or the configuration changed since.", completion: .file(extensions: ["json"]))
    var plan: String?

    @Flag(help: "Show the plan first and ask before applying (needs a terminal).")
    var confirm = false

    @Flag(help: "Prune even more resources than the budget of tend.yaml's `prune:` allows, this once.")
    var allowPrune = false

    @Flag(help: "Exit 2 when changes were applied and 0 when there were none, as Puppet does (failures keep their codes).")
    var detailedExitcode = false

    @Flag(help: "Print, instead of the steps as they happen, one JSON document at the end (docs/json-output.md): each resource's result with its typed changes.")
    var json = false

    func validate() throws {
        if confirm, json {
            throw ValidationError("--confirm asks on a terminal and --json is for programs; give one of them")
        }
        if confirm, isatty(STDIN_FILENO) != 1 {
            throw ValidationError("--confirm asks on a terminal, and standard input is not one; run without --confirm to apply unattended")
        }
    }

    func run() async throws {
        OneShot.start()
        let style = output.style
        let savedPlan = try plan.map(PlanFile.read)
        if let savedPlan, root.root != "/", root.root != savedPlan.root {
            throw ValidationError("the plan was made for root \(savedPlan.root), not \(root.root)")
        }
        let rootPath = savedPlan?.root ?? root.root
        let logger = output.logger(audit: true)
        var reconciler = try Console.reconciler(source, root: rootPath, logger: logger, savedPlan: savedPlan)
        reconciler.policy.allowPrune = allowPrune
        var events = Console.events(root: rootPath, lockTimeout: source.lockTimeout)
        let confirm = self.confirm
        events.approve = { plan in
            guard confirm else { return true }
            Console.out(plan.rendered(style: style))
            Console.out("\nApply these changes? Only 'yes' is accepted: ")
            return readLine()?.split(separator: " ").joined() == "yes"
        }
        let json = self.json
        if !json, Console.progress.enabled {
            // apt's own lines, dimmed, while it runs: a transaction can take minutes.
            events.toolOutput = { line in Console.progress.step(counting: false) { Console.error(style.dim("  " + Printable.escaped(line))) } }
        }
        events.applying = { plan in
            Console.progress.begin(steps: plan.steps.count)
            guard !json else { return }
            Console.progress.clear()
            Console.out(style.bold("Applying \(Printable.escaped(plan.sourceDescription))") + (plan.root == "/" ? "" : " into root \(plan.root)") + "\n")
        }
        events.step = { event in
            if !json, case .finished(let result) = event { Console.progress.step { Console.out(result.rendered(style: style)) } }
        }
        let result = await reconciler.run(savedPlan.map { .applySaved($0) } ?? .apply, events: events)
        Console.progress.clear()
        if json {
            try Console.printJSON(ApplyDocument(
                tendVersion: tendVersion, sourceDescription: result.sourceDescription, root: rootPath, resourceCount: result.resourceCount,
                plan: result.plan, report: result.report, diagnostics: result.failure?.diagnostics ?? [],
                error: result.failure.map(Console.runError)))
            if let failure = result.failure {
                logger.info("apply stopped: \(failure.message)", metadata: ["action": "apply", "result": "failed"])
                Console.error("tend: " + Printable.escaped(failure.message))
                throw Console.exitCode(for: failure)
            }
            if result.report?.succeeded == false { throw TendExit.failures }
            if detailedExitcode, result.report?.results.isEmpty == false { throw TendExit.changesPending }
            return
        }
        if result.declined {
            Console.out("Not applied.\n")
            return
        }
        // What was done is said first, also when the run failed after it (recording the commit).
        if let report = result.report {
            Console.out(report.summary(style: style) + "\n")
        } else if result.failure == nil, let plan = result.plan {
            Console.out(confirm ? plan.rendered(style: style) : "No changes. The host matches the configuration (\(result.resourceCount) resources).\n")
        }
        if let failure = result.failure {
            // On record with the changes: a run that stopped is part of the audit trail.
            // At info, which the console does not show (it prints the failure itself); the journal raises
            // a failed result to err.
            logger.info("apply stopped: \(failure.message)", metadata: ["action": "apply", "result": "failed"])
            try Console.exit(with: failure, replan: savedPlan.flatMap { saved in plan.map { Console.replanCommand(for: saved, options: source, planFile: $0) } })
        }
        if result.report?.succeeded == false { throw TendExit.failures }
        if detailedExitcode, result.report?.results.isEmpty == false { throw TendExit.changesPending }
    }
}
