import Foundation
import Glibc
import Testing
import TendSystemd

/// sd_notify reads NOTIFY_SOCKET and the watchdog's variables from the process environment, which
/// these tests set: they run one at a time.
@Suite("service notifier", .serialized)
struct ServiceNotifierTests {
    /// A datagram socket bound where NOTIFY_SOCKET says, as systemd's own.
    final class NotifySocket {
        let path: String
        let fd: Int32

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("tend-notify-\(UUID().uuidString.prefix(8))").path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(bound == 0, "bind: \(String(cString: strerror(errno)))")
            setenv("NOTIFY_SOCKET", path, 1)
        }

        /// The next datagram, or nil when none came within a second.
        func receive() -> String? {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 1000) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count < 0 ? nil : String(decoding: buffer[..<count], as: UTF8.self)
        }

        deinit {
            unsetenv("NOTIFY_SOCKET")
            close(fd)
            unlink(path)
        }
    }

    @Test("ready, status and stopping reach the socket NOTIFY_SOCKET names, each status on one line")
    func notifications() throws {
        let socket = try NotifySocket()
        let notifier = ServiceNotifier()
        #expect(notifier.isListening)
        notifier.ready(status: "converged at 1a2b3c4\nand watching")
        #expect(socket.receive() == "READY=1\nSTATUS=converged at 1a2b3c4 and watching")
        notifier.status("applying 3 changes")
        #expect(socket.receive() == "STATUS=applying 3 changes")
        notifier.watchdog()
        #expect(socket.receive() == "WATCHDOG=1")
        notifier.stopping(status: "stopping")
        #expect(socket.receive() == "STOPPING=1\nSTATUS=stopping")
        let reloading = ServiceNotifier()
        reloading.reloading(status: "reading agent.yaml")
        let sent = socket.receive() ?? ""
        #expect(sent.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") && sent.hasSuffix("\nSTATUS=reading agent.yaml"), "\(sent)")
    }

    @Test("the watchdog interval is WatchdogSec for this process only, and nothing outside a service")
    func watchdog() {
        setenv("WATCHDOG_USEC", "2000000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        #expect(ServiceNotifier().watchdogInterval == .seconds(2))
        setenv("WATCHDOG_PID", "\(getpid() + 1)", 1)
        #expect(ServiceNotifier().watchdogInterval == nil, "a request for another process is not ours")
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
        #expect(ServiceNotifier().watchdogInterval == nil)
        #expect(!ServiceNotifier().isListening)
    }
}
