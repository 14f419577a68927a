/// One problem found in the configuration, with where it is.
public struct Diagnostic: Hashable, Sendable, Error, CustomStringConvertible {
    /// Where the problem is; `nil` only for problems of the repository as a whole.
    public var location: SourceLocation?
    public var message: String

    public init(_ message: String, at location: SourceLocation?) {
        self.message = message
        self.location = location
    }

    /// `path:line:col: message`. Names in it come from the repository: whoever prints it shows
    /// control characters visibly (`Printable`).
    public var description: String {
        guard let location else { return message }
        return "\(location): \(message)"
    }

    /// The same diagnostic with its path shown as `prefix/path` (the folder the user named).
    public func displayed(under prefix: String) -> Diagnostic {
        guard var location, !prefix.isEmpty else { return self }
        location.file = prefix.hasSuffix("/") ? prefix + location.file : prefix + "/" + location.file
        return Diagnostic(message, at: location)
    }
}

/// Problems collected across the whole repository, so that one bad entry does not hide the next.
public struct Diagnostics: Sendable {
    public private(set) var all: [Diagnostic] = []

    public init() {}

    public var isEmpty: Bool { all.isEmpty }

    public mutating func error(_ message: String, at location: SourceLocation?) {
        all.append(Diagnostic(message, at: location))
    }

    public mutating func append(contentsOf other: Diagnostics) {
        all.append(contentsOf: other.all)
    }

    public mutating func append(contentsOf other: [Diagnostic]) {
        all.append(contentsOf: other)
    }

    /// Marks the problems from the `start`th on that have a position but no `via` with `via`:
    /// those found in the text of a resource a loop or component expanded, which is shared by
    /// every item and so not marked itself (`Bindings.substitute`).
    public mutating func mark(from start: Int, via: String?) {
        guard let via, start < all.count else { return }
        for index in start..<all.count where all[index].location != nil && all[index].location?.via == nil {
            all[index].location?.via = via
        }
    }

    /// Forgets the problems from the `start`th on.
    public mutating func drop(from start: Int) {
        if start < all.count { all.removeSubrange(start...) }
    }

    /// In file, line and column order; diagnostics without a location first.
    public var sorted: [Diagnostic] {
        all.enumerated().sorted { a, b in
            switch (a.element.location, b.element.location) {
            case let (l?, r?): return l == r ? a.offset < b.offset : l < r
            case (nil, _?): return true
            case (_?, nil): return false
            case (nil, nil): return a.offset < b.offset
            }
        }.map(\.element)
    }
}

/// Thrown when the configuration is invalid; carries every problem found.
public struct ConfigurationError: Error, Sendable {
    public var diagnostics: [Diagnostic]

    /// The most problems of one file shown.
    public static let shownPerFile = 200

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    /// The problems to show, in order: at most `shownPerFile` of one file, then a line that
    /// counts the rest of that file's (a manifest of `- x` items is a problem every four bytes,
    /// past what YAMLParser.maximumProblems stops).
    public var shown: [Diagnostic] {
        var shown: [Diagnostic] = []
        var shownOf: [String: Int] = [:]
        var hidden: [String: (count: Int, first: SourceLocation)] = [:]
        for diagnostic in diagnostics {
            guard let location = diagnostic.location else {
                shown.append(diagnostic)
                continue
            }
            if shownOf[location.file, default: 0] < Self.shownPerFile {
                shownOf[location.file, default: 0] += 1
                shown.append(diagnostic)
            } else {
                hidden[location.file, default: (0, location)].count += 1
            }
        }
        guard !hidden.isEmpty else { return shown }
        // Each file's count goes right after the last of its problems shown.
        var last: [String: Int] = [:]
        for (index, diagnostic) in shown.enumerated() {
            if let file = diagnostic.location?.file { last[file] = index }
        }
        var result: [Diagnostic] = []
        for (index, diagnostic) in shown.enumerated() {
            result.append(diagnostic)
            if let file = diagnostic.location?.file, last[file] == index, let rest = hidden[file] {
                result.append(Diagnostic("\(rest.count) more problem\(rest.count == 1 ? "" : "s") in this file, not shown", at: rest.first))
            }
        }
        return result
    }
}
