import ArgumentParser
import Foundation
import TendAgent
import TendSpec

struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Where a commit's rollout stands.",
        subcommands: [Status.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say which share of the fleet takes the newest commit now, and when the rest will.",
            discussion: """
                Reads tend.yaml's `rollout:` from the commit and works out, from the commit's time \
                alone, which waves are due: no host is asked. Each host's wave comes from its \
                machine ID, so --machine-ids (a file with one machine ID per line, optionally \
                followed by a name) places the hosts of a fleet; this host's wave is always shown. \
                The commit is loaded as `tend validate` loads it, for this host or the one that \
                --hostname and --label describe.

                Examples:
                  tend rollout status --repo https://git.example.com/ops/hosts.git --ref production
                  tend rollout status --repo … --machine-ids fleet.txt --at 2026-11-29T12:00:00Z
                """
        )

        @OptionGroup var source: SourceOptions
        @OptionGroup var output: OutputOptions

        @Option(name: .customLong("machine-ids"), help: ArgumentHelp("A file of the fleet's machine IDs, one per line, each optionally followed by the host's name.", valueName: "file"), completion: .file())
        var machineIDs: String?

        @Option(help: ArgumentHelp("Where the rollout stands at this time (ISO 8601) instead of now.", valueName: "time"))
        var at: String?

        func validate() throws {
            if let at, (try? Date(at, strategy: .iso8601)) == nil {
                throw ValidationError("--at takes an ISO 8601 time such as 2026-11-29T12:00:00Z, not '\(at)'")
            }
        }

        func run() async throws {
            let now = try at.map { try Date($0, strategy: .iso8601) } ?? Date()
            let reconciler = try Console.reconciler(source, root: "/", logger: output.logger())
            let result = await reconciler.run(.validate, events: Console.events(root: "/", lockTimeout: source.lockTimeout))
            Console.progress.clear()
            if let failure = result.failure { try Console.exit(with: failure) }
            guard let (rollout, committed) = result.rolloutPolicy else {
                if case .folder = reconciler.source.location {
                    Console.out("\(result.sourceDescription) is a folder: waves count from a commit's time, so only a Git source (--repo) rolls out in waves.\n")
                } else {
                    Console.out("\(result.sourceDescription) has no rollout: in tend.yaml; every host takes it at once.\n")
                }
                return
            }
            var fleet: [(id: String, name: String)] = []
            if let machineIDs {
                guard let text = try? String(contentsOfFile: machineIDs, encoding: .utf8) else {
                    throw ValidationError("cannot read --machine-ids \(machineIDs)")
                }
                for line in text.split(separator: "\n") {
                    let fields = line.split(whereSeparator: \.isWhitespace).map(String.init)
                    guard let id = fields.first, !id.hasPrefix("#") else { continue }
                    fleet.append((id, fields.dropFirst().first ?? id))
                }
            }
            Console.out(Self.text(rollout, committed: committed, now: now, source: result.sourceDescription, fleet: fleet,
                                  here: result.rollout?.wave))
        }

        static func text(_ rollout: Rollout, committed: Date, now: Date, source: String, fleet: [(id: String, name: String)], here: Int?) -> String {
            var lines = [source, "committed \(StatusCommand.time(committed, now))", ""]
            var reached = 0.0
            for (index, wave) in rollout.waves.enumerated() {
                let due = committed + DurationText.seconds(wave.after)
                let done = now >= due
                if done { reached = wave.share }
                let share = Rollout.format(share: wave.share)
                let delay = wave.after == .zero ? "at the commit" : DurationText.format(wave.after) + " after it"
                var line = "wave \(index + 1) of \(rollout.waves.count): \(share) of the fleet, \(delay), \(done ? "due since" : "due") \(StatusCommand.time(due, now))"
                if !fleet.isEmpty {
                    let hosts = fleet.filter { rollout.wave(at: Rollout.position(machineID: $0.id)) == index }.map(\.name)
                    let names = hosts.prefix(8).joined(separator: ", ") + (hosts.count > 8 ? ", …" : "")
                    line += "; \(hosts.count) host\(hosts.count == 1 ? "" : "s")" + (hosts.isEmpty ? "" : ": " + names)
                }
                lines.append(line)
            }
            lines.append("")
            lines.append("\(Rollout.format(share: reached)) of the fleet takes this commit now" + (here.map { "; this host is in wave \($0)" } ?? ""))
            return lines.map { Printable.escaped($0) }.joined(separator: "\n") + "\n"
        }
    }
}
