internal import CSystemd
public import TendCore
import Glibc

/// systemd's manager over the system D-Bus (sd-bus): unit states in bulk, jobs that are waited
/// for through the JobRemoved signal, daemon reloads and unit file changes.
///
/// Owns its bus connection, closed in `deinit`. Not thread-safe (sd-bus connections belong to
/// one thread): tend observes and applies units on one thread.
public final class SystemdManager: ServiceManager {
    private let bus: OpaquePointer
    private let jobs = JobWatcher()
    private var subscribed = false
    private var matchSlot: OpaquePointer?

    private init(bus: OpaquePointer) {
        self.bus = bus
    }

    deinit {
        if let matchSlot { sd_bus_slot_unref(matchSlot) }
        sd_bus_flush_close_unref(bus)
    }

    /// Connects to the system bus, where systemd as PID 1 listens.
    /// The corresponding C function is `sd_bus_open_system`.
    public static func connectSystem() throws(SystemdError) -> SystemdManager {
        var bus: OpaquePointer?
        let result = sd_bus_open_system(&bus)
        guard result >= 0, let bus else { throw SystemdError(function: "sd_bus_open_system", code: result) }
        let manager = SystemdManager(bus: bus)
        // Connecting succeeds even without a manager behind the socket: ask it something.
        _ = try manager.call("GetDefaultTarget") { _ throws(SystemdError) in }
        return manager
    }

    /// Whether this process runs under systemd as PID 1 (the system bus is worth trying).
    public static var isBooted: Bool { sd_booted() > 0 }

    /// Whether the system bus's socket is there: without it (no dbus on the host) connecting
    /// fails at once and will not work a moment later.
    public static var hasSystemBus: Bool { access("/run/dbus/system_bus_socket", F_OK) == 0 }

    // MARK: ServiceManager

    public func status(of units: [String]) throws(HostError) -> [String: UnitStatus] {
        guard !units.isEmpty else { return [:] }
        do {
            var result: [String: UnitStatus] = [:]
            // A template (getty@.service) is no unit the manager loads: it has a unit file state
            // (masked, enabled through an instance) but no runtime state, and asking for one
            // fails the whole call.
            let loadable = units.filter { !Self.isTemplate($0) }
            let reply = try call("ListUnitsByNames") { message throws(SystemdError) in try append(message, strings: loadable) }
            defer { sd_bus_message_unref(reply) }
            try enter(reply, "a", "(ssssssouso)")
            while try enter(reply, "r", "ssssssouso") {
                let name = try readString(reply), _ = try readString(reply)
                let load = try readString(reply), active = try readString(reply), sub = try readString(reply)
                _ = try readString(reply); _ = try readString(reply, type: "o")
                var job: UInt32 = 0
                try check(sd_bus_message_read_basic(reply, Self.type("u"), &job), "sd_bus_message_read_basic")
                _ = try readString(reply); _ = try readString(reply, type: "o")
                try check(sd_bus_message_exit_container(reply), "sd_bus_message_exit_container")
                result[name] = UnitStatus(loadState: load, activeState: active, subState: sub, unitFileState: "")
            }
            let files = try call("ListUnitFilesByPatterns") { message throws(SystemdError) in
                try append(message, strings: [])
                try append(message, strings: units)
            }
            defer { sd_bus_message_unref(files) }
            try enter(files, "a", "(ss)")
            while try enter(files, "r", "ss") {
                let path = try readString(files), state = try readString(files)
                try check(sd_bus_message_exit_container(files), "sd_bus_message_exit_container")
                let name = String(path.split(separator: "/").last ?? "")
                result[name, default: UnitStatus(loadState: "not-found", activeState: "inactive", subState: "dead", unitFileState: "")].unitFileState = state
            }
            return result
        } catch {
            throw HostError(path: "systemd", message: "cannot read the state of \(units.joined(separator: ", ")): \(error)")
        }
    }

    public func daemonReload() throws(HostError) {
        do {
            sd_bus_message_unref(try call("Reload") { _ throws(SystemdError) in })
        } catch {
            throw HostError(path: "systemd", message: "daemon-reload failed: \(error)")
        }
    }

