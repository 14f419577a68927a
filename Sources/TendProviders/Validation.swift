public import TendCore
public import TendSpec
import TendProcess
import Glibc

/// `validate:` of a file: a command that checks the new content before it replaces the old
/// (`[visudo, -cf, "%s"]`, `[sshd, -t, -f, "%s"]`, `[nginx, -t, -c, "%s"]`), run without a shell
/// on the staged temporary, which `%s` names. Exit 0 and the file is renamed into place;
/// anything else, or running out of time, and the old file stays, the step fails with what the
/// command said, and what depends on the file is skipped. Never run by `tend plan`.
enum Validation {
    /// How long a check may run unless `validate_timeout:` says.
    static let limit: Duration = .seconds(60)
    /// How many bytes of what a refusing command said its failure shows.
    static let shownOutput = 2000

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
    /// Under `--root` (`root` other than /) it runs in the root through chroot when the root has
    /// the program, so that what it includes is the root's too (`nginx -t`); otherwise this
    /// machine's program checks the temporary where it lies under the root.
    static func run(_ command: [String], on temporary: String, for path: String, root: String, hidesOutput: Bool, limit: Duration) async throws(HostError) {
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        let inside = root != "/" && hasProgram(command[0], under: base)
        let checked = inside ? String(temporary.dropFirst(base.count)) : temporary
        let arguments = (inside ? ["/usr/sbin/chroot", root] : []) + command.map { $0.replacing("%s", with: checked) }
        let finished = await ChildProcess(arguments, environment: ["LC_ALL": "C.UTF-8"], errors: .withOutput, limit: limit, kept: 64 << 10).run()
        guard finished.status != 0 || finished.timedOut else { return }
        let how = finished.timedOut ? "ran out of time after \(DurationText.format(limit))"
            : finished.signal.map { "was killed by signal \($0)" } ?? "exited with status \(finished.status)"
        // What it said names the temporary: say the file's own path. A file whose content is not
        // shown does not show it through its checker either.
        let said = hidesOutput ? "its output is not shown, as the file's content is not"
            : Printable.escaped(String(finished.output.replacing(checked, with: path).suffix(shownOutput)).trimmingWhitespace(), keepingNewlines: true)
        throw HostError(path: path, message: "validate: \(Printable.escaped(command[0])) \(how); the file was left as it was\(said.isEmpty ? "" : ": " + said)")
    }

    /// Whether the root at `base` holds `program` (a path, or a name in the usual folders).
    private static func hasProgram(_ program: String, under base: String) -> Bool {
        let candidates = program.hasPrefix("/") ? [program] : ["/usr/local/sbin/", "/usr/local/bin/", "/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].map { $0 + program }
        return candidates.contains { access(base + $0, X_OK) == 0 }
    }
}
