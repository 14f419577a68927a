import ArgumentParser
import TendAgent
import TendCore
import TendSpec

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration repository and report every problem in it.",
        discussion: """
            Reads tend.yaml and every manifest it names, decodes every resource, and builds the \
            catalog of this host. Problems are printed as path:line:col: message. Nothing on the \
            host is read except its name and os-release.

            Examples:
              tend validate examples/webhost
              tend validate examples/webhost --json   # {"valid": …, "diagnostics": [{"file", "line", "column", "message"}]}
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Print the result as JSON (docs/json-output.md): whether the repository is valid, and every problem with its file, line and column.")
    var json = false

    func run() async throws {
        OneShot.start()
        let reconciler = try Console.reconciler(source, root: root.root, logger: output.logger())
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
}
