import ArgumentParser
import Foundation
import TendCore
import TendProviders
import TendSpec

/// `tend adopt`: a host configured by hand, turned into a configuration repository that
/// rebuilds it (docs/adopt.md).
struct AdoptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adopt",
        abstract: "Write a configuration repository from a host configured by hand: its packages, changed and unowned files, units and accounts.",
        discussion: """
            Reads the host (or --root) and changes nothing. What the distribution would have \
            done anyway is left out; machine-specific files are left out by a documented list; \
            private files are encrypted to the host's own age recipient (its SSH host key), or \
            left out. ADOPTED.md in the repository says what was taken and why, and what was \
            left out and why. Prove the result with tend plan: on the same host it is empty.

            Examples:
              tend adopt --out /srv/adopted
              tend adopt --dry-run
              tend adopt --root /srv/image --hostname web-07 --out /srv/adopted
            """
    )

    @OptionGroup var root: RootOptions

    @Option(help: ArgumentHelp("The folder to write the repository in (must not exist, or be empty).", valueName: "dir"), completion: .directory)
    var out: String?

    @Flag(help: "Print what would be written and why, and write nothing.")
    var dryRun = false

    @Option(help: "The host name the repository's host entry matches (default: this machine's).")
    var hostname: String?

    func validate() throws {
        if out == nil, !dryRun { throw ValidationError("name the folder to write with --out, or look first with --dry-run") }
    }

    func run() async throws {
        let reader = try root.reader()
        if let out, let entries = try? FileManager.default.contentsOfDirectory(atPath: out), !entries.isEmpty {
            Console.error("tend: \(Printable.escaped(out)) is not empty; adopt writes a new repository")
            throw TendExit.unusableHost
        }
        let name = hostname ?? Facts.gather(host: reader).hostname
        let recipient: String? = switch await AgeSecrets.recipient(of: AgeSecrets.hostKey(root: root.root)) {
        case .success(let found): found
        case .failure: nil
        }
        let adopter = Adopter(host: reader, hostname: name, recipient: recipient) { part in Console.progress.show("adopt: reading \(part)") }
        let result: Adopter.Result
        do throws(HostError) {
            result = try await adopter.adopt()
        } catch {
            Console.progress.clear()
            Console.error("tend: " + Printable.escaped(error.description))
            throw TendExit.unusableHost
        }
        Console.progress.clear()
        let summary = result.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        if dryRun {
            var text = ""
            for taken in result.taken { text += "+ \(Printable.escaped(taken.id)): \(Printable.escaped(taken.why))\n" }
            for left in result.leftOut { text += "- \(Printable.escaped(left.path)): left out, \(Printable.escaped(left.why))\n" }
            text += "Would write \(result.files.count) files: \(summary); \(result.leftOut.count) left out.\n"
            Console.out(text)
            return
        }
        guard let out else { return }
        do {
            for (path, bytes) in result.files.sorted(by: { $0.key < $1.key }) {
                let full = (out as NSString).appendingPathComponent(path)
                try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try AtomicFile.write(bytes, toPath: full, mode: 0o644)
            }
        } catch {
            Console.error("tend: cannot write the repository in \(Printable.escaped(out)): \(error)")
            throw TendExit.unusableHost
        }
        Console.out("Adopted \(Printable.escaped(name)) into \(Printable.escaped(out)): \(summary); \(result.leftOut.count) left out (ADOPTED.md says why).\n")
    }
}
