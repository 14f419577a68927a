public import TendSpec

/// What a provider wants from the desired state of one resource.
public protocol DesiredState: Sendable {
    /// The resource's identity.
    var id: ResourceID { get }
    /// The absolute path on the host that the resource manages, if it manages one. Resources that
    /// manage a path come after the resource that manages its nearest declared ancestor.
    var path: String? { get }
    /// Every path the resource writes (a unit's file and its drop-ins); by default `path`. No two
    /// resources of a catalog may write the same path, or they would undo each other on every apply.
    var paths: [String] { get }
    /// Ids this resource must come after *if they are declared* (the user that owns a file).
    var implicitDependencies: [ResourceID] { get }
    /// Folders whose declared contents this resource must come after, whatever declares them (a
    /// package comes after the apt sources and pins of /etc/apt that the same apply writes).
    var implicitFolderDependencies: [String] { get }
    /// Whether the resource is declared to be gone (`state: absent`): later steps may not take
    /// it as in place (`HostReader.declares`).
    var isRemoval: Bool { get }
    /// Whether applying it may also change what lies below `path`: a removal, a link put in place
    /// of a folder, a folder purged of what is not declared. A path tend protects below it then
    /// counts as declared (`ProtectedPaths`). By default, `isRemoval`.
    var reachesBelow: Bool { get }
    /// Whether the content at `paths` must never be shown nor kept (`sensitive: true`): a
    /// snapshot of the host (`tend snapshot`) keeps only its digest.
    var isSensitive: Bool { get }
    /// Whether its content is a secret opened on this host: a snapshot keeps nothing of it, not
    /// even a digest (a plain digest of a short secret can be checked against guesses).
    var holdsSecret: Bool { get }
    /// Whether it needs a secret that could not be opened on this host: observing it fails.
    var lacksSecret: Bool { get }
    /// Feeds every attribute of the desired state into `digest`, so a plan file can tell whether
    /// the configuration changed since it was made.
    func digest(into digest: inout Digest)
}

extension DesiredState {
    public var path: String? { nil }
    public var paths: [String] { path.map { [$0] } ?? [] }
    public var implicitDependencies: [ResourceID] { [] }
    public var implicitFolderDependencies: [String] { [] }
    public var isRemoval: Bool { false }
    public var reachesBelow: Bool { isRemoval }
    public var isSensitive: Bool { false }
    public var holdsSecret: Bool { false }
    public var lacksSecret: Bool { false }
}

/// What a provider read from the host about one resource.
public protocol ObservedState: Sendable {
    /// Feeds what was seen into `digest`, so that `apply --plan` can tell whether the host changed
    /// since the plan (any write changes a file's ctime, which observations include).
    func fingerprint(into digest: inout Digest)
}

/// Knows one kind of resource: *what* it is (decoding and validating its attributes) and *how* it
/// is kept (observing the host, planning a change, applying it).
///
/// The contract, which the executor relies on:
/// - `decode` reads only the declaration and the snapshot, and reports every problem it finds.
/// - `observe` reads the host through a `HostReader`, which has no way to change it.
/// - `plan` is a pure function of the desired and observed states: no host access at all.
/// - `apply` makes the host match the desired state for the attributes that `change` names, and
///   only through the `HostWriter` it is given. After it returns, observing again and planning must
///   give no change, or the executor reports an inconsistent result.
///
/// See docs/writing-a-provider.md.
public protocol ResourceProvider: Sendable {
    associatedtype Desired: DesiredState
    associatedtype Observed: ObservedState

    /// The kind key in manifests (`file`).
    var kind: String { get }

    /// Whether other resources may `notify` resources of this kind (units restart on a change).
    var acceptsNotifications: Bool { get }

    /// Whether `observe` may run on several threads at once, each with its own `HostReader`
    /// (true for filesystem resources; false for anything that talks to a service manager, whose
    /// connection belongs to one thread).
    var observesInParallel: Bool { get }

    /// Decodes one declaration of this kind, or reports why it cannot and returns nil.
    func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired?

    /// Whether `prefetch` or `refresh` do anything: the planner and the executor gather the
    /// resources of a kind for them only when they do (a check of 10,000 files need not).
    var prefetches: Bool { get }

