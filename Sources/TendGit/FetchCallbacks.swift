internal import CGit2
import Crypto
import Dispatch
import FoundationEssentials
import TendSpec
internal import Glibc

/// What the C callbacks of one fetch share with the code that started it, passed as their payload.
final class FetchContext {
    let sshKey: String?
    let token: String?
    let knownHosts: [KnownHost]?
    /// The files they were read from, for messages.
    let knownHostsFiles: String
    let port: Int?
    /// `https://host:port` of the repository: the only place the token goes.
    let tokenOrigin: String?
    let deadline: ContinuousClock.Instant
    /// The most bytes of objects the remote may send: past them the fetch stops, so that a hostile
    /// or broken remote cannot fill the disk the cache is on within the timeout. (The refs it
    /// advertises are not counted: each becomes a small file, bounded by the timeout only.)
    let maximumBytes: Int
    /// The most objects the remote may send: the pack says how many at its start, before any
    /// is unpacked.
    let maximumObjects: Int
    var attempts = 0
    var timedOut = false
    var progress: (@Sendable (FetchProgress) -> Void)?
    private var lastProgress: ContinuousClock.Instant?
    /// Why a callback refused, in words for people (libgit2's own message is then generic).
    var refusal: String?
    /// Objects and bytes received so far, and of how many objects: a fetch that runs out of time
    /// with all of them received was unpacking (a small pack that inflates to gigabytes).
    var received: (objects: Int, total: Int, bytes: Int) = (0, 0, 0)

    /// Why a fetch that ran out of time did, for people.
    func timeoutReason(_ timeout: Duration) -> String {
        let seconds = timeout.components.seconds
        guard received.total > 0 else { return "timed out after \(seconds) s" }
        let progress = "\(received.objects) of \(received.total) objects (\(GitRepository.size(received.bytes))) received"
        guard received.objects == received.total else { return "timed out after \(seconds) s, with \(progress)" }
        return "timed out after \(seconds) s unpacking what the remote sent (\(progress)): it inflates to far more than that"
    }

