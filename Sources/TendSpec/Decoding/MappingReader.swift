/// Reads the keys of one YAML mapping and reports, at the end, every key nobody asked for, with the
/// nearest known key suggested.
public struct MappingReader: Sendable {
    /// The mapping node itself.
    public let node: YAMLNode
    // Resources have a handful of keys each: linear scans beat hashing here (see bench/).
    private var pairs: [YAMLPair]
    private var taken: [Bool]
    private var asked: [String] = []

    /// Reads `node` as a mapping, or reports that it is not one (describing it as `what`).
    public init?(_ node: YAMLNode, what: String, diagnostics: inout Diagnostics) {
        guard let pairs = node.mapping else {
            diagnostics.error("\(what) must be a mapping, found \(node.kindDescription)", at: node.location)
            return nil
        }
        self.node = node
        self.pairs = pairs
        taken = Array(repeating: false, count: pairs.count)
    }

    /// The keys in the order they were written.
    public var keys: [String] { pairs.compactMap(\.keyText) }

    private func position(of key: String) -> Int? {
        pairs.firstIndex { $0.keyText == key }
    }

    /// The pair for `key`, if present, without marking it as known.
    public func peek(_ key: String) -> YAMLPair? {
        position(of: key).map { pairs[$0] }
    }

    /// The value of `key`, if present; marks `key` as a known key either way.
    public mutating func take(_ key: String) -> YAMLNode? {
        asked.append(key)
        guard let position = position(of: key) else { return nil }
        taken[position] = true
        return pairs[position].value
    }

    /// Reports every key that was not taken, as "unknown key 'x' in `context`".
    public func finish(_ diagnostics: inout Diagnostics, context: String) {
        for (index, pair) in pairs.enumerated() where !taken[index] {
            guard let key = pair.keyText else { continue }
            var message = "unknown key '\(key)' in \(context)"
            let known = Set(asked)
            if let suggestion = Suggestion.nearest(to: key, in: known) {
                message += "; did you mean '\(suggestion)'?"
            } else if !known.isEmpty {
                message += " (valid keys: \(known.sorted().joined(separator: ", ")))"
            }
            diagnostics.error(message, at: pair.key.location)
        }
    }
}

/// Finds the closest known word to a misspelt one.
public enum Suggestion {
    /// The candidate nearest to `word` by edit distance, if it is near enough to be a likely typo.
    public static func nearest(to word: String, in candidates: some Sequence<String>) -> String? {
        let limit = max(2, word.count / 3)
        var best: (String, Int)?
        for candidate in candidates.sorted() {
            let distance = editDistance(word, candidate)
            if distance <= limit, distance < (best?.1 ?? .max) { best = (candidate, distance) }
        }
        return best?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased().unicodeScalars), b = Array(b.lowercased().unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
