import FoundationEssentials
import TendAgent
import TendCore
import TendSpec

/// `tend plan --snapshots DIR` for people and for programs.
extension FleetPreview {
    /// The fleet at a glance: how many hosts are unchanged, change or fail; each change with the
    /// hosts it reaches; each failure with its host.
    func summary(style: Style) -> String {
        let count = { (result: Host.Result) in hosts.filter { $0.result == result }.count }
        var out = style.bold("Preview for \(hosts.count) host\(hosts.count == 1 ? "" : "s") of \(Printable.escaped(source))") + "\n"
        out += "\(count(.unchanged)) unchanged, \(count(.changes)) change, \(count(.fails)) fail\n"
        var reached: [Host.Resource: [String]] = [:]
        var order: [Host.Resource] = []
        for host in hosts {
            for change in host.changes {
                if reached[change] == nil { order.append(change) }
                reached[change, default: []].append(Printable.escaped(host.hostname))
            }
        }
        if !order.isEmpty { out += "\nChanges:\n" }
        for change in order {
            let names = reached[change] ?? []
            let symbol = Change.Action(rawValue: change.action ?? "").map(\.symbol) ?? "?"
            out += "  \(symbol) \(Printable.escaped(change.resource)) on \(names.count) host\(names.count == 1 ? "" : "s"): \(Self.list(names))\n"
        }
        let failing = hosts.filter { $0.result == .fails }
        if !failing.isEmpty { out += "\nFailures:\n" }
        for host in failing {
            let name = style.red(Printable.escaped(host.hostname))
            if let failure = host.failure { out += "  \(name): \(Printable.escaped(failure))\n" }
            for error in host.errors {
                out += "  \(name): \(Printable.escaped(error.resource)): \(Printable.escaped(error.message ?? ""))\n"
            }
        }
        let assumed = Set(hosts.flatMap(\.assumedAbsent)).sorted()
        if !assumed.isEmpty {
            out += "\nTaken as absent (no snapshot recorded them; new to these hosts' configuration): \(Self.list(assumed.map { Printable.escaped($0) }))\n"
        }
        return out
    }

    /// The first names of a list, and how many more.
    static func list(_ names: [String], shown: Int = 8) -> String {
        names.count <= shown ? names.joined(separator: ", ") : names.prefix(shown).joined(separator: ", ") + " and \(names.count - shown) more"
    }

    /// The preview as JSON: a format version, the source and commit, and each host.
    func json() throws -> String {
        struct Document: Encodable {
            var format_version = 1
            var source: String
            var commit: String?
            var hosts: [Host]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(Document(source: source, commit: commit, hosts: hosts)), as: UTF8.self) + "\n"
    }
}