    init(credentials: GitCredentials, url: String, timeout: Duration, maximumBytes: Int, maximumObjects: Int) throws(GitSourceError) {
        sshKey = credentials.sshKey
        self.maximumBytes = maximumBytes
        self.maximumObjects = maximumObjects
        port = GitSource.port(of: url)
        tokenOrigin = GitSource.origin(of: url).flatMap { $0.hasPrefix("https://") ? $0 : nil }
        deadline = .now + timeout
        if let file = credentials.tokenFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw GitSourceError(.unreachable, "cannot read the token file \(file)")
            }
            token = String(decoding: data, as: UTF8.self).trimmingWhitespace()
        } else {
            token = nil
        }
        if let file = credentials.knownHosts {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw GitSourceError(.unreachable, "cannot read the known hosts file \(file)")
            }
            knownHosts = KnownHost.parse(String(decoding: data, as: UTF8.self))
            knownHostsFiles = file
        } else {
            // As ssh does without one named: the system's file and the user's.
            let files = Self.defaultKnownHostsFiles.filter { FileManager.default.isReadableFile(atPath: $0) }
            knownHosts = files.isEmpty ? nil : files.flatMap { KnownHost.parse(String(decoding: FileManager.default.contents(atPath: $0) ?? Data(), as: UTF8.self)) }
            knownHostsFiles = files.joined(separator: " or ")
        }
    }

    /// Where ssh looks for known hosts when no file is given.
    static var defaultKnownHostsFiles: [String] {
        ["/etc/ssh/ssh_known_hosts"] + (ProcessInfo.processInfo.environment["HOME"].map { [$0 + "/.ssh/known_hosts"] } ?? [])
    }

    /// Fills in the remote callbacks with this context as their payload. The context must outlive
    /// the fetch.
    func install(in callbacks: inout git_remote_callbacks) {
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        callbacks.credentials = { out, url, username, allowed, payload in
            let context = Unmanaged<FetchContext>.fromOpaque(payload!).takeUnretainedValue()
            return context.credentials(out, url.map { String(cString: $0) } ?? "", username.map { String(cString: $0) }, allowed)
        }
        callbacks.certificate_check = { certificate, _, host, payload in
            let context = Unmanaged<FetchContext>.fromOpaque(payload!).takeUnretainedValue()
            return context.checkCertificate(certificate, host: host.map { String(cString: $0) } ?? "")
        }
        callbacks.transfer_progress = { stats, payload in
            let context = Unmanaged<FetchContext>.fromOpaque(payload!).takeUnretainedValue()
            let now = ContinuousClock.now
            if now > context.deadline {
                context.timedOut = true
                return -1
            }
            if let stats {
                context.received = (Int(stats.pointee.received_objects), Int(stats.pointee.total_objects), Int(stats.pointee.received_bytes))
            }
            if let stats, Int(stats.pointee.total_objects) > context.maximumObjects {
                context.refusal = "the remote sends \(stats.pointee.total_objects) objects, more than the \(context.maximumObjects) tend unpacks in one fetch"
                return -1
            }
            if let stats, Int(stats.pointee.received_bytes) > context.maximumBytes {
                context.refusal = "the remote sent more than \(context.maximumBytes >> 20) MiB, the most tend fetches at once (--fetch-max-size, fetch_max_size:)"
                return -1
            }
            if let progress = context.progress, let stats, context.lastProgress.map({ now - $0 >= .milliseconds(100) }) ?? true {
                context.lastProgress = now
                progress(FetchProgress(receivedObjects: Int(stats.pointee.received_objects), totalObjects: Int(stats.pointee.total_objects),
                                       receivedBytes: Int(stats.pointee.received_bytes)))
            }
            return 0
        }
    }

    private func credentials(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>?, _ url: String, _ username: String?, _ allowed: UInt32) -> Int32 {
        attempts += 1
        // libgit2 asks again after a rejected credential; three tries are enough to know.
        guard attempts <= 3 else {
            refusal = "authentication failed: the remote rejected the credentials given"
            return GIT_EUSER.rawValue
        }
        if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0, let sshKey {
            return git_credential_ssh_key_new(out, username ?? "git", nil, sshKey, nil)
        }
        if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let token {
            // The token goes over HTTPS, and only to the repository's own host and port: libgit2
            // asks with the URL it talks to, which after a redirect is the redirect's.
            let asking = GitSource.origin(of: url)
            guard let tokenOrigin else {
                refusal = "the token is sent over https:// only, and this repository's URL is not https://"
                return GIT_EUSER.rawValue
            }
            guard asking == tokenOrigin else {
                refusal = "\(asking ?? "another place") asked for the token, which goes only to \(tokenOrigin) (a redirect?)"
                return GIT_EUSER.rawValue
            }
            return git_credential_userpass_plaintext_new(out, username ?? "tend", token)
        }
        if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
            return git_credential_username_new(out, username ?? "git")
        }
        refusal = "the remote asks for credentials; give --ssh-key for SSH or --token-file for HTTPS"
        return GIT_EUSER.rawValue
    }

    private func checkCertificate(_ certificate: UnsafeMutablePointer<git_cert>?, host: String) -> Int32 {
        guard let certificate, certificate.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else {
            return GIT_PASSTHROUGH.rawValue // TLS: libgit2 checks the chain against the system's CAs.
        }
        guard let knownHosts else { return GIT_PASSTHROUGH.rawValue }
        return certificate.withMemoryRebound(to: git_cert_hostkey.self, capacity: 1) { pointer in
            let hostkey = pointer.pointee
            var fingerprint = "unknown"
            if hostkey.type.rawValue & GIT_CERT_SSH_SHA256.rawValue != 0 {
                let digest = withUnsafeBytes(of: hostkey.hash_sha256) { Data($0) }
                fingerprint = "SHA256:" + digest.base64EncodedString().replacing("=", with: "")
            }
            guard hostkey.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let raw = hostkey.hostkey else {
                refusal = "the SSH server \(host) did not show its raw host key, so it cannot be checked (\(fingerprint))"
                return GIT_ECERTIFICATE.rawValue
            }
            let key = Data(bytes: raw, count: hostkey.hostkey_len)
            let names = port.map { $0 == 22 ? [host] : ["[\(host)]:\($0)"] } ?? [host]
            let entries = knownHosts.filter { entry in entry.key == key && names.contains(where: entry.matches) }
            if entries.contains(where: \.revoked) {
                refusal = "the host key of \(names[0]) is marked @revoked in \(knownHostsFiles): \(fingerprint)"
                return GIT_ECERTIFICATE.rawValue
            }
            if !entries.isEmpty { return 0 }
            refusal = "the host key of \(names[0]) is not in \(knownHostsFiles): \(fingerprint)"
            return GIT_ECERTIFICATE.rawValue
        }
    }
}