    public func run(_ job: UnitJob, unit: String, timeout: Duration) throws(HostError) -> UnitJobResult {
        do {
            try subscribe()
            let path = try enqueue(job, unit: unit)
            return UnitJobResult(try wait(forJob: path, timeout: timeout))
        } catch {
            throw HostError(path: unit, message: "\(job.rawValue) failed: \(error)")
        }
    }

    public func queue(_ job: UnitJob, unit: String) throws(HostError) {
        do {
            _ = try enqueue(job, unit: unit)
        } catch {
            throw HostError(path: unit, message: "\(job.rawValue) failed: \(error)")
        }
    }

    /// Asks for the job (mode "replace") and returns its object path.
    private func enqueue(_ job: UnitJob, unit: String) throws(SystemdError) -> String {
        let method = switch job {
        case .start: "StartUnit"
        case .stop: "StopUnit"
        case .restart: "RestartUnit"
        case .reload: "ReloadUnit"
        case .reloadOrRestart: "ReloadOrRestartUnit"
        }
        let reply = try call(method) { message throws(SystemdError) in
            try append(message, string: unit)
            try append(message, string: "replace")
        }
        defer { sd_bus_message_unref(reply) }
        return try readString(reply, type: "o")
    }

    public func change(_ change: UnitFileChange, unit: String) throws(HostError) {
        do {
            let reply: OpaquePointer
            switch change {
            case .enable, .reenable, .mask:
                let method = switch change {
                case .enable: "EnableUnitFiles"
                case .reenable: "ReenableUnitFiles"
                default: "MaskUnitFiles"
                }
                reply = try call(method) { message throws(SystemdError) in
                    try append(message, strings: [unit])
                    try append(message, bool: false) // runtime
                    try append(message, bool: true)  // force: replace conflicting links
                }
            case .disable, .unmask:
                reply = try call(change == .disable ? "DisableUnitFiles" : "UnmaskUnitFiles") { message throws(SystemdError) in
                    try append(message, strings: [unit])
                    try append(message, bool: false)
                }
            }
            sd_bus_message_unref(reply)
        } catch {
            throw HostError(path: unit, message: "\(change.rawValue) failed: \(error)")
        }
    }

    public func recentLog(of unit: String, count: Int) -> [String] {
        Journal.lastMessages(unit: unit, count: count)
    }

