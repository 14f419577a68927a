public import TendSpec
public import FoundationEssentials
import Synchronization

/// What observing one host read, kept so that the same observations can be planned elsewhere:
/// `tend snapshot` records it on a host, `tend plan --snapshot` plans against it anywhere, with
/// a `HostReader(replaying:)` that answers every read from it and never touches the machine it
/// runs on. (Not to be confused with `Snapshot`, a tree of the configuration repository.)
///
/// It holds exactly what the providers asked for while planning the host's own configuration:
/// the `lstat` of each path, link targets, folder listings, file contents, the service manager's
/// unit states and what providers keep of their tools' answers (`value(_:)`). Contents that are
/// secret are kept as digests only: those of files that others may not read (/etc/shadow's mode
/// 0640) or that the configuration declares `sensitive` (`Recorder.hide(_:)`); /etc/shadow
/// itself keeps its lines with each password hash replaced by its digest (`redacted(_:)`).
///
/// A path the snapshot does not hold is taken as absent (a file the previewed commit adds), and
/// named in `HostReader.unrecorded`, so that a preview says what it assumed.
public struct HostSnapshot: Sendable, Codable {
    /// One path as `lstat` and the reads of it found it.
    public struct Path: Sendable, Codable {
        /// Nil: the path did not exist.
        public var status: FileStatus?
        public var link: String?
        public var entries: [String]?
        /// The content, when it may be shown (base64 in JSON).
        public var text: Data?
        /// `StatCache.digest(of:)` of the content, when only that is kept.
        public var digest: String?

        public init(status: FileStatus?) {
            self.status = status
        }
    }

    public var paths: [String: Path] = [:]
    /// Users and groups found through NSS (LDAP, sssd) rather than /etc/passwd: name → id, nil
    /// when NSS does not know the name either.
    public var nssUsers: [String: UInt32?] = [:]
    public var nssGroups: [String: UInt32?] = [:]
    /// Whether a service manager ran (systemd as PID 1), and the units it was asked about.
    public var services: Bool = false
    public var units: [String: UnitStatus] = [:]
    /// What providers keep of their tools' answers (apt's candidate versions), by key.
    public var values: [String: String] = [:]

    public init() {}

    enum CodingKeys: String, CodingKey {
        case paths, nssUsers = "nss_users", nssGroups = "nss_groups", services, units, values
    }

    /// The prefix of a digest that stands for a secret in a recorded file (no colon: it sits in a
    /// field of /etc/shadow).
    public static let secretPrefix = "tend-sha256-"

    /// Whether `recorded`, a secret as a snapshot holds it (itself or its digest), is `declared`.
    public static func secret(_ recorded: String?, is declared: String) -> Bool {
        guard let recorded else { return false }
        return recorded == declared || recorded == secretPrefix + StatCache.digest(of: Array(declared.utf8))
    }

    /// /etc/shadow's or /etc/gshadow's lines with each password hash replaced by its digest; a
    /// field with no secret in it (`*`, `!`, empty) is kept, and so is a lock's `!`.
    public static func redacted(_ shadow: [UInt8]) -> [UInt8] {
        let lines = String(decoding: shadow, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var fields = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 2 else { return String(line) }
            let locked = fields[1].hasPrefix("!")
            let hash = locked ? String(fields[1].dropFirst()) : fields[1]
            if !hash.isEmpty, hash != "*", hash != "!" {
                fields[1] = (locked ? "!" : "") + secretPrefix + StatCache.digest(of: Array(hash.utf8))
            }
            return fields.joined(separator: ":")
        }
        return Array(lines.joined(separator: "\n").utf8)
    }

    /// Files whose secrets are kept redacted rather than as a digest of the whole file.
    static let redactedFiles: Set<String> = ["/etc/shadow", "/etc/gshadow"]

