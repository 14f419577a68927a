import ArgumentParser
import FoundationEssentials
import TendAgent
import TendCore
import TendSpec

/// `tend plan --snapshot FILE` and `--snapshots DIR`: the plan each host would get, made from its
/// snapshot (`tend snapshot`) rather than from the machine tend runs on.
struct FleetPreview {
    /// One host's preview.
    struct Host: Encodable {
        var snapshot: String
        var hostname: String
        /// `unchanged`, `changes` or `fails`.
        var result: String
        var changes: [Resource] = []
        var errors: [Resource] = []
        /// Why no plan could be made (a snapshot that cannot be read, a configuration invalid for
        /// this host's facts).
        var failure: String?
        /// Paths the snapshot held nothing of, which the plan took as absent.
        var assumedAbsent: [String] = []

        struct Resource: Encodable, Hashable {
            var resource: String
            var action: String?
            var message: String?
        }

        enum CodingKeys: String, CodingKey {
            case snapshot, hostname, result, changes, errors, failure, assumedAbsent = "assumed_absent"
        }
    }

    /// What the configuration is read from, and how.
    let reconciler: Reconciler
    let events: ReconcileEvents

    /// The plan for the host of `file`, or why there is none.
    func plan(_ file: HostSnapshotFile, reconciler: Reconciler) async -> ReconcileResult {
        var reconciler = reconciler
        reconciler.replaying = file
        reconciler.machineID = file.machineID
        return await reconciler.run(.plan, events: events)
    }

    /// The preview of every snapshot in `folder` (its `*.json` files, by name). The source is
    /// fetched once: every host is planned at the commit the first plan read.
    func previews(of folder: String) async throws -> (hosts: [Host], source: String, commit: String?) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw ValidationError("cannot read the folder of snapshots \(folder)")
        }
        let files = names.filter { $0.hasSuffix(".json") }.sorted()
        guard !files.isEmpty else { throw ValidationError("\(folder) holds no snapshots (*.json files from tend snapshot)") }
        var reconciler = self.reconciler
        var hosts: [Host] = []
        var source = ""
        for name in files {
            let path = folder + "/" + name
            let file: HostSnapshotFile
            do {
                file = try HostSnapshotFile.read(path)
            } catch {
                hosts.append(Host(snapshot: path, hostname: name, result: "fails", failure: error.message))
                continue
            }
            let result = await plan(file, reconciler: reconciler)
            if source.isEmpty, !result.sourceDescription.isEmpty { source = result.sourceDescription }
            if reconciler.source.pinnedCommit == nil, let commit = result.commit {
                reconciler.source.pinnedCommit = commit
            }
            hosts.append(Self.host(path, file: file, result: result))
        }
        return (hosts, source.isEmpty ? reconciler.source.description : source, reconciler.source.pinnedCommit)
    }

    static func host(_ path: String, file: HostSnapshotFile, result: ReconcileResult) -> Host {
        var host = Host(snapshot: path, hostname: file.facts.hostname, result: "unchanged", assumedAbsent: result.assumedAbsent)
        if let failure = result.failure {
            host.result = "fails"
            host.failure = ([failure.message] + failure.diagnostics.prefix(5).map(\.description)).joined(separator: "; ")
            return host
        }
        for step in result.plan?.steps ?? [] {
            if let change = step.change {
                host.changes.append(Host.Resource(resource: step.id.description, action: change.action.rawValue))
            } else {
                host.errors.append(Host.Resource(resource: step.id.description, message: step.error))
            }
        }
        host.result = !host.errors.isEmpty ? "fails" : host.changes.isEmpty ? "unchanged" : "changes"
        return host
    }

    /// The fleet at a glance: how many hosts are unchanged, change or fail; each change with the
    /// hosts it reaches; each failure with its host.
    static func summary(_ hosts: [Host], source: String, style: Style) -> String {
        let count = { (result: String) in hosts.filter { $0.result == result }.count }
        var out = style.bold("Preview for \(hosts.count) host\(hosts.count == 1 ? "" : "s") of \(Printable.escaped(source))") + "\n"
        out += "\(count("unchanged")) unchanged, \(count("changes")) change, \(count("fails")) fail\n"
        var reached: [Host.Resource: [String]] = [:]
        var order: [Host.Resource] = []
        for host in hosts {
            for change in host.changes {
                if reached[change] == nil { order.append(change) }
                reached[change, default: []].append(host.hostname)
            }
        }
        if !order.isEmpty { out += "\nChanges:\n" }
        for change in order {
            let names = reached[change] ?? []
            let symbol = Change.Action(rawValue: change.action ?? "").map(\.symbol) ?? "?"
            out += "  \(symbol) \(Printable.escaped(change.resource)) on \(names.count) host\(names.count == 1 ? "" : "s"): \(Self.list(names))\n"
        }
        let failing = hosts.filter { $0.result == "fails" }
        if !failing.isEmpty { out += "\nFailures:\n" }
        for host in failing {
            if let failure = host.failure {
                out += "  " + style.red(Printable.escaped(host.hostname)) + ": \(Printable.escaped(failure))\n"
            }
            for error in host.errors {
                out += "  " + style.red(Printable.escaped(host.hostname)) + ": \(Printable.escaped(error.resource)): \(Printable.escaped(error.message ?? ""))\n"
            }
        }
        let assumed = hosts.filter { !$0.assumedAbsent.isEmpty }
        if !assumed.isEmpty {
            let paths = Set(assumed.flatMap(\.assumedAbsent)).sorted()
            out += "\nTaken as absent (no snapshot recorded them; new to these hosts' configuration): \(Self.list(paths.map { Printable.escaped($0) }))\n"
        }
        return out
    }

    /// The first names of a list, and how many more.
    static func list(_ names: [String], shown: Int = 8) -> String {
        names.count <= shown ? names.joined(separator: ", ") : names.prefix(shown).joined(separator: ", ") + " and \(names.count - shown) more"
    }

    /// The preview as JSON: a format version, the source, and each host.
    static func json(_ hosts: [Host], source: String, commit: String?) throws -> String {
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
