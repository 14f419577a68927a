import Foundation
import PackagePlugin

/// Gives the `tend` executable its version from Git (scripts/version.sh) on every build, so that
/// `tend --version` and the .deb say the same and nothing is hard-coded. The file is rewritten only
/// when the version changes, so an unchanged version recompiles nothing.
@main
struct TendVersionPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "version")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        return [
            .prebuildCommand(
                displayName: "Version of tend from Git",
                executable: URL(filePath: "/bin/sh"),
                arguments: [
                    context.package.directoryURL.appending(path: "scripts/version.sh").path(percentEncoded: false),
                    output.appending(path: "TendVersion.swift").path(percentEncoded: false),
                ],
                outputFilesDirectory: output
            )
        ]
    }
}
