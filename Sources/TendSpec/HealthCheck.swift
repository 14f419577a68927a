/// One check of `health:` (a host entry's or a manifest's): after an apply that changed
/// something, the agent runs every check of the host's configuration, and a commit that fails one
/// is put back to the previous commit's state on that host.
public struct HealthCheck: Sendable, Hashable, CustomStringConvertible {
    public enum Probe: Sendable, Hashable {
        /// The unit's ActiveState is `active`.
        case unit(String)
        /// The command (no shell) exits 0.
        case command([String])
        /// A GET of this URL on the host itself answers 200.
        case http(host: String, port: Int, path: String)
    }

    public var probe: Probe
    /// How long the check has to pass: it is tried again, once a second, until then.
    public var timeout: Duration
    public var location: SourceLocation

    public static let defaultTimeout: Duration = .seconds(30)

    public init(probe: Probe, timeout: Duration = HealthCheck.defaultTimeout, location: SourceLocation) {
        self.probe = probe
        self.timeout = timeout
        self.location = location
    }

    /// `unit nginx.service`, `command nginx -t`, `http http://127.0.0.1:80/health`.
    public var description: String {
        switch probe {
        case .unit(let name): "unit \(name)"
        case .command(let arguments): "command " + arguments.joined(separator: " ")
        case .http(let host, let port, let path): "http http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)"
        }
    }
}

extension HealthCheck {
    /// `health:`: a list of checks, each with one of `unit:`, `command:` or `http:`, and `timeout:`.
    static func decodeList(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> [HealthCheck] {
        guard let items = node.sequence else {
            diagnostics.error("'health' must be a list of checks (unit:, command: or http:), found \(node.kindDescription)", at: node.location)
            return []
        }
        return items.compactMap { item -> HealthCheck? in
            guard var reader = MappingReader(item, what: "a health check", diagnostics: &diagnostics) else { return nil }
            // Every key is taken first, so that one problem does not make the others unknown.
            let probes = ["unit", "command", "http"].compactMap { key in reader.take(key).map { (key, $0) } }
            let timeoutNode = reader.take("timeout")
            reader.finish(&diagnostics, context: "a health check")
            var timeout = HealthCheck.defaultTimeout
            if let timeoutNode {
                guard let value = timeoutNode.duration("'timeout'", &diagnostics) else { return nil }
                guard value >= .seconds(1), value <= .seconds(3600) else {
                    diagnostics.error("'timeout' of a health check must be from 1s to 1h", at: timeoutNode.location)
                    return nil
                }
                timeout = value
            }
            guard probes.count == 1, let (key, probeNode) = probes.first else {
                diagnostics.error("a health check has exactly one of unit:, command: or http:\(probes.isEmpty ? "" : ", not " + probes.map(\.0).joined(separator: " and "))", at: item.location)
                return nil
            }
            let probe: HealthCheck.Probe
            switch key {
            case "unit":
                guard let name = probeNode.string("'unit'", &diagnostics) else { return nil }
                guard !name.isEmpty, !name.contains("/"), name.contains("."), !name.contains(where: { $0.isWhitespace || ($0.asciiValue ?? 0x20) < 0x20 }) else {
                    diagnostics.error("'unit' of a health check must be a unit name such as nginx.service, found '\(name)'", at: probeNode.location)
                    return nil
                }
                probe = .unit(name)
            case "command":
                let usage = "'command' of a health check is a list: the program (a name on PATH or an absolute path) and its arguments, run without a shell, such as [nginx, -t]"
                guard probeNode.sequence != nil else {
                    diagnostics.error(usage, at: probeNode.location)
                    return nil
                }
                guard let arguments = probeNode.stringList("'command'", &diagnostics)?.map(\.value) else { return nil }
                guard let program = arguments.first, program.hasPrefix("/") || !program.contains("/"), !program.isEmpty else {
                    diagnostics.error(usage, at: probeNode.location)
                    return nil
                }
                probe = .command(arguments)
            default:
                guard let text = probeNode.string("'http'", &diagnostics) else { return nil }
                guard let local = Self.localURL(text) else {
                    diagnostics.error("'http' of a health check must be an http:// URL on the host itself (127.0.0.1, [::1] or localhost), found '\(text)'", at: probeNode.location)
                    return nil
                }
                probe = .http(host: local.host, port: local.port, path: local.path)
            }
            return HealthCheck(probe: probe, timeout: timeout, location: item.location)
        }
    }

    /// `http://127.0.0.1:8080/health` taken apart; nil unless plain HTTP to the host itself.
    static func localURL(_ text: String) -> (host: String, port: Int, path: String)? {
        guard text.hasPrefix("http://") else { return nil }
        let rest = text.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard !path.contains(where: { $0.isWhitespace || ($0.asciiValue ?? 0x20) < 0x20 }) else { return nil }
        var host = String(authority)
        var port = 80
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()) else { return nil }
                port = value
            } else if !after.isEmpty {
                return nil
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.firstIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]) else { return nil }
            port = value
            host = String(host[..<colon])
        }
        guard ["127.0.0.1", "::1", "localhost"].contains(host), (1...65535).contains(port) else { return nil }
        return (host == "localhost" ? "127.0.0.1" : host, port, path.isEmpty ? "/" : String(path))
    }
}
