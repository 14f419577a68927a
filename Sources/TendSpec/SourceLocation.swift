/// A position in a file of the configuration repository, 1-based, as people count.
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The file's path relative to the repository root (`roles/web/web.yaml`).
    public var file: String
    public var line: Int
    public var column: Int
    /// How a resource written once came to be here when a loop or a component expanded it: the
    /// item and the instance, innermost first (`vhosts[3] "shop"`, `nginx-site[shop] from
    /// web.yaml:12:5`). Nil where the text was read as written.
    public var via: String?

    public init(file: String, line: Int, column: Int, via: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.via = via
    }

    /// `file:line:col`, the form editors and compilers use, and what expanded it, if anything:
    /// `web.yaml:12:5 (vhosts[3] "shop")`.
    public var description: String {
        let position = "\(file):\(line):\(column)"
        return via.map { "\(position) (\($0))" } ?? position
    }

    /// By position alone: problems of one position, one per item, keep the items' order.
    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}
