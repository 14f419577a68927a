import ArgumentParser
import Logging
import ServiceLifecycle
import TendAgent
import TendSpec
import TendSystemd
import UnixSignals

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Keep the host converged to the repository, continuously (run it as tend.service).",
        discussion: """
            Every interval, at an offset within it that comes from /etc/machine-id (--splay), the \
            agent fetches the repository and applies the newest commit. A commit that is invalid, \
            unsigned or goes back in time is refused: the agent keeps enforcing the last good \
            commit (drift is still repaired) and says why in the journal, in `tend status` and in \
            the metrics, until a newer commit fixes it. A remote that cannot be reached is retried \
            sooner, backing off.

            Every option can also be set in /etc/tend/agent.yaml (state_dir: for --state-dir, \
            durations as 30s, 5m or 2h); options given here win. SIGHUP reads that file again and \
            starts a cycle at once (so does a change of the file, once a cycle ends); SIGTERM lets the step in progress finish and exits 0. Under systemd \
            (Type=notify) it reports READY once the first cycle ends, a STATUS line, and the \
            watchdog's keep-alive. `tend suspend` makes it plan without applying.

            Examples:
              tend agent --repo https://git.example.com/ops/hosts.git --interval 5m
              systemctl enable --now tend.service   # examples/systemd/tend.service
              tend agent --once                      # one cycle, for tend-apply.timer
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The agent's configuration file (default: \(AgentFile.defaultPath), if it exists).", valueName: "file"), completion: .file(extensions: ["yaml"]))
    var config: String?

    @Option(help: ArgumentHelp("How often to fetch and check the host: 30s, 5m, 2h (default: 5m).", valueName: "duration"))
    var interval: String?

    @Option(help: ArgumentHelp("The greatest offset of this host's checks within the interval (default: the interval).", valueName: "duration"))
    var splay: String?

    @Option(help: ArgumentHelp("The Prometheus text file for node_exporter, written after each cycle; \"\" for none (default: \(AgentMetrics.defaultFile)).", valueName: "file"), completion: .file(extensions: ["prom"]))
    var metricsFile: String?

    @Flag(name: .customLong("no-watch"), help: "Repair drift only on the interval's checks, not the moment inotify or the bus sees it (agent.yaml: watch: false).")
    var noWatch = false

    @Flag(help: "Run one cycle and exit as `tend apply` would have (3 invalid, 4 unreadable, 5 failed, 7 refused: also when the last good commit was applied instead), for tend-apply.service and its timer.")
    var once = false

    func validate() throws {
        if let interval, DurationText.parse(interval).map({ $0 >= .seconds(1) }) != true {
            throw ValidationError("--interval takes a duration of at least 1s, such as 30s, 5m or 2h, not '\(interval)'")
        }
        if let splay, DurationText.parse(splay) == nil {
            throw ValidationError("--splay takes a duration such as 30s, 5m or 2h, not '\(splay)'")
        }
    }

    func run() async throws {
        let logger = output.logger(audit: true, consoleLevel: .info)
        var settings: AgentSettings
        do {
            settings = try makeSettings(logger: logger)
        } catch let error as AgentFileError {
            for diagnostic in error.diagnostics { Console.error(Printable.escaped(diagnostic.description)) }
            Console.error("tend: the agent's configuration is invalid; the agent does not start")
            throw TendExit.invalidConfiguration
        }
        if once { settings.cycles = 1 }
        let command = self
        let agent = Agent(settings: settings, reload: { try command.makeSettings(logger: logger) }, logger: logger)
        logger.notice("agent started: \(settings.reconciler.source.description), every \(DurationText.format(settings.interval)) at +\(DurationText.format(settings.offset))")
        var quiet = logger
        quiet.logLevel = .warning
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            // The loop returns only when it is done (stopped, or --once): then the others end too.
            services: agent.services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: quiet))
        try await group.run()
        // --once ends as `tend apply` would have, also when the last good commit was applied
        // instead of a refused newest one.
        if once, let failure = agent.lastCycleFailure { throw Console.exitCode(for: failure) }
    }

    /// The settings from the flags, then agent.yaml, then the defaults.
    func makeSettings(logger: Logger) throws -> AgentSettings {
        let (merged, rootPath, file) = try Self.source(source, root: root.givenRoot, config: config)
        var reconciler = try Console.reconciler(merged, root: rootPath, logger: logger)
        reconciler.policy.runBy = "tend agent"
        let interval = interval.flatMap(DurationText.parse) ?? file.interval ?? .seconds(300)
        var settings = AgentSettings(reconciler: reconciler, interval: interval, splay: splay.flatMap(DurationText.parse) ?? file.splay,
                                     metricsFile: metricsFile ?? file.metricsFile ?? AgentMetrics.defaultFile)
        settings.watch = !noWatch && file.watch != false
        settings.configFile = config ?? AgentFile.defaultPath
        settings.configIdentity = file.identity
        return settings
    }

    /// The source, the root and the agent's file: the flags given, then agent.yaml (`config`, or
    /// the default one if it exists). `tend snapshot` takes the agent's source this way too.
    static func source(_ source: SourceOptions, root givenRoot: String?, config: String?) throws -> (SourceOptions, String, AgentFile) {
        let file = try AgentFile.read(config ?? AgentFile.defaultPath, optional: config == nil)
        var merged = source
        if merged.source == nil, merged.repo == nil { merged.repo = file.repo }
        // agent.yaml's Git settings are for its repo: a folder given here has no use for them
        // (given as flags with a folder, they are refused). Its signature checks are not dropped
        // in silence: whoever set them must not believe a folder was checked.
        let git = merged.repo != nil
        if !git, file.verify != nil || file.verifyGpg != nil {
            throw ValidationError("\(config ?? AgentFile.defaultPath) asks for signed commits (verify), and the folder \(merged.source ?? "") has none; give its repo instead")
        }
        merged.ref = source.ref ?? (git ? file.ref : nil)
        merged.path = source.path ?? (git ? file.path : nil)
        merged.givenStateDir = source.givenStateDir ?? file.stateDir
        merged.sshKey = source.sshKey ?? (git ? file.sshKey : nil)
        merged.knownHosts = source.knownHosts ?? (git ? file.knownHosts : nil)
        merged.tokenFile = source.tokenFile ?? (git ? file.tokenFile : nil)
        merged.verify = source.verify ?? (git ? file.verify : nil)
        merged.verifyGpg = source.verifyGpg ?? (git ? file.verifyGpg : nil)
        merged.hostname = source.hostname ?? file.hostname
        merged.ageIdentity = source.ageIdentity ?? file.ageIdentity
        if merged.labels.isEmpty { merged.labels = file.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } }
        merged.givenFetchTimeout = source.givenFetchTimeout ?? file.fetchTimeout.map { Int(DurationText.seconds($0)) }
        merged.givenFetchMaxSizeMiB = source.givenFetchMaxSizeMiB ?? file.fetchMaxSizeMiB
        merged.givenLockTimeout = source.givenLockTimeout ?? file.lockTimeout.map { Int(DurationText.seconds($0)) }
        merged.givenAptMaxAge = source.givenAptMaxAge ?? file.aptMaxAge.map { Int(DurationText.seconds($0)) }
        merged.agentFileSelfManage = file.selfManage ?? false
        let rootPath = givenRoot ?? file.root ?? "/"
        return (merged, rootPath, file)
    }
}
