internal import CGit2
import FoundationEssentials
internal import Glibc
public import Logging
import TendSpec

/// How to reach a remote: an SSH key and the known hosts to check its server against, or a token
/// for HTTPS. Secrets are read from files, never taken from the command line or the environment.
public struct GitCredentials: Sendable, Hashable {
    public var sshKey: String?
    public var knownHosts: String?
    public var tokenFile: String?

    public init(sshKey: String? = nil, knownHosts: String? = nil, tokenFile: String? = nil) {
        self.sshKey = sshKey
        self.knownHosts = knownHosts
        self.tokenFile = tokenFile
    }
}

/// Why a Git source could not give a snapshot.
public struct GitSourceError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The remote could not be fetched (network, authentication, timeout) and there is no cache to fall back on.
        case unreachable
        /// The ref, the commit or the folder asked for is not in the repository.
        case notFound
        /// The commit is refused: unsigned, badly signed, or not a descendant of the last applied one.
        case refused
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// How far a fetch has come: objects received of those the remote sends, and bytes.
public struct FetchProgress: Sendable, Hashable {
    public var receivedObjects: Int
    public var totalObjects: Int
    public var receivedBytes: Int
}

/// Source: a Git repository fetched into a bare cache in the state directory, one per URL, from
/// which one commit is read as a snapshot, with no working checkout.
public struct GitSource: Sendable {
    public var url: String
    /// A branch, a tag or a full commit id; nil for the remote's default branch.
    public var ref: String?
    /// The folder of the repository that holds tend.yaml.
    public var path: String?
    public var stateDirectory: String
    public var credentials: GitCredentials
    public var timeout: Duration
    /// The most bytes one fetch may bring (`FetchContext.maximumBytes`), at least 1 MiB.
    public var maximumFetchBytes: Int
    /// 1 GiB: a configuration repository is far smaller, and a first clone of one that holds
    /// large `source:` files still fits.
    public static let defaultMaximumFetchBytes = 1 << 30
    /// What `--fetch-max-size` and `fetch_max_size:` may say, in MiB.
    public static let fetchSizeRangeMiB = 1...(1 << 20)
    /// What one commit may hold: its files together within what a fetch may bring.
    public var limits: CommitLimits { CommitLimits(totalBytes: maximumFetchBytes) }
    public let logger: Logger
    /// Told how a fetch goes, at most ten times a second (a first clone of a large repository
    /// takes a while); nil for nobody.
    public var progress: (@Sendable (FetchProgress) -> Void)?
    /// Commits a repack of the cache keeps though no reference may reach them any more: the last
    /// applied one, after history was rewritten.
    public var keeping: [String] = []

    public init(url: String, ref: String? = nil, path: String? = nil, stateDirectory: String,
                credentials: GitCredentials = GitCredentials(), timeout: Duration = .seconds(60),
                maximumFetchBytes: Int = GitSource.defaultMaximumFetchBytes, logger: Logger) {
        precondition(maximumFetchBytes >= 1 << 20, "a fetch may bring at least 1 MiB")
        self.maximumFetchBytes = maximumFetchBytes
        self.url = url
        self.ref = ref
        self.path = path.map { $0.split(separator: "/").joined(separator: "/") }.flatMap { $0.isEmpty ? nil : $0 }
        self.stateDirectory = stateDirectory
        self.credentials = credentials
        self.timeout = timeout
        self.logger = logger
    }

