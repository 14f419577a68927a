internal import CGit2

/// A Git object id (SHA-1), printed as 40 hex digits.
public struct GitObjectID: Hashable, Sendable, CustomStringConvertible {
    let raw: git_oid

    init(_ raw: git_oid) {
        self.raw = raw
    }

    /// Reads 40 hex digits; nil for anything else.
    public init?(hex: String) {
        guard hex.utf8.count == 40, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        var oid = git_oid()
        guard git_oid_fromstr(&oid, hex) == 0 else { return nil }
        raw = oid
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: 41)
        var copy = raw
        git_oid_tostr(&buffer, buffer.count, &copy)
        return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The first seven digits, as `git log --oneline` shows.
    public var short: String { String(description.prefix(7)) }

    public static func == (lhs: GitObjectID, rhs: GitObjectID) -> Bool {
        var a = lhs.raw, b = rhs.raw
        return git_oid_equal(&a, &b) == 1
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: raw.id) { hasher.combine(bytes: $0) }
    }
}