    /// Reads in one go what observing all of `desired` needs (the dpkg status file, apt's
    /// candidate versions), keeping it with `host.setMemo`. Called once per run, before `observe`,
    /// with every resource of this kind in the catalog. May run read-only tools.
    func prefetch(_ desired: [Desired], host: HostReader) async throws(HostError)

    /// Refreshes caches that planning reads but that are not declared state (apt's package
    /// lists), before `tend apply` plans. Only the executor calls it, with its writer; `tend plan`
    /// never does.
    func refresh(_ desired: [Desired], host: HostWriter) async throws(HostError)

    /// Reads the resource's actual state.
    func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed

    /// What must change to go from `observed` to `desired`, or nil when nothing must.
    func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change?

    /// The plan once `notifiers`, which notify this resource, change: `planned` is its own change,
    /// if any. Units restart or reload, commands run; the default ignores notifications. Pure,
    /// like `plan`.
    func notified(by notifiers: [Notifier], desired: Desired, observed: Observed, planned: Change?) -> Change?

    /// What a notification may ask of this kind besides a restart (`{reload: ID}`).
    var refreshes: Set<Refresh> { get }

    /// Carries out `change`. Asynchronous so that a step may wait for a program it runs (a
    /// file's `validate:`); most kinds apply synchronously.
    func apply(_ change: Change, desired: Desired, host: HostWriter) async throws(HostError)

    /// Whether the executor hands this provider every ready step of its kind at once (one apt
    /// transaction for all packages; one daemon-reload for all units) instead of one at a time.
    var appliesInBatches: Bool { get }

    /// Whether this kind's `apply` is right while the files that earlier steps wrote are still
    /// staged (written to their temporary names, not yet durable nor renamed into place). The
    /// executor then runs a stretch of such steps with the writer staging (`HostWriter.beginStaging`)
    /// and makes all their files durable at once: one `syncfs` instead of an fsync per file. True
    /// for kinds that only change paths and never read another resource's file; false (the default)
    /// for anything that must find earlier files in place (a unit reloads systemd, apt reads its
    /// sources).
    var stagesWrites: Bool { get }

    /// Whether applying this kind may make, change or remove paths or accounts that other
    /// resources declare: a package's files and what its maintainer scripts do (the conffile
    /// /etc/nginx/nginx.conf, the group systemd-journal), the home folder useradd makes. The
    /// executor then observes and plans again each step that comes after one of its steps, just
    /// before running it, so that the later step acts on what is there now (the file the package
    /// brought is replaced, not refused as "appeared since it was planned").
    var changesOtherResources: Bool { get }

    /// Carries out several changes together; returns, for each, nil when it was done or why not.
    /// Only called when `appliesInBatches`; the executor checks each result afterwards as usual.
    func apply(batch: [(change: Change, desired: Desired)], host: HostWriter) async -> [StepFailure?]
}

extension ResourceProvider {
    public func notified(by notifiers: [Notifier], desired: Desired, observed: Observed, planned: Change?) -> Change? {
        planned
    }

    public var refreshes: Set<Refresh> { [] }

    public var acceptsNotifications: Bool { false }
    public var observesInParallel: Bool { false }
    public var appliesInBatches: Bool { false }
    public var stagesWrites: Bool { false }
    public var changesOtherResources: Bool { false }
    public var prefetches: Bool { false }

    public func prefetch(_ desired: [Desired], host: HostReader) async throws(HostError) {}

    public func refresh(_ desired: [Desired], host: HostWriter) async throws(HostError) {}

    public func apply(batch: [(change: Change, desired: Desired)], host: HostWriter) async -> [StepFailure?] {
        var failures: [StepFailure?] = []
        for item in batch {
            do throws(HostError) {
                try await apply(item.change, desired: item.desired, host: host)
                failures.append(nil)
            } catch {
                failures.append(StepFailure(error))
            }
        }
        return failures
    }
}

/// What wakes the agent for a resource the moment the host changes it, rather than at the next
/// timer check. A wake carries only the resource's identity: the agent then observes, plans and
/// applies it exactly as a full cycle would.
public enum Watch: Sendable, Hashable {
    /// A path under the root (as declared, without the root): inotify on the path itself and on
    /// its folder, so that a write, a change of mode or owner, a deletion, a rename over it and a
    /// re-creation are all seen.
    case path(String)
    /// A systemd unit: its properties changing on the bus (ActiveState, UnitFileState, a changed
    /// unit file).
    case unit(String)
}

