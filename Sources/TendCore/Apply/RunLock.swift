internal import Glibc
public import SystemPackage
import TendSpec

/// The one lock that serialises every run that changes a root: `tend apply` and the agent. Two
/// applies at once would interleave their writes (mixed configurations, lost files), so the
/// second waits for the first.
///
/// It is a `flock` on the root folder itself, so each root has its own lock (applies into two
/// image roots run side by side), no lock file can be left behind or planted, and the kernel
/// drops it when its holder dies, also by kill -9. `tend plan` takes no lock: it only reads.
public final class RunLock {
    private let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit { close(fd) }

    /// Takes the lock of `root`, waiting up to `timeout`. `waiting` is called once, with who
    /// holds it ("process 1234 (tend)"), if it must wait.
    public static func acquire(root: String, timeout: Duration, waiting: (String) -> Void) async throws(RunLockError) -> RunLock {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("open", root: root, errno) }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var told = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw .system("flock", root: root, code)
            }
            let holder = holder(of: fd)
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
        return RunLock(fd: fd)
    }

    /// Who holds a flock on the file open at `fd`, from /proc/locks.
    private static func holder(of fd: Int32) -> String? {
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

    static func system(_ function: String, root: String, _ code: Int32) -> RunLockError {
        let errno = Errno(rawValue: code)
        return RunLockError(root: root, holder: nil, function: function, errno: errno, message: "cannot lock \(root): \(errno) (\(function))")
    }

    /// Whether it gave up because another run held the lock (rather than failing to lock).
    public var timedOut: Bool { errno == .wouldBlock }

    public var description: String { message }
}
