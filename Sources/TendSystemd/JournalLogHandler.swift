internal import CSystemd
public import Logging
import Glibc
import Synchronization

/// A swift-log handler that sends each entry to journald as structured fields with
/// `sd_journal_sendv`: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=tend, CODE_FILE, CODE_LINE, CODE_FUNC,
/// and every metadata key as a field of its own: `message_id` as MESSAGE_ID, any other key `k` as
/// `TEND_K` (`resource` → TEND_RESOURCE). docs/journal.md lists the fields and message ids.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // The executable decides priorities, not the libraries, which log at info: a step that
        // failed is an error in the journal, so that `journalctl -p err` finds it. What the agent
        // logs at warning itself (a failed fetch, to be retried) keeps its level.
        let failed = (event.metadata?["result"] ?? metadata["result"]).map { "\($0)" } == "failed"
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(failed && event.level < .warning ? 3 : Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=tend",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            fields.append("\(Self.fieldName(key))=\(value)")
        }
        Self.send(fields)
    }

    /// The journal field for a metadata key: `message_id` is MESSAGE_ID; others get a TEND_ prefix.
    static func fieldName(_ key: String) -> String {
        if key == "message_id" { return "MESSAGE_ID" }
        return "TEND_" + String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// syslog priorities, as journald reads them.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// The corresponding C function is `sd_journal_sendv`.
    private static func send(_ fields: [String]) {
        var storage = fields.map { Array($0.utf8) }
        var vectors: [iovec] = []
        vectors.reserveCapacity(storage.count)
        for index in storage.indices {
            storage[index].withUnsafeMutableBytes { raw in
                vectors.append(iovec(iov_base: raw.baseAddress, iov_len: raw.count))
            }
        }
        // The iovecs point into `storage`, which stays alive and unmoved until after the call.
        let sent = withExtendedLifetime(storage) {
            sd_journal_sendv(vectors, Int32(vectors.count))
        }
        // libsystemd drops an entry in silence (and says 0) when journald's socket is gone, as
        // when journald is stopped with its sockets: that is a loss too.
        if sent < 0 || access(JournalDetection.socket, F_OK) != 0 {
            Self.lost.withLock { $0.count += 1; $0.since = $0.since ?? time(nil) }
        }
    }

    /// Entries journald did not take (it was stopped, or its socket was full), and since when
    /// (seconds since 1970), for the note the agent logs once it can (`takeLost`).
    private static let lost = Mutex<(count: Int, since: Int?)>((0, nil))

    /// How many entries were lost since the last call, and since when; resets the count.
    public static func takeLost() -> (count: Int, since: Int)? {
        lost.withLock { lost in
            defer { lost = (0, nil) }
            guard lost.count > 0, let since = lost.since else { return nil }
            return (lost.count, since)
        }
    }
}

/// Whether this process should log to the journal: its stderr is the journal (JOURNAL_STREAM
/// names stderr's device and inode), or it runs as a systemd service (INVOCATION_ID).
public enum JournalDetection {
    /// journald's socket for native entries.
    static let socket = "/run/systemd/journal/socket"

    /// Whether journald listens on this machine (its socket exists).
    public static var journaldRuns: Bool {
        access(socket, F_OK) == 0
    }

    public static var stderrIsJournal: Bool {
        if let stream = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) {
            var info = stat()
            if fstat(STDERR_FILENO, &info) == 0, stream == "\(info.st_dev):\(info.st_ino)" { return true }
        }
        return getenv("INVOCATION_ID") != nil
    }
}