/// A resource that notifies another, and what it asks of it.
public struct Notifier: Hashable, Sendable {
    public var id: ResourceID
    public var refresh: Refresh

    public init(id: ResourceID, refresh: Refresh = .restart) {
        self.id = id
        self.refresh = refresh
    }
}

/// The watch capability, a protocol of its own beside `ResourceProvider` (mgmt's check, apply and
/// watch): a provider adopts it to be told of drift as it happens.
public protocol WatchingProvider: ResourceProvider {
    /// What to watch for `desired`; empty when nothing can be watched.
    func watches(_ desired: Desired) -> [Watch]
}

/// What decoding may use besides the declaration: the snapshot (for `source:` files) and the
/// list of problems found so far.
public struct DecodeContext: Sendable {
    public let snapshot: any Snapshot
    /// What templates see: the vars of tend.yaml and of the host entries that match, and `host`.
    public let variables: TemplateVariables
    public var diagnostics = Diagnostics()

    public init(snapshot: any Snapshot, variables: TemplateVariables = TemplateVariables()) {
        self.snapshot = snapshot
        self.variables = variables
    }

    /// `ciphertext`, read from `file` (named at `location`), opened with this host's identity.
    public func openSecret(_ ciphertext: [UInt8], file: String, at location: SourceLocation) -> SecretContent {
        guard let secrets = variables.secrets else {
            return .unopened("\(location): secret '\(file)' cannot be opened: no age identity is set for this run")
        }
        switch secrets.open(ciphertext) {
        case .success(let plaintext): return .opened(plaintext)
        case .failure(let error): return .unopened("\(location): secret '\(file)' cannot be opened here: \(error.message)")
        }
    }

    /// Renders the Mustache template named relative to the declaring manifest, reporting a
    /// missing file at `location` and a template error at its own `path:line:col`.
    /// A rendered template, and whether it shows a secret var (then it is sensitive) or one that
    /// could not be opened here (then its resource fails alone, with this reason).
    public struct Rendered: Sendable {
        public var bytes: [UInt8]
        public var holdsSecret: Bool
        public var unopened: String?
    }

