import TendSpec

/// Rendering for people. Every piece that comes from the repository or the host (ids, values,
/// diff lines, notes, reasons, the commit's subject) goes through `Printable.escaped`, so that no
/// control character reaches the terminal raw, with colours or without.
extension Plan {
    /// The plan for people: one entry per change with its symbol, the attributes that change
    /// (old → new), a unified diff for text content, and a summary line.
    public func rendered(style: Style) -> String {
        var out = style.bold("Plan: \(Printable.escaped(sourceDescription))") + (root == "/" ? "" : " into root \(root)") + " (\(resourceCount) resources)\n"
        if steps.isEmpty {
            return out + "\nNo changes. The host matches the configuration.\n"
        }
        out += "\n"
        for step in steps {
            out += Self.render(step, style: style)
        }
        out += "\n" + summary(style: style) + "\n"
        return out
    }

    /// `Plan: 2 to create, 1 to update, 0 to delete.` and the count of resources in error.
    public func summary(style: Style) -> String {
        let counts = self.counts
        var parts = ["\(counts[.create, default: 0]) to create", "\(counts[.update, default: 0]) to update",
                     "\(counts[.delete, default: 0]) to delete"]
        if let replace = counts[.replace] { parts.append("\(replace) to replace") }
        if let restart = counts[.restart] { parts.append("\(restart) to restart") }
        if let reload = counts[.reload] { parts.append("\(reload) to reload") }
        if let either = counts[.reloadOrRestart] { parts.append("\(either) to reload or restart") }
        if let run = counts[.run] { parts.append("\(run) to run") }
        var line = style.bold("Plan: " + parts.joined(separator: ", ") + ".")
        if !errors.isEmpty { line += " " + style.red("\(errors.count) could not be planned.") }
        return line
    }

    static func render(_ step: Step, style: Style) -> String {
        // The component instance it came from, after the id: `(nginx-site[shop])`.
        let instance = step.instance.map { " " + style.dim("(\(Printable.escaped($0)))") } ?? ""
        guard let change = step.change else {
            return "  " + style.red("! \(Plan.escaped(step.id))") + instance + ": " + Printable.escaped(step.error ?? "unknown error", keepingNewlines: true) + "\n"
        }
        var out = "  " + style.action(change.action, "\(change.action.symbol) \(Plan.escaped(step.id))") + instance + "\n"
        let width = change.attributes.map(\.name.count).max() ?? 0
        for attribute in change.attributes {
            let name = attribute.name + ":" + String(repeating: " ", count: width - attribute.name.count)
            out += "      \(name) \(Printable.escaped(attribute.shownBefore)) → \(Printable.escaped(attribute.shownAfter))\n"
        }
        switch change.content {
        case .text(let diff)?:
            out += "      content:\n"
            for line in diff.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                let text = Printable.escaped(String(line), keepingTabs: true)
                let painted = text.hasPrefix("+++") || text.hasPrefix("---") ? style.bold(text)
                    : text.hasPrefix("+") ? style.green(text)
                    : text.hasPrefix("-") ? style.red(text)
                    : text.hasPrefix("@@") ? style.cyan(text) : text
                out += "        \(painted)\n"
            }
        case .binary(let before?, nil)? where change.action == .delete:
            // A file that goes: its content goes with it, whatever it was.
            out += "      content: \(before) bytes, removed with it\n"
        case .binary(let before, let after)?:
            out += "      content: binary content changed (\(before.map { "\($0) bytes" } ?? "none") → \(after.map { "\($0) bytes" } ?? "none"))\n"
        case .sensitive?:
            out += "      content: (sensitive content changed)\n"
        case nil:
            break
        }
        if !change.removes.isEmpty {
            out += "      " + style.red("removes unmanaged: " + change.removes.map { Printable.escaped($0) }.joined(separator: ", ")) + "\n"
        }
        for note in change.notes {
            out += "      " + style.dim("note: \(Printable.escaped(note))") + "\n"
        }
        return out
    }
}

extension Plan {
    static func escaped(_ id: ResourceID) -> String { Printable.escaped(id.description) }
}

extension StepResult {
    /// One line for an apply's progress.
    public func rendered(style: Style) -> String {
        switch outcome {
        case .done:
            // Planned again after a package or user step, and found as declared.
            guard let action else { return "  = \(Plan.escaped(id)): already as declared (an earlier step of this run made it so)\n" }
            return "  " + style.action(action, "\(action.symbol) \(Plan.escaped(id))") + ": \(action.pastTense)\n"
        case .failed(let failure):
            return "  " + style.red("✗ \(Plan.escaped(id))") + ": failed: \(Printable.escaped(failure.cause, keepingNewlines: true))\n"
        case .skipped(let skip):
            return "  " + style.yellow("↷ \(Plan.escaped(id))") + ": skipped: \(Printable.escaped(skip.description))\n"
        }
    }
}

extension ApplyReport {
    /// `Apply: 2 created, 1 updated, 0 deleted; 1 failed, 1 skipped.`
    public func summary(style: Style) -> String {
        let done = self.done
        var parts = ["\(done[.create, default: 0]) created", "\(done[.update, default: 0]) updated", "\(done[.delete, default: 0]) deleted"]
        if let replaced = done[.replace] { parts.append("\(replaced) replaced") }
        if let restarted = done[.restart] { parts.append("\(restarted) restarted") }
        if let reloaded = done[.reload] { parts.append("\(reloaded) reloaded") }
        if let either = done[.reloadOrRestart] { parts.append("\(either) reloaded or restarted") }
        if let ran = done[.run] { parts.append("\(ran) ran") }
        var line = "Apply: " + parts.joined(separator: ", ")
        if !succeeded {
            line += "; " + style.red("\(failures.count) failed") + ", " + style.yellow("\(skipped.count) skipped")
        }
        return style.bold(line + ".")
    }
}

extension Change.Action {
    var pastTense: String {
        switch self {
        case .create: "created"
        case .update: "updated"
        case .delete: "deleted"
        case .replace: "replaced"
        case .restart: "restarted"
        case .reload: "reloaded"
        case .reloadOrRestart: "reloaded or restarted"
        case .run: "ran"
        }
    }
}
