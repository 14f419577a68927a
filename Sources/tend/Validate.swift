import ArgumentParser
import TendCore
import TendSpec

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
        let snapshot = try await Console.openSource(source, root: root.root, logger: output.logger(), checkRewind: false).snapshot
        let host = try Console.openRoot(root.root)
        let catalog = try Console.catalog(snapshot, facts: try Console.facts(host, options: source), providers: source.providers)
        Console.out("\(snapshot.description) is valid: \(catalog.entries.count) resources for this host.\n")
    }
}
