public import TendCore
public import TendSpec
import TendProcess

/// `command`: a program run on change, never on every cycle: when a resource that notifies it
/// changes (`notify: [command:NAME]`), or when the path it `creates:` is missing.
///
/// ```yaml
/// - command: rehash-certs
///   argv: [/usr/bin/c_rehash, /etc/ssl/shop]
///   user: root
///   working_directory: /
///   environment: { LC_ALL: C.UTF-8 }
///   timeout: 5m
///   creates: /etc/ssl/shop/.rehashed     # optional: also run while this is missing
/// ```
///
/// On a live host it runs as a transient service unit of its own through D-Bus, as `systemd-run
/// --wait` would, so its output is in the journal under that unit (`tend-command-NAME-….service`)
/// and systemd's limits and sandboxing apply; under `--root` it runs in the root through chroot.
/// Planning only looks at `creates:` (a stat): nothing is run by `tend plan`, not even a guard.
public struct CommandProvider: ResourceProvider {
    public init() {}

    public var kind: String { "command" }
    public var acceptsNotifications: Bool { true }

    /// How long a command runs unless `timeout:` says.
    static let defaultTimeout: Duration = .seconds(600)

    public struct Desired: DesiredState {
        var name: String
        var arguments: [String]
        var user: String?
        var workingDirectory: String?
        var environment: [String: String]
        var timeout: Duration
        var creates: String?

        public var id: ResourceID { ResourceID(kind: "command", name: name) }
        public var path: String? { nil }
        /// It runs as its user, so after that user where the catalog declares one.
        public var implicitDependencies: [ResourceID] { user.map { [ResourceID(kind: "user", name: $0)] } ?? [] }
        public var isRemoval: Bool { false }
        public var isSensitive: Bool { false }

        public func digest(into digest: inout Digest) {
            digest.add("argv", arguments.joined(separator: "\u{0}"))
            digest.add("user", user)
            digest.add("working_directory", workingDirectory)
            digest.add("environment", environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{0}"))
            digest.add("timeout", DurationText.format(timeout))
            digest.add("creates", creates)
        }
    }

    public struct Observed: ObservedState {
        /// Whether `creates:` exists; nil without one.
        var created: Bool?

        public func fingerprint(into digest: inout Digest) {
            digest.add("created", created.map { $0 ? "yes" : "no" })
        }
    }

    public func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired? {
        var declaration = declaration
        defer { declaration.attributes.finish(&context.diagnostics, context: "a command") }
        let what = "command '\(declaration.name)'"
        if let problem = Self.problem(inName: declaration.name) {
            context.diagnostics.error("\(what): \(problem)", at: declaration.nameLocation)
            return nil
        }
        guard let argvNode = declaration.attributes.take("argv") else {
            context.diagnostics.error("\(what) needs 'argv': the program and its arguments, as a list ([/usr/bin/c_rehash, /etc/ssl]); no shell runs it", at: declaration.nameLocation)
            return nil
        }
        guard let arguments = argvNode.stringList("'argv'", &context.diagnostics)?.map(\.value) else { return nil }
        guard arguments.first?.hasPrefix("/") == true else {
            context.diagnostics.error("'argv' starts with the program's absolute path (/usr/bin/…): a transient unit does not search PATH", at: argvNode.location)
            return nil
        }
        var desired = Desired(name: declaration.name, arguments: arguments, user: nil, workingDirectory: nil, environment: [:],
                              timeout: Self.defaultTimeout, creates: nil)
        desired.user = declaration.attributes.take("user")?.string("'user'", &context.diagnostics)
        if let node = declaration.attributes.take("working_directory"), let directory = node.string("'working_directory'", &context.diagnostics) {
            if let problem = HostPath.problem(in: directory) {
                context.diagnostics.error("'working_directory' \(problem)", at: node.location)
            } else {
                desired.workingDirectory = directory
            }
        }
        if let node = declaration.attributes.take("environment") {
            desired.environment = node.stringMap("'environment'", &context.diagnostics)?.mapValues(\.value) ?? [:]
            for name in desired.environment.keys where name.isEmpty || name.contains("=") {
                context.diagnostics.error("'environment': '\(Printable.escaped(name))' is not a variable's name", at: node.location)
            }
        }
        if let node = declaration.attributes.take("timeout"), let timeout = node.duration("'timeout'", &context.diagnostics) {
            if timeout < .seconds(1) { context.diagnostics.error("'timeout' is at least 1s", at: node.location) }
            desired.timeout = max(timeout, .seconds(1))
        }
        if let node = declaration.attributes.take("creates"), let path = node.string("'creates'", &context.diagnostics) {
            if let problem = HostPath.problem(in: path) {
                context.diagnostics.error("'creates' \(problem)", at: node.location)
            } else {
                desired.creates = path
            }
        }
        return desired
    }

