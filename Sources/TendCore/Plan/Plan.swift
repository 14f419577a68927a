public import TendSpec

/// The plan: what must change on one host to reach one configuration. A value that prints for
/// people, serialises to versioned JSON (docs/plan-format.md), and is exactly what apply executes.
public struct Plan: Sendable, Codable {
    /// The version of the JSON format; bumped on any incompatible change.
    /// 2: attribute values are typed (booleans are JSON booleans) with notes beside them.
    public static let currentFormatVersion = 2

    public var formatVersion: Int
    /// The tend that made the plan.
    public var tendVersion: String
    /// The configuration the plan was made from.
    public var source: SnapshotOrigin
    /// How the source is named to people.
    public var sourceDescription: String
    /// The root the plan was made for ("/" for the host itself).
    public var root: String
    /// The facts that selected the manifests (hostname, labels, os); apply --plan selects with them again.
    public var facts: HostFacts
    /// How many resources the catalog has (most need no change).
    public var resourceCount: Int
    /// The resources that need a change or could not be observed, in the order apply runs them.
    public var steps: [Step]

    /// One resource's part in the plan.
    public struct Step: Sendable, Codable, Hashable {
        public var id: ResourceID
        /// What must change; nil when the resource could not be observed (see `error`).
        public var change: Change?
        /// Why the resource could not be observed or planned.
        public var error: String?
        /// The other steps this one depends on, directly or through resources that need no change;
        /// if one of them fails, this one is skipped.
        public var dependsOn: [ResourceID]
        /// SHA-256 of the desired state, to tell that the configuration is the same at apply time.
        public var desiredDigest: String
        /// SHA-256 of what was observed, to tell that the host is the same at apply time.
        public var observedFingerprint: String?
        /// The component instance the resource came from (`nginx-site[shop]`), if any.
        public var instance: String?

        public init(id: ResourceID, change: Change?, error: String?, dependsOn: [ResourceID], desiredDigest: String, observedFingerprint: String?,
                    instance: String? = nil) {
            self.id = id
            self.instance = instance
            self.change = change
            self.error = error
            self.dependsOn = dependsOn
            self.desiredDigest = desiredDigest
            self.observedFingerprint = observedFingerprint
        }
    }

    public init(tendVersion: String, source: SnapshotOrigin, sourceDescription: String, root: String, facts: HostFacts, resourceCount: Int, steps: [Step]) {
        formatVersion = Self.currentFormatVersion
        self.tendVersion = tendVersion
        self.source = source
        self.sourceDescription = sourceDescription
        self.root = root
        self.facts = facts
        self.resourceCount = resourceCount
        self.steps = steps
    }

    /// Whether applying would change anything.
    public var hasChanges: Bool { steps.contains { $0.change != nil } }

    /// The steps that could not be planned.
    public var errors: [Step] { steps.filter { $0.error != nil } }

    /// How many changes of each action the plan holds.
    public var counts: [Change.Action: Int] {
        var counts: [Change.Action: Int] = [:]
        for step in steps { if let action = step.change?.action { counts[action, default: 0] += 1 } }
        return counts
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", tendVersion = "tend_version", source
        case sourceDescription = "source_description", root, facts, resourceCount = "resource_count", steps
    }
}

extension Plan.Step {
    enum CodingKeys: String, CodingKey {
        case id, change, error, dependsOn = "depends_on", desiredDigest = "desired_digest", observedFingerprint = "observed_fingerprint", instance
    }
}

extension ContentChange {
    enum CodingKeys: String, CodingKey { case kind, diff, before, after }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .kind) {
        case "text": self = .text(diff: try container.decode(String.self, forKey: .diff))
        case "binary": self = .binary(before: try container.decodeIfPresent(Int.self, forKey: .before),
                                      after: try container.decodeIfPresent(Int.self, forKey: .after))
        case "sensitive": self = .sensitive
        case let other: throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "unknown content kind '\(other)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .text(let diff):
            try container.encode("text", forKey: .kind)
            try container.encode(diff, forKey: .diff)
        case .binary(let before, let after):
            try container.encode("binary", forKey: .kind)
            try container.encodeIfPresent(before, forKey: .before)
            try container.encodeIfPresent(after, forKey: .after)
        case .sensitive:
            try container.encode("sensitive", forKey: .kind)
        }
    }
}
