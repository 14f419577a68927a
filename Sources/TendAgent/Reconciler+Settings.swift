public import TendCore

extension Reconciler {
    /// Who the host is, where it is not the machine tend runs on as it is: a name and labels
    /// given for `match:` (`--hostname`, `--label`), and the machine ID of its rollout wave (a
    /// snapshot's; nil reads the root's /etc/machine-id).
    public struct Identity: Sendable {
        public var hostname: String?
        public var labels: [String: String]
        public var machineID: String?
        /// The age identity that opens the repository's secrets on this host (agent.yaml's
        /// `age_identity`, `--age-identity`); the root's SSH host key when nil.
        public var ageIdentity: String?

        public init(hostname: String? = nil, labels: [String: String] = [:], machineID: String? = nil, ageIdentity: String? = nil) {
            self.hostname = hostname
            self.labels = labels
            self.machineID = machineID
            self.ageIdentity = ageIdentity
        }
    }

    /// How a run may go: what the host's operator and the command allow.
    public struct Policy: Sendable {
        /// How long an apply waits for another one holding the root's lock.
        public var lockTimeout: Duration
        /// Prune past the budget of tend.yaml's `prune:` (`tend apply --allow-prune`).
        public var allowPrune = false
        /// Whether the host lets the repository declare tend's own control (/etc/tend, tend's
        /// units), as its agent.yaml's `self_manage:` or `--self-manage` says (`ProtectedPaths`).
        public var selfManagement = false
        /// Who runs it, as the state's records name it (`tend apply`, `tend agent`).
        public var runBy = "tend apply"
        /// Whether an apply leaves its record (`last-run.json`) itself; the agent writes one a
        /// cycle, of the run that ended it, also when the last good commit was applied after the
        /// newest was refused.
        public var recordsRun = true
        /// Takes a new commit only once this host's wave of its tend.yaml's `rollout:` is due (the
        /// agent); until then the run ends with `.notDue`, and the agent keeps enforcing the last
        /// good commit. A run pinned to a commit, and one on a host where nothing was applied yet,
        /// take it at once, as `tend apply` does.
        public var followsRollout = false
        /// After the first apply of a commit new to this host, runs the catalog's `health:` checks
        /// (the agent); a check that fails ends the run with `.unhealthy`, and the commit is not
        /// recorded as applied, so that the agent puts the last good one back.
        public var checksHealth = false
        /// Commits that failed their health checks on this host, with why: refused, as a bad
        /// signature is, until a new commit comes.
        public var unhealthyCommits: [String: String] = [:]

        public init(lockTimeout: Duration) {
            self.lockTimeout = lockTimeout
        }
    }

    /// What the agent keeps from one run to the next; nothing for a one-shot command.
    public struct Caches: Sendable {
        /// The catalog of the last commit, and the one enforced (`CatalogCache`); nil builds it
        /// every run.
        public var catalogs: CatalogCache?
        /// What is known of file contents without reading them again (`StatCache`); nil reads
        /// every file, as `tend plan` and `tend apply` do.
        public var stat: StatCache?

        public init(catalogs: CatalogCache? = nil, stat: StatCache? = nil) {
            self.catalogs = catalogs
            self.stat = stat
        }
    }
}
