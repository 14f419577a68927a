import Glibc
import Testing
@testable import TendGit

/// The fetch timeout in a long-running agent: only the fetch's own sockets are shut down.
@Suite("fetch watchdog")
struct FetchWatchdogTests {
    /// A TCP listener on 127.0.0.1 and a connection to it.
    static func tcpPair() throws -> (listener: Int32, client: Int32) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try #require(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } } == 0)
        try #require(listen(listener, 4) == 0)
        try #require(withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } } == 0)
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) } } == 0)
        return (listener, client)
    }

    /// Whether the socket was shut down: a send fails with EPIPE, or with ECONNRESET when its
    /// peer (also opened during the fetch) was shut down first.
    static func isShutDown(_ fd: Int32) -> Bool {
        let byte: [UInt8] = [1]
        return send(fd, byte, 1, Int32(MSG_NOSIGNAL)) < 0 && (errno == EPIPE || errno == ECONNRESET)
    }

    @Test("when the time is up, the TCP sockets opened since the fetch began are shut down; older ones and Unix sockets (D-Bus, journald) are not")
    func onlyTheFetchSockets() async throws {
        let older = try Self.tcpPair()
        let watchdog = FetchWatchdog(timeout: .milliseconds(300))
        let fetch = try Self.tcpPair()
        var unix: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &unix) == 0)
        defer { for fd in [older.listener, older.client, fetch.listener, fetch.client, unix[0], unix[1]] { close(fd) } }
        try await Task.sleep(for: .milliseconds(800))
        #expect(watchdog.stop(), "the watchdog did not fire")
        #expect(Self.isShutDown(fetch.client), "the fetch's socket was left open")
        #expect(!Self.isShutDown(older.client), "a socket older than the fetch was shut down")
        #expect(!Self.isShutDown(unix[0]), "a Unix socket opened meanwhile was shut down")
    }

    @Test("a fetch that ends in time touches nothing")
    func inTime() throws {
        let watchdog = FetchWatchdog(timeout: .seconds(5))
        let fetch = try Self.tcpPair()
        defer { close(fetch.listener); close(fetch.client) }
        #expect(!watchdog.stop())
        #expect(!Self.isShutDown(fetch.client))
    }
}
