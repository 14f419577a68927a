public import TendCore
public import TendSpec

/// `unit`: a systemd unit: its unit file and drop-ins (written to /etc/systemd/system), whether it
/// is enabled or masked, and whether it runs. Without a unit file attribute, only the state of a
/// unit that exists (installed by a package) is managed.
///
/// `state: absent` removes a unit tend wrote: it is stopped, disabled, and its file in
/// /etc/systemd/system deleted (prune uses it for units no longer declared).
///
/// With a service manager (the root is "/" and systemd runs), states are read in bulk over D-Bus
/// and every start, stop and restart is waited for. Without one (`--root`), enablement is read and
/// changed by `systemctl --root`, systemd's own logic for every `[Install]` form (template
/// instances, `DefaultInstance=`, `Also=`, aliases, specifiers); masking is the link to /dev/null;
/// starting and stopping are left out of the plan with a note.
public struct UnitProvider: ResourceProvider {
    public init() {}

    public var kind: String { "unit" }
    public var acceptsNotifications: Bool { true }

    static let unitDirectory = "/etc/systemd/system"
    static let suffixes = [".service", ".socket", ".timer", ".target", ".path", ".mount", ".automount", ".swap", ".slice"]
    /// Where systemd looks for unit files, most important first (for units a package installed).
    static let searchPath = ["/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]

    public enum RunState: String, Sendable, Hashable {
        case running, stopped
    }

    public struct Desired: DesiredState {
        var name: String
        var unitFile: [UInt8]?
        /// Drop-in file name (`limits.conf`) → content, in name order.
        var dropins: [(name: String, content: [UInt8])]
        var enabled: Bool?
        var state: RunState?
        var masked: Bool?
        /// `state: absent`: stopped, disabled, and the unit file in /etc/systemd/system removed.
        var absent = false

        public var id: ResourceID { ResourceID(kind: "unit", name: name) }
        public var path: String? { unitFile == nil && !absent ? nil : UnitProvider.unitDirectory + "/" + name }

        /// A unit whose file a package brings comes after that package, when it is declared:
        /// the package named as the unit (nginx.service, getty@tty2.service after getty). Give
        /// `requires:` for another name (ssh.service comes with openssh-server).
        public var implicitDependencies: [ResourceID] {
            guard unitFile == nil, !absent, enabled == true || state == .running else { return [] }
            return [ResourceID(kind: "package", name: UnitProvider.packageGuess(for: name))]
        }

        public var isRemoval: Bool { absent }
        /// The unit file, its drop-ins, and the links its `[Install]` `Alias=` makes when it is
        /// enabled: a link named tend.service is tend's unit as much as the file is.
        public var paths: [String] {
            let aliases = enabled == true ? unitFile.map { UnitName.installEntries(of: $0).filter { $0.key == "Alias" }.map { UnitProvider.unitDirectory + "/" + $0.name } } ?? [] : []
            return (path.map { [$0] } ?? []) + dropins.map { dropinPath($0.name) } + aliases
        }

        var unitFilePath: String { UnitProvider.unitDirectory + "/" + name }
        func dropinPath(_ dropin: String) -> String { UnitProvider.unitDirectory + "/" + name + ".d/" + dropin }

        public func digest(into digest: inout Digest) {
            digest.add("name", name)
            digest.add("unit", unitFile ?? Array("\u{0}unmanaged".utf8))
            for dropin in dropins { digest.add("dropin " + dropin.name, dropin.content) }
            digest.add("enabled", enabled.map { "\($0)" })
            digest.add("state", state?.rawValue)
            digest.add("masked", masked.map { "\($0)" })
            digest.add("absent", absent ? "true" : nil)
        }
    }

    public struct Observed: ObservedState {
        /// The unit is not installed yet, and the package of this name the configuration declares
        /// will bring it: its enablement and state are planned from nothing.
        var installedBy: String?
        var unitFile: [UInt8]?
        var dropins: [String: [UInt8]]
        /// From the service manager; nil when there is none (then `offline` holds what links say).
        var status: UnitStatus?
        var offline: OfflineState?

        public func fingerprint(into digest: inout Digest) {
            digest.add("unit", unitFile ?? [])
            for (name, content) in dropins.sorted(by: { $0.key < $1.key }) { digest.add("dropin " + name, content) }
            digest.add("status", status.map { "\($0.loadState) \($0.activeState) \($0.subState) \($0.unitFileState)" })
            digest.add("offline", offline.map { "\($0.state) \($0.masked)" })
        }

        var isEnabled: Bool {
            if let status { return ["enabled", "enabled-runtime", "alias"].contains(status.unitFileState) }
            return offline?.enabled ?? false
        }

        var isMasked: Bool {
            if let status { return status.unitFileState.hasPrefix("masked") || status.loadState == "masked" }
            return offline?.masked ?? false
        }

        var isRunning: Bool { status?.isRunning ?? false }
    }

    /// What `systemctl --root` and the links under /etc/systemd/system say, when no manager can be
    /// asked.
    struct OfflineState: Sendable, Hashable {
        /// What `systemctl --root is-enabled` printed: enabled, disabled, static, alias, …
        var state: String
        var masked: Bool
        var enabled: Bool { ["enabled", "enabled-runtime", "alias"].contains(state) }
    }

    // MARK: Decoding

    public func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired? {
        var declaration = declaration
        let name = declaration.name
        if let problem = UnitName.problem(in: name) {
            context.diagnostics.error(problem, at: declaration.nameLocation)
            return nil
        }
        guard Self.suffixes.contains(where: { name.hasSuffix($0) }) else {
            context.diagnostics.error("\(Printable.quoted(name)) cannot be managed: tend manages units with the suffixes \(Self.suffixes.joined(separator: ", "))", at: declaration.nameLocation)
            return nil
        }
        defer { declaration.attributes.finish(&context.diagnostics, context: "a unit") }
        var desired = Desired(name: name, unitFile: nil, dropins: [], enabled: nil, state: nil, masked: nil)
        let (unitFile, unitFileNode) = Self.decodeContent(&declaration, what: "a unit", context: &context)
        if let origin = unitFileNode, origin.secret {
            context.diagnostics.error("a unit file is shown in plans and readable by every user, so it holds no secret; put the secret in a file (its EnvironmentFile= or LoadCredential=) managed as a file", at: origin.location)
        }
        desired.unitFile = unitFile
        if unitFileNode != nil, unitFile == nil { return nil }
        if let unitFile, let origin = unitFileNode {
            // Under --root tend makes the [Install] links itself: every name there becomes a path.
            for problem in UnitName.installProblems(of: unitFile, unit: name) {
                if let file = origin.file, origin.key == "source" {
                    context.diagnostics.error("[Install] \(problem.message)", at: SourceLocation(file: file, line: problem.line, column: problem.column))
                } else {
                    context.diagnostics.error("[Install] \(problem.message) (line \(problem.line) of the unit file)", at: origin.location)
                }
            }
        }
        if let node = declaration.attributes.take("dropins"), let pairs = node.mapping {
            for pair in pairs {
                guard let file = pair.keyText else { continue }
                guard file.hasSuffix(".conf"), !file.contains("/"), file.count > 5, file.utf8.count <= 255, !Printable.hasControlCharacters(file) else {
                    context.diagnostics.error("drop-in \(Printable.quoted(file)) must be a file name ending in .conf, without '/' or control characters, of at most 255 bytes", at: pair.key.location)
                    continue
                }
                if let text = pair.value.scalar.map({ _ in pair.value.string("drop-in '\(file)'", &context.diagnostics) }) ?? nil {
                    desired.dropins.append((file, Array(text.utf8)))
                } else if var reader = MappingReader(pair.value, what: "drop-in '\(file)'", diagnostics: &context.diagnostics) {
                    let dropinContent = reader.take("content"), dropinSource = reader.take("source")
                    if dropinContent != nil, let dropinSource {
                        context.diagnostics.error("drop-in \(Printable.quoted(file)) takes 'content' or 'source', not both", at: dropinSource.location)
                    } else if let text = dropinContent?.string("'content'", &context.diagnostics) {
                        desired.dropins.append((file, Array(text.utf8)))
                    } else if let relative = dropinSource?.string("'source'", &context.diagnostics), relative.hasSuffix(".age") {
                        context.diagnostics.error("a drop-in is shown in plans and readable by every user, so it holds no secret; put the secret in a file (its EnvironmentFile= or LoadCredential=) managed as a file", at: dropinSource!.location)
                    } else if let relative = dropinSource?.string("'source'", &context.diagnostics),
                              let bytes = context.readSource(relative, of: declaration, at: dropinSource!.location) {
                        desired.dropins.append((file, bytes))
                    } else if dropinContent == nil, dropinSource == nil {
                        context.diagnostics.error("drop-in '\(file)' needs 'content' or 'source'", at: pair.value.location)
                    }
                    reader.finish(&context.diagnostics, context: "drop-in '\(file)'")
                }
            }
            desired.dropins.sort { $0.name < $1.name }
        } else if let node = declaration.attributes.peek("dropins")?.value {
            context.diagnostics.error("'dropins' must be a mapping from file names to contents, found \(node.kindDescription)", at: node.location)
        }
        desired.enabled = declaration.attributes.take("enabled")?.bool("'enabled'", &context.diagnostics)
        desired.masked = declaration.attributes.take("masked")?.bool("'masked'", &context.diagnostics)
        if let node = declaration.attributes.take("state"), let text = node.string("'state'", &context.diagnostics) {
            if let state = RunState(rawValue: text) {
                desired.state = state
            } else if text == "absent" {
                if desired.unitFile != nil || !desired.dropins.isEmpty || desired.enabled == true || desired.masked != nil {
                    context.diagnostics.error("an absent unit is removed: it has no content, source, dropins or masked, and is not enabled", at: node.location)
                }
                desired.absent = true
                desired.state = .stopped
                desired.enabled = false
            } else {
                context.diagnostics.error("'state' of a unit must be running, stopped or absent, found '\(text)'", at: node.location)
            }
        }
        if desired.masked == true {
            if desired.unitFile != nil { context.diagnostics.error("a masked unit cannot also have a unit file", at: declaration.nameLocation) }
            if desired.enabled == true || desired.state == .running {
                context.diagnostics.error("a masked unit can be neither enabled nor running", at: declaration.nameLocation)
            }
        }
        return desired
    }

    /// Reads `content`, `source` or `template` (at most one), returning the bytes and which key
    /// gave them with its position; the bytes are nil when that key's file is missing or broken.
    /// Where content came from: the key, where it was written, and for `source` and `template` the
    /// repository path of the file.
    struct ContentOrigin {
        var key: String
        var location: SourceLocation
        var file: String?
        /// The content is, or shows, a secret (a `.age` source, a template that shows an `!age`
        /// var): sensitive, and digested with the host's key.
        var secret = false
        /// Why that secret could not be opened here: the resource fails alone when observed.
        var unopened: String?
    }

    static func decodeContent(_ declaration: inout ResourceDeclaration, what: String, context: inout DecodeContext) -> ([UInt8]?, ContentOrigin?) {
        let nodes = ["content", "source", "template"].compactMap { key in declaration.attributes.take(key).map { (key, $0) } }
        guard let (key, node) = nodes.first else { return (nil, nil) }
        if nodes.count > 1 {
            context.diagnostics.error("\(what) takes one of 'content', 'source' or 'template', not '\(key)' and '\(nodes[1].0)'", at: nodes[1].1.location)
        }
        var origin = ContentOrigin(key: key, location: node.location)
        guard let text = node.string("'\(key)'", &context.diagnostics) else { return (nil, origin) }
        switch key {
        case "content": return (Array(text.utf8), origin)
        case "source":
            origin.file = RepositoryPath.resolve(text, in: declaration.manifestDirectory)
            guard let bytes = context.readSource(text, of: declaration, at: node.location) else { return (nil, origin) }
            guard text.hasSuffix(".age") else { return (bytes, origin) }
            origin.secret = true
            switch context.openSecret(bytes, file: origin.file ?? text, at: node.location) {
            case .opened(let plaintext): return (plaintext, origin)
            case .unopened(let why):
                origin.unopened = why
                return ([], origin)
            }
        default:
            origin.file = RepositoryPath.resolve(text, in: declaration.manifestDirectory)
            guard let rendered = context.renderTemplate(text, of: declaration, at: node.location) else { return (nil, origin) }
            origin.secret = rendered.holdsSecret
            origin.unopened = rendered.unopened
            return (rendered.bytes, origin)
        }
    }

    /// The package a unit most likely comes with: its name without the suffix and instance.
    static func packageGuess(for unit: String) -> String {
        var base = unit
        if let dot = base.lastIndex(of: ".") { base = String(base[..<dot]) }
        if let at = base.firstIndex(of: "@") { base = String(base[..<at]) }
        return base
    }

    // MARK: Observing

    /// What the service manager said of every declared unit.
    private static let managerStatus = BulkRead<[String: UnitStatus]>("unit.status")
    /// What `systemctl --root` said of each unit's enablement, without a manager.
    private static let offlineEnablement = BulkRead<[String: String]>("unit.offline-enablement")

    /// The state of every declared unit in one round trip (ListUnitsByNames and
    /// ListUnitFilesByPatterns for all of them), kept for `observe`. Without a manager, what
    /// `systemctl --root` says of the enablement of each unit that declares it.
    public func prefetch(_ desired: [Desired], host: HostReader) async throws(HostError) {
        if let services = host.services {
            host[Self.managerStatus] = try services.status(of: desired.map(\.name))
        } else if host.root != "/" {
            await Self.readEnablement(desired.filter { $0.enabled != nil }.map(\.name), host: host)
        }
    }

    /// `systemctl --root ROOT is-enabled` of each unit, kept for `observe`. One unit a
    /// call: for a unit that has no file yet it prints nothing, which would shift the others.
    private static func readEnablement(_ names: [String], host: HostReader) async {
        var states = host[offlineEnablement] ?? [:]
        for name in names {
            let run = await Tool.run(["systemctl", "--root=\(host.root)", "is-enabled", "--", name], root: "/")
            let state = run.output.split(separator: "\n").first.map { String($0).trimmingWhitespace() }
            states[name] = state.flatMap { $0.isEmpty ? nil : $0 } ?? "not-found"
        }
        host[offlineEnablement] = states
    }

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        var observed = Observed(installedBy: nil, unitFile: nil, dropins: [:], status: nil, offline: nil)
        if desired.unitFile != nil || desired.absent, let status = try host.status(desired.unitFilePath) {
            guard status.type == .regular else {
                throw HostError(path: desired.unitFilePath, message: "is \(status.type.article), not a unit file")
            }
            observed.unitFile = try host.read(desired.unitFilePath)
        }
        for dropin in desired.dropins where try host.status(desired.dropinPath(dropin.name)) != nil {
            observed.dropins[dropin.name] = try host.read(desired.dropinPath(dropin.name))
        }
        if let services = host.services {
            if let known = host[Self.managerStatus]?[desired.name] {
                observed.status = known
            } else {
                observed.status = try services.status(of: [desired.name])[desired.name]
            }
            if desired.unitFile == nil, observed.status?.loadState == "not-found" {
                let package = ResourceID(kind: "package", name: Self.packageGuess(for: desired.name))
                if host.declares(package) { observed.installedBy = package.description }
            }
        } else if host.root == "/", desired.enabled != nil || desired.state != nil || desired.masked != nil {
            if let why = host.servicesUnreachable { throw HostError(path: desired.name, message: why) }
            throw HostError(path: desired.name, message: "no service manager to ask: systemd is not running as PID 1 here (use --root for an image)")
        } else {
            observed.offline = try offlineState(desired, host: host)
            // Under a root, a unit whose file is nowhere yet comes with its package, as on a host.
            if desired.unitFile == nil, try Self.installedUnitFile(desired, host: host) == nil {
                let package = ResourceID(kind: "package", name: Self.packageGuess(for: desired.name))
                if host.declares(package) { observed.installedBy = package.description }
            }
        }
        return observed
    }

