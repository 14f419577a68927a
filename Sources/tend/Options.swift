import ArgumentParser
import Logging
import TendCore
import TendSpec
import TendProviders
import Glibc

/// Where the configuration comes from and which host it is for.
struct SourceOptions: ParsableArguments {
    @Argument(help: "The configuration repository: a local folder with tend.yaml at its top.")
    var source: String?

    @Option(help: "Take the host's name as this when matching `hostname:` (default: this machine's).")
    var hostname: String?

    @Option(name: .customLong("label"), help: ArgumentHelp("A label of this host for `match: labels:`, as key=value; repeatable.", valueName: "key=value"))
    var labels: [String] = []

    func labelMap() throws -> [String: String] {
        var map: [String: String] = [:]
        for label in labels {
            guard let equals = label.firstIndex(of: "="), equals != label.startIndex else {
                throw ValidationError("--label takes key=value, not '\(label)'")
            }
            map[String(label[..<equals])] = String(label[label.index(after: equals)...])
        }
        return map
    }
}

/// How tend talks to people.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Never colour the output (also when NO_COLOR is set or stdout is not a terminal).")
    var noColor = false

    @Flag(name: .shortAndLong, help: "Log each step at info level on stderr.")
    var verbose = false

    var style: Style {
        Style(enabled: !noColor && isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil)
    }

    func logger() -> Logger {
        let level: Logger.Level = verbose ? .info : .warning
        var logger = Logger(label: "tend") { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        logger.logLevel = level
        return logger
    }
}

/// The root under which the host is managed.
struct RootOptions: ParsableArguments {
    @Option(help: "Manage the files under this folder instead of / (image building, provisioning, trying things out).")
    var root: String = "/"
}
