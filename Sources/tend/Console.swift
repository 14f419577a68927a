import ArgumentParser
import TendCore
import TendSpec
import TendProviders
import TendGit
import TendSystemd
import Logging
import SystemPackage

/// Writing to the terminal, and the steps every command shares.
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

    /// A source opened: the snapshot, and for Git sources the record of applied commits.
    struct OpenedSource {
        var snapshot: any Snapshot
        var applied: AppliedCommits?
        var git: GitSnapshot? { snapshot as? GitSnapshot }
    }

    /// Opens the folder or the Git repository the options name, fetching, verifying the commit's
    /// signature and checking that it does not go back in time; or exits with the matching code.
    static func openSource(_ options: SourceOptions, root: String, logger: Logger, pinnedCommit: String? = nil, checkRewind: Bool = true) async throws -> OpenedSource {
        if let folder = options.source {
            guard options.repo == nil else { throw ValidationError("name either a folder or --repo, not both") }
            do {
                return OpenedSource(snapshot: try DirectorySnapshot(path: folder))
            } catch {
                Console.error("tend: cannot read the source: \(error.message)")
                throw TendExit.sourceUnreadable
            }
        }
        guard let url = options.repo else {
            throw ValidationError("name the configuration repository: a folder with tend.yaml, or --repo URL")
        }
        do {
            if let tightened = try PrivateDirectory.prepare(options.stateDir) { Console.error("tend: \(tightened)") }
        } catch {
            Console.error("tend: cannot prepare the state directory: \(error)")
            throw TendExit.unusableHost
        }
        let source = GitSource(url: url, ref: pinnedCommit ?? options.ref, path: options.path, stateDirectory: options.stateDir,
                               credentials: GitCredentials(sshKey: options.sshKey, knownHosts: options.knownHosts, tokenFile: options.tokenFile),
                               timeout: .seconds(options.fetchTimeout), logger: logger)
        let applied = AppliedCommits(source: source, root: root)
        do {
            let snapshot = try source.snapshot(offline: options.offline || pinnedCommit != nil)
            if let allowedSigners = options.verify { try await snapshot.verifySignature(.ssh(allowedSigners: allowedSigners)) }
            if let keyring = options.verifyGpg { try await snapshot.verifySignature(.openPGP(keyring: keyring)) }
            if checkRewind, !options.allowRewind { try applied.checkForward(snapshot) }
            return OpenedSource(snapshot: snapshot, applied: applied)
        } catch {
            Console.error("tend: \(error.message)")
            throw error.kind == .refused ? TendExit.refused : TendExit.sourceUnreadable
        }
    }

    /// The service manager for `root`: systemd over D-Bus when the root is "/" and systemd runs as
    /// PID 1; none otherwise (units are then managed through links, as `systemctl --root` does).
    static func serviceManager(for root: String, logger: Logger) -> (any ServiceManager)? {
        guard root == "/", SystemdManager.isBooted else { return nil }
        do {
            return try SystemdManager.connectSystem()
        } catch {
            logger.warning("systemd runs, but its bus cannot be reached: \(error)")
            return nil
        }
    }

    /// Takes the lock that serialises applies to `root`, saying who holds it while it waits, or
    /// exits with `TendExit.locked`.
    static func lock(_ root: String, timeout seconds: Int) async throws -> RunLock {
        do {
            return try await RunLock.acquire(root: root, timeout: .seconds(seconds)) { holder in
                Console.error("tend: waiting for \(holder), which is applying to \(root) (up to \(seconds) s, --lock-timeout)")
            }
        } catch {
            Console.error("tend: \(error)")
            throw TendExit.locked
        }
    }

    /// Opens the root read-only, or exits.
    static func openRoot(_ root: String, services: (any ServiceManager)? = nil) throws -> HostReader {
        do {
            return try HostReader(root: root, services: services)
        } catch {
            Console.error("tend: \(error)")
            throw TendExit.unusableHost
        }
    }

    /// Builds the catalog, or prints every problem as `path:line:col: message` and exits.
    static func facts(_ host: HostReader, options: SourceOptions) throws -> HostFacts {
        Facts.gather(host: host, hostname: options.hostname, labels: try options.labelMap())
    }

    static func catalog(_ snapshot: any Snapshot, facts: HostFacts, providers: ProviderSet) throws -> Catalog {
        do {
            return try Configuration.catalog(from: snapshot, providers: providers, facts: facts)
        } catch {
            for diagnostic in error.diagnostics {
                // One line each: a newline in a file name or a value is shown, not printed.
                Console.error(Printable.escaped(diagnostic.displayed(under: snapshot.displayPrefix).description))
            }
            Console.error("tend: \(snapshot.description) is invalid: \(error.diagnostics.count) problem\(error.diagnostics.count == 1 ? "" : "s"); nothing was changed")
            throw TendExit.invalidConfiguration
        }
    }
}
