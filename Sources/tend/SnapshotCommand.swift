import ArgumentParser
import FoundationEssentials
import TendAgent
import TendCore
import TendSpec
import Glibc

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Record what this host is and what tend observes of it, for previews elsewhere.",
        discussion: """
            Plans the configuration for this host, changing nothing, and writes what planning \
            read to a file: the host's facts (hostname, labels, os), its machine ID, what tend \
            manages here, and for each managed resource the state observed (file status and \
            content, units, packages). Contents that others may not read on the host, or that \
            the configuration marks sensitive, are kept as digests only. `tend plan --snapshot \
            FILE` (or --snapshots DIR for a fleet) then shows, anywhere, the plan this host \
            would get from any commit.

            Without a source, the agent's (agent.yaml), at the commit it last applied. With \
            --root, of an image or a chroot instead of this host: its files, packages and records, \
            its machine ID and os-release.

            Examples:
              tend snapshot --out /var/tmp/$(hostname).json
              tend snapshot --root /srv/web-07 --hostname web-07 --out web-07.json
              tend plan --snapshots snapshots/ --repo https://git.example.com/ops/hosts.git --ref my-branch
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("Where to write the snapshot (JSON, mode 0600).", valueName: "file"), completion: .file(extensions: ["json"]))
    var out: String

    @Option(help: ArgumentHelp("The agent's configuration file whose source to use (default: \(AgentFile.defaultPath), if it exists).", valueName: "file"), completion: .file(extensions: ["yaml"]))
    var config: String?

    func run() async throws {
        OneShot.start()
        let (merged, rootPath, _): (SourceOptions, String, AgentFile)
        do {
            (merged, rootPath, _) = try AgentCommand.source(source, root: root.givenRoot, config: config)
        } catch let error as AgentFileError {
            for diagnostic in error.diagnostics { Console.error(Printable.escaped(diagnostic.description)) }
            throw TendExit.invalidConfiguration
        }
        var reconciler = try Console.reconciler(merged, root: rootPath, logger: output.logger())
        // What the agent enforces, not a newer commit it may be refusing or waiting for.
        if source.source == nil, source.repo == nil, source.ref == nil, let applied = reconciler.lastAppliedCommit {
            reconciler.source.pinnedCommit = applied
        }
        let recorder = HostSnapshot.Recorder()
        let result = await reconciler.run(.record(recorder), events: Console.events(root: rootPath, lockTimeout: source.lockTimeout))
        Console.progress.clear()
        if let failure = result.failure { try Console.exit(with: failure) }
        guard let plan = result.plan else { throw TendExit.unusableHost }
        let machineID = (try? HostReader(root: rootPath))?.machineID ?? ""
        let state = StateStore(stateDirectory: reconciler.source.stateDirectory, root: rootPath)
        let inventory = state.read(.inventory, as: Inventory.self) { Console.error("tend: \($0)") }
        let file = HostSnapshotFile(taken: Date(), tendVersion: tendVersion, facts: plan.facts, machineID: machineID,
                                    source: result.sourceDescription, commit: result.commit, inventory: inventory, observed: recorder.snapshot)
        do {
            try file.write(to: out)
        } catch {
            Console.error("tend: \(error)")
            throw TendExit.unusableHost
        }
        let pending = plan.steps.filter { $0.change != nil }.count
        Console.out("Wrote \(out): \(plan.facts.hostname), \(plan.resourceCount) resources of \(result.sourceDescription)"
            + (pending == 0 ? ", converged" : ", \(pending) change\(pending == 1 ? "" : "s") pending") + "\n")
    }
}