    /// The cache folder of this URL: a readable name and a hash of the whole URL.
    public var cachePath: String {
        _ = Libgit2.initialized
        var oid = git_oid()
        _ = url.withCString { git_odb_hash(&oid, $0, strlen($0), GIT_OBJECT_BLOB) }
        let name = url.split(whereSeparator: { "/:@".contains($0) }).last.map { $0.hasSuffix(".git") ? String($0.dropLast(4)) : String($0) } ?? "repo"
        let safe = String(name.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }.prefix(40))
        return stateDirectory + "/cache/" + (safe.isEmpty ? "repo" : safe) + "-" + GitObjectID(oid).description.prefix(12) + ".git"
    }

    /// Fetches (unless `offline`), resolves the ref and returns the commit's snapshot.
    /// A cache that cannot be opened or read is moved aside and fetched again.
    public func snapshot(offline: Bool = false) throws(GitSourceError) -> GitSnapshot {
        do {
            return try attempt(offline: offline)
        } catch let failure as CacheDamage {
            guard !offline else { throw GitSourceError(.unreachable, "the cache of \(url) is damaged (\(failure.error)) and --offline forbids fetching it again") }
            logger.info("moving a damaged cache aside and fetching again", metadata: ["cache": "\(cachePath)", "error": "\(failure.error)"])
            moveAside()
            do {
                return try attempt(offline: false)
            } catch let error as GitSourceError {
                throw error
            } catch {
                throw GitSourceError(.unreachable, "the cache of \(url) is damaged even after fetching it again: \(error)")
            }
        } catch let error as GitSourceError {
            throw error
        } catch {
            throw GitSourceError(.unreachable, "\(error)")
        }
    }

    /// Raised inside `attempt` when the cache itself is at fault.
    private struct CacheDamage: Error {
        var error: GitError
    }

    private func attempt(offline: Bool) throws -> GitSnapshot {
        let isNew = !FileManager.default.fileExists(atPath: cachePath + "/" + Self.marker)
        let repository = try openCache(creating: !offline)
        if !offline {
            do {
                try fetch(into: repository)
            } catch let error as GitSourceError {
                // A cache that never completed its first fetch holds nothing worth keeping.
                if isNew { try? FileManager.default.removeItem(atPath: cachePath) }
                throw error
            }
        }
        let commitID = try resolve(in: repository)
        let commit: GitCommit
        let excess: LimitExceeded?
        do {
            commit = try repository.commit(commitID)
            excess = try repository.excess(ofTree: commit.tree, limits: limits)
        } catch {
            throw CacheDamage(error: error)
        }
        // Refused by what it holds, before any file of it is read: the last good commit stays.
        if let excess {
            throw GitSourceError(.refused, "commit \(commit.id.short) of \(url) is refused: \(excess.message); nothing of it is read")
        }
        let snapshot = GitSnapshot(repository: repository, commit: commit, url: url, ref: ref, path: path)
        if let path {
            guard snapshot.rootKind(of: path) == .directory else {
                throw GitSourceError(.notFound, "the folder '\(path)' does not exist in \(url) at \(commit.id.short)")
            }
        }
        return snapshot
    }

    // MARK: The cache

    private static let marker = "tend-cache-complete"

    private func openCache(creating: Bool) throws -> GitRepository {
        let path = cachePath
        // The cache holds every file of every commit, sensitive ones too: only root may enter.
        for folder in [stateDirectory, stateDirectory + "/cache"] where creating || FileManager.default.fileExists(atPath: folder) {
            do {
                if let tightened = try PrivateDirectory.prepare(folder) { logger.info("\(tightened)") }
            } catch {
                throw GitSourceError(.unreachable, "cannot prepare the state directory: \(error)"
                                     + (error.isPermission ? "; " + PrivateDirectory.permissionAdvice : ""))
            }
        }
        if FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.fileExists(atPath: path + "/" + Self.marker) else {
                guard creating else { throw GitSourceError(.unreachable, "the cache of \(url) was never completed and --offline forbids fetching it") }
                logger.info("moving a half-written cache aside", metadata: ["cache": "\(path)"])
                moveAside()
                return try GitRepository.createBare(path, remote: url)
            }
            do {
                return try GitRepository.openBare(path)
            } catch {
                throw CacheDamage(error: error)
            }
        }
        guard creating else { throw GitSourceError(.unreachable, "there is no cache of \(url) in \(stateDirectory) to work offline from") }
        return try GitRepository.createBare(path, remote: url)
    }

    private func moveAside() {
        let aside = cachePath + ".damaged-\(Int(Date().timeIntervalSince1970))"
        try? FileManager.default.removeItem(atPath: aside)
        if rename(cachePath, aside) != 0 { try? FileManager.default.removeItem(atPath: cachePath) }
    }

    // MARK: Fetching

    private func fetch(into repository: GitRepository) throws {
        if let path = localPath {
            guard FileManager.default.fileExists(atPath: path) else {
                throw GitSourceError(.unreachable, "cannot fetch \(url): there is no repository at \(path)")
            }
        }
        if let local = localPath {
            // libgit2 packs a repository on this machine in this process, reading each object it
            // sends whole: what would come is checked from its headers first.
            do {
                if let excess = try GitRepository.excess(ofFetchFrom: try GitRepository.openLocal(local), into: repository, limits: limits, maximumObjects: Self.maximumObjects) {
                    throw GitSourceError(.refused, "\(url) is not fetched: \(excess.message); nothing was fetched")
                }
            } catch let error as GitError {
                throw GitSourceError(.unreachable, "cannot fetch \(url): \(error.message) (\(error.function))")
            }
        }
        let context = try FetchContext(credentials: credentials, url: url, timeout: timeout, maximumBytes: maximumFetchBytes, maximumObjects: Self.maximumObjects)
        context.progress = progress
        let watchdog = FetchWatchdog(timeout: timeout)
        let defaultBranch: String?
        do {
            defaultBranch = try repository.withHandle { repo throws(GitError) -> String? in
                // An in-memory remote that skips the url.*.insteadOf lookup: in libgit2 1.5.1 that
                // lookup (git_config_foreach_match with a regex) leaks about 40 KB a call, and
                // git_remote_lookup makes two of them; bench/RESULTS.md shows RSS flat without.
                var createOptions = git_remote_create_options()
                git_remote_create_options_init(&createOptions, UInt32(GIT_REMOTE_CREATE_OPTIONS_VERSION))
                createOptions.repository = repo
                createOptions.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF.rawValue | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC.rawValue
                var remote: OpaquePointer?
                try check(git_remote_create_with_opts(&remote, url, &createOptions), "git_remote_create_with_opts")
                defer { git_remote_free(remote) }
                var options = git_fetch_options()
                git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
                context.install(in: &options.callbacks)
                // Proxies as Git users set them, for HTTPS: http.proxy in the system's and root's
                // Git configuration, then https_proxy / HTTPS_PROXY, and no_proxy. libgit2 1.5 can
                // only tunnel through a proxy (CONNECT): for a plain http:// remote it would send the
                // proxy's request to the remote itself (libgit2 issue 5650), so those go direct.
                options.proxy_opts.type = url.lowercased().hasPrefix("https://") ? GIT_PROXY_AUTO : GIT_PROXY_NONE
                options.prune = GIT_FETCH_PRUNE
                options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL
                let refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
                let fetched = withStrarray(refspecs) { array in git_remote_fetch(remote, &array, &options, "tend: fetch") }
                try check(fetched, "git_remote_fetch")
                var buffer = git_buf()
                defer { git_buf_dispose(&buffer) }
                guard git_remote_default_branch(&buffer, remote) == 0, let pointer = buffer.ptr else { return nil }
                return String(cString: pointer)
            }
        } catch {
            let timedOut = watchdog.stop() || context.timedOut
            if error.isCorruption, error.errorClass != Int32(GIT_ERROR_OS.rawValue) { throw CacheDamage(error: error) }
            // Where tend itself stopped the fetch, libgit2's words ("unknown error") add nothing.
            let reason = timedOut ? context.timeoutReason(timeout) : context.refusal ?? "\(error.message) (\(error.function))"
            throw GitSourceError(.unreachable, "cannot fetch \(url) over \(Self.transport(of: url)): \(reason)")
        }
        _ = watchdog.stop()
        if let defaultBranch, defaultBranch.hasPrefix("refs/heads/") {
            let target = "refs/remotes/origin/" + defaultBranch.dropFirst("refs/heads/".count)
            if repository.symbolicTarget("refs/remotes/origin/HEAD") != target {
                try repository.setSymbolic("refs/remotes/origin/HEAD", to: target)
            }
        }
        let marker = repository.path + "/" + Self.marker
        if !FileManager.default.fileExists(atPath: marker) { _ = FileManager.default.createFile(atPath: marker, contents: Data()) }
        logger.debug("fetched", metadata: ["url": "\(url)"])
        if repository.needsRepack {
            // A cache that cannot be packed still works: it is tried again after the next fetch.
            do {
                let (objects, removed) = try repository.repack(keeping: keeping.compactMap(GitObjectID.init(hex:)), maximumFileSize: limits.fileSize)
                logger.info("packed the cache of \(url): \(objects) objects in one pack, \(removed) packs removed", metadata: ["cache": "\(cachePath)"])
            } catch {
                logger.info("the cache of \(url) was not packed: \(error)", metadata: ["cache": "\(cachePath)"])
            }
        }
    }

    /// The folder of a repository on this machine (a path or file://), which libgit2 reads in
    /// this process; nil for a remote.
    var localPath: String? {
        guard Self.transport(of: url) == "local path" || url.hasPrefix("file://") else { return nil }
        return url.hasPrefix("file://") ? String(url.dropFirst("file://".count)) : url
    }

    /// The most objects one fetch may bring: a first clone of years of history fits.
    public static let maximumObjects = 500_000

    /// The transport libgit2 uses for `url`, for messages.
    static func transport(of url: String) -> String {
        if let scheme = url.firstRange(of: "://").map({ String(url[..<$0.lowerBound]) }) { return scheme }
        if url.hasPrefix("/") || url.hasPrefix(".") { return "local path" }
        return url.contains(":") ? "ssh" : "local path"
    }

    /// `scheme://host:port` of an http(s) URL, lowercased, with the default port written out and
    /// any user name dropped; nil for other URLs.
    static func origin(of url: String) -> String? {
        guard let separator = url.firstRange(of: "://") else { return nil }
        let scheme = url[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let authority = url[separator.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = (authority.split(separator: "@", omittingEmptySubsequences: false).last ?? authority).lowercased()
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            let rest = hostPort[hostPort.index(after: close)...]
            return "\(scheme)://\(hostPort[...close]):" + (rest.hasPrefix(":") ? String(rest.dropFirst()) : scheme == "https" ? "443" : "80")
        }
        if let colon = hostPort.lastIndex(of: ":") { return "\(scheme)://\(hostPort[..<colon]):\(hostPort[hostPort.index(after: colon)...])" }
        return "\(scheme)://\(hostPort):" + (scheme == "https" ? "443" : "80")
    }

    static func port(of url: String) -> Int? {
        guard url.hasPrefix("ssh://"), let hostPart = url.dropFirst(6).split(separator: "/").first else {
            return url.contains("://") ? nil : 22
        }
        let host = hostPart.split(separator: "@").last ?? hostPart
        if let colon = host.lastIndex(of: ":"), let port = Int(host[host.index(after: colon)...]) { return port }
        return 22
    }

    // MARK: Refs

    private func resolve(in repository: GitRepository) throws -> GitObjectID {
        let candidates: [String]
        if let ref {
            if let id = GitObjectID(hex: ref) {
                do {
                    _ = try repository.commit(id)
                    return id
                } catch let error where error.isNotFound {
                    throw GitSourceError(.notFound, "commit \(ref) is not in \(url)")
                } catch {
                    throw CacheDamage(error: error)
                }
            }
            candidates = ["refs/remotes/origin/\(ref)", "refs/tags/\(ref)"]
        } else {
            guard repository.symbolicTarget("refs/remotes/origin/HEAD") != nil else {
                throw GitSourceError(.notFound, "the default branch of \(url) is not known; name one with --ref")
            }
            candidates = ["refs/remotes/origin/HEAD"]
        }
        for name in candidates where repository.referenceExists(name) {
            do {
                return try repository.peelToCommit(name)
            } catch {
                // The reference is there but what it points at is not: the object database is damaged.
                throw CacheDamage(error: error)
            }
        }
        let branches = repository.referenceNames(prefix: "refs/remotes/origin/").filter { $0 != "HEAD" }
        let tags = repository.referenceNames(prefix: "refs/tags/")
        throw GitSourceError(.notFound, "'\(ref ?? "HEAD")' is neither a branch nor a tag of \(url) (branches: \(branches.joined(separator: ", ")); tags: \(tags.isEmpty ? "none" : tags.joined(separator: ", ")))")
    }
}

/// Calls `body` with a `git_strarray` of `strings`, valid for the call only.
func withStrarray<T>(_ strings: [String], _ body: (inout git_strarray) -> T) -> T {
    var pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeMutableBufferPointer { buffer in
        var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
        return body(&array)
    }
}
