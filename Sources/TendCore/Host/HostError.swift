public import SystemPackage
import TendSpec

/// A failure to read or change the host, naming the path and the system call.
public struct HostError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The path on the host (as declared, not prefixed by the root).
    public var path: String
    /// What went wrong, for people.
    public var message: String
    /// The C function that failed, if one did.
    public var function: String?
    /// The errno it set, if any.
    public var errno: Errno?

    public init(path: String, message: String, function: String? = nil, errno: Errno? = nil) {
        self.path = path
        self.message = message
        self.function = function
        self.errno = errno
    }

    /// A failed system call.
    public static func system(_ function: String, path: String, _ errno: Errno) -> HostError {
        HostError(path: path, message: "\(errno) (\(function))", function: function, errno: errno)
    }

    /// A failed atomic write of `path`.
    init(_ error: AtomicFileError, path: String) {
        self.init(path: path, message: error.message, function: error.function, errno: error.errno)
    }

    /// `/etc/motd: Permission denied (openat)`.
    public var description: String { "\(path): \(message)" }
}
