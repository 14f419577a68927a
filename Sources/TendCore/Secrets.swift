internal import Crypto
public import TendSpec

/// Opens a repository's secrets on this host: age ciphertext (a `source:` ending in `.age`, a
/// var tagged `!age`) to its plaintext, with an identity only this host holds. The plaintext
/// lives in memory only, in the catalog of the run; a resource that holds it is sensitive, and
/// what is recorded of it (plan files, snapshots, state) is derived from the ciphertext.
public protocol SecretOpener: Sendable {
    /// The plaintext of `ciphertext`, or why this host cannot open it.
    func open(_ ciphertext: [UInt8]) -> Result<[UInt8], SecretError>
    /// A key only this host has (derived from its identity), for `SecretDigest`.
    var digestKey: [UInt8] { get }
}

/// The digest recorded of a secret's plaintext (in a plan file's desired digest): keyed with
/// the host's own key, so that it cannot be checked against guesses elsewhere, as a plain
/// SHA-256 of a short password could.
public enum SecretDigest {
    public static func of(_ plaintext: [UInt8], key: [UInt8]) -> String {
        Digest.hex(Array(HMAC<SHA256>.authenticationCode(for: plaintext, using: SymmetricKey(data: key))))
    }
}

/// Why a secret could not be opened here: no identity, not one of its recipients, broken.
public struct SecretError: Error, Sendable, Hashable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }
}

/// What a resource's content is when it comes from a secret.
public enum SecretContent: Sendable {
    case opened([UInt8])
    /// Why it could not be opened, with where the secret is: the resource fails alone, at
    /// observe, and the rest of the catalog converges.
    case unopened(String)
}

extension YAMLNode {
    /// The tag that marks a var's value as age ciphertext (`password: !age |`).
    public static let secretTag = "!age"

    /// Whether this value is, or holds, a secret.
    public var holdsSecret: Bool { holdsAgeSecret }
}
