import ArgumentParser
import Foundation
import TendCore
import TendProviders
import TendSpec

/// `tend secrets`: the age recipients a repository encrypts its secrets to, and re-encrypting
/// them when the fleet changes. Recipients are managed as a plain file in the repository (one
/// per line, `#` comments), made of each host's `tend secrets recipients` and the operators'
/// own keys; `rekey` encrypts every `.age` file of a folder to that file's recipients.
struct SecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "Manage the age-encrypted secrets of a repository: this host's recipient, re-encrypting for a recipients file.",
        subcommands: [Recipients.self, Rekey.self]
    )

    struct Recipients: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print this host's age recipient: the public key of its SSH host key (or of --age-identity), to add to the repository's recipients file.",
            discussion: """
                Examples:
                  tend secrets recipients >> secrets/recipients.txt
                  ssh web-01 tend secrets recipients
                """
        )

        @OptionGroup var root: RootOptions

        @Option(name: .customLong("age-identity"), help: ArgumentHelp("The identity whose recipient to print (default: the root's /etc/ssh/ssh_host_ed25519_key).", valueName: "file"))
        var ageIdentity: String?

        func run() async throws {
            switch await AgeSecrets.recipient(of: ageIdentity ?? AgeSecrets.hostKey(root: root.root)) {
            case .success(let recipient): Console.out(Printable.escaped(recipient) + "\n")
            case .failure(let error):
                Console.error("tend: " + error.message)
                throw TendExit.unusableHost
            }
        }
    }

    struct Rekey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-encrypt every .age file under a folder to the recipients of a recipients file.",
            discussion: """
                Each file is opened with --age-identity (one of its current recipients' keys, \
                such as an operator's), encrypted again with age -R RECIPIENTS, and replaced \
                atomically; armored files stay armored. The plaintext goes from one age to the \
                other through memory only. Vars tagged !age in YAML are not rewritten: encrypt \
                them again with age -R -a.

                Example:
                  tend secrets rekey secrets/ --recipients secrets/recipients.txt --age-identity ~/.ssh/id_ed25519
                """
        )

        @Argument(help: "The folder whose .age files to re-encrypt.", completion: .directory)
        var folder: String

        @Option(help: ArgumentHelp("The recipients file: one age or SSH public key per line.", valueName: "file"), completion: .file())
        var recipients: String

        @Option(name: .customLong("age-identity"), help: ArgumentHelp("An identity that opens the files now.", valueName: "file"), completion: .file())
        var ageIdentity: String

        func run() async throws {
            let files = (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".age") }.sorted()
            guard !files.isEmpty else {
                Console.error("tend: no .age file under \(Printable.escaped(folder))")
                throw TendExit.unusableHost
            }
            let opener = AgeSecrets(identity: ageIdentity, interactive: true)
            var failed = 0
            for file in files {
                let path = (folder as NSString).appendingPathComponent(file)
                guard let ciphertext = FileManager.default.contents(atPath: path).map(Array.init) else {
                    Console.error("tend: cannot read \(Printable.escaped(path))")
                    failed += 1
                    continue
                }
                let plaintext: [UInt8]
                switch opener.open(ciphertext) {
                case .success(let opened): plaintext = opened
                case .failure(let error):
                    Console.error("tend: \(Printable.escaped(path)): \(error.message)")
                    failed += 1
                    continue
                }
                let armored = ciphertext.starts(with: Array("-----BEGIN AGE ENCRYPTED FILE-----".utf8))
                let encrypted: [UInt8]
                switch AgeSecrets.encrypt(plaintext, recipientsFile: recipients, armored: armored) {
                case .success(let bytes): encrypted = bytes
                case .failure(let error):
                    Console.error("tend: \(Printable.escaped(path)): \(error.message)")
                    failed += 1
                    continue
                }
                do {
                    var info = stat()
                    let mode = stat(path, &info) == 0 ? UInt32(info.st_mode) & 0o7777 : 0o644
                    try AtomicFile.write(encrypted, toPath: path, mode: mode)
                    Console.out("re-encrypted \(Printable.escaped(path))\n")
                } catch {
                    Console.error("tend: cannot write \(Printable.escaped(path)): \(error)")
                    failed += 1
                }
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
