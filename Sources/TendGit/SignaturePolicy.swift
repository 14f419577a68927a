import FoundationEssentials
internal import Glibc
import TendProcess
import SystemPackage
import TendSpec

/// Which signatures a commit must carry to be applied.
public enum SignaturePolicy: Sendable, Hashable {
    /// An SSH signature by a key of this OpenSSH allowed-signers file (checked by `ssh-keygen -Y verify`).
    case ssh(allowedSigners: String)
    /// An OpenPGP signature by a key of this keyring (checked by `gpgv`).
    case openPGP(keyring: String)
}

extension GitSnapshot {
    /// Refuses the commit unless it carries a good signature by a key the policy allows; the
    /// message names the signer's key fingerprint. Runs before anything of the commit is loaded.
    public func verifySignature(_ policy: SignaturePolicy) async throws(GitSourceError) {
        let extracted: (signature: String, payload: [UInt8])?
        do {
            extracted = try repository.signature(of: commit.id)
        } catch {
            throw GitSourceError(.refused, "cannot read the signature of commit \(commit.id.short): \(error)")
        }
        guard let (signature, payload) = extracted else {
            throw GitSourceError(.refused, "commit \(commit.id.short) is not signed; refusing it")
        }
        let files: SignatureFiles
        do {
            files = try SignatureFiles(signature: signature, payload: payload)
        } catch {
            throw GitSourceError(.refused, "cannot prepare the signature check: \(error)")
        }
        defer { files.remove() }
        switch policy {
        case .ssh(let allowedSigners):
            try await verifySSH(files, allowedSigners: allowedSigners, isSSH: signature.contains("BEGIN SSH SIGNATURE"))
        case .openPGP(let keyring):
            try await verifyOpenPGP(files, keyring: keyring, isPGP: signature.contains("BEGIN PGP SIGNATURE"))
        }
    }

    private func verifySSH(_ files: SignatureFiles, allowedSigners: String, isSSH: Bool) async throws(GitSourceError) {
        let short = commit.id.short
        guard isSSH else { throw GitSourceError(.refused, "commit \(short) carries an OpenPGP signature, but only SSH signatures are allowed (--verify)") }
        let fingerprint = await sshSigner(files)
        // Whether the signature matches the data, whoever made it.
        let check = await run("/usr/bin/ssh-keygen", ["-Y", "check-novalidate", "-n", "git", "-s", files.signature], input: files.payload)
        guard check.status == 0 else {
            throw GitSourceError(.refused, "commit \(short) has a bad SSH signature (key \(fingerprint)): \(check.error.trimmingWhitespace())")
        }
        let principals = await run("/usr/bin/ssh-keygen", ["-Y", "find-principals", "-s", files.signature, "-f", allowedSigners], input: nil)
        guard principals.status == 0, let principal = principals.output.split(separator: "\n").first.map(String.init) else {
            throw GitSourceError(.refused, "commit \(short) is signed by key \(fingerprint), which is not in \(allowedSigners)")
        }
        let verify = await run("/usr/bin/ssh-keygen", ["-Y", "verify", "-f", allowedSigners, "-I", principal, "-n", "git", "-s", files.signature], input: files.payload)
        guard verify.status == 0 else {
            throw GitSourceError(.refused, "commit \(short): the SSH signature by \(principal) (key \(fingerprint)) does not verify: \((verify.error + verify.output).trimmingWhitespace())")
        }
    }

    /// The fingerprint of the key inside an SSH signature (`SHA256:…`), as `ssh-keygen -l` shows it.
    ///
    /// The armored signature is an SSHSIG blob: the magic "SSHSIG", a version, then the signer's
    /// public key as an SSH string, whose first field is the key type.
    private func sshSigner(_ files: SignatureFiles) async -> String {
        guard let text = try? String(contentsOfFile: files.signature, encoding: .utf8),
              let blob = Data(base64Encoded: text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()) else { return "unknown key" }
        let bytes = [UInt8](blob)
        func string(at offset: Int) -> ArraySlice<UInt8>? {
            guard offset + 4 <= bytes.count else { return nil }
            let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            guard offset + 4 + length <= bytes.count else { return nil }
            return bytes[offset + 4..<offset + 4 + length]
        }
        guard bytes.starts(with: Array("SSHSIG".utf8)), let key = string(at: 10), let type = string(at: key.startIndex) else { return "unknown key" }
        let line = String(decoding: type, as: UTF8.self) + " " + Data(key).base64EncodedString() + "\n"
        guard (try? Data(line.utf8).write(to: URL(fileURLWithPath: files.directory + "/signer.pub"))) != nil else { return "unknown key" }
        let listed = await run("/usr/bin/ssh-keygen", ["-l", "-f", files.directory + "/signer.pub"], input: nil)
        return listed.output.split(separator: " ").dropFirst().first.map(String.init) ?? "unknown key"
    }

    private func verifyOpenPGP(_ files: SignatureFiles, keyring: String, isPGP: Bool) async throws(GitSourceError) {
        let short = commit.id.short
        guard isPGP else { throw GitSourceError(.refused, "commit \(short) carries an SSH signature, but only OpenPGP signatures are allowed (--verify-gpg)") }
        // gpgv reads a relative keyring name from ~/.gnupg: make it absolute.
        let absolute = keyring.hasPrefix("/") ? keyring : FileManager.default.currentDirectoryPath + "/" + keyring
        let result = await run("/usr/bin/gpgv", ["--status-fd", "1", "--keyring", absolute, files.signature, files.payload], input: nil)
        let status = result.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        func field(_ keyword: String, _ index: Int) -> String? {
            status.first { $0.count > index && $0[1] == keyword }?[index]
        }
        if result.status == 0, field("VALIDSIG", 2) != nil { return }
        if let key = field("BADSIG", 2) {
            throw GitSourceError(.refused, "commit \(short) has a bad OpenPGP signature (key \(key))")
        }
        if let key = field("NO_PUBKEY", 2) ?? field("ERRSIG", 2) {
            throw GitSourceError(.refused, "commit \(short) is signed by OpenPGP key \(key), which is not in \(keyring)")
        }
        throw GitSourceError(.refused, "commit \(short): the OpenPGP signature does not verify: \((result.error + result.output).trimmingWhitespace())")
    }

    /// Runs a verification tool; its exit code is a result to inspect, not an error.
    private func run(_ tool: String, _ arguments: [String], input: String?) async -> ChildProcess.Finished {
        await ChildProcess([tool] + arguments, input: input.map { .file(FilePath($0)) } ?? .none, kept: 1 << 20).run()
    }
}

/// The signature and the signed data in temporary files for the verification tools.
private struct SignatureFiles {
    let directory: String
    var signature: String { directory + "/commit.sig" }
    var payload: String { directory + "/commit.payload" }

    init(signature: String, payload: [UInt8]) throws {
        var template = Array((FileManager.default.temporaryDirectory.path + "/tend-verify.XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw Errno(rawValue: errno) }
        directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try Data(signature.utf8).write(to: URL(fileURLWithPath: self.signature))
        try Data(payload).write(to: URL(fileURLWithPath: self.payload))
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
