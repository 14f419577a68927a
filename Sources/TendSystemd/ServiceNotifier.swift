internal import CSystemd
import Glibc

/// Telling systemd how a `Type=notify` service is doing: ready, reloading, stopping, a status line
/// for `systemctl status`, and the watchdog's keep-alive. Outside a service (no `NOTIFY_SOCKET`)
/// every call does nothing. The corresponding C functions are `sd_notify` and
/// `sd_watchdog_enabled` (sd_notify(3), sd_watchdog_enabled(3)).
///
/// A notification that cannot be sent is not an error anyone can act on (systemd went away, or
/// the socket is not ours): its result is dropped, as systemd's own daemons do.
public struct ServiceNotifier: Sendable {
    public init() {}

    /// Whether systemd listens (`NOTIFY_SOCKET` is set).
    public var isListening: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// How often systemd expects `WATCHDOG=1` (`WatchdogSec=`), when it does
    /// (`sd_watchdog_enabled`, which also checks that the request is for this process).
    public var watchdogInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds))
    }

    public func ready(status: String) { send("READY=1\nSTATUS=" + Self.line(status)) }

    /// `RELOADING=1` with the monotonic time systemd 253 and later require (252 ignores it).
    public func reloading(status: String) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)\nSTATUS=" + Self.line(status))
    }

    public func status(_ text: String) { send("STATUS=" + Self.line(text)) }

    public func stopping(status: String) { send("STOPPING=1\nSTATUS=" + Self.line(status)) }

    public func watchdog() { send("WATCHDOG=1") }

    private func send(_ state: String) {
        guard isListening else { return }
        _ = sd_notify(0, state)
    }

    /// A status is one line: a newline would start another assignment.
    private static func line(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 }.prefix(400))
    }
}
