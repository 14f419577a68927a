/// A service manager (systemd) as tend needs it. TendSystemd implements it over D-Bus.
///
/// Observing sees it only through `ServiceManagerView`, which can read and nothing else; the
/// executor hands the full protocol to providers' `apply` through `HostWriter`.
public protocol ServiceManager: AnyObject {
    /// The state of each of `units`, in one round trip where the manager allows.
    func status(of units: [String]) throws(HostError) -> [String: UnitStatus]
    /// Makes the manager read unit files again. The corresponding systemd call is `Reload`.
    func daemonReload() throws(HostError)
    /// Starts, stops, restarts or reloads `unit` and waits for the job to finish.
    func run(_ job: UnitJob, unit: String, timeout: Duration) throws(HostError) -> UnitJobResult
    /// Queues the job and returns at once: for tend's own units, whose restart stops the very
    /// process that would wait for it (`ProtectedPaths.isTendUnit`), once the run has ended
    /// (`ApplyReport.jobsAfterRun`).
    func queue(_ job: UnitJob, unit: String) throws(HostError)
    /// Enables, disables, masks or unmasks the unit files of `unit`. The caller reloads the
    /// manager afterwards, once for all its changes, so that it sees them.
    func change(_ change: UnitFileChange, unit: String) throws(HostError)
    /// The last `count` lines the journal holds about `unit`, oldest first.
    func recentLog(of unit: String, count: Int) -> [String]
    /// Runs `command` as a transient service of its own (`systemd-run --wait`-style) and waits,
    /// up to its timeout, for it to end; its output goes to the journal under that unit.
    func run(_ command: TransientCommand) throws(HostError) -> UnitJobResult
}

/// A program run once as a transient service unit: `command:` resources.
public struct TransientCommand: Sendable, Hashable {
    /// The unit's name (`tend-command-NAME-….service`).
    public var unit: String
    public var description: String
    /// The program's path and its arguments, the first being the program's name.
    public var arguments: [String]
    public var user: String?
    public var workingDirectory: String?
    public var environment: [String: String]
    public var timeout: Duration

    public init(unit: String, description: String, arguments: [String], user: String?, workingDirectory: String?,
                environment: [String: String], timeout: Duration) {
        self.unit = unit
        self.description = description
        self.arguments = arguments
        self.user = user
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.timeout = timeout
    }
}

/// The read side of a service manager, all that observing may use.
public struct ServiceManagerView {
    private let manager: any ServiceManager

    public init(_ manager: any ServiceManager) {
        self.manager = manager
    }

    /// The state of each of `units`.
    public func status(of units: [String]) throws(HostError) -> [String: UnitStatus] {
        try manager.status(of: units)
    }
}

/// One unit as the manager reports it.
public struct UnitStatus: Sendable, Hashable, Codable {
    /// `loaded`, `not-found`, `masked`, `error`.
    public var loadState: String
    /// `active`, `inactive`, `failed`, `activating`, …
    public var activeState: String
    public var subState: String
    /// `enabled`, `disabled`, `static`, `masked`, `linked`, … or "" when there is no unit file.
    public var unitFileState: String

    public init(loadState: String, activeState: String, subState: String, unitFileState: String) {
        self.loadState = loadState
        self.activeState = activeState
        self.subState = subState
        self.unitFileState = unitFileState
    }

    /// Whether the unit counts as running (active, or on its way there, or reloading).
    public var isRunning: Bool { ["active", "activating", "reloading"].contains(activeState) }
}

/// A job on a unit.
public enum UnitJob: String, Sendable, Hashable {
    case start, stop, restart, reload
    case reloadOrRestart = "reload-or-restart"
}

/// A job asked for on a unit.
public struct UnitJobRequest: Sendable, Hashable {
    public var job: UnitJob
    public var unit: String

    public init(job: UnitJob, unit: String) {
        self.job = job
        self.unit = unit
    }
}

/// How a job ended, as systemd's JobRemoved signal says: `done`, `failed`, `timeout`,
/// `dependency`, `canceled`, `skipped`, `invalid`.
public struct UnitJobResult: Sendable, Hashable {
    public var result: String

    public init(_ result: String) {
        self.result = result
    }

    public var succeeded: Bool { result == "done" || result == "skipped" }
}

/// A change to a unit's files in the manager's configuration.
public enum UnitFileChange: String, Sendable, Hashable {
    /// `reenable` disables, then enables from the unit file as it is now: links an older
    /// `[Install]` made go.
    case enable, disable, reenable, mask, unmask
}
