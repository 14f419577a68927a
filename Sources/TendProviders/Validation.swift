public import TendCore
public import TendSpec
import TendProcess

/// `validate:` of a file: a command that checks the new content before it replaces the old
/// (`[visudo, -cf, "%s"]`, `[sshd, -t, -f, "%s"]`, `[nginx, -t, -c, "%s"]`), run without a shell
/// on the staged temporary, which `%s` names. Exit 0 and the file is renamed into place;
/// anything else, or running out of time, and the old file stays, the step fails with what the
/// command said, and what depends on the file is skipped. Never run by `tend plan`.
enum Validation {
    /// How long a check may run unless `validate_timeout:` says.
    static let limit: Duration = .seconds(60)
    /// How much of what it says a failure shows.
    static let shown = 2000

    /// Decodes `validate:`: a list, the program first, with `%s` somewhere.
    static func decode(_ node: YAMLNode, what: String, hasContent: Bool, context: inout DecodeContext) -> [String]? {
        guard let command = node.stringList("'validate'", &context.diagnostics)?.map(\.value) else { return nil }
        guard !command.isEmpty, !command[0].isEmpty else {
            context.diagnostics.error("'validate' is a command as a list, the program first: [visudo, -cf, \"%s\"]", at: node.location)
            return nil
        }
        guard command.contains(where: { $0.contains("%s") }) else {
            context.diagnostics.error("'validate' must name the new content's file as %s: [visudo, -cf, \"%s\"]", at: node.location)
            return nil
        }
        guard hasContent else {
            context.diagnostics.error("'validate' checks new content, and \(what) without 'content', 'source' or 'template' has none", at: node.location)
            return nil
        }
        return command
    }

    /// What the plan says of a file a command checks.
    static func note(_ command: [String]) -> String {
        "checked by \(Printable.escaped(command.joined(separator: " "))) before it replaces the file"
    }

    /// Runs `command` on `temporary`; throws, for `path`, what it said if it refused it.
    static func run(_ command: [String], on temporary: String, for path: String, hidesOutput: Bool, limit: Duration) async throws(HostError) {
        let arguments = command.map { $0.replacing("%s", with: temporary) }
        let finished = await ChildProcess(arguments, environment: ["LC_ALL": "C.UTF-8"], errors: .withOutput, limit: limit, kept: 64 << 10).run()
        guard finished.status != 0 || finished.timedOut else { return }
        let how = finished.timedOut ? "ran out of time after \(DurationText.format(limit))"
            : finished.signal.map { "was killed by signal \($0)" } ?? "exited with status \(finished.status)"
        // What it said names the temporary: say the file's own path. A file whose content is not
        // shown does not show it through its checker either.
        let said = hidesOutput ? "its output is not shown, as the file's content is not"
            : Printable.escaped(String(finished.output.replacing(temporary, with: path).suffix(shown)).trimmingWhitespace(), keepingNewlines: true)
        throw HostError(path: path, message: "validate: \(Printable.escaped(command[0])) \(how); the file was left as it was\(said.isEmpty ? "" : ": " + said)")
    }
}
