public import TendSpec
public import FoundationEssentials

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

    /// When it was recorded: the time a replay takes as now (the age of apt's lists).
    public var taken: Date?
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
        case taken, paths, nssUsers = "nss_users", nssGroups = "nss_groups", services, units, values
    }

    /// The prefix of a digest that stands for a secret in a recorded file (no colon: it sits in a
    /// field of /etc/shadow).
    public static let secretPrefix = "tend-sha256-"

    /// Whether `recorded`, a secret as a snapshot holds it (its digest), is `declared`.
    public static func secret(_ recorded: String?, is declared: String) -> Bool {
        recorded == secretPrefix + StatCache.digest(of: Array(declared.utf8))
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

    /// The largest content a snapshot keeps of `path` whole: 1 MiB, as a diff of larger text
    /// costs more than a preview is worth (and a hostile snapshot must not make one); 64 MiB of
    /// dpkg's database, which is parsed, never diffed.
    public static func largestText(_ path: String) -> Int {
        path == "/var/lib/dpkg/status" ? 64 << 20 : 1 << 20
    }

    /// The snapshot with every content larger than `largestText` kept as its digest only: what
    /// a snapshot read from a file is planned from.
    public func bounded() -> HostSnapshot {
        var bounded = self
        for (path, entry) in paths {
            if let text = entry.text, text.count > Self.largestText(path) {
                bounded.paths[path]?.text = nil
                bounded.paths[path]?.digest = StatCache.digest(of: Array(text))
            }
        }
        return bounded
    }

    /// Files whose secrets are kept redacted rather than as a digest of the whole file.
    static let redactedFiles: Set<String> = ["/etc/shadow", "/etc/gshadow"]
}
