import ArgumentParser
import FoundationEssentials
import Logging
import TendAgent
import TendCore
import TendSpec
import Glibc

/// Where a root's records are: the state directory for "/", the root's own /var/lib/tend
/// otherwise. Unless given, the state directory and the root are the agent's (agent.yaml), so that
/// `tend suspend` suspends the agent that runs.
struct StateOptions: ParsableArguments {
    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where tend keeps its records of this host (default: agent.yaml's state_dir, else /var/lib/tend).", valueName: "dir"), completion: .directory)
    var stateDir: String?

    @Option(help: "The root whose records to read (default: agent.yaml's root, else /); another root's are in its own /var/lib/tend.", completion: .directory)
    var root: String?

    var store: StateStore {
        var file = AgentFile()
        if stateDir == nil || root == nil {
            do {
                file = try AgentFile.read(AgentFile.defaultPath, optional: true)
            } catch {
                Console.error("tend: \(AgentFile.defaultPath) is invalid, so its state_dir and root are not used: \(error.diagnostics.first?.description ?? "")")
            }
        }
        return StateStore(stateDirectory: stateDir ?? file.stateDir ?? "/var/lib/tend", root: root ?? file.root ?? "/")
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what tend last applied here, how the last run went, and what the agent is doing.",
        discussion: """
            Reads tend's records of the host, so it works whether the agent runs or not: the \
            source, the applied and last good commits, the last run (when, how long, what it \
            changed, what failed and why), changes left pending, the agent's next check, a commit \
            it refuses and why, and a suspension.

            Exits 9 when the last run failed or the agent refuses the newest commit, 0 otherwise \
            (a suspended agent with changes pending is not a failure).

            Examples:
              tend status
              tend status --json | jq .last_run.result
            """
    )

    @OptionGroup var state: StateOptions

    @Flag(help: "Print the records as one JSON object (snake_case keys, ISO 8601 dates).")
    var json = false

    struct Report: Encodable {
        var root: String
        var stateDirectory: String
        var applied: CommitRecord?
        var lastGood: CommitRecord?
        var lastRun: RunRecord?
        var agent: AgentRecord?
        var agentRunning: Bool
        var suspended: Suspension?
        var healthy: Bool
    }

    func run() throws {
        let store = state.store
        let problem: (String) -> Void = { Console.error("tend: " + $0) }
        let now = Date()
        let agent = store.read(.agent, as: AgentRecord.self, problem: problem)
        let running = agent.map { Self.isTend($0.pid) } ?? false
        let suspension = store.read(.suspended, as: Suspension.self, problem: problem).flatMap { $0.holds(at: now) ? $0 : nil }
        let lastRun = store.read(.lastRun, as: RunRecord.self, problem: problem)
        let stalled = running ? agent?.stalled : nil
        let healthy = (lastRun?.healthy ?? true) && stalled == nil
        let report = Report(root: store.root, stateDirectory: store.directory, applied: store.read(.applied, as: CommitRecord.self, problem: problem),
                            lastGood: store.read(.lastGood, as: CommitRecord.self, problem: problem), lastRun: lastRun,
                            agent: agent, agentRunning: running, suspended: suspension, healthy: healthy)
        if json {
            Console.out(try StateStore.json(report) + "\n")
        } else {
            Console.out(Self.text(report, now: now))
        }
        if !healthy { throw TendExit.unhealthy }
    }

    static func text(_ report: Report, now: Date) -> String {
        var lines = ["tend status of \(report.root) (records in \(report.stateDirectory))"]
        func add(_ label: String, _ value: String) { lines.append(label.padding(to: 12) + Printable.escaped(value)) }
        if let source = report.lastGood ?? report.applied ?? report.lastRun?.source {
            add("Source:", source.source + (source.ref.map { " (\($0))" } ?? "") + (source.path.map { " //\($0)" } ?? ""))
        }
        add("Applied:", report.applied.map { "\($0.summary), at \(Self.time($0.recorded, now))" } ?? "nothing has converged yet")
        if let good = report.lastGood, good.commit != report.applied?.commit {
            add("Last good:", "\(good.summary), at \(Self.time(good.recorded, now)) (its apply did not converge)")
        }
        if let run = report.lastRun {
            let counts = run.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            add("Last run:", "\(run.result) at \(Self.time(run.started, now)) by \(run.by), \((run.seconds * 10).rounded() / 10) s, \(run.resources) resources"
                + (counts.isEmpty ? "" : " (\(counts))"))
            for failure in run.failures.prefix(20) {
                lines.append("            ✗ " + Printable.escaped((failure.resource.map { $0 + ": " } ?? "") + failure.message + " [\(failure.class)]"))
            }
            if run.pending > 0 { add("Pending:", "\(run.pending) changes not applied") }
            if let refused = run.pruneRefused {
                add("Prune:", "refused: \(refused.wanted) resources no longer declared, more than the budget of \(refused.limit); tend apply --allow-prune")
            }
        } else {
            add("Last run:", "none recorded")
        }
        if let agent = report.agent {
            if report.agentRunning {
                var text = "running (pid \(agent.pid)) since \(Self.time(agent.started, now))"
                if let next = agent.nextCheck { text += "; next check \(Self.time(next, now))" }
                add("Agent:", text)
                if let stall = agent.stalled {
                    add("Refusing:", "\(stall.commit.map { String($0.prefix(7)) } ?? "the newest commit") since \(Self.time(stall.since, now)): \(stall.reason)")
                }
                if let waiting = agent.waiting {
                    add("Rollout:", "\(waiting.commit.map { String($0.prefix(7)) } ?? "the newest commit") reaches this host at \(Self.time(waiting.due, now)) (wave \(waiting.wave) of \(waiting.waves), \(Rollout.format(share: waiting.share)) of the fleet); enforcing \(agent.enforcing.map { String($0.prefix(7)) } ?? "the last good commit") until then")
                }
                if agent.fetchFailures > 0 { add("Fetch:", "\(agent.fetchFailures) failed in a row") }
                for contest in agent.contested ?? [] {
                    add("Contested:", "\(contest.resource) since \(Self.time(contest.since, now)): something keeps changing it back; repaired on the timer only until the commit changes")
                }
            } else {
                add("Agent:", "not running (last cycle \(agent.lastCycle.map { Self.time($0, now) } ?? "never"))")
            }
        } else {
            add("Agent:", "has not run")
        }
        if let suspension = report.suspended {
            add("Suspended:", "by \(suspension.by) since \(Self.time(suspension.since, now))\(suspension.until.map { " until \(Self.time($0, now))" } ?? ""): \(suspension.reason)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `2026-11-29T10:00:00Z (3m ago)`.
    static func time(_ date: Date, _ now: Date) -> String {
        let seconds = Int(now.timeIntervalSince(date).rounded(.down))
        let relative = seconds >= 0 ? "\(DurationText.format(.seconds(max(seconds, 0)))) ago" : "in \(DurationText.format(.seconds(-seconds)))"
        return date.formatted(.iso8601) + " (\(relative))"
    }

    /// Whether `pid` is a running tend (and not a process that got its number since).
    static func isTend(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { return false }
        return comm.trimmingWhitespace() == "tend"
    }
}

struct SuspendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend",
        abstract: "Make the agent plan without applying, until `tend resume` (or for a while).",
        discussion: """
            A suspended agent keeps fetching and planning, and reports the changes it would make \
            as pending, but applies nothing. Who suspended it, why and until when is in \
            `tend status` and the journal. A manual `tend apply` still applies.

            Examples:
              tend suspend --reason "debugging nginx by hand" --for 2h
              tend resume
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Why, for the others who look (required).")
    var reason: String

    @Option(name: .customLong("for"), help: ArgumentHelp("Resume by itself after this long: 30m, 2h, 1d.", valueName: "duration"))
    var duration: String?

    func validate() throws {
        if reason.trimmingWhitespace().isEmpty { throw ValidationError("--reason must say why") }
        if let duration, DurationText.parse(duration).map({ $0 > .zero }) != true {
            throw ValidationError("--for takes a duration such as 30m, 2h or 1d, not '\(duration)'")
        }
    }

    func run() throws {
        let now = Date()
        let until = duration.flatMap(DurationText.parse).map { now.addingTimeInterval(DurationText.seconds($0)) }
        let suspension = Suspension(reason: reason, by: Self.user, since: now, until: until)
        do {
            try state.store.write(.suspended, suspension)
        } catch {
            Console.error("tend: cannot suspend: \(error)" + (error.isPermission ? "; run as root, with the --state-dir the agent uses" : ""))
            throw TendExit.unusableHost
        }
        let note = "agent suspended by \(suspension.by)\(until.map { " until \($0.formatted(.iso8601))" } ?? ""): \(reason)"
        output.logger(audit: true).notice("\(note)", metadata: ["action": "suspend"])
        Console.out("Suspended: the agent plans but applies nothing\(until.map { " until \($0.formatted(.iso8601))" } ?? " until `tend resume`").\n")
    }

    /// Who runs this: the user behind sudo, else the login name, else the uid.
    static var user: String {
        for name in ["SUDO_USER", "LOGNAME", "USER"] {
            if let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty { return Printable.escaped(value) }
        }
        return "uid \(getuid())"
    }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Let a suspended agent apply again: drift repairs at once, and a cycle that applies once its fetch ends."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let store = state.store
        let had = store.read(.suspended, as: Suspension.self)
        do {
            try store.remove(.suspended)
        } catch {
            Console.error("tend: cannot resume: \(error)")
            throw TendExit.unusableHost
        }
        guard had != nil else {
            Console.out("The agent was not suspended.\n")
            return
        }
        output.logger(audit: true).notice("agent resumed by \(SuspendCommand.user)", metadata: ["action": "resume"])
        if let agent = store.read(.agent, as: AgentRecord.self), StatusCommand.isTend(agent.pid), kill(agent.pid, SIGHUP) == 0 {
            Console.out("Resumed: the agent (pid \(agent.pid)) repairs drift again at once, and starts a cycle now that applies what is pending once its fetch ends (fetch_timeout at most).\n")
        } else {
            Console.out("Resumed.\n")
        }
    }
}

struct BlameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blame",
        abstract: "Say which resource manages a path, where it is declared, and which commit last changed it.",
        discussion: """
            Answers from the inventory the last apply recorded: the resource, the manifest \
            path:line that declares it, the commit that declares it and the one it first appeared \
            in, and when tend last changed it on the host, from which commit.

            Examples:
              tend blame /etc/nginx/nginx.conf
              tend blame unit:nginx.service
            """
    )

    @OptionGroup var state: StateOptions

    @Argument(help: "A path on the host, or a resource id such as unit:nginx.service.", completion: .file())
    var target: String

    func run() throws {
        let store = state.store
        guard let inventory = store.read(.inventory, as: Inventory.self, problem: { Console.error("tend: " + $0) }) else {
            Console.error("tend: no inventory in \(store.directory): nothing has been applied here yet")
            throw TendExit.unusableHost
        }
        guard let (id, entry) = inventory.find(target) else {
            Console.error("tend: \(Printable.escaped(target)) is not managed by tend here (the last apply declared \(inventory.resources.count) resources)")
            throw TendExit.notManaged
        }
        func commit(_ id: String?) -> String {
            guard let id else { return "unknown" }
            return inventory.commits[id].map { Printable.escaped($0.summary) } ?? String(id.prefix(7))
        }
        var lines = [Printable.escaped(id)]
        lines.append("  declared at   " + Printable.escaped(entry.declaredAt) + (entry.commit.map { " in \(commit($0))" } ?? ""))
        if let since = entry.since, since != entry.commit { lines.append("  declared since " + commit(since)) }
        if let changed = entry.changed {
            lines.append("  last changed  \(changed.formatted(.iso8601)) by tend" + (entry.changedBy.map { ", from \(commit($0))" } ?? " (from a folder, not a commit)"))
        } else {
            lines.append("  last changed  never by tend (it already matched)")
        }
        Console.out(lines.joined(separator: "\n") + "\n")
    }
}

private extension String {
    func padding(to width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
