import Foundation
import Synchronization
import Subprocess
import SystemPackage
import Testing

/// A test host: a real systemd 252 as PID 1 in new PID, mount and network namespaces over an
/// overlay of `/` (scripts/testhost-boot.sh). Commands run inside with nsenter; files go in through
/// /proc/PID/root. Made by `withTestHost`, which always tears it down by its own PID.
struct TestHost: Sendable {
    /// The PID of the host's systemd, as seen from outside.
    let pid: Int32
    /// The folder that holds the host's overlay (a tmpfs inside the host's mount namespace).
    let base: String

    /// Whether test hosts can run here: root, and unshare, nsenter and systemd present.
    static let available = geteuid() == 0
        && ["/usr/bin/unshare", "/usr/bin/nsenter", "/usr/lib/systemd/systemd"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    static let unavailableReason = "test hosts need root, unshare, nsenter and /usr/lib/systemd/systemd"

    /// The path outside of a path inside the host.
    func outside(_ path: String) -> String { "/proc/\(pid)/root" + path }

    /// Runs `command` inside the host; the exit status is returned, not thrown.
    @discardableResult
    func run(_ command: [String], input: String? = nil) async throws -> TendRun {
        let result = try await Subprocess.run(
            .path("/usr/bin/nsenter"), arguments: Arguments(["-t", "\(pid)", "-m", "-p", "-u", "--"] + command),
            environment: .custom(["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NO_COLOR": "1", "LANG": "C.UTF-8"]),
            input: .string(input ?? ""), output: .string(limit: 16 << 20), error: .string(limit: 16 << 20))
        let status: Int32 = switch result.terminationStatus {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
        return TendRun(status: status, stdout: result.standardOutput, stderr: result.standardError)
    }

    /// tend's journal entries in the host, each a JSON object, and the raw JSON lines (to check
    /// that nothing sensitive is anywhere in them).
    func tendJournal() async throws -> (entries: [[String: Any]], text: String) {
        _ = try await run(["journalctl", "--sync"])
        let json = try await run(["journalctl", "-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=tend"])
        let entries = json.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return (entries, json.stdout)
    }

    /// Runs tend inside the host (it was copied in at boot).
    func tend(_ arguments: [String]) async throws -> TendRun {
        try await run(["/usr/local/bin/tend"] + arguments)
    }

    /// Writes `files` (absolute path inside the host → text).
    func write(_ files: [String: String]) throws {
        for (path, text) in files {
            let full = outside(path)
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        }
    }

    /// A unit's properties as systemctl shows them.
    func unit(_ name: String, _ properties: [String] = ["ActiveState", "UnitFileState", "LoadState", "SubState"]) async throws -> [String: String] {
        let shown = try await run(["systemctl", "show", name, "--property=" + properties.joined(separator: ",")])
        var result: [String: String] = [:]
        for line in shown.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { result[parts[0]] = parts[1] }
        }
        return result
    }
}

/// How many test hosts boot at once. Swift Testing starts every test at once; dozens of systemds
/// booting together on two cores (the fleet's twenty among them) took over two minutes each to
/// reach "running", past the boot's deadline. Booted hosts run side by side as before.
final class BootSlots: Sendable {
    static let shared = BootSlots(count: 3)

    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(free: count)) }

    /// A slot, held until `Slot.release` (which may be called more than once).
    final class Slot: Sendable {
        private let slots: BootSlots
        private let held = Mutex(true)

        fileprivate init(_ slots: BootSlots) { self.slots = slots }

        func release() {
            guard held.withLock({ held in defer { held = false }; return held }) else { return }
            slots.give()
        }
    }

    func take() async -> Slot {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                guard state.free > 0 else {
                    state.waiting.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if ready { continuation.resume() }
        }
        return Slot(self)
    }

    fileprivate func give() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}

/// Boots a test host, copies the built tend into it, runs `body`, and ends the host by killing
/// its systemd, whatever `body` did. Several can run at once. A `bare` host has no Swift toolchain
/// (/opt/swift is empty in it) and no tend, as a server that installs tend's .deb. With `image`,
/// the host is that root (make image) booted with its own systemd, in its own UTS namespace so
/// that its hostname is its own; it gets nothing copied in. `machineID` is its /etc/machine-id
/// from before systemd starts (the journal's folder is named by it).
func withTestHost<T: Sendable>(bare: Bool = false, image: String? = nil, machineID: String? = nil, _ body: @Sendable @escaping (TestHost) async throws -> T) async throws -> T {
    let base = try Scratch("tend-host")
    let slot = await BootSlots.shared.take()
    defer { slot.release() }
    let boot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/testhost-boot.sh").standardized.path
    let result = try await Subprocess.run(
        .path("/usr/bin/unshare"), arguments: Arguments(["--pid", "--fork", "--mount", "--net"] + (image == nil ? [] : ["--uts"]) + ["--propagation", "private", boot, base.path]),
        environment: .inherit.updating(["TESTHOST_HIDE": bare ? "/opt/swift" : "", "TESTHOST_LOWER": image ?? "/", "TESTHOST_MACHINE_ID": machineID ?? ""]),
        input: .none, output: .discarded, error: .discarded
    ) { execution in
        let unshare = execution.processIdentifier.value
        var systemd: Int32 = 0
        defer { if systemd > 0 { kill(systemd, SIGKILL) } else { kill(unshare, SIGKILL) } }
        // A loaded machine (make test boots dozens of hosts, a fleet among them) can take a while.
        let deadline = Date().addingTimeInterval(120)
        while systemd == 0, Date() < deadline {
            let children = (try? String(contentsOfFile: "/proc/\(unshare)/task/\(unshare)/children", encoding: .utf8)) ?? ""
            if let child = children.split(separator: " ").first.flatMap({ Int32($0) }),
               (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8))?.hasPrefix("systemd") == true {
                systemd = child
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        guard systemd > 0 else { throw CommandFailed(command: "boot a test host", output: "systemd did not start") }
        let host = TestHost(pid: systemd, base: base.path)
        var state = ""
        while Date() < deadline {
            state = try await host.run(["systemctl", "is-system-running"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if state == "running" || state == "degraded" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        guard state == "running" || state == "degraded" else {
            throw CommandFailed(command: "boot a test host", output: "systemd did not finish starting: \(state)")
        }
        slot.release()
        if bare || image != nil { return try await body(host) }
        try FileManager.default.createDirectory(atPath: host.outside("/usr/local/bin"), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: host.outside("/usr/local/bin/tend"))
        try FileManager.default.copyItem(atPath: tendBinary, toPath: host.outside("/usr/local/bin/tend"))
        return try await body(host)
    }
    return result.closureResult
}
