import ArgumentParser
import Foundation
import TendAgent
import TendCore
import TendSpec

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration repository and report every problem in it.",
        discussion: """
            Reads tend.yaml and every manifest it names, decodes every resource, and builds the \
            catalog of this host. Problems are printed as path:line:col: message. Nothing on the \
            host is read but its facts (tend facts).

            With --all-hosts, every host that the repository's hosts.yaml (or --hosts FILE) \
            lists is checked, each with its name, labels and the facts it gives, the other facts \
            being this machine's: for CI, before a commit reaches any host.

            Examples:
              tend validate examples/webhost
              tend validate examples/webhost --json   # {"valid": …, "diagnostics": [{"file", "line", "column", "message"}]}
              tend validate examples/shop-fleet --all-hosts
              tend validate --repo https://git.example.com/ops/hosts.git --all-hosts --hosts ci/hosts.yaml
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Print the result as JSON (docs/json-output.md): whether the repository is valid, and every problem with its file, line and column.")
    var json = false

    @Flag(help: "Check the catalog of every host that the repository's hosts.yaml (or --hosts) lists, instead of this host's.")
    var allHosts = false

    @Option(help: ArgumentHelp("A hosts file to check with --all-hosts instead of the repository's hosts.yaml.", valueName: "file"), completion: .file(extensions: ["yaml"]))
    var hosts: String?

    func validate() throws {
        if hosts != nil, !allHosts { throw ValidationError("--hosts names the hosts --all-hosts checks; give --all-hosts too") }
        if allHosts, source.hostname != nil || !source.labels.isEmpty {
            throw ValidationError("--all-hosts takes each host's name and labels from the hosts file, not --hostname or --label")
        }
    }

    func run() async throws {
        OneShot.start()
        let reconciler = try Console.reconciler(source, root: root.root, logger: output.logger())
        if allHosts { return try await runAllHosts(reconciler) }
        let result = await reconciler.run(.validate, events: Console.events(root: root.root, lockTimeout: source.lockTimeout))
        Console.progress.clear()
        if json {
            try Console.printJSON(ValidationDocument(
                tendVersion: tendVersion, sourceDescription: result.sourceDescription,
                resourceCount: result.failure == nil ? result.resourceCount : 0,
                diagnostics: result.failure?.diagnostics ?? [], error: result.failure.map(Console.runError)))
            if let failure = result.failure {
                Console.error("tend: " + Printable.escaped(failure.message))
                throw Console.exitCode(for: failure)
            }
            return
        }
        if let failure = result.failure { try Console.exit(with: failure) }
        Console.out("\(result.sourceDescription) is valid: \(result.resourceCount) resources for this host.\n")
    }

    /// `--all-hosts`: one line per host, its problems under it; exit 3 if any host's catalog is
    /// invalid.
    private func runAllHosts(_ reconciler: Reconciler) async throws {
        var given: (bytes: [UInt8], path: String)?
        if let hosts {
            guard let bytes = FileManager.default.contents(atPath: hosts) else {
                Console.error("tend: cannot read the hosts file \(Printable.escaped(hosts))")
                throw TendExit.unusableHost
            }
            given = ([UInt8](bytes), hosts)
        }
        let validation = await reconciler.validateHosts(given, events: Console.events(root: root.root, lockTimeout: source.lockTimeout))
        Console.progress.clear()
        if json {
            try Console.printJSON(HostsValidationDocument(
                tendVersion: tendVersion, sourceDescription: validation.sourceDescription,
                hosts: validation.hosts.map { .init(hostname: $0.host.hostname, labels: $0.host.labels, resourceCount: $0.resourceCount, diagnostics: $0.diagnostics) },
                diagnostics: validation.failure?.diagnostics ?? [], error: validation.failure.map(Console.runError)))
        }
        if let failure = validation.failure {
            if json {
                Console.error("tend: " + Printable.escaped(failure.message))
                throw Console.exitCode(for: failure)
            }
            try Console.exit(with: failure)
        }
        guard !json else {
            if !validation.valid { throw Console.exitCode(for: ReconcileFailure(.invalidConfiguration, "")) }
            return
        }
        let width = validation.hosts.map { Printable.escaped($0.host.hostname).count }.max() ?? 0
        var out = ""
        for host in validation.hosts {
            let name = Printable.escaped(host.host.hostname)
            let padded = name + String(repeating: " ", count: max(0, width - name.count))
            if host.diagnostics.isEmpty {
                out += "\(padded)  valid: \(host.resourceCount) resources\n"
            } else {
                out += "\(padded)  \(host.diagnostics.count) problem\(host.diagnostics.count == 1 ? "" : "s"):\n"
                for diagnostic in host.diagnostics { out += "    " + Printable.escaped(diagnostic.description) + "\n" }
            }
        }
        let invalid = validation.hosts.filter { !$0.diagnostics.isEmpty }.count
        out += invalid == 0 ? "\(validation.sourceDescription) is valid for all \(validation.hosts.count) hosts.\n"
            : "\(validation.sourceDescription) is invalid for \(invalid) of \(validation.hosts.count) hosts; nothing was changed.\n"
        Console.out(out)
        if invalid > 0 { throw Console.exitCode(for: ReconcileFailure(.invalidConfiguration, "")) }
    }
}