    /// Masking read from the link under the root; enablement from what prefetching asked
    /// `systemctl --root`.
    private func offlineState(_ desired: Desired, host: HostReader) throws(HostError) -> OfflineState {
        let maskPath = Self.unitDirectory + "/" + desired.name
        var masked = false
        if try host.status(maskPath)?.type == .symlink { masked = try host.readLink(maskPath) == "/dev/null" }
        if desired.enabled == true { try Self.checkInstallSection(desired, host: host) }
        let state = host[Self.offlineEnablement]?[desired.name] ?? "unknown"
        return OfflineState(state: state, masked: masked)
    }

    /// Checks the [Install] section of the unit file that enabling reads (the unit's own, or its
    /// template's for an instance such as getty@tty2.service) before `systemctl --root` acts on it:
    /// a unit file on the host is input too, and a name there that is a path would make a link
    /// elsewhere.
    static func checkInstallSection(_ desired: Desired, host: HostReader) throws(HostError) {
        var found: (path: String, text: [UInt8])?
        if let own = desired.unitFile {
            found = (unitDirectory + "/" + desired.name, own)
        } else {
            found = try installedUnitFile(desired, host: host)
        }
        guard let (unitPath, text) = found else { return }
        for entry in UnitName.installEntries(of: text) {
            // A unit file on the host is input too: a name that is a path would make a link elsewhere.
            let name: String
            do {
                name = try UnitName.expandingSpecifiers(entry.name, unit: desired.name)
            } catch {
                throw HostError(path: unitPath, message: "line \(entry.line): [Install] \(entry.key)=: \(error.message)")
            }
            if let problem = UnitName.problem(in: name) {
                throw HostError(path: unitPath, message: "line \(entry.line): [Install] \(entry.key)=: \(problem)")
            }
        }
    }