    /// `StartTransientUnit` of a oneshot service that runs `command`, collected once it ends,
    /// whose start job ends when the program does: "done" when it exits 0.
    public func run(_ command: TransientCommand) throws(HostError) -> UnitJobResult {
        do {
            try subscribe()
            let reply = try call("StartTransientUnit") { message throws(SystemdError) in
                try append(message, string: command.unit)
                try append(message, string: "fail")
                try check(sd_bus_message_open_container(message, SystemdManager.type("a"), "(sv)"), "sd_bus_message_open_container")
                try property(message, "Description", string: command.description)
                try property(message, "Type", string: "oneshot")
                try property(message, "CollectMode", string: "inactive-or-failed")
                // Whole microseconds, at least one: 0 would be no limit at all.
                let limit = command.timeout.components
                try property(message, "TimeoutStartUSec", microseconds: max(1, UInt64(limit.seconds) * 1_000_000 + UInt64(limit.attoseconds / 1_000_000_000_000)))
                if let user = command.user { try property(message, "User", string: user) }
                if let directory = command.workingDirectory { try property(message, "WorkingDirectory", string: directory) }
                if !command.environment.isEmpty {
                    try property(message, "Environment", strings: command.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
                }
                try execStart(message, path: command.arguments[0], arguments: command.arguments)
                try check(sd_bus_message_close_container(message), "sd_bus_message_close_container")
                try check(sd_bus_message_open_container(message, SystemdManager.type("a"), "(sa(sv))"), "sd_bus_message_open_container")
                try check(sd_bus_message_close_container(message), "sd_bus_message_close_container")
            }
            defer { sd_bus_message_unref(reply) }
            let job = try readString(reply, type: "o")
            // The job outlives a start that timed out: leave it a moment more than the unit's own limit.
            return UnitJobResult(try wait(forJob: job, timeout: command.timeout + .seconds(5)))
        } catch {
            throw HostError(path: command.unit, message: "cannot run it as a transient service: \(error)")
        }
    }

    // MARK: Jobs

    /// Subscribes to the manager's signals and watches JobRemoved, once per connection.
    /// The corresponding C functions are `sd_bus_match_signal` and the `Subscribe` method.
    private func subscribe() throws(SystemdError) {
        guard !subscribed else { return }
        var slot: OpaquePointer?
        let added = sd_bus_match_signal(bus, &slot, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                        "org.freedesktop.systemd1.Manager", "JobRemoved", { message, userdata, _ in
            guard let message, let userdata else { return 0 }
            let watcher = Unmanaged<JobWatcher>.fromOpaque(userdata).takeUnretainedValue()
            var id: UInt32 = 0
            var path: UnsafePointer<CChar>?, unit: UnsafePointer<CChar>?, result: UnsafePointer<CChar>?
            guard sd_bus_message_read_basic(message, SystemdManager.type("u"), &id) >= 0,
                  sd_bus_message_read_basic(message, SystemdManager.type("o"), &path) >= 0,
                  sd_bus_message_read_basic(message, SystemdManager.type("s"), &unit) >= 0,
                  sd_bus_message_read_basic(message, SystemdManager.type("s"), &result) >= 0,
                  let path, let result else { return 0 }
            watcher.finished[String(cString: path)] = String(cString: result)
            return 0
        }, Unmanaged.passUnretained(jobs).toOpaque())
        try check(added, "sd_bus_match_signal")
        matchSlot = slot
        sd_bus_message_unref(try call("Subscribe") { _ throws(SystemdError) in })
        subscribed = true
    }

    /// Processes the bus until the JobRemoved signal of `path` arrives or `timeout` passes.
    /// The corresponding C functions are `sd_bus_process` and `sd_bus_wait`.
    private func wait(forJob path: String, timeout: Duration) throws(SystemdError) -> String {
        let deadline = ContinuousClock.now + timeout
        while jobs.finished[path] == nil {
            let processed = sd_bus_process(bus, nil)
            try check(processed, "sd_bus_process")
            if processed > 0 { continue }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return "timeout" }
            let microseconds = UInt64(left.components.seconds) * 1_000_000 + UInt64(left.components.attoseconds / 1_000_000_000_000)
            try check(sd_bus_wait(bus, microseconds), "sd_bus_wait")
        }
        return jobs.finished.removeValue(forKey: path) ?? "done"
    }

    // MARK: Calls

    /// Calls `member` on the manager object, with `build` appending the arguments; returns the reply.
    /// The corresponding C functions are `sd_bus_message_new_method_call` and `sd_bus_call`.
    private func call(_ member: String, _ build: (OpaquePointer) throws(SystemdError) -> Void) throws(SystemdError) -> OpaquePointer {
        var message: OpaquePointer?
        try check(sd_bus_message_new_method_call(bus, &message, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                                 "org.freedesktop.systemd1.Manager", member), "sd_bus_message_new_method_call")
        guard let message else { throw SystemdError(function: "sd_bus_message_new_method_call", code: -EINVAL) }
        defer { sd_bus_message_unref(message) }
        try build(message)
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        let result = sd_bus_call(bus, message, 0, &error, &reply)
        guard result >= 0, let reply else {
            throw SystemdError(function: "sd_bus_call \(member)", code: result,
                               name: error.name.map { String(cString: $0) }, message: error.message.map { String(cString: $0) })
        }
        return reply
    }

    /// Whether `unit` names a template (`getty@.service`), not an instance of one.
    static func isTemplate(_ unit: String) -> Bool {
        guard let at = unit.firstIndex(of: "@") else { return false }
        return unit[unit.index(after: at)...].hasPrefix(".")
    }

    fileprivate static func type(_ character: Character) -> CChar {
        CChar(character.asciiValue!)
    }
}

/// The results of finished jobs by job path, filled in by the JobRemoved callback.
private final class JobWatcher {
    var finished: [String: String] = [:]
}

/// A failed sd-bus or journal call: the C function, the negative errno it returned, and the D-Bus
/// error name and message when there is one.
public struct SystemdError: Error, Sendable, Hashable, CustomStringConvertible {
    public var function: String
    public var code: Int32
    public var name: String?
    public var message: String?

    public init(function: String, code: Int32, name: String? = nil, message: String? = nil) {
        self.function = function
        self.code = code
        self.name = name
        self.message = message
    }

