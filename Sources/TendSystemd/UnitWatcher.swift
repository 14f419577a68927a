internal import CSystemd
import Dispatch
import Glibc
import Synchronization

/// Tells the agent, the moment it happens, that a unit it manages changed: a connection of its own
/// to the system bus, subscribed to systemd's signals, read on a thread of its own. A unit's
/// `PropertiesChanged` (ActiveState and the rest: stopped, started, failed by hand or by itself)
/// names that unit; the manager's `UnitFilesChanged` (enabled or disabled by hand) and `Reloading`
/// (a unit file changed and daemon-reload) name every watched unit.
public final class UnitWatcher: Sendable {
    private let box: Box
    /// The connection, used only by the loop's thread once it started.
    private nonisolated(unsafe) let bus: OpaquePointer

    /// What the callbacks share with the rest: the watched units by object path, and where to tell.
    private final class Box: Sendable {
        let units = Mutex<[String: String]>([:])
        let stopping = Atomic<Bool>(false)
        let deliver: @Sendable ([String]) -> Void
        let failed: @Sendable (SystemdError) -> Void

        init(deliver: @escaping @Sendable ([String]) -> Void, failed: @escaping @Sendable (SystemdError) -> Void) {
            self.deliver = deliver
            self.failed = failed
        }
    }

    private init(bus: OpaquePointer, box: Box) {
        self.bus = bus
        self.box = box
    }

    /// Connects, subscribes and starts the thread; `failed` is told once if the connection is
    /// lost later (the bus restarted), after which nothing is watched.
    /// The corresponding C functions are `sd_bus_open_system`, `sd_bus_add_match` and the
    /// `Subscribe` method.
    public static func start(deliver: @escaping @Sendable ([String]) -> Void, failed: @escaping @Sendable (SystemdError) -> Void) throws(SystemdError) -> UnitWatcher {
        var opened: OpaquePointer?
        let result = sd_bus_open_system(&opened)
        guard result >= 0, let bus = opened else { throw SystemdError(function: "sd_bus_open_system", code: result) }
        let box = Box(deliver: deliver, failed: failed)
        let context = Unmanaged.passRetained(box).toOpaque()
        let unitRule = "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit'"
        var added = sd_bus_add_match(bus, nil, unitRule, { message, userdata, _ in
            guard let message, let userdata, let path = sd_bus_message_get_path(message) else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(userdata).takeUnretainedValue()
            if let unit = box.units.withLock({ $0[String(cString: path)] }) { box.deliver([unit]) }
            return 0
        }, context)
        for member in ["UnitFilesChanged", "Reloading"] where added >= 0 {
            added = sd_bus_match_signal(bus, nil, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                        "org.freedesktop.systemd1.Manager", member, { _, userdata, _ in
                guard let userdata else { return 0 }
                let box = Unmanaged<Box>.fromOpaque(userdata).takeUnretainedValue()
                let all = box.units.withLock { Array($0.values) }
                if !all.isEmpty { box.deliver(all) }
                return 0
            }, context)
        }
        guard added >= 0 else {
            sd_bus_flush_close_unref(bus)
            Unmanaged<Box>.fromOpaque(context).release()
            throw SystemdError(function: "sd_bus_add_match", code: added)
        }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var call: OpaquePointer?
        var subscribed = sd_bus_message_new_method_call(bus, &call, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                                        "org.freedesktop.systemd1.Manager", "Subscribe")
        if subscribed >= 0 {
            var reply: OpaquePointer?
            subscribed = sd_bus_call(bus, call, 0, &error, &reply)
            sd_bus_message_unref(reply)
        }
        sd_bus_message_unref(call)
        guard subscribed >= 0 else {
            sd_bus_flush_close_unref(bus)
            Unmanaged<Box>.fromOpaque(context).release()
            throw SystemdError(function: "sd_bus_call Subscribe", code: subscribed,
                               name: error.name.map { String(cString: $0) }, message: error.message.map { String(cString: $0) })
        }
        let watcher = UnitWatcher(bus: bus, box: box)
        DispatchQueue(label: "tend.watch.units").async { watcher.loop() }
        return watcher
    }

    /// Watches exactly `units` from now on.
    /// The corresponding C function is `sd_bus_path_encode`.
    public func watch(_ units: [String]) {
        var byPath: [String: String] = [:]
        for unit in units {
            var path: UnsafeMutablePointer<CChar>?
            guard sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path) >= 0, let path else { continue }
            byPath[String(cString: path)] = unit
            free(path)
        }
        box.units.withLock { $0 = byPath }
    }

    /// Ends the thread within half a second, which closes the connection.
    public func stop() {
        box.stopping.store(true, ordering: .relaxed)
    }

    /// Processes the bus until stopped, then closes it and lets the callbacks' box go.
    /// The corresponding C functions are `sd_bus_process` and `sd_bus_wait`.
    private func loop() {
        defer {
            sd_bus_flush_close_unref(bus)
            Unmanaged.passUnretained(box).release()
        }
        while !box.stopping.load(ordering: .relaxed) {
            let processed = sd_bus_process(bus, nil)
            if processed < 0 {
                box.failed(SystemdError(function: "sd_bus_process", code: processed))
                return
            }
            if processed > 0 { continue }
            let waited = sd_bus_wait(bus, 500_000)
            if waited < 0, waited != -EINTR {
                box.failed(SystemdError(function: "sd_bus_wait", code: waited))
                return
            }
        }
    }
}
