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

    /// A host's place in the fleet, in [0, 100): a stable hash of its machine ID, salted its own
    /// way (`MachineID.hash`).
    public static func position(machineID: String) -> Double {
        Double(MachineID.hash(machineID, salt: "tend-rollout:") % 10_000) / 100
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

extension Rollout {
    /// Decodes tend.yaml's `rollout:` (`{waves: [{share: 5%}, {share: 50%, after: 30m}, {share:
    /// 100%, after: 2h}]}`); nil, with the problems said, when it is not valid.
    static func decode(_ node: YAMLNode, _ diagnostics: inout Diagnostics) -> Rollout? {
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
}
