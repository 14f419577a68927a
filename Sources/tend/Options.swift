import ArgumentParser
import Logging
import TendCore
import TendGit
import TendSpec
import TendProviders
import Glibc
import TendSystemd

/// Where the configuration comes from and which host it is for.
struct SourceOptions: ParsableArguments {
    @Argument(help: "The configuration repository as a local folder with tend.yaml at its top (or use --repo).", completion: .directory)
    var source: String?

    @Option(help: ArgumentHelp("A Git repository to read the configuration from: a path, file://, git://, https://, ssh:// or user@host:repo.", valueName: "url"))
    var repo: String?

    @Option(help: "With --repo: a branch, a tag or a full commit id (default: the remote's default branch).")
    var ref: String?

    @Option(help: ArgumentHelp("With --repo: the folder of the repository that holds tend.yaml.", valueName: "subdir"))
    var path: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where tend keeps its Git caches and its records of this host (default: /var/lib/tend).", valueName: "dir"), completion: .directory)
    var givenStateDir: String?
    var stateDir: String { givenStateDir ?? "/var/lib/tend" }

    @Option(help: ArgumentHelp("With --repo over SSH: the private key file to authenticate with.", valueName: "file"), completion: .file())
    var sshKey: String?

    @Option(help: ArgumentHelp("With --repo over SSH: the known_hosts file the server's host key must be in.", valueName: "file"), completion: .file())
    var knownHosts: String?

    @Option(help: ArgumentHelp("With --repo over HTTPS: a file holding the token or password (never given on the command line).", valueName: "file"), completion: .file())
    var tokenFile: String?

    @Option(help: ArgumentHelp("Refuse the commit unless it has a good SSH signature by a key of this OpenSSH allowed-signers file.", valueName: "allowed_signers"), completion: .file())
    var verify: String?

    @Option(help: ArgumentHelp("Refuse the commit unless it has a good OpenPGP signature by a key of this keyring.", valueName: "keyring"), completion: .file())
    var verifyGpg: String?

    @Flag(help: "Apply a commit that does not descend from the last applied one (history rewritten, or going back on purpose).")
    var allowRewind = false

    @Flag(help: "With --repo: do not fetch; use the commit already in the cache.")
    var offline = false

    @Flag(name: .customLong("self-manage"), help: "Let the configuration declare tend's own control, /etc/tend and tend's units, for this run (an image build); a host that manages tend from its repository says self_manage: true in its agent.yaml instead.")
    var selfManage = false
    /// agent.yaml's `self_manage:`, when the command reads an agent.yaml of its own (the agent,
    /// `tend snapshot`); otherwise the root's /etc/tend/agent.yaml is read for it.
    var agentFileSelfManage: Bool?

    @Option(name: .customLong("fetch-timeout"), help: ArgumentHelp("With --repo: give up fetching after this many seconds (default: 60).", valueName: "seconds"))
    var givenFetchTimeout: Int?
    var fetchTimeout: Int { givenFetchTimeout ?? 60 }

    @Option(name: .customLong("fetch-max-size"), help: ArgumentHelp("With --repo: give up fetching once the remote has sent this many MiB (default: 1024).", valueName: "MiB"))
    var givenFetchMaxSizeMiB: Int?
    var fetchMaxSizeMiB: Int { givenFetchMaxSizeMiB ?? GitSource.defaultMaximumFetchBytes >> 20 }

    func validate() throws {
        let range = GitSource.fetchSizeRangeMiB
        if let given = givenFetchMaxSizeMiB, !range.contains(given) {
            throw ValidationError("--fetch-max-size must be from \(range.lowerBound) to \(range.upperBound) (MiB), found \(given)")
        }
    }

    @OptionGroup var host: HostOptions
    var hostname: String? {
        get { host.hostname }
        set { host.hostname = newValue }
    }
    var labels: [String] {
        get { host.labels }
        set { host.labels = newValue }
    }
    var ageIdentity: String? {
        get { host.ageIdentity }
        set { host.ageIdentity = newValue }
    }

    @Option(name: .customLong("lock-timeout"), help: ArgumentHelp("How long to wait for a lock another process holds: another tend applying to the same root, or dpkg's lock (default: 300).", valueName: "seconds"))
    var givenLockTimeout: Int?
    var lockTimeout: Int { givenLockTimeout ?? 300 }