    /// Builds a snapshot from the reads of one `HostReader` (which may be used from one thread at
    /// a time, as every reader is).
    public final class Recorder: Sendable {
        private let state = Mutex(HostSnapshot())
        /// Paths whose contents are kept as digests whatever their mode: those of resources
        /// declared `sensitive` (`Catalog.sensitivePaths`).
        private let hidden = Mutex(Set<String>())

        public init() {}

        /// Keeps only digests of the contents at `paths` from now on.
        public func hide(_ paths: Set<String>) {
            hidden.withLock { $0.formUnion(paths) }
        }

        /// What was recorded so far.
        public var snapshot: HostSnapshot { state.withLock { $0 } }

        func update(_ change: (inout HostSnapshot) -> Void) {
            state.withLock { change(&$0) }
        }

        func status(_ path: String, _ status: FileStatus?) {
            update { snapshot in
                if snapshot.paths[path] == nil {
                    snapshot.paths[path] = Path(status: status)
                } else {
                    snapshot.paths[path]?.status = status
                }
            }
        }

        func path(_ path: String, _ change: (inout Path) -> Void) {
            update { snapshot in
                var entry = snapshot.paths[path] ?? Path(status: nil)
                change(&entry)
                snapshot.paths[path] = entry
            }
        }

        /// Records a file's content as it may be kept: whole when others may read it and it is
        /// not declared sensitive; else its digest (or its redacted lines, for the shadow files).
        func content(_ path: String, _ bytes: [UInt8], status: FileStatus?) {
            let othersMayRead = (status?.permissions ?? 0) & 0o004 != 0
            self.path(path) { entry in
                if status != nil, entry.status == nil { entry.status = status }
                if HostSnapshot.redactedFiles.contains(path) {
                    entry.text = Data(HostSnapshot.redacted(bytes))
                } else if othersMayRead, !hidden.withLock({ $0.contains(path) }) {
                    entry.text = Data(bytes)
                } else {
                    entry.digest = StatCache.digest(of: bytes)
                }
            }
        }
    }

    /// A service manager that answers from the snapshot: unit states as they were recorded, and
    /// a unit it was never asked about as systemd answers for a name it does not know.
    final class ReplayedServices: ServiceManager {
        let units: [String: UnitStatus]

        init(_ units: [String: UnitStatus]) {
            self.units = units
        }

        func status(of names: [String]) throws(HostError) -> [String: UnitStatus] {
            var found: [String: UnitStatus] = [:]
            for name in names {
                found[name] = units[name] ?? UnitStatus(loadState: "not-found", activeState: "inactive", subState: "dead", unitFileState: "")
            }
            return found
        }

        func daemonReload() throws(HostError) { throw Self.readOnly }
        func run(_ job: UnitJob, unit: String, timeout: Duration) throws(HostError) -> UnitJobResult { throw Self.readOnly }
        func change(_ change: UnitFileChange, unit: String) throws(HostError) { throw Self.readOnly }
        func recentLog(of unit: String, count: Int) -> [String] { [] }

        static let readOnly = HostError(path: "/", message: "a snapshot is planned against, never changed")
    }

    /// A service manager that passes reads to the real one and records what it answered.
    final class RecordingServices: ServiceManager {
        let manager: any ServiceManager
        let recorder: Recorder

        init(_ manager: any ServiceManager, recorder: Recorder) {
            self.manager = manager
            self.recorder = recorder
            recorder.update { $0.services = true }
        }

        func status(of names: [String]) throws(HostError) -> [String: UnitStatus] {
            let found = try manager.status(of: names)
            recorder.update { $0.units.merge(found) { _, new in new } }
            return found
        }

        func daemonReload() throws(HostError) { throw ReplayedServices.readOnly }
        func run(_ job: UnitJob, unit: String, timeout: Duration) throws(HostError) -> UnitJobResult { throw ReplayedServices.readOnly }
        func change(_ change: UnitFileChange, unit: String) throws(HostError) { throw ReplayedServices.readOnly }
        func recentLog(of unit: String, count: Int) -> [String] { manager.recentLog(of: unit, count: count) }
    }
}
