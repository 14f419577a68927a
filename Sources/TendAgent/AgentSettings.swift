public import FoundationEssentials
public import TendSpec
import TendCore

/// What the agent runs with; made again from agent.yaml and the flags on SIGHUP.
public struct AgentSettings: Sendable {
    /// The run of each cycle: source, root, providers and timeouts.
    public var reconciler: Reconciler
    public var interval: Duration
    /// The greatest offset of this host's checks within the interval; the offset itself comes
    /// from the machine-id, so a fleet started at once does not fetch at once.
    public var splay: Duration
    /// The Prometheus text file written after each cycle, or nil for none.
    public var metricsFile: String?
    /// Stop after this many cycles (benchmarks); nil runs until stopped.
    public var cycles: Int?
    /// Repair drift the moment a watch sees it (inotify, the bus), between cycles; false leaves
    /// it to the cycles.
    public var watch = true
    /// The agent.yaml these settings were read from, and which file it was then (device, inode,
    /// size, change time): when a cycle ends and it is another, the agent reads it again, as on
    /// SIGHUP. A self-managed host's commit that changes agent.yaml so takes effect at once.
    public var configFile: String?
    public var configIdentity: FileIdentity?

    public init(reconciler: Reconciler, interval: Duration, splay: Duration? = nil, metricsFile: String?) {
        self.reconciler = reconciler
        self.interval = interval
        self.splay = min(splay ?? interval, interval)
        self.metricsFile = metricsFile
    }

    /// This host's offset within the interval: a stable hash of /etc/machine-id, modulo the splay.
    public var offset: Duration {
        guard splay > .zero else { return .zero }
        let hash = MachineID.hash((try? HostReader(root: "/"))?.machineID ?? "", salt: "")
        let splayMilliseconds = UInt64(max(1, splay.components.seconds * 1000 + splay.components.attoseconds / 1_000_000_000_000_000))
        return .milliseconds(Int64(hash % splayMilliseconds))
    }
}
