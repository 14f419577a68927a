import ArgumentParser
import TendAgent

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration repository and report every problem in it.",
        discussion: """
            Reads tend.yaml and every manifest it names, decodes every resource, and builds the \
            catalog of this host. Problems are printed as path:line:col: message. Nothing on the \
            host is read except its name and os-release.

            Example:
              tend validate examples/webhost
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let reconciler = try Console.reconciler(source, root: root.root, logger: output.logger())
        let result = await reconciler.run(.validate, events: Console.events(root: root.root, lockTimeout: source.lockTimeout))
        if let failure = result.failure { try Console.exit(with: failure) }
        Console.out("\(result.sourceDescription) is valid: \(result.resourceCount) resources for this host.\n")
    }
}
