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

    @Option(help: ArgumentHelp("The agent's configuration file, as given to `tend agent --config` (default: \(AgentFile.defaultPath), if it exists).", valueName: "file"), completion: .file(extensions: ["yaml"]))
    var config: String?

    /// The agent's configuration (/etc/tend/agent.yaml): an empty one when there is none, nil
    /// (and said) when it does not read.
    var agentFile: AgentFile? {
        do {
            return try AgentFile.read(config ?? AgentFile.defaultPath, optional: config == nil)
        } catch {
            Console.error("tend: \(config ?? AgentFile.defaultPath) is invalid, so its state_dir, root and repo are not used: \(error.diagnostics.first?.description ?? "")")
            return nil
        }
    }

    var store: StateStore { store(agentFile) }

    func store(_ file: AgentFile?) -> StateStore {
        StateStore(stateDirectory: stateDir ?? file?.stateDir ?? "/var/lib/tend", root: root ?? file?.root ?? "/")
    }

    /// Refuses, with the reason, when this process cannot read the records (not root).
    func checkAccess(_ store: StateStore) throws {
        if let denied = store.accessProblem {
            Console.error("tend: " + denied)
            throw TendExit.unusableHost
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what tend last applied here, how the last run went, and what the agent is doing.",
        discussion: """
            Reads tend's records of the host, so it works whether the agent runs or not: the \
            source agent.yaml names, the applied and last good commits, the last run (when, how \
            long, what it changed, what failed and why), changes left pending, the agent's next \
            check, a commit it refuses and why, and a suspension; then every reason to look.

            Exits 0 when nothing needs attention; 9 when something does: the last run failed or \
            could not read its source, the agent refuses the newest commit, the last \(StatusReport.fetchFailureLimit) or \
            more fetches failed, the state folder cannot be written or its disk is full, or the \
            lock has been held for over an hour; 10 when the agent is suspended and nothing else \
            is wrong; 1 when the records cannot be read (run it as root). `--json` lists the \
            reasons as problems, each with a code (docs/agent.md).

            Examples:
              tend status
              tend status --json | jq -r '.problems[].code'
            """
    )

    @OptionGroup var state: StateOptions

    @Flag(help: "Print the records as one JSON object (snake_case keys, ISO 8601 dates), with `problems` and `healthy`.")
    var json = false

    func run() throws {
        let file = state.agentFile
        let store = state.store(file)
        // agent.yaml's repository is the agent's only for the root it names.
        let agentFile = file.flatMap { (state.root ?? $0.root ?? "/") == ($0.root ?? "/") ? $0 : nil }
        let report: StatusReport
        do {
            report = try StatusReport.read(store, agentFile: agentFile, problem: { Console.error("tend: " + $0) })
        } catch {
            Console.error("tend: \(error)")
            throw TendExit.unusableHost
        }
        if json {
            Console.out(try StateStore.json(report) + "\n")
        } else {
            Console.out(Self.text(report, now: Date()))
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }

    static func text(_ report: StatusReport, now: Date) -> String {
        var lines = ["tend status of \(report.root) (records in \(report.stateDirectory))"]
        func add(_ label: String, _ value: String) { lines.append(label.padding(to: 12) + Printable.escaped(value)) }
        let recorded = report.lastGood ?? report.applied ?? report.lastRun?.source
        if let source = report.source {
            var text = source.repo + (source.ref.map { " (\($0))" } ?? "") + (source.path.map { " //\($0)" } ?? "")
            if let recorded, recorded.source != source.repo || recorded.path != source.path {
                text += "; what is recorded below came from \(recorded.source)" + (recorded.path.map { " //\($0)" } ?? "")
            }
            add("Source:", text)
        } else if let source = recorded {
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
                for contest in agent.contested ?? [] {
                    add("Contested:", "\(contest.resource) since \(Self.time(contest.since, now)): something keeps changing it back; repaired on the timer only until the commit changes")
                }
            } else {
                add("Agent:", "not running (last cycle \(agent.lastCycle.map { Self.time($0, now) } ?? "never"))")
            }
            if agent.fetchFailures > 0 { add("Fetch:", "\(agent.fetchFailures) failed in a row") }
        } else {
            add("Agent:", "has not run")
        }
        if let suspension = report.suspended {
            add("Suspended:", "by \(suspension.by) since \(Self.time(suspension.since, now))\(suspension.until.map { " until \(Self.time($0, now))" } ?? ""): \(suspension.reason)")
        }
        if report.problems.isEmpty {
            add("Health:", "nothing needs attention")
        } else {
            for (index, problem) in report.problems.enumerated() {
                add(index == 0 ? "Health:" : "", "✗ \(problem.message) [\(problem.code.rawValue)]")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `2026-11-29T10:00:00Z (3m ago)`.
    static func time(_ date: Date, _ now: Date) -> String {
        let seconds = Int(now.timeIntervalSince(date).rounded(.down))
        let relative = seconds >= 0 ? "\(DurationText.format(.seconds(max(seconds, 0)))) ago" : "in \(DurationText.format(.seconds(-seconds)))"
        return date.formatted(.iso8601) + " (\(relative))"
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
        if let agent = store.read(.agent, as: AgentRecord.self), agent.isRunning, kill(agent.pid, SIGHUP) == 0 {
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
        try state.checkAccess(store)
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
        if let instance = entry.instance { lines.append("  instance of   " + Printable.escaped(instance)) }
        if let via = entry.via { lines.append("  expanded by   " + Printable.escaped(via)) }
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
