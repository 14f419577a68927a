internal import Glibc
public import SystemPackage
import TendSpec

/// The one lock that serialises every run that changes a root: `tend apply` and the agent. Two
/// applies at once would interleave their writes (mixed configurations, lost files), so the
/// second waits for the first.
///
/// It is a `flock` on a lock file of tend's own, one per root, in a folder only tend's user may
/// enter (`directory`: /run/tend/locks for root), opened with `O_NOFOLLOW` and kept at mode 0600.
/// A lock anyone can open is a lock anyone can hold: the root folder itself, locked until
/// 2026-12, let `flock / sleep infinity` by user nobody stall every apply and drift repair. The
/// kernel drops the lock when its holder dies, also by kill -9; the file stays and is reused.
/// `tend plan` takes no lock: it only reads.
public final class RunLock {
    private let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit { close(fd) }

    /// Where the lock files are: /run/tend/locks for root (gone at boot, as locks are); for
    /// another user `$XDG_RUNTIME_DIR/tend/locks`, or /tmp/tend-UID/locks, refused if someone
    /// else made it.
    public static var directory: String {
        let uid = geteuid()
        if uid == 0 { return "/run/tend/locks" }
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), runtime.hasPrefix("/") { return runtime + "/tend/locks" }
        return "/tmp/tend-\(uid)/locks"
    }

    /// The lock file of `root`: its path, links resolved, escaped as `systemd-escape --path`
    /// escapes it (`/` is `-.lock`, `/srv/img` is `srv-img.lock`), or a digest of it when that
    /// name would be too long for a file name.
    public static func file(for root: String) -> String {
        let canonical = realpath(root, nil).map { resolved in
            defer { free(resolved) }
            return String(cString: resolved)
        } ?? root
        let escaped = escape(canonical)
        var digest = Digest()
        digest.add("root", canonical)
        let name = escaped.utf8.count <= 200 ? escaped : "root-" + digest.finalize().prefix(32)
        return directory + "/" + name + ".lock"
    }

    /// systemd's path escaping (systemd.unit(5), "String Escaping for Inclusion in Unit Names").
    static func escape(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.isEmpty else { return "-" }
        var result = ""
        for byte in parts.joined(separator: "/").utf8 {
            switch byte {
            case UInt8(ascii: "/"): result += "-"
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
                result += byte == UInt8(ascii: ".") && result.isEmpty ? "\\x2e" : String(UnicodeScalar(byte))
            default:
                result += "\\x" + Digest.hex([byte])
            }
        }
        return result
    }

    /// Takes the lock of `root`, waiting up to `timeout`. `waiting` is called once, with who
    /// holds it ("process 1234 (tend)"), if it must wait.
    public static func acquire(root: String, timeout: Duration, waiting: (String) -> Void) async throws(RunLockError) -> RunLock {
        let fd = try open(for: root)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var told = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw .system("flock", root: root, code)
            }
            let holder = describeHolder(of: fd)
            // Said first, so that a run that gives up has always said whom it waited for, however
            // long finding the holder took on a loaded machine.
            if !told {
                waiting(holder ?? "another process")
                told = true
            }
            guard clock.now < deadline else {
                close(fd)
                throw RunLockError(root: root, holder: holder, function: "flock", errno: .wouldBlock,
                                   message: "another run of tend is applying to \(root)\(holder.map { " (\($0))" } ?? ""); gave up after waiting \(timeout.components.seconds) s")
            }
            // Waits without holding a thread of the concurrency pool; a cancelled task stops waiting.
            do {
                try await Task.sleep(for: .milliseconds(50))
            } catch {
                close(fd)
                throw RunLockError(root: root, holder: holder, function: "flock", errno: .canceled, message: "stopped waiting for the lock of \(root): the run was cancelled")
            }
        }
        // The file's time says since when it is held, for `tend status`.
        futimens(fd, nil)
        return RunLock(fd: fd)
    }

    /// Who holds the lock of `root` now and for how long, from /proc/locks, or nil when nobody
    /// does (or the lock file cannot be read): for `tend status`, which must not take the lock
    /// even for an instant (an apply trying it then would wait, or give up with
    /// `--lock-timeout 0`).
    public static func heldBy(root: String) -> (holder: String, seconds: Int)? {
        var info = stat()
        guard lstat(file(for: root), &info) == 0, info.st_mode & S_IFMT == S_IFREG,
              let holder = LockHolder.describe(inode: UInt64(info.st_ino)) else { return nil }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return (holder, max(0, now.tv_sec - info.st_mtim.tv_sec))
    }

    /// Opens (or creates) the lock file of `root` in the private folder, checked to be a regular
    /// file of this user's at mode 0600: one made otherwise is not trusted. The folder and the one
    /// above it are this user's own (0700, `PrivateDirectory`), and the file is opened in the very
    /// folder checked.
    private static func open(for root: String) throws(RunLockError) -> Int32 {
        let path = file(for: root)
        let folder = directory
        do {
            if let slash = folder.utf8.lastIndex(of: UInt8(ascii: "/")), slash != folder.utf8.startIndex {
                try PrivateDirectory.prepare(String(folder.utf8[..<slash])!)
            }
            try PrivateDirectory.prepare(folder)
        } catch {
            throw RunLockError(root: root, holder: nil, function: error.function, errno: error.errno, message: "cannot lock \(root): \(error)")
        }
        let directoryFD = Glibc.open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directoryFD >= 0 else { throw .system("open", root: root, errno, detail: folder) }
        defer { close(directoryFD) }
        var folderInfo = stat()
        guard fstat(directoryFD, &folderInfo) == 0, folderInfo.st_uid == geteuid(), folderInfo.st_mode & 0o077 == 0 else {
            throw RunLockError(root: root, holder: nil, function: "fstat", errno: nil, message: "cannot lock \(root): \(folder) is not a private folder of uid \(geteuid())")
        }
        let name = String(path.dropFirst(folder.count + 1))
        let fd = openat(directoryFD, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .system("open", root: root, errno, detail: path) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid() else {
            close(fd)
            throw RunLockError(root: root, holder: nil, function: "fstat", errno: nil,
                               message: "cannot lock \(root): \(path) is not a regular file of uid \(geteuid()); remove it")
        }
        if info.st_mode & 0o7777 != 0o600, fchmod(fd, 0o600) != 0 {
            let code = errno
            close(fd)
            throw .system("fchmod", root: root, code, detail: path)
        }
        return fd
    }

    /// Who holds a flock on the file open at `fd`, from /proc/locks.
    private static func describeHolder(of fd: Int32) -> String? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return LockHolder.describe(inode: UInt64(info.st_ino))
    }
}

/// The lock could not be taken: another run holds it, or the root cannot be locked.
public struct RunLockError: Error, Sendable, CustomStringConvertible {
    public var root: String
    /// "process 1234 (tend)", when /proc/locks names it.
    public var holder: String?
    /// The C function that failed and its errno.
    public var function: String
    public var errno: Errno?
    public var message: String

    static func system(_ function: String, root: String, _ code: Int32, detail: String? = nil) -> RunLockError {
        let errno = Errno(rawValue: code)
        return RunLockError(root: root, holder: nil, function: function, errno: errno,
                            message: "cannot lock \(root): \(detail.map { $0 + ": " } ?? "")\(errno) (\(function))")
    }

    /// Whether it gave up because another run held the lock (rather than failing to lock).
    public var timedOut: Bool { errno == .wouldBlock }

    public var description: String { message }
}