    public mutating func renderTemplate(_ relative: String, of declaration: ResourceDeclaration, at location: SourceLocation) -> Rendered? {
        guard let bytes = readSource(relative, of: declaration, at: location),
              let path = RepositoryPath.resolve(relative, in: declaration.manifestDirectory) else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            diagnostics.error("template '\(path)' is not UTF-8 text", at: location)
            return nil
        }
        guard let partials = partials(of: text, path: path) else { return nil }
        let variables = variables.adding(declaration.vars)
        let secret = variables.secretUse(of: text, partials: partials)
        do {
            let bytes = Array(try TemplateRenderer.render(text, with: variables, partials: partials).utf8)
            return Rendered(bytes: bytes, holdsSecret: secret.holdsSecret, unopened: secret.unopened)
        } catch let error as TemplateError {
            diagnostics.error(error.message, at: SourceLocation(file: error.partial.map(Self.partialPath) ?? path, line: error.line, column: error.column))
            return nil
        } catch {
            diagnostics.error("template '\(path)': \(error)", at: location)
            return nil
        }
    }

    /// Where the partial `name` (`{{> name}}`) is read from: the repository's templates folder.
    public static func partialPath(_ name: String) -> String { "templates/\(name).mustache" }

    /// The partials the template `text` (at `path`) includes, and those they include, by name:
    /// each read from `templates/NAME.mustache` at the repository's root. Nil after reporting, at
    /// the tag that names it, a partial that is missing or not text, one that includes itself
    /// (through others too), partials nested too deep, or too many of them.
    mutating func partials(of text: String, path: String) -> [String: String]? {
        /// Each template's partial tags, by the template's name ("" for `text` itself).
        var includes: [String: [(name: String, at: SourceLocation)]] = [:]
        var loaded: [String: String] = [:]
        var pending: [(name: String, text: String, path: String)] = [("", text, path)]
        while let (owner, current, currentPath) = pending.popLast() {
            var tags: [(name: String, at: SourceLocation)] = []
            var failed = false
            TemplateRenderer.forEachTag(in: current) { tag in
                guard tag.sigil == UInt8(ascii: ">") || tag.sigil == UInt8(ascii: "<") else { return true }
                let name = tag.name
                let at = SourceLocation(file: currentPath, line: tag.line, column: tag.column)
                tags.append((name, at))
                guard loaded[name] == nil else { return true }
                let file = Self.partialPath(name)
                if name.isEmpty || RepositoryPath.problem(in: name) != nil || name.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
                    diagnostics.error("template error: \(Printable.quoted(name)) is not a partial's name: a path below templates/, without '..', such as {{> nginx/tls}}", at: at)
                    failed = true
                } else if loaded.count >= TemplateRenderer.maximumPartialIncludes {
                    diagnostics.error("template error: more than \(TemplateRenderer.maximumPartialIncludes) partials", at: at)
                    failed = true
                } else if let bytes = try? snapshot.read(file), let partial = String(validating: bytes, as: UTF8.self) {
                    loaded[name] = partial
                    pending.append((name, partial, file))
                } else {
                    let found = (try? snapshot.read(file)) != nil
                    diagnostics.error("template error: partial '\(name)' " + (found ? "(\(file)) is not UTF-8 text" : "not found: partials are read from \(file)"), at: at)
                    failed = true
                }
                return !failed
            }
            if failed { return nil }
            includes[owner] = tags
        }
        // A partial that includes itself, directly or through others, would render for ever.
        var depth: [String: Int] = [:]
        var visiting: [String] = []
        func deepest(_ name: String) -> Int? {
            if let known = depth[name] { return known }
            visiting.append(name)
            defer { visiting.removeLast() }
            var most = 0
            for (included, at) in includes[name] ?? [] {
                if visiting.contains(included) {
                    let cycle = visiting.drop { $0 != included }.map { $0 } + [included]
                    diagnostics.error("template error: partial '\(included)' includes itself (\(cycle.joined(separator: " → ")))", at: at)
                    return nil
                }
                guard let below = deepest(included) else { return nil }
                guard below + 1 <= TemplateRenderer.maximumPartialDepth else {
                    diagnostics.error("template error: partials nested deeper than \(TemplateRenderer.maximumPartialDepth) levels", at: at)
                    return nil
                }
                most = max(most, below + 1)
            }
            depth[name] = most
            return most
        }
        return deepest("") == nil ? nil : loaded
    }

    /// Reads a file named relative to the declaring manifest, reporting at `location` if it
    /// is missing or leaves the repository.
    public mutating func readSource(_ relative: String, of declaration: ResourceDeclaration, at location: SourceLocation) -> [UInt8]? {
        if let problem = RepositoryPath.problem(in: relative) {
            diagnostics.error("source file \(problem)", at: location)
            return nil
        }
        guard let path = RepositoryPath.resolve(relative, in: declaration.manifestDirectory) else {
            diagnostics.error("'\(relative)' leaves the repository", at: location)
            return nil
        }
        do {
            return try snapshot.read(path)
        } catch {
            let reason = switch error.code {
            case .notFound: "not found"
            case .notAFile: "not a regular file"
            // The snapshot's message names the path first: keep only what follows it.
            default: error.message.hasPrefix(path + ": ") ? String(error.message.dropFirst(path.count + 2)) : error.message
            }
            diagnostics.error("source file '\(path)': \(reason)", at: location)
            return nil
        }
    }
}

/// What planning may know besides one resource's states: the rest of the catalog, read-only.
public struct PlanContext: Sendable {
    /// Every path that some resource of the catalog manages.
    public let managedPaths: Set<String>
    /// Every folder that lies above a managed path.
    public let ancestorsOfManagedPaths: Set<String>

    public init(managedPaths: Set<String>) {
        self.managedPaths = managedPaths
        var ancestors: Set<String> = []
        for path in managedPaths {
            var current = path
            while let parent = HostPath.parent(of: current), ancestors.insert(parent).inserted {
                current = parent
            }
        }
        ancestorsOfManagedPaths = ancestors
    }

    /// Whether `path` is managed by the catalog or lies above something that is.
    public func isManaged(_ path: String) -> Bool {
        managedPaths.contains(path) || ancestorsOfManagedPaths.contains(path)
    }
}
