import ArgumentParser
import TendCore
import TendSpec
import TendProviders
import SystemPackage

/// Writing to the terminal, and the steps every command shares.
enum Console {
    static func out(_ text: String) {
        write(text, to: .standardOutput)
    }

    static func error(_ text: String) {
        write(text.hasSuffix("\n") ? text : text + "\n", to: .standardError)
    }

    private static func write(_ text: String, to fd: FileDescriptor) {
        _ = try? fd.writeAll(Array(text.utf8))
    }

    /// Opens the source, or exits with the code for an unreadable source.
    static func openSnapshot(_ path: String?) throws -> DirectorySnapshot {
        guard let path else {
            throw ValidationError("name the configuration repository (a folder with tend.yaml)")
        }
        do {
            return try DirectorySnapshot(path: path)
        } catch {
            Console.error("tend: cannot read the source: \(error.message)")
            throw TendExit.sourceUnreadable
        }
    }

    /// Opens the root read-only, or exits.
    static func openRoot(_ root: String) throws -> HostReader {
        do {
            return try HostReader(root: root)
        } catch {
            Console.error("tend: \(error)")
            throw TendExit.unusableHost
        }
    }

    /// Builds the catalog, or prints every problem as `path:line:col: message` and exits.
    static func facts(_ host: HostReader, options: SourceOptions) throws -> HostFacts {
        Facts.gather(host: host, hostname: options.hostname, labels: try options.labelMap())
    }

    static func catalog(_ snapshot: any Snapshot, facts: HostFacts) throws -> Catalog {
        do {
            return try Configuration.catalog(from: snapshot, providers: .standard, facts: facts)
        } catch {
            for diagnostic in error.diagnostics {
                Console.error(diagnostic.displayed(under: snapshot.displayPrefix).description)
            }
            Console.error("tend: \(snapshot.description) is invalid: \(error.diagnostics.count) problem\(error.diagnostics.count == 1 ? "" : "s"); nothing was changed")
            throw TendExit.invalidConfiguration
        }
    }
}
