/// `rollout:` of tend.yaml: a new commit reaches the fleet in waves, each a share of the fleet
/// that becomes due a while after the commit's time. A host's place in the fleet comes from its
/// machine ID, so every host works out its own wave and no coordinator is needed; the same host
/// is always in the same wave.
public struct Rollout: Sendable, Hashable {
    public struct Wave: Sendable, Hashable {
        /// The share of the fleet that has the commit once this wave is due, in percent: the
        /// waves' shares grow, and the last is 100.
        public var share: Double
        /// How long after the commit's time the wave is due.
        public var after: Duration
        public var location: SourceLocation

        public init(share: Double, after: Duration, location: SourceLocation) {
            self.share = share
            self.after = after
            self.location = location
        }
    }

    public var waves: [Wave]
    public var location: SourceLocation

    public init(waves: [Wave], location: SourceLocation) {
        self.waves = waves
        self.location = location
    }

    /// A host's place in the fleet, in [0, 100): a stable hash of its machine ID, its own (not
    /// the hash that spreads the agents' checks over the interval, so the first wave is not also
    /// the first to fetch).
    public static func position(machineID: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in ("tend-rollout:" + machineID).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Double(hash % 10_000) / 100
    }

    /// The index of the wave of the host at `position`: the first whose share is above it.
    public func wave(at position: Double) -> Int {
        waves.firstIndex { position < $0.share } ?? waves.count - 1
    }

    /// `5%`, `12.5%`.
    public static func format(share: Double) -> String {
        share == share.rounded() ? "\(Int(share))%" : "\(share)%"
    }

    /// Seconds after the commit's time at which the host at `position` takes the commit.
    public func delay(at position: Double) -> Duration {
        waves[wave(at: position)].after
    }
}

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

extension YAMLNode {
    /// A duration as operators write them (`30s`, `5m`, `1h30m`).
    public func duration(_ what: String, _ diagnostics: inout Diagnostics) -> Duration? {
        guard let text = string(what, &diagnostics) else { return nil }
        guard let value = DurationText.parse(text) else {
            diagnostics.error("\(what) must be a duration such as 30s, 5m, 2h or 1h30m, found '\(text)'", at: location)
            return nil
        }
        return value
    }
}

enum FleetPolicyDecoding {
    /// `rollout: {waves: [{share: 5%}, {share: 50%, after: 30m}, {share: 100%, after: 2h}]}`.
    static func rollout(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> Rollout? {
        guard var reader = MappingReader(node, what: "'rollout'", diagnostics: &diagnostics) else { return nil }
        defer { reader.finish(&diagnostics, context: "'rollout'") }
        guard let wavesNode = reader.take("waves") else {
            diagnostics.error("'rollout' needs 'waves:', a list such as [{share: 5%}, {share: 100%, after: 1h}]", at: node.location)
            return nil
        }
        guard let items = wavesNode.sequence, !items.isEmpty else {
            diagnostics.error("'waves' of 'rollout' must be a non-empty list of waves", at: wavesNode.location)
            return nil
        }
        var waves: [Rollout.Wave] = []
        var valid = true
        for item in items {
            guard var wave = MappingReader(item, what: "a wave", diagnostics: &diagnostics) else { valid = false; continue }
            defer { wave.finish(&diagnostics, context: "a wave") }
            guard let shareNode = wave.take("share") else {
                diagnostics.error("a wave needs 'share:', the part of the fleet that has the commit once it is due (such as 5%)", at: item.location)
                valid = false
                continue
            }
            guard let share = shareNode.string("'share'", &diagnostics).flatMap(Self.percent) else {
                if shareNode.scalar != nil { diagnostics.error("'share' must be a percentage above 0% and at most 100%, such as 5% or 12.5%", at: shareNode.location) }
                valid = false
                continue
            }
            var after: Duration = .zero
            if let afterNode = wave.take("after") {
                guard let value = afterNode.duration("'after'", &diagnostics) else { valid = false; continue }
                after = value
            }
            if let previous = waves.last {
                if share <= previous.share {
                    diagnostics.error("each wave's share is the whole part of the fleet that has the commit by then, so it must grow: \(Rollout.format(share: share)) follows \(Rollout.format(share: previous.share))", at: shareNode.location)
                    valid = false
                }
                if after < previous.after {
                    diagnostics.error("a wave cannot be due before the one above it: after \(DurationText.format(after)) follows \(DurationText.format(previous.after))", at: item.location)
                    valid = false
                }
            }
            waves.append(Rollout.Wave(share: share, after: after, location: item.location))
        }
        if valid, let last = waves.last, last.share != 100 {
            diagnostics.error("the last wave must have share: 100%, or part of the fleet would never take a commit", at: last.location)
            valid = false
        }
        return valid ? Rollout(waves: waves, location: node.location) : nil
    }

    /// `5%`, `12.5%`, `100%`, or a bare number of percent.
    static func percent(_ text: String) -> Double? {
        let number = text.hasSuffix("%") ? String(text.dropLast()).trimmingWhitespace() : text
        guard let value = Double(number), value > 0, value <= 100 else { return nil }
        return value
    }

    /// `health:`: a list of checks, each with one of `unit:`, `command:` or `http:`, and `timeout:`.
    static func health(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> [HealthCheck] {
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
                guard let local = localURL(text) else {
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
