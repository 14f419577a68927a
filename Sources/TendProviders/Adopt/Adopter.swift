public import TendCore
public import TendSpec

/// `tend adopt`: reads a host configured by hand (or a root) and writes a configuration
/// repository that rebuilds it: what was configured, and nothing that the distribution would
/// have done anyway. The method, in five parts, each in a file of its own:
///
/// - packages: apt's manual marks, minus what a minimal Debian brings (Priority required,
///   Essential: what debootstrap's minbase installs), with holds as pinned versions;
/// - files: conffiles that differ from their package's (dpkg's digests), and what no package owns
///   under /etc, with owner and mode; links as links; machine-specific files left out by a
///   documented list; private files encrypted to the host's own age recipient, or left out;
/// - units: local unit files and drop-ins, masks, and units enabled or disabled unlike their
///   package left them (deb-systemd-helper's records);
/// - accounts: groups and users in the range of login.defs (no package's), with their keys;
///   password hashes are left out;
/// - a report: `ADOPTED.md` says what was taken and why, and what was left out and why.
///
/// It reads only files (the root's dpkg and apt databases, /etc, /home), so it reads a live
/// host and an image root alike; it changes nothing. Each file read is bounded as tend's own
/// reads are.
public struct Adopter {
    let host: HostReader
    /// The name the repository's host entry matches.
    let hostname: String
    /// The age recipient private files are encrypted to, if there is one.
    let recipient: String?
    /// Called with what it is reading, for a progress line.
    let progress: @Sendable (String) -> Void

    public init(host: HostReader, hostname: String, recipient: String?, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.host = host
        self.hostname = hostname
        self.recipient = recipient
        self.progress = progress
    }

    /// One thing taken into the repository, and why.
    public struct Taken: Sendable {
        public var id: String
        public var why: String
    }

    /// One thing left out, and why.
    public struct LeftOut: Sendable {
        public var path: String
        public var why: String
    }

    /// The repository, file by file (paths relative to its top), and what went into it.
    public struct Result: Sendable {
        public var files: [String: [UInt8]] = [:]
        public var taken: [Taken] = []
        public var leftOut: [LeftOut] = []
        /// Counts by concern, for the summary.
        public var counts: [String: Int] = [:]
    }

    /// The folder of the repository that holds this host's manifests.
    static let manifests = "host"

    public func adopt() async throws(HostError) -> Result {
        var result = Result()
        var vars: [String] = []
        progress("packages")
        let packages = try adoptPackages(into: &result)
        if !packages.vars.isEmpty { vars.append(packages.vars) }
        progress("files")
        try adoptFiles(packages: packages.database, into: &result)
        progress("units")
        try adoptUnits(into: &result)
        progress("accounts")
        if let accounts = try adoptAccounts(into: &result) { vars.append(accounts) }
        var config = "# Adopted from \(YAMLText.comment(hostname)) by tend adopt: what was configured on it by hand.\n"
        config += "# ADOPTED.md says what was taken, and what was left out and why.\n"
        if !vars.isEmpty { config += "vars_files: [\(vars.joined(separator: ", "))]\n" }
        config += "hosts:\n  - match: { hostname: \(YAMLText.quoted(hostname)) }\n    apply: [\(Self.manifests)]\n"
        result.files["tend.yaml"] = Array(config.utf8)
        result.files["ADOPTED.md"] = Array(report(result).utf8)
        return result
    }

    /// ADOPTED.md: the summary, what was taken and why, what was left out and why.
    func report(_ result: Result) -> String {
        var text = "# What tend adopt took from \(hostname)\n\n"
        text += result.counts.sorted { $0.key < $1.key }.map { "- \($0.key): \($0.value)" }.joined(separator: "\n") + "\n\n"
        text += "## Taken\n\n" + result.taken.map { "- `\($0.id)`: \($0.why)" }.joined(separator: "\n") + "\n\n"
        text += "## Left out\n\n" + (result.leftOut.isEmpty ? "Nothing.\n" : result.leftOut.map { "- `\($0.path)`: \($0.why)" }.joined(separator: "\n") + "\n")
        return text
    }
}

/// Writing YAML that reads back exactly: scalars double-quoted with escapes where plain would
/// not do, comments made safe.
enum YAMLText {
    /// `text` as a YAML scalar: plain when that reads back as the same string, else
    /// double-quoted with escapes.
    static func quoted(_ text: String) -> String {
        let plainSafe = !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            (scalar.value >= 0x30 && scalar.value <= 0x39) || (scalar.value | 0x20 >= 0x61 && scalar.value | 0x20 <= 0x7a)
                || "/._-+@".unicodeScalars.contains(scalar)
        } && !["true", "false", "yes", "no", "null", "on", "off", "~"].contains(text.lowercased()) && Int(text) == nil && Double(text) == nil
            && !text.hasPrefix("-") && !text.hasPrefix(".") && !text.hasPrefix("@")
        if plainSafe { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f || (scalar.value >= 0x80 && scalar.value < 0xa0) {
                    out += "\\x" + String(scalar.value, radix: 16).leftPadded(2)
                } else if [0x2028, 0x2029, 0xfeff, 0xfffe, 0xffff].contains(scalar.value) {
                    // Line and paragraph separators fold, and a byte-order mark is refused, inside quotes.
                    out += "\\u" + String(scalar.value, radix: 16).leftPadded(4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// `text` for a `#` comment: one line, control characters shown.
    static func comment(_ text: String) -> String {
        Printable.escaped(text)
    }

    /// A file mode as tend.yaml writes it (`"0640"`).
    static func mode(_ permissions: UInt32) -> String {
        "\"" + String(permissions & 0o7777, radix: 8).leftPadded(4) + "\""
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
