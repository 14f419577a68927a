internal import Glibc
internal import SystemPackage
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
    public static func acquire(root: String, timeout: Duration, waiting: (String) -> Void) throws(RunLockError) -> RunLock {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw RunLockError(root: root, holder: nil, message: "cannot open \(root) to lock it: \(String(cString: strerror(errno)))") }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var told = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw RunLockError(root: root, holder: nil, message: "cannot lock \(root): \(String(cString: strerror(code)))")
            }
            let holder = holder(of: fd)
            guard clock.now < deadline else {
                close(fd)
                throw RunLockError(root: root, holder: holder,
                                   message: "another run of tend is applying to \(root)\(holder.map { " (\($0))" } ?? ""); gave up after waiting \(timeout.components.seconds) s")
            }
            if !told {
                waiting(holder ?? "another process")
                told = true
            }
            usleep(50_000)
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

/// Another run holds the lock.
public struct RunLockError: Error, Sendable, CustomStringConvertible {
    public var root: String
    /// "process 1234 (tend)", when /proc/locks names it.
    public var holder: String?
    public var message: String

    public var description: String { message }
}

/// Who holds a lock, read from /proc/locks.
public enum LockHolder {
    /// "process 1234 (apt-get)" for a lock on the file `inode`, or nil. The device is not
    /// compared: on overlayfs (test hosts, containers) /proc/locks names the layer's device, not
    /// the one stat reports; the name is only for people.
    public static func describe(inode: UInt64) -> String? {
        guard let locks = contents(of: "/proc/locks") else { return nil }
        for line in locks.split(separator: "\n") {
            // "1: FLOCK  ADVISORY  WRITE 1234 08:01:1234567 0 EOF": the pid, then major:minor:inode.
            let fields = line.split(separator: " ")
            guard fields.count >= 6, let pid = Int32(fields[4]), fields[5].split(separator: ":").last == Substring(String(inode)) else { continue }
            let name = contents(of: "/proc/\(pid)/comm").map { $0.trimmingWhitespace() }
            return "process \(pid)" + (name.map { " (\($0))" } ?? "")
        }
        return nil
    }

    private static func contents(of path: String) -> String? {
        guard let fd = try? FileDescriptor.open(path, .readOnly, options: .closeOnExec) else { return nil }
        defer { try? fd.close() }
        return (try? fd.readToEnd(sizeHint: 4096)).map { String(decoding: $0, as: UTF8.self) }
    }
}
