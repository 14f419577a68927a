public import TendSpec
import SystemPackage

/// `/etc/tend/agent.yaml`: every option of `tend agent`, written as in YAML (`state_dir:` for
/// `--state-dir`). Flags given on the command line win over the file.
public struct AgentFile: Sendable {
    public static let defaultPath = "/etc/tend/agent.yaml"

    public var repo: String?
    public var ref: String?
    public var path: String?
    public var root: String?
    public var stateDir: String?
    public var sshKey: String?
    public var knownHosts: String?
    public var tokenFile: String?
    public var verify: String?
    public var verifyGpg: String?
    public var hostname: String?
    public var labels: [String: String] = [:]
    public var interval: Duration?
    public var splay: Duration?
    public var fetchTimeout: Duration?
    public var lockTimeout: Duration?
    public var aptMaxAge: Duration?
    public var metricsFile: String?
    public var watch: Bool?

    public init() {}

    /// Reads the file at `path`; a missing file is an empty one when `optional`. Every problem is
    /// reported at its `path:line:col`.
    public static func read(_ path: String, optional: Bool) throws(AgentFileError) -> AgentFile {
        let bytes: [UInt8]
        do {
            let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .nonBlocking])
            defer { try? fd.close() }
            guard try fd.stat().type == .regular else { throw AgentFileError([Diagnostic("not a regular file", at: SourceLocation(file: path, line: 1, column: 1))]) }
            bytes = try fd.readToEnd(sizeHint: 4096, limit: 1 << 20)
        } catch let error as Errno {
            if error == .noSuchFileOrDirectory, optional { return AgentFile() }
            throw AgentFileError([Diagnostic("cannot read the agent's configuration: \(error)", at: SourceLocation(file: path, line: 1, column: 1))])
        } catch let error as AgentFileError {
            throw error
        } catch {
            throw AgentFileError([Diagnostic("cannot read the agent's configuration: \(error)", at: SourceLocation(file: path, line: 1, column: 1))])
        }
        return try parse(bytes, file: path)
    }

    public static func parse(_ bytes: [UInt8], file: String) throws(AgentFileError) -> AgentFile {
        let parsed = YAMLParser.parse(bytes, file: file)
        var diagnostics = Diagnostics()
        diagnostics.append(contentsOf: parsed.diagnostics)
        var result = AgentFile()
        guard diagnostics.isEmpty else { throw AgentFileError(diagnostics.sorted) }
        guard let document = parsed.documents.first, !document.isNull else { return result }
        guard var reader = MappingReader(document, what: "the agent's configuration", diagnostics: &diagnostics) else {
            throw AgentFileError(diagnostics.sorted)
        }
        func string(_ key: String) -> String? {
            guard let node = reader.take(key) else { return nil }
            guard let text = node.string(key, &diagnostics) else { return nil }
            if text.isEmpty || text.contains(where: { $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } ?? false }) {
                diagnostics.error("\(key) must be a non-empty string without control characters", at: node.location)
                return nil
            }
            return text
        }
        func duration(_ key: String, minimum: Duration) -> Duration? {
            guard let node = reader.take(key), let text = node.string(key, &diagnostics) else { return nil }
            guard let value = AgentDuration.parse(text) else {
                diagnostics.error("\(key) must be a duration such as 30s, 5m, 2h or 1h30m, found '\(text)'", at: node.location)
                return nil
            }
            guard value >= minimum else {
                diagnostics.error("\(key) must be at least \(AgentDuration.format(minimum)), found '\(text)'", at: node.location)
                return nil
            }
            return value
        }
        result.repo = string("repo")
        result.ref = string("ref")
        result.path = string("path")
        result.root = string("root")
        result.stateDir = string("state_dir")
        result.sshKey = string("ssh_key")
        result.knownHosts = string("known_hosts")
        result.tokenFile = string("token_file")
        result.verify = string("verify")
        result.verifyGpg = string("verify_gpg")
        result.hostname = string("hostname")
        result.metricsFile = reader.take("metrics_file").flatMap { $0.isNull ? "" : $0.string("metrics_file", &diagnostics) }
        if let node = reader.take("labels"), let map = node.stringMap("labels", &diagnostics) {
            result.labels = map.mapValues(\.value)
        }
        result.interval = duration("interval", minimum: .seconds(1))
        result.splay = duration("splay", minimum: .zero)
        result.fetchTimeout = duration("fetch_timeout", minimum: .seconds(1))
        result.lockTimeout = duration("lock_timeout", minimum: .zero)
        result.aptMaxAge = duration("apt_max_age", minimum: .zero)
        result.watch = reader.take("watch").flatMap { $0.bool("watch", &diagnostics) }
        reader.finish(&diagnostics, context: "the agent's configuration")
        guard diagnostics.isEmpty else { throw AgentFileError(diagnostics.sorted) }
        return result
    }
}

/// Every problem of an agent.yaml, at its position.
public struct AgentFileError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Durations as operators write them: `30s`, `5m`, `2h`, `1d`, `1h30m`, `500ms`; a bare number is
/// seconds.
public enum AgentDuration {
    public static func parse(_ text: String) -> Duration? {
        if let seconds = Int(text), seconds >= 0 { return .seconds(seconds) }
        var total = Duration.zero
        var number = ""
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while let character = rest.first {
            if character.isASCII, character.isNumber {
                number.append(character)
                rest = rest.dropFirst()
                continue
            }
            guard let value = Int(number), value < 1_000_000_000 else { return nil }
            let unit: Duration
            if rest.hasPrefix("ms") {
                unit = .milliseconds(1)
                rest = rest.dropFirst(2)
            } else {
                switch character {
                case "s": unit = .seconds(1)
                case "m": unit = .seconds(60)
                case "h": unit = .seconds(3600)
                case "d": unit = .seconds(86400)
                default: return nil
                }
                rest = rest.dropFirst()
            }
            total += unit * value
            number = ""
        }
        return number.isEmpty ? total : nil
    }

    /// `5m`, `1h30m`, `90s`, `250ms`.
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        var seconds = milliseconds / 1000
        if seconds == 0 { return "0s" }
        var text = ""
        for (unit, size) in [("d", Int64(86400)), ("h", 3600), ("m", 60), ("s", 1)] where seconds >= size {
            text += "\(seconds / size)\(unit)"
            seconds %= size
        }
        return text
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
