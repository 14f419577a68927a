import ArgumentParser
import FoundationEssentials
import TendAgent
import TendCore
import TendGit
import TendSpec
import Logging
import SystemPackage
import Glibc

/// Writing to the terminal, and turning the options into a run and a run's result into an exit.
enum Console {
    static func out(_ text: String) {
        write(text, to: .standardOutput)
    }

    /// Writes a message to standard error, its control characters shown visibly (messages name
    /// paths and values from the repository and the host).
    static func error(_ text: String) {
        let shown = Printable.escaped(text, keepingTabs: true, keepingNewlines: true)
        write(shown.hasSuffix("\n") ? shown : shown + "\n", to: .standardError)
    }

    private static func write(_ text: String, to fd: FileDescriptor) {
        _ = try? fd.writeAll(Array(text.utf8))
    }

    /// The run that the source and root options describe; for a saved plan, the source it was
    /// made from unless one is named.
    static func reconciler(_ options: SourceOptions, root: String, logger: Logger, savedPlan: Plan? = nil) throws -> Reconciler {
        let location: SourceSpec.Location
        if let folder = options.source {
            guard options.repo == nil else { throw ValidationError("name either a folder or --repo, not both") }
            // Ignoring --verify for a folder would leave someone believing commits are checked.
            let gitOnly = [("--verify", options.verify), ("--verify-gpg", options.verifyGpg), ("--ssh-key", options.sshKey),
                           ("--known-hosts", options.knownHosts), ("--token-file", options.tokenFile), ("--ref", options.ref),
                           ("--path", options.path)].filter { $0.1 != nil }.map(\.0)
                + (options.offline ? ["--offline"] : []) + (options.allowRewind ? ["--allow-rewind"] : [])
            guard gitOnly.isEmpty else {
                throw ValidationError("\(gitOnly.joined(separator: ", ")) \(gitOnly.count == 1 ? "is" : "are") for Git sources (--repo); the folder \(folder) has no commits to check or fetch")
            }
            location = .folder(folder)
        } else if let url = options.repo {
            location = .git(url: url, ref: options.ref, path: options.path)
        } else if let origin = savedPlan?.source {
            location = origin.type == "git" ? .git(url: origin.location, ref: nil, path: origin.path) : .folder(origin.location)
        } else {
            throw ValidationError("name the configuration repository: a folder with tend.yaml, or --repo URL")
        }
        let source = SourceSpec(location: location, stateDirectory: options.stateDir,
                                credentials: GitCredentials(sshKey: options.sshKey, knownHosts: options.knownHosts, tokenFile: options.tokenFile),
                                fetchTimeout: .seconds(options.fetchTimeout), fetchMaxBytes: options.fetchMaxSizeMiB << 20, offline: options.offline,
                                allowedSigners: options.verify, openPGPKeyring: options.verifyGpg, allowRewind: options.allowRewind)
        var policy = Reconciler.Policy(lockTimeout: .seconds(options.lockTimeout))
        if options.selfManage {
            policy.selfManagement = true
        } else if let fromAgentFile = options.agentFileSelfManage {
            policy.selfManagement = fromAgentFile
        } else {
            let (selfManaged, problem) = AgentFile.selfManagement(ofRoot: root)
            if let problem { Console.error("tend: " + problem) }
            policy.selfManagement = selfManaged
        }
        return Reconciler(source: source, root: root, identity: Reconciler.Identity(hostname: options.hostname, labels: try options.labelMap(), ageIdentity: options.ageIdentity),
                          providers: options.providers, policy: policy, tendVersion: tendVersion, logger: logger)
    }

    /// The progress line of this process, on a terminal.
    static let progress = TerminalProgress()

    /// What every command prints as a run goes on: lock waits, notes, and a fetch's progress.
    static func events(root: String, lockTimeout: Int) -> ReconcileEvents {
        var events = ReconcileEvents(
            lockWaiting: { holder in
                progress.clear()
                Console.error("tend: waiting for \(holder), which is applying to \(root) (up to \(lockTimeout) s, --lock-timeout)")
            },
            note: {
                progress.clear()
                Console.error("tend: " + Printable.escaped($0))
            }
        )
        if progress.enabled { events.fetching = { progress.fetching($0) } }
        return events
    }

    /// The exit code of a run that stopped with `failure`: the list in `tend --help`.
    static func exitCode(for failure: ReconcileFailure) -> ExitCode {
        ExitCode(failure.code.meaning.exitStatus)
    }

    /// `failure` for `--json`: its code as docs/json-output.md lists it, and its message.
    static func runError(_ failure: ReconcileFailure) -> RunError {
        RunError(code: failure.code.rawValue, message: failure.message)
    }

    /// Prints `document` as JSON (snake_case keys, sorted, slashes as they are).
    static func printJSON(_ document: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        out(String(decoding: try encoder.encode(document), as: UTF8.self) + "\n")
    }

    /// Prints why a run stopped and exits with the code the README documents for it.
    /// `replan` is the command that makes the plan again, for a stale saved plan.
    static func exit(with failure: ReconcileFailure, replan: String? = nil) throws -> Never {
        guard failure.code != .usage else { throw ValidationError(failure.message) }
        // One line each: a newline in a file name or a value is shown, not printed.
        for diagnostic in failure.diagnostics { Console.error(Printable.escaped(diagnostic.description)) }
        if failure.staleSteps.isEmpty {
            // Messages may hold a journal line or a path from the host: one line, escaped.
            Console.error("tend: " + Printable.escaped(failure.message))
        } else {
            Console.error("tend: \(failure.message):")
            for step in failure.staleSteps { Console.error("  " + Printable.escaped(step)) }
            if let replan { Console.error("Make a new plan with: " + Printable.escaped(replan)) }
        }
        throw exitCode(for: failure)
    }

    /// `tend plan` with what made `plan`: its source, root, host name and labels, and the source
    /// options the user gave now (state folder, keys, signatures), writing to `planFile`. Each
    /// word is quoted for the shell when it must be.
    static func replanCommand(for plan: Plan, options: SourceOptions, planFile: String) -> String {
        var words = ["tend", "plan"]
        if plan.source.type == "git" {
            // The plan names the commit, not the ref it came from: the ref given now, if any.
            words += ["--repo", plan.source.location] + (options.ref.map { ["--ref", $0] } ?? []) + (plan.source.path.map { ["--path", $0] } ?? [])
        } else {
            words.append(plan.source.location)
        }
        if plan.root != "/" { words += ["--root", plan.root] }
        var name = [CChar](repeating: 0, count: 256)
        if gethostname(&name, name.count) == 0, String(cString: name) != plan.facts.hostname { words += ["--hostname", plan.facts.hostname] }
        for (key, value) in plan.facts.labels.sorted(by: { $0.key < $1.key }) { words += ["--label", "\(key)=\(value)"] }
        let given: [(String, String?)] = [("--state-dir", options.givenStateDir), ("--ssh-key", options.sshKey), ("--known-hosts", options.knownHosts),
                                          ("--token-file", options.tokenFile), ("--verify", options.verify), ("--verify-gpg", options.verifyGpg)]
        for case let (flag, value?) in given { words += [flag, value] }
        words += ["--out", planFile]
        return words.map(shellQuoted).joined(separator: " ")
    }

    private static func shellQuoted(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:@,+%".contains($0)) }
        return safe && !word.isEmpty ? word : "'" + word.replacing("'", with: "'\\''") + "'"
    }
}
