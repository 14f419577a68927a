import ArgumentParser
import TendCore
import TendSpec

/// `tend facts`: what templates see as `{{host.NAME}}` and `match: {facts:}` matches, for this
/// host (or a root), as a run gathers them.
struct FactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facts",
        abstract: "Print the facts tend gathers about this host: what templates see as host.NAME and match: selects by.",
        discussion: """
            Hostname and labels are as --hostname and --label (or agent.yaml) give them; the \
            os-release facts and the machine ID are read under --root; memory, CPUs, \
            architecture, addresses and virtualization are the machine's. Nothing is changed and \
            no program is run.

            Examples:
              tend facts
              tend facts --json | jq -r .memory_mb
              tend facts --root /srv/image --hostname web-07
            """
    )

    @OptionGroup var host: HostOptions
    @OptionGroup var root: RootOptions

    @Flag(help: "Print the facts as one JSON object (docs/json-output.md).")
    var json = false

    func run() async throws {
        let facts = Facts.gather(host: try root.reader(), hostname: host.hostname, labels: try host.labelMap())
        if json {
            try Console.printJSON(facts)
            return
        }
        var rows = facts.named.map { ($0.name, $0.value ?? "(unknown)") }
        if !facts.osLike.isEmpty { rows.append(("os_like", facts.osLike.joined(separator: " "))) }
        rows += facts.labels.sorted { $0.key < $1.key }.map { ("labels.\($0.key)", $0.value) }
        let width = rows.map { Printable.escaped($0.0).count }.max() ?? 0
        Console.out(rows.map { name, value in
            let shown = Printable.escaped(name)
            return shown + String(repeating: " ", count: max(0, width - shown.count)) + "  " + Printable.escaped(value)
        }
            .joined(separator: "\n") + "\n")
    }
}
