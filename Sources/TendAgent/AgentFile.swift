public import TendSpec
import TendGit
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
    /// `age_identity`: the age identity (or SSH key) that opens the repository's secrets.
    public var ageIdentity: String?
    public var labels: [String: String] = [:]
    public var interval: Duration?
    public var splay: Duration?
    public var fetchTimeout: Duration?
    public var fetchMaxSizeMiB: Int?
    public var lockTimeout: Duration?
    public var aptMaxAge: Duration?
    public var metricsFile: String?
    public var watch: Bool?
    /// Whether the repository may declare tend's own control (/etc/tend, tend's units): the
    /// host's choice, never the repository's (`ProtectedPaths`).
    public var selfManage: Bool?
    /// Which file it was read from, taken on the descriptor read (`AgentSettings.configIdentity`);
    /// nil for a file that is not there.
    public var identity: FileIdentity?

    public init() {}

    /// Whether the agent.yaml of `root` (its /etc/tend/agent.yaml) lets the repository manage tend
    /// (`self_manage: true`): a manual run on a self-managed host accepts what its agent accepts.
    /// A file that does not read says no, and the problem says why.
    public static func selfManagement(ofRoot root: String) -> (Bool, problem: String?) {
        let path = (root == "/" ? "" : root) + defaultPath
        do {
            return (try read(path, optional: true).selfManage ?? false, nil)
        } catch {
            return (false, "\(path) does not read, so its self_manage: is not used: \(error.diagnostics.first?.description ?? "")")
        }
    }

    /// Reads the file at `path`; a missing file is an empty one when `optional`. Every problem is
    /// reported at its `path:line:col`.
    public static func read(_ path: String, optional: Bool) throws(AgentFileError) -> AgentFile {
        let bytes: [UInt8]
        let identity: FileIdentity?
        do {
            let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .nonBlocking])
            defer { try? fd.close() }
            guard try fd.stat().type == .regular else { throw AgentFileError([Diagnostic("not a regular file", at: SourceLocation(file: path, line: 1, column: 1))]) }
            identity = FileIdentity(descriptor: fd.rawValue)
            bytes = try fd.readToEnd(sizeHint: 4096, limit: 1 << 20)
        } catch let error as Errno {
            if error == .noSuchFileOrDirectory, optional { return AgentFile() }
            throw AgentFileError([Diagnostic("cannot read the agent's configuration: \(error)", at: SourceLocation(file: path, line: 1, column: 1))])
        } catch let error as AgentFileError {
            throw error
        } catch {
            throw AgentFileError([Diagnostic("cannot read the agent's configuration: \(error)", at: SourceLocation(file: path, line: 1, column: 1))])
        }
        var file = try parse(bytes, file: path)
        file.identity = identity
        return file
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
            guard let node = reader.take(key), let value = node.duration(key, &diagnostics) else { return nil }
            guard value >= minimum else {
                diagnostics.error("\(key) must be at least \(DurationText.format(minimum)), found '\(node.scalar?.text ?? "")'", at: node.location)
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
        result.ageIdentity = string("age_identity")
        result.metricsFile = reader.take("metrics_file").flatMap { $0.isNull ? "" : $0.string("metrics_file", &diagnostics) }
        if let node = reader.take("labels"), let map = node.stringMap("labels", &diagnostics) {
            result.labels = map.mapValues(\.value)
        }
        result.interval = duration("interval", minimum: .seconds(1))
        result.splay = duration("splay", minimum: .zero)
        result.fetchTimeout = duration("fetch_timeout", minimum: .seconds(1))
        if let node = reader.take("fetch_max_size") {
            let range = GitSource.fetchSizeRangeMiB
            if let text = node.scalar?.text, let mebibytes = Int(text), range.contains(mebibytes) {
                result.fetchMaxSizeMiB = mebibytes
            } else {
                diagnostics.error("fetch_max_size must be a whole number of MiB from \(range.lowerBound) to \(range.upperBound), found \(node.scalar.map { "'\(Printable.escaped($0.text))'" } ?? node.kindDescription)",
                                  at: node.location)
            }
        }
        result.lockTimeout = duration("lock_timeout", minimum: .zero)
        result.aptMaxAge = duration("apt_max_age", minimum: .zero)
        result.watch = reader.take("watch").flatMap { $0.bool("watch", &diagnostics) }
        result.selfManage = reader.take("self_manage").flatMap { $0.bool("self_manage", &diagnostics) }
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