    public var description: String {
        if let name { return "\(name): \(message ?? "") (\(function))" }
        return "\(String(cString: strerror(-code))) (\(function))"
    }
}

private func check(_ result: Int32, _ function: String) throws(SystemdError) {
    if result < 0 { throw SystemdError(function: function, code: result) }
}

private func append(_ message: OpaquePointer, string: String) throws(SystemdError) {
    try check(string.withCString { sd_bus_message_append_basic(message, SystemdManager.type("s"), $0) }, "sd_bus_message_append_basic")
}

private func append(_ message: OpaquePointer, strings: [String]) throws(SystemdError) {
    try check(sd_bus_message_open_container(message, SystemdManager.type("a"), "s"), "sd_bus_message_open_container")
    for string in strings { try append(message, string: string) }
    try check(sd_bus_message_close_container(message), "sd_bus_message_close_container")
}

private func append(_ message: OpaquePointer, bool: Bool) throws(SystemdError) {
    var value: Int32 = bool ? 1 : 0
    try check(sd_bus_message_append_basic(message, SystemdManager.type("b"), &value), "sd_bus_message_append_basic")
}

/// One `(sv)` property of a transient unit: its name, and its value of D-Bus type `signature`,
/// which `value` appends.
private func property(_ message: OpaquePointer, _ name: String, _ signature: String,
                      _ value: (OpaquePointer) throws(SystemdError) -> Void) throws(SystemdError) {
    try check(sd_bus_message_open_container(message, SystemdManager.type("r"), "sv"), "sd_bus_message_open_container")
    try append(message, string: name)
    try check(sd_bus_message_open_container(message, SystemdManager.type("v"), signature), "sd_bus_message_open_container")
    try value(message)
    try check(sd_bus_message_close_container(message), "sd_bus_message_close_container")
    try check(sd_bus_message_close_container(message), "sd_bus_message_close_container")
}

private func property(_ message: OpaquePointer, _ name: String, string: String) throws(SystemdError) {
    try property(message, name, "s") { message throws(SystemdError) in try append(message, string: string) }
}

private func property(_ message: OpaquePointer, _ name: String, strings: [String]) throws(SystemdError) {
    try property(message, name, "as") { message throws(SystemdError) in try append(message, strings: strings) }
}

/// A number of microseconds (`t`).
private func property(_ message: OpaquePointer, _ name: String, microseconds: UInt64) throws(SystemdError) {
    try property(message, name, "t") { message throws(SystemdError) in
        var value = microseconds
        try check(sd_bus_message_append_basic(message, SystemdManager.type("t"), &value), "sd_bus_message_append_basic")
    }
}

/// The `ExecStart` property, `a(sasb)`: one program, its arguments, and no "ignore failure".
private func execStart(_ message: OpaquePointer, path: String, arguments: [String]) throws(SystemdError) {
    try property(message, "ExecStart", "a(sasb)") { message throws(SystemdError) in
        try check(sd_bus_message_open_container(message, SystemdManager.type("a"), "(sasb)"), "sd_bus_message_open_container")
        try check(sd_bus_message_open_container(message, SystemdManager.type("r"), "sasb"), "sd_bus_message_open_container")
        try append(message, string: path)
        try append(message, strings: arguments)
        try append(message, bool: false)
        try check(sd_bus_message_close_container(message), "sd_bus_message_close_container")
        try check(sd_bus_message_close_container(message), "sd_bus_message_close_container")
    }
}

/// Enters a container; false at the end of an array.
@discardableResult
private func enter(_ message: OpaquePointer, _ type: Character, _ contents: String) throws(SystemdError) -> Bool {
    let result = sd_bus_message_enter_container(message, SystemdManager.type(type), contents)
    try check(result, "sd_bus_message_enter_container")
    return result > 0
}

/// Reads a string (or object path); the text is copied out of the message.
private func readString(_ message: OpaquePointer, type: Character = "s") throws(SystemdError) -> String {
    var pointer: UnsafePointer<CChar>?
    try check(sd_bus_message_read_basic(message, SystemdManager.type(type), &pointer), "sd_bus_message_read_basic")
    return pointer.map { String(cString: $0) } ?? ""
}