/// One line of an OpenSSH known_hosts file (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): host patterns
/// with `*` and `?` wildcards and `!` negations, or a hashed name (`|1|salt|hash`, HMAC-SHA1 of the
/// name keyed by the salt, as `HashKnownHosts yes` writes them), and `@revoked` keys, which are
/// refused. `@cert-authority` lines are not read: libgit2 shows tend the host key, not a certificate.
struct KnownHost {
    var patterns: [String]
    /// The salt and the hash of a hashed name.
    var hashed: (salt: Data, hash: Data)?
    var key: Data
    var revoked = false

    func matches(_ name: String) -> Bool {
        if let hashed {
            let code = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: hashed.salt))
            return Data(code) == hashed.hash
        }
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("!") {
                if Self.wildcard(Array(pattern.utf8.dropFirst()), matches: Array(name.utf8)) { return false }
            } else if Self.wildcard(Array(pattern.utf8), matches: Array(name.utf8)) {
                matched = true
            }
        }
        return matched
    }

    /// OpenSSH's `match_pattern`: `*` is any run of characters and `?` any one; everything else,
    /// `[` and `]` of `[host]:port` included, is itself (fnmatch would read brackets as a set).
    static func wildcard(_ pattern: [UInt8], matches name: [UInt8]) -> Bool {
        var (p, n) = (0, 0)
        var star: (pattern: Int, name: Int)?
        while n < name.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == name[n] {
                p += 1
                n += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = (p, n)
                p += 1
            } else if let last = star {
                p = last.pattern + 1
                n = last.name + 1
                star = (last.pattern, last.name + 1)
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    static func parse(_ text: String) -> [KnownHost] {
        text.split(separator: "\n").compactMap { line in
            var fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard !line.hasPrefix("#") else { return nil }
            var revoked = false
            if let marker = fields.first, marker.hasPrefix("@") {
                guard marker == "@revoked" else { return nil }
                revoked = true
                fields.removeFirst()
            }
            guard fields.count >= 3, let key = Data(base64Encoded: fields[2]) else { return nil }
            if fields[0].hasPrefix("|1|") {
                let parts = fields[0].split(separator: "|")
                guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])), let hash = Data(base64Encoded: String(parts[2])) else { return nil }
                return KnownHost(patterns: [], hashed: (salt, hash), key: key, revoked: revoked)
            }
            return KnownHost(patterns: fields[0].split(separator: ",").map(String.init), key: key, revoked: revoked)
        }
    }
}

/// Ends a fetch that overruns its time: libgit2 1.5 has no network timeout of its own, so when the
/// time is up, the sockets the fetch opened are shut down, which makes its blocked read fail.
///
/// Only the fetch's own sockets are touched: TCP sockets (the transports libgit2 and libssh2 open)
/// that did not exist when the fetch began. A long-running agent has other sockets, opened by other
/// threads meanwhile (D-Bus, journald, sd_notify), and they are all Unix sockets.
final class FetchWatchdog: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private(set) var fired = false

    /// Starts watching; sockets open before this call are never touched.
    init(timeout: Duration) {
        let before = Set(Self.sockets().values)
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue(label: "tend.fetch-watchdog").async { [self] in
            if done.wait(timeout: .now() + seconds) == .timedOut {
                fired = true
                let tcp = Self.tcpInodes()
                for (fd, inode) in Self.sockets() where !before.contains(inode) && tcp.contains(inode) {
                    // The descriptor may have been closed and reused since it was listed: only the
                    // socket with that inode is shut down.
                    var info = stat()
                    if fstat(fd, &info) == 0, UInt64(info.st_ino) == inode { shutdown(fd, Int32(SHUT_RDWR)) }
                }
            }
            finished.signal()
        }
    }

    /// Stops watching; returns whether the time ran out.
    func stop() -> Bool {
        done.signal()
        finished.wait()
        return fired
    }

    /// This process's sockets: descriptor → inode.
    static func sockets() -> [Int32: UInt64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        var result: [Int32: UInt64] = [:]
        for name in names {
            guard let fd = Int32(name),
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)"),
                  target.hasPrefix("socket:["), let inode = UInt64(target.dropFirst("socket:[".count).dropLast()) else { continue }
            result[fd] = inode
        }
        return result
    }

    /// The inodes of the TCP sockets of this network namespace (/proc/self/net/tcp and tcp6).
    static func tcpInodes() -> Set<UInt64> {
        var inodes: Set<UInt64> = []
        for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                if fields.count > 9, let inode = UInt64(fields[9]) { inodes.insert(inode) }
            }
        }
        return inodes
    }
}
