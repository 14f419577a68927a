extension StringProtocol {
    /// The text without whitespace (spaces, tabs, newlines) at either end.
    public func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
