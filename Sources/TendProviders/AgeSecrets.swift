public import TendCore
import TendSpec
import TendProcess
import Synchronization
import Glibc

/// Opens age secrets with Debian's `age` and an identity this host holds: its SSH host key
/// (`/etc/ssh/ssh_host_ed25519_key`, as agenix does; `age` takes it as an identity and its public
/// key as a recipient) or the age identity file agent.yaml's `age_identity` (or `--age-identity`)
/// names. tend writes no cryptography of its own: `age -d -i IDENTITY` reads the ciphertext on
/// its standard input and writes the plaintext to a pipe, never to a file.
///
/// Each ciphertext is opened once per catalog (the agent keeps its catalog per commit), and at
/// most `limit` is waited for.
public final class AgeSecrets: SecretOpener {
    /// The identity's path on this machine.
    public let identity: String
    /// Derived from the identity the first time a digest is made: a run without secrets never
    /// reads the host's key.
    private let key = Mutex<[UInt8]?>(nil)
    private let opened = Mutex<[String: Result<[UInt8], SecretError>]>([:])
    /// Debian's age, by its path: not whatever PATH finds first.
    static let age = "/usr/bin/age"
    /// How long `age` may take for one secret.
    static let limit: Duration = .seconds(30)

    /// The default identity of a root: its SSH host key.
    public static func hostKey(root: String) -> String {
        (root == "/" ? "" : root) + "/etc/ssh/ssh_host_ed25519_key"
    }

    /// Whether `age` may ask on the terminal (a passphrase-protected operator key, `tend secrets
    /// rekey`): it then runs in tend's foreground process group.
    let interactive: Bool

    public init(identity: String, interactive: Bool = false) {
        self.identity = identity
        self.interactive = interactive
    }

    /// A key for digests of plaintext that only this host can compute: derived from its
    /// identity, which never leaves it.
    public var digestKey: [UInt8] {
        key.withLock { key in
            if let key { return key }
            let derived = Array(SecretDigest.of(Self.read(identity) ?? [], key: Array("tend secret digest".utf8)).utf8)
            key = derived
            return derived
        }
    }

    public func open(_ ciphertext: [UInt8]) -> Result<[UInt8], SecretError> {
        var key = Digest()
        key.add("ciphertext", ciphertext)
        let name = key.finalize()
        if let known = opened.withLock({ $0[name] }) { return known }
        let result = decrypt(ciphertext)
        opened.withLock { $0[name] = result }
        return result
    }

    private func decrypt(_ ciphertext: [UInt8]) -> Result<[UInt8], SecretError> {
        guard access(identity, F_OK) == 0 else {
            return .failure(SecretError("this host has no identity at \(Printable.escaped(identity)) (agent.yaml's age_identity or --age-identity names another)"))
        }
        guard access(identity, R_OK) == 0 else {
            return .failure(SecretError("cannot read the identity \(Printable.escaped(identity)): run as root"))
        }
        let waited = ChildProcess([Self.age, "--decrypt", "--identity", identity], environment: ["LC_ALL": "C.UTF-8"],
                                  limit: interactive ? nil : Self.limit, kept: ciphertext.count + 4096).runWaiting(input: ciphertext, ownGroup: !interactive)
        let (finished, plaintext) = (waited.finished, waited.output)
        if finished.status == 0, !finished.timedOut { return .success(plaintext) }
        if finished.timedOut { return .failure(SecretError("age ran out of time after \(DurationText.format(Self.limit))")) }
        if finished.status == 127, finished.error.hasPrefix("cannot run") {
            return .failure(SecretError("age is not installed (apt install age)"))
        }
        let said = finished.error.split(separator: "\n").first { $0.hasPrefix("age: error: ") }.map { String($0.dropFirst("age: error: ".count)) }
            ?? finished.error.split(separator: "\n").first.map(String.init) ?? "age exited with status \(finished.status)"
        if said.contains("no identity matched any of the recipients") {
            return .failure(SecretError("this host's identity (\(Printable.escaped(identity))) is not one of its recipients; encrypt it to this host's recipient too (tend secrets recipients)"))
        }
        return .failure(SecretError(Printable.escaped(String(said.prefix(300)))))
    }

    /// The recipient of `identity`, to encrypt to: an SSH key's public key (its `.pub`), or what
    /// `age-keygen -y` derives from an age identity file.
    public static func recipient(of identity: String) async -> Result<String, SecretError> {
        if let publicKey = read(identity + ".pub").map({ String(decoding: $0, as: UTF8.self) }), publicKey.hasPrefix("ssh-") {
            return .success(publicKey.split(separator: " ").prefix(2).joined(separator: " "))
        }
        let derived = await ChildProcess(["/usr/bin/age-keygen", "-y", identity], kept: 4096).run()
        guard derived.status == 0 else {
            return .failure(SecretError("no recipient for \(Printable.escaped(identity)): " + Printable.escaped(derived.error.trimmingWhitespace())))
        }
        return .success(derived.output.trimmingWhitespace())
    }

    /// `plaintext` encrypted again to every recipient of `recipientsFile` (armored if `armored`).
    public static func encrypt(_ plaintext: [UInt8], recipientsFile: String, armored: Bool) -> Result<[UInt8], SecretError> {
        encrypt(plaintext, arguments: ["--recipients-file", recipientsFile] + (armored ? ["--armor"] : []))
    }

    /// `plaintext` encrypted to one `recipient` (an age or SSH public key).
    public static func encrypt(_ plaintext: [UInt8], recipient: String) -> Result<[UInt8], SecretError> {
        encrypt(plaintext, arguments: ["--recipient", recipient])
    }

    private static func encrypt(_ plaintext: [UInt8], arguments: [String]) -> Result<[UInt8], SecretError> {
        // Armored ciphertext is about 4/3 of the plaintext, and age adds its header.
        let waited = ChildProcess([age, "--encrypt"] + arguments, limit: limit, kept: plaintext.count * 2 + (1 << 20)).runWaiting(input: plaintext)
        guard waited.finished.status == 0, !waited.truncated, !waited.output.isEmpty else {
            let why = waited.truncated ? "its output was larger than expected" : Printable.escaped(waited.finished.error.trimmingWhitespace())
            return .failure(SecretError("age could not encrypt it: " + why))
        }
        return .success(waited.output)
    }

    private static func read(_ path: String) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            bytes += chunk.prefix(n)
        }
        return bytes
    }
}
