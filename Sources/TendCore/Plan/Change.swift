/// What must happen to one resource, as data: the action, the attributes that differ (old and
/// new), and for content a diff that is safe to show.
public struct Change: Sendable, Codable, Hashable {
    public enum Action: String, Sendable, Codable, Hashable, CaseIterable {
        case create, update, delete, replace, restart, reload
        /// Reload if the unit can, restart otherwise (`{reload-or-restart: ID}`).
        case reloadOrRestart = "reload-or-restart"
        /// Run a `command`.
        case run

        /// The symbol a plan shows, as Terraform does.
        public var symbol: String {
            switch self {
            case .create: "+"
            case .update: "~"
            case .delete: "-"
            case .replace: "±"
            case .restart, .reload, .reloadOrRestart: "↻"
            case .run: "▶"
            }
        }
    }

    public var action: Action
    /// The attributes that differ, in a fixed order per kind.
    public var attributes: [AttributeChange]
    /// How the content changes, if it does.
    public var content: ContentChange?
    /// Names inside the resource that the change removes (a directory's unmanaged entries).
    public var removes: [String]
    /// Further facts a reader needs ("replaces a symbolic link to /tmp/x").
    public var notes: [String]
    /// For a delete or a replace of a path: what the plan found there. The step removes or
    /// replaces only that; if the host holds something else by then, the step fails and leaves it.
    public var found: FileStatus.FileType?

    public init(_ action: Action, attributes: [AttributeChange] = [], content: ContentChange? = nil, removes: [String] = [],
                notes: [String] = [], found: FileStatus.FileType? = nil) {
        self.action = action
        self.found = found
        self.attributes = attributes
        self.content = content
        self.removes = removes
        self.notes = notes
    }

    /// Whether the attribute `name` is among those that change.
    public func changes(_ name: String) -> Bool {
        attributes.contains { $0.name == name } || (name == "content" && content != nil)
    }
}

/// One attribute's old and new value. Values are typed (`enabled` is a boolean, a mode the text
/// `"0644"`), so `--json` carries JSON's own types; nil means the attribute has no value on that
/// side. A note says what people should read where a side has no value ("absent", "installed by
/// package:nginx") or more than its value ("inactive" beside "stopped").
public struct AttributeChange: Sendable, Codable, Hashable {
    public var name: String
    public var before: AttributeValue?
    public var after: AttributeValue?
    public var beforeNote: String?
    public var afterNote: String?

    public init(_ name: String, before: AttributeValue?, after: AttributeValue?, beforeNote: String? = nil, afterNote: String? = nil) {
        self.name = name
        self.before = before
        self.after = after
        self.beforeNote = beforeNote
        self.afterNote = afterNote
    }

    public init(_ name: String, before: String?, after: String?, beforeNote: String? = nil, afterNote: String? = nil) {
        self.init(name, before: before.map(AttributeValue.text), after: after.map(AttributeValue.text), beforeNote: beforeNote, afterNote: afterNote)
    }

    public init(_ name: String, before: Bool?, after: Bool?) {
        self.init(name, before: before.map(AttributeValue.bool), after: after.map(AttributeValue.bool))
    }

    /// The old value as people read it: `stopped (inactive)`, `(absent)`, `(none)`.
    public var shownBefore: String { Self.shown(before, note: beforeNote) }
    /// The new value as people read it.
    public var shownAfter: String { Self.shown(after, note: afterNote) }
    /// `name: before → after`, as the journal's lines say what changed.
    public var summary: String { "\(name): \(shownBefore) → \(shownAfter)" }

    private static func shown(_ value: AttributeValue?, note: String?) -> String {
        guard let value else { return "(\(note ?? "none"))" }
        return note.map { "\(value) (\($0))" } ?? value.description
    }

    enum CodingKeys: String, CodingKey {
        case name, before, after, beforeNote = "before_note", afterNote = "after_note"
    }
}

/// A typed attribute value: a JSON string or boolean.
public enum AttributeValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case text(String)
    case bool(Bool)

    public var description: String {
        switch self {
        case .text(let text): text
        case .bool(let value): value ? "true" : "false"
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .bool(let value): try container.encode(value)
        }
    }
}

/// A content change as it may be shown.
public enum ContentChange: Sendable, Codable, Hashable {
    /// A unified diff of text content.
    case text(diff: String)
    /// Binary content, by size.
    case binary(before: Int?, after: Int?)
    /// Content of a `sensitive` resource: only the fact that it changed.
    case sensitive

    /// Describes how `before` becomes `after`, never revealing sensitive content.
    public static func between(_ before: [UInt8]?, _ after: [UInt8]?, path: String, sensitive: Bool) -> ContentChange {
        if sensitive { return .sensitive }
        guard let oldText = TextDiff.text(before ?? []), let newText = TextDiff.text(after ?? []) else {
            return .binary(before: before?.count, after: after?.count)
        }
        return .text(diff: TextDiff.unified(old: oldText, new: newText,
                                            oldName: before == nil ? "/dev/null" : path,
                                            newName: after == nil ? "/dev/null" : path))
    }
}