    @Option(name: .customLong("apt-max-age"), help: ArgumentHelp("Refresh package lists older than this before installing or upgrading (default: 3600).", valueName: "seconds"))
    var givenAptMaxAge: Int?
    var aptMaxAge: Int { givenAptMaxAge ?? 3600 }

    /// Every provider, with the package options given.
    var providers: ProviderSet {
        .standard(packages: PackageProvider(lockTimeout: lockTimeout, listsMaxAge: .seconds(aptMaxAge)))
    }

    func labelMap() throws -> [String: String] { try host.labelMap() }
}

/// Who this host is taken to be: its name and labels, for `match:` and `{{host.…}}`.
struct HostOptions: ParsableArguments {
    @Option(help: "Take the host's name as this when matching `hostname:` (default: this machine's).")
    var hostname: String?

    @Option(name: .customLong("label"), help: ArgumentHelp("A label of this host for `match: labels:`, as key=value; repeatable.", valueName: "key=value"))
    var labels: [String] = []

    @Option(name: .customLong("age-identity"), help: ArgumentHelp("The age identity (or SSH private key) that opens the repository's secrets (default: the root's /etc/ssh/ssh_host_ed25519_key).", valueName: "file"), completion: .file())
    var ageIdentity: String?

    func labelMap() throws -> [String: String] {
        var map: [String: String] = [:]
        for label in labels {
            guard let equals = label.firstIndex(of: "="), equals != label.startIndex else {
                throw ValidationError("--label takes key=value, not '\(label)'")
            }
            map[String(label[..<equals])] = String(label[label.index(after: equals)...])
        }
        return map
    }
}

/// How tend talks to people.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Never colour the output (also when NO_COLOR is set or stdout is not a terminal).")
    var noColor = false

    @Flag(name: .shortAndLong, help: "Log each step at info level (on the console; the journal always gets info).")
    var verbose = false

    @Option(help: ArgumentHelp("Where logs go: journal, console, or auto (the journal when stderr is the journal or tend runs as a service).", valueName: "journal|console|auto"))
    var log: LogTarget = .auto

    var style: Style {
        Style(enabled: !noColor && isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil)
    }

    /// The logger every library gets: to the journal or the console, with the run's id. A run
    /// that changes the host (`audit`) also goes to the journal whenever journald runs and
    /// `--log console` was not asked for: every change to the host is on record, whoever made it.
    func logger(audit: Bool = false, consoleLevel: Logger.Level? = nil) -> Logger {
        let journal = log == .journal || (log == .auto && JournalDetection.stderrIsJournal)
        let alsoJournal = !journal && audit && log == .auto && JournalDetection.journaldRuns
        let consoleLevel: Logger.Level = consoleLevel ?? (journal || verbose ? .info : .warning)
        var logger = Logger(label: "tend") { label -> any LogHandler in
            var journalHandler = JournalLogHandler(label: label)
            journalHandler.logLevel = .info
            if journal { return journalHandler }
            var console = StreamLogHandler.standardError(label: label)
            console.logLevel = consoleLevel
            return alsoJournal ? MultiplexLogHandler([journalHandler, console]) : console
        }
        // Setting the level on a multiplex would set it on each handler: each keeps its own.
        if !alsoJournal { logger.logLevel = consoleLevel }
        logger[metadataKey: "run"] = "\(OutputOptions.runID)"
        return logger
    }

    /// One id per run of tend, in every log entry (TEND_RUN).
    static let runID: String = {
        var bytes = [UInt8](repeating: 0, count: 16)
        getentropy(&bytes, bytes.count)
        return Digest.hex(bytes)
    }()
}

enum LogTarget: String, ExpressibleByArgument, CaseIterable {
    case journal, console, auto
}

/// The root under which the host is managed.
struct RootOptions: ParsableArguments {
    @Option(name: .customLong("root"), help: "Manage the files under this folder instead of / (image building, provisioning, trying things out).", completion: .directory)
    var givenRoot: String?
    var root: String { givenRoot ?? "/" }

    /// A reader of the root, for the commands that only read it (`tend facts`, `tend adopt`);
    /// exits with what is wrong when the root cannot be opened.
    func reader() throws -> HostReader {
        do {
            return try HostReader(root: root)
        } catch {
            Console.error("tend: " + Printable.escaped(error.description))
            throw TendExit.unusableHost
        }
    }
}