    /// The unit file systemctl reads for `desired` under the root (its own, or its template's for
    /// an instance such as getty@tty2.service), from the unit folders in systemd's order; nil when
    /// there is none yet.
    static func installedUnitFile(_ desired: Desired, host: HostReader) throws(HostError) -> (path: String, text: [UInt8])? {
        var names = [desired.name]
        if let at = desired.name.firstIndex(of: "@"), let dot = desired.name.lastIndex(of: "."), at < dot {
            names.append(String(desired.name[...at]) + String(desired.name[dot...]))
        }
        // With merged /usr (Debian 12's debootstrap), /lib is a link to usr/lib, whose files the
        // search has already looked at; tend reads through no link.
        // Skipped only when it is that link: one elsewhere would hide the unit file systemctl reads.
        var merged = false
        if try host.status("/lib")?.type == .symlink { merged = ["usr/lib", "/usr/lib"].contains(try host.readLink("/lib")) }
        let folders = merged ? searchPath.filter { !$0.hasPrefix("/lib/") } : searchPath
        for name in names {
            for folder in folders {
                let candidate = folder + "/" + name
                if try host.status(candidate)?.type == .regular { return (candidate, try host.read(candidate)) }
            }
        }
        return nil
    }

    // MARK: Planning

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        var attributes: [AttributeChange] = []
        var notes: [String] = []
        var diffs: [String] = []
        var filesChanged = false
        if let wanted = desired.unitFile, wanted != observed.unitFile {
            filesChanged = true
            diffs.append(Self.diff(observed.unitFile, wanted, path: desired.unitFilePath))
        }
        for dropin in desired.dropins where observed.dropins[dropin.name] != dropin.content {
            filesChanged = true
            diffs.append(Self.diff(observed.dropins[dropin.name], dropin.content, path: desired.dropinPath(dropin.name)))
        }
        if filesChanged { notes.append("daemon-reload (unit files changed)") }
        if let masked = desired.masked, masked != observed.isMasked {
            attributes.append(AttributeChange("masked", before: observed.isMasked, after: masked))
        }
        if let installer = observed.installedBy {
            // Not there yet: the package brings it, earlier in this apply.
            if let enabled = desired.enabled {
                attributes.append(AttributeChange("enabled", before: nil, after: .bool(enabled), beforeNote: "installed by \(installer)"))
            }
            if let state = desired.state {
                attributes.append(AttributeChange("state", before: nil, after: .text(state.rawValue), beforeNote: "installed by \(installer)"))
            }
            guard !attributes.isEmpty || !diffs.isEmpty else { return nil }
            return Change(.update, attributes: attributes, content: diffs.isEmpty ? nil : .text(diff: diffs.joined()),
                          notes: notes + (observed.offline == nil ? ["daemon-reload first, so that systemd knows the unit the package installed"] : []))
        }
        if let enabled = desired.enabled, enabled != observed.isEnabled {
            attributes.append(AttributeChange("enabled", before: observed.isEnabled, after: enabled))
        }
        var action: Change.Action = desired.unitFile != nil && observed.unitFile == nil ? .create : .update
        var content: ContentChange?
        if desired.absent, let file = observed.unitFile {
            action = .delete
            content = .binary(before: file.count, after: nil)
            notes.append("daemon-reload (unit files changed)")
        }
        if let state = desired.state {
            if let status = observed.status {
                let running = status.isRunning
                // A job under way is let finish: starting a unit someone is stopping would cancel
                // their stop ("Job … canceled"), and stopping one that is starting their start.
                // Its next change of state wakes the agent again, and a cycle comes anyway.
                let settling = status.activeState == "deactivating" || (state == .stopped && ["activating", "reloading"].contains(status.activeState))
                if (state == .running) != running, !settling {
                    attributes.append(AttributeChange("state", before: running ? "running" : "stopped", after: state.rawValue,
                                                      beforeNote: running ? nil : status.activeState))
                } else if state == .running, filesChanged {
                    action = .restart
                    notes.append("restart (its unit files changed while it runs)")
                }
            } else if observed.offline != nil, state == .running || filesChanged {
                notes.append("start and stop are left out: no service manager runs for this root")
            }
        } else if filesChanged, observed.isRunning {
            action = .restart
            notes.append("restart (its unit files changed while it runs)")
        }
        guard !attributes.isEmpty || !diffs.isEmpty || action == .restart || action == .delete else { return nil }
        if !diffs.isEmpty { content = .text(diff: diffs.joined()) }
        if ProtectedPaths.isTendUnit(desired.name), observed.status != nil, action == .restart || attributes.contains(where: { $0.name == "state" }) {
            notes.append(Self.queuedNote)
        }
        return Change(action, attributes: attributes, content: content, notes: notes)
    }

    public var refreshes: Set<Refresh> { [.reload, .reloadOrRestart] }

    /// A running unit (or one to be started) is restarted, reloaded or either, as the most any
    /// notifier asks (a restart over a reload); a unit whose own files changed while it runs is
    /// restarted whatever was asked.
    public func notified(by notifiers: [Notifier], desired: Desired, observed: Observed, planned: Change?) -> Change? {
        let refresh = notifiers.map(\.refresh).max() ?? .restart
        let willRun = desired.state == .running || (desired.state == nil && observed.isRunning)
        guard observed.status != nil, willRun, desired.masked != true else { return planned }
        let action: Change.Action = switch refresh {
        case .restart: .restart
        case .reload: .reload
        case .reloadOrRestart: .reloadOrRestart
        }
        var change = planned ?? Change(action)
        let reason = "\(refresh.rawValue) (notified by \(notifiers.map(\.id.description).joined(separator: ", ")))"
        if change.action != .create, change.action != .restart { change.action = action }
        change.notes.append(reason)
        if ProtectedPaths.isTendUnit(desired.name), !change.notes.contains(Self.queuedNote) { change.notes.append(Self.queuedNote) }
        return change
    }

    /// How the plan says that a job on tend's own unit is not waited for.
    static let queuedNote = "queued once the run has ended, not waited for: tend's own unit, whose job may stop the run"

    private static func diff(_ before: [UInt8]?, _ after: [UInt8], path: String) -> String {
        guard case .text(let diff) = ContentChange.between(before, after, path: path, sensitive: false) else {
            return "binary content of \(path) changed\n"
        }
        return diff
    }

    // MARK: Applying

    public var appliesInBatches: Bool { true }
    public var prefetches: Bool { true }

    public func apply(_ change: Change, desired: Desired, host: HostWriter) throws(HostError) {
        throw HostError(path: desired.name, message: "units are applied in batches")
    }

    /// Every ready unit at once: unit files, drop-ins, masks and enablement for all of them first,
    /// then one daemon-reload if any of that changed, then the jobs in order, each waited for.
    public func apply(batch: [(change: Change, desired: Desired)], host: HostWriter) async -> [StepFailure?] {
        var failures = [StepFailure?](repeating: nil, count: batch.count)
        var reloadNeeded = false
        for (index, (change, desired)) in batch.enumerated() {
            do throws(HostError) {
                reloadNeeded = try await prepare(change, desired, host: host) || reloadNeeded
            } catch {
                failures[index] = StepFailure(error)
            }
        }
        // Enablement once every file is written: `Also=` in one unit may name another of the batch.
        // An enabled unit whose file changed is enabled again, so links an older [Install] made go.
        for (index, (change, desired)) in batch.enumerated() where failures[index] == nil && !desired.absent {
            let reenable = desired.enabled == true && desired.unitFile != nil && change.content != nil && !change.changes("enabled")
            guard let enabled = desired.enabled, change.changes("enabled") || reenable else { continue }
            let what: UnitFileChange = reenable ? .reenable : enabled ? .enable : .disable
            do throws(HostError) {
                if let services = host.services {
                    try services.change(what, unit: desired.name)
                } else {
                    try await setEnablementOffline(desired, what, host: host)
                }
                reloadNeeded = true
            } catch {
                failures[index] = StepFailure(error)
            }
        }
        // A unit a package of this apply installed: systemd may not have loaded it yet.
        if !reloadNeeded, let services = host.services,
           let known = try? services.status(of: batch.map(\.desired.name)), known.values.contains(where: { $0.loadState == "not-found" }) {
            reloadNeeded = true
        }
        guard let services = host.services else {
            // What systemctl --root says now, for the executor's check of each step.
            await Self.readEnablement(batch.filter { $0.desired.enabled != nil || $0.desired.absent }.map(\.desired.name), host: host.reader)
            return failures
        }
        if reloadNeeded {
            do throws(HostError) {
                try services.daemonReload()
            } catch {
                return failures.map { $0 ?? StepFailure(error) }
            }
        }
        for (index, (change, desired)) in batch.enumerated() where failures[index] == nil {
            do throws(HostError) {
                if change.changes("state"), !desired.absent {
                    try run(desired.state == .running ? .start : .stop, desired, services, host: host)
                } else if change.action == .restart {
                    try run(.restart, desired, services, host: host)
                } else if change.action == .reload {
                    try run(.reload, desired, services, host: host)
                } else if change.action == .reloadOrRestart {
                    try run(.reloadOrRestart, desired, services, host: host)
                }
            } catch {
                failures[index] = StepFailure(error)
            }
        }
        // The units changed: what observing kept of them is refreshed, in one round trip.
        if var known = host.reader[Self.managerStatus],
           let now = try? services.status(of: batch.map(\.desired.name)) {
            known.merge(now) { _, new in new }
            host.reader[Self.managerStatus] = known
        }
        return failures
    }

    /// Writes the unit's files and changes its masking (enablement comes once the whole batch is
    /// written); returns whether the manager must reload to see it.
    private func prepare(_ change: Change, _ desired: Desired, host: HostWriter) async throws(HostError) -> Bool {
        if desired.absent { return try await remove(change, desired, host: host) }
        var changed = false
        if desired.masked == false, change.changes("masked") {
            try unmask(desired, host: host)
            changed = true
        }
        if let content = desired.unitFile {
            changed = try write(content, to: desired.unitFilePath, host: host) || changed
        }
        for dropin in desired.dropins {
            changed = try write(dropin.content, to: desired.dropinPath(dropin.name), host: host) || changed
        }
        if desired.masked == true, change.changes("masked") {
            try mask(desired, host: host)
            changed = true
        }
        return changed
    }

    /// Stops and disables the unit while its file still says how, then deletes the file; returns
    /// whether the manager must reload.
    private func remove(_ change: Change, _ desired: Desired, host: HostWriter) async throws(HostError) -> Bool {
        if let services = host.services {
            if change.changes("state") { try run(.stop, desired, services, host: host) }
            if change.changes("enabled") { try services.change(.disable, unit: desired.name) }
        } else if change.changes("enabled") {
            try await setEnablementOffline(desired, .disable, host: host)
        }
        if change.action == .delete {
            try host.remove(desired.unitFilePath, expected: .regular, recursive: false)
            return true
        }
        return change.changes("enabled")
    }

    /// Runs a job and turns anything but success into an error that carries the unit's state and
    /// its last journal lines.
    private func run(_ job: UnitJob, _ desired: Desired, _ services: any ServiceManager, host: HostWriter) throws(HostError) {
        // A job on tend's own unit may stop this very run: it is queued once the run has ended
        // (what manages tend is applied last, `Catalog.build`).
        if ProtectedPaths.isTendUnit(desired.name) { return host.queueAfterRun(job, unit: desired.name) }
        let result = try services.run(job, unit: desired.name, timeout: .seconds(90))
        var failed = !result.succeeded
        var outcome = result.result
        if !failed, job == .start || job == .restart, let status = try services.status(of: [desired.name])[desired.name], !status.isRunning {
            // The job is done but the unit is not running: a condition failed, or it exited at once.
            failed = true
            outcome = "finished, but the unit is not running"
        }
        guard !failed else {
            let status = (try? services.status(of: [desired.name]))?[desired.name]
            var message = "\(job.rawValue) \(outcome)"
            if let status { message += "; now \(status.activeState) (\(status.subState))" }
            let log = services.recentLog(of: desired.name, count: 10)
            if !log.isEmpty { message += "; last journal lines:\n    " + log.joined(separator: "\n    ") }
            throw HostError(path: desired.name, message: message)
        }
    }

    private func mask(_ desired: Desired, host: HostWriter) throws(HostError) {
        if let services = host.services {
            try services.change(.mask, unit: desired.name)
        } else {
            let path = Self.unitDirectory + "/" + desired.name
            try host.makeSymlink(path, target: "/dev/null", replacing: try host.reader.status(path)?.type)
        }
    }

    private func unmask(_ desired: Desired, host: HostWriter) throws(HostError) {
        if let services = host.services {
            try services.change(.unmask, unit: desired.name)
        } else {
            let path = Self.unitDirectory + "/" + desired.name
            if try host.reader.status(path)?.type == .symlink {
                if try host.reader.readLink(path) == "/dev/null" { try host.remove(path, expected: .symlink, recursive: false) }
            }
        }
    }

    /// Writes a unit file or drop-in unless it already holds `content`; returns whether it wrote.
    private func write(_ content: [UInt8], to path: String, host: HostWriter) throws(HostError) -> Bool {
        let current = try host.reader.status(path)
        if let current, current.type != .regular {
            throw HostError(path: path, message: "is \(current.type.article), not a unit file; it was left as it is")
        }
        if current != nil, try host.reader.read(path) == content { return false }
        try host.makeParentDirectories(of: path)
        try host.writeFile(path, contents: content, mode: 0o644, owner: 0, group: 0, replacing: current?.type)
        return true
    }

    /// Enables or disables without a manager, with `systemctl --root`: the links of every
    /// `[Install]` form, exactly as systemd makes them, after tend checked the names there.
    private func setEnablementOffline(_ desired: Desired, _ what: UnitFileChange, host: HostWriter) async throws(HostError) {
        try Self.checkInstallSection(desired, host: host.reader)
        let run = await Tool.run(["systemctl", "--root=\(host.reader.root)", what.rawValue, "--", desired.name], root: "/")
        guard run.status == 0 else {
            if run.status == 127 {
                throw HostError(path: desired.name, message: "systemctl is needed to \(what.rawValue) units under --root, and this machine has none (Debian's systemd package)")
            }
            let said = run.error.trimmingWhitespace()
            throw HostError(path: desired.name, message: "systemctl --root \(what.rawValue) failed (exit \(run.status))" + (said.isEmpty ? "" : ": " + said))
        }
    }
}
