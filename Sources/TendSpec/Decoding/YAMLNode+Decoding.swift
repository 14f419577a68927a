/// Typed reads of a node that report a wrong type at the node's position.
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

    /// The text of a scalar (quoted or plain; a plain number is read as its text).
    public func string(_ what: String, _ diagnostics: inout Diagnostics) -> String? {
        guard let scalar, !isNull else {
            diagnostics.error("\(what) must be a string, found \(kindDescription)", at: location)
            return nil
        }
        return scalar.text
    }

    /// A plain `true` or `false`.
    public func bool(_ what: String, _ diagnostics: inout Diagnostics) -> Bool? {
        guard let value = scalar?.boolValue else {
            diagnostics.error("\(what) must be true or false, found \(kindDescription)", at: location)
            return nil
        }
        return value
    }

    /// A plain decimal integer.
    public func integer(_ what: String, _ diagnostics: inout Diagnostics) -> Int? {
        guard let scalar, scalar.style == .plain, let value = Int(scalar.text) else {
            diagnostics.error("\(what) must be a whole number, found \(kindDescription)", at: location)
            return nil
        }
        return value
    }

    /// A sequence of strings, each with its position; a single string is read as a list of one.
    public func stringList(_ what: String, _ diagnostics: inout Diagnostics) -> [Located<String>]? {
        if scalar != nil, !isNull {
            return string(what, &diagnostics).map { [Located($0, at: location)] }
        }
        guard let items = sequence else {
            diagnostics.error("\(what) must be a list of strings, found \(kindDescription)", at: location)
            return nil
        }
        var result: [Located<String>] = []
        for item in items {
            if let text = item.string("each entry of \(what)", &diagnostics) {
                result.append(Located(text, at: item.location))
            }
        }
        return result
    }

    /// A mapping from strings to strings, each value with its position.
    public func stringMap(_ what: String, _ diagnostics: inout Diagnostics) -> [String: Located<String>]? {
        guard let pairs = mapping else {
            diagnostics.error("\(what) must be a mapping, found \(kindDescription)", at: location)
            return nil
        }
        var result: [String: Located<String>] = [:]
        for pair in pairs {
            guard let key = pair.keyText, let value = pair.value.string("'\(key)' in \(what)", &diagnostics) else { continue }
            result[key] = Located(value, at: pair.value.location)
        }
        return result
    }
}

/// A value and where it was written.
public struct Located<Value: Sendable>: Sendable {
    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

extension Located: Equatable where Value: Equatable {}
extension Located: Hashable where Value: Hashable {}