    /// Why `name` cannot name a command (it becomes part of a unit's name), or nil.
    static func problem(inName name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 64 else { return "a command's name is 1 to 64 characters" }
        guard name.utf8.allSatisfy({ ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) else {
            return "a command's name is letters, digits, '-' and '_' (it names its unit)"
        }
        return nil
    }

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        Observed(created: try desired.creates.map { path throws(HostError) in try host.status(path) != nil })
    }

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        guard observed.created == false, let creates = desired.creates else { return nil }
        return Change(.run, attributes: [AttributeChange("creates", before: "(missing)", after: creates)], notes: ["runs: \(creates) is missing"])
    }

    public func notified(by notifiers: [Notifier], desired: Desired, observed: Observed, planned: Change?) -> Change? {
        var change = planned ?? Change(.run)
        change.notes.append("runs (notified by \(notifiers.map(\.id.description).joined(separator: ", ")))")
        return change
    }

    public func apply(_ change: Change, desired: Desired, host: HostWriter) async throws(HostError) {
        let unit = "tend-command-\(desired.name)-\(String(UInt32.random(in: 0 ... .max), radix: 16)).service"
        if let services = host.services {
            let command = TransientCommand(unit: unit, description: "tend command \(desired.name)", arguments: desired.arguments, user: desired.user,
                                           workingDirectory: desired.workingDirectory, environment: desired.environment, timeout: desired.timeout)
            let result = try services.run(command)
            guard result.succeeded else {
                // What it said reaches the journal through journald's stream, a moment after it ends.
                var log: [String] = []
                for _ in 0..<20 {
                    log = services.recentLog(of: unit, count: 10).map { Printable.escaped($0) }
                    if log.contains(where: { !$0.hasPrefix("\(unit): ") && !$0.contains("Failed with result") && !$0.hasPrefix("Started ") && !$0.hasPrefix("Starting ") }) { break }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                let how = result.result == "timeout" ? "ran out of time after \(DurationText.format(desired.timeout))" : "failed (\(result.result))"
                throw HostError(path: desired.id.description, message: "\(how) as \(unit)" + (log.isEmpty ? "" : ": " + log.joined(separator: " | ")))
            }
            return
        }
        try await runInRoot(desired, host: host)
    }

    /// Under `--root`: in the root, through chroot, with the same limits; what it said is the
    /// failure's message.
    private func runInRoot(_ desired: Desired, host: HostWriter) async throws(HostError) {
        var inner = desired.arguments
        if let user = desired.user { inner = ["/usr/sbin/runuser", "-u", user, "--"] + inner }
        if let directory = desired.workingDirectory { inner = ["/usr/bin/env", "-C", directory] + inner }
        let root = host.reader.root
        let arguments = root == "/" ? inner : ["/usr/sbin/chroot", root] + inner
        let finished = await ChildProcess(arguments, environment: desired.environment, errors: .withOutput, limit: desired.timeout, kept: 64 << 10).run()
        guard finished.status != 0 || finished.timedOut else { return }
        let how = finished.timedOut ? "ran out of time after \(DurationText.format(desired.timeout))" : "exited with status \(finished.status)"
        let said = Printable.escaped(String(finished.output.suffix(2000)).trimmingWhitespace(), keepingNewlines: true)
        throw HostError(path: desired.id.description, message: how + (said.isEmpty ? "" : ": " + said))
    }
}
