/// ANSI colours for a terminal, or nothing at all.
public struct Style: Sendable {
    public let enabled: Bool

    public init(enabled: Bool) {
        self.enabled = enabled
    }

    public func green(_ text: String) -> String { paint(text, "32") }
    public func yellow(_ text: String) -> String { paint(text, "33") }
    public func red(_ text: String) -> String { paint(text, "31") }
    public func magenta(_ text: String) -> String { paint(text, "35") }
    public func cyan(_ text: String) -> String { paint(text, "36") }
    public func bold(_ text: String) -> String { paint(text, "1") }
    public func dim(_ text: String) -> String { paint(text, "2") }

    func action(_ action: Change.Action, _ text: String) -> String {
        switch action {
        case .create: green(text)
        case .update: yellow(text)
        case .delete: red(text)
        case .replace: magenta(text)
        case .restart, .reload, .reloadOrRestart, .run: cyan(text)
        }
    }

    private func paint(_ text: String, _ code: String) -> String {
        enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}
