internal import Glibc
internal import CGit2

/// A libgit2 call failed: which function, its return code, and what libgit2 said.
public struct GitError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The C function that failed (`git_remote_fetch`).
    public var function: String
    /// Its return code (`GIT_ENOTFOUND` is -3).
    public var code: Int32
    /// libgit2's error class (`GIT_ERROR_NET` is 12), 0 if it set none.
    public var errorClass: Int32
    /// libgit2's message.
    public var message: String

    public init(function: String, code: Int32, errorClass: Int32, message: String) {
        self.function = function
        self.code = code
        self.errorClass = errorClass
        self.message = message
    }

    public var description: String { "\(message) (\(function), code \(code))" }

    public var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }

    /// Whether the failure points at a damaged repository rather than a network or a user error.
    var isCorruption: Bool {
        [GIT_ERROR_ODB, GIT_ERROR_ZLIB, GIT_ERROR_OBJECT, GIT_ERROR_INDEXER, GIT_ERROR_REPOSITORY, GIT_ERROR_REFERENCE, GIT_ERROR_OS]
            .map { Int32($0.rawValue) }.contains(errorClass)
    }
}

/// Turns a libgit2 return code into a `GitError`, reading the thread's last error at once.
///
/// libgit2 keeps its last error per thread: it must be read right after the failing call, on the
/// same thread, with no `await` in between. Every wrapper calls this directly after its C call.
@inline(__always)
func check(_ result: Int32, _ function: String) throws(GitError) {
    guard result < 0 else { return }
    throw lastError(result, function)
}

func lastError(_ result: Int32, _ function: String) -> GitError {
    let last = git_error_last()
    let message = last.flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "unknown error"
    return GitError(function: function, code: result, errorClass: last.map { $0.pointee.klass } ?? 0, message: message)
}

/// `git_libgit2_init`, once per process, before the first libgit2 call. Then what libgit2 writes
/// to a repository is fsynced (`GIT_OPT_ENABLE_FSYNC_GITDIR`): the cache is state tend keeps, and
/// what a fetch wrote (packs, their indexes, refs) must be on the disk before the fetch returns,
/// as a managed file is, not only in the page cache. And, as Git does, the certificates of
/// `GIT_SSL_CAINFO` (a PEM file) are trusted for HTTPS instead of the system's: an internal Git
/// server with its own CA (`GIT_OPT_SET_SSL_CERT_LOCATIONS`).
enum Libgit2 {
    static let initialized: Void = {
        git_libgit2_init()
        // Refused only by a libgit2 older than 1.5, which tend does not build with.
        let fsync = tend_git_enable_fsync(1)
        precondition(fsync == 0, "git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR) failed")
        // The agent's memory stays bounded whatever a repository holds: libgit2 caches parsed
        // objects up to 256 MiB and maps up to 8 GiB of packs by default. A configuration
        // repository's trees fit in far less; what is not cached is parsed again.
        _ = tend_git_set_cache_max_size(32 << 20)
        _ = tend_git_set_mwindow_mapped_limit(128 << 20)
        if let file = getenv("GIT_SSL_CAINFO"), file.pointee != 0 {
            _ = tend_git_set_ssl_cert_file(file)
        }
    }()
}
