public import TendSpec

/// The desired resources of one host, in dependency order, with the edges between them.
public struct Catalog: Sendable {
    /// One resource of the catalog.
    /// A class, so that the planner's and executor's many passes share one copy of each entry.
    public final class Entry: Sendable {
        public let id: ResourceID
        /// Where its name was written.
        public let location: SourceLocation
        /// The component instance it came from (`nginx-site[shop]`), if any.
        public let instance: String?
        /// The resources it comes after: `requires`, notifiers, its declared parent path, its
        /// declared owner, and so on.
        public let dependencies: [ResourceID]
        /// The positions of `dependencies` in `Catalog.entries`.
        let dependencyPositions: [Int]
        /// The resources it notifies when it changes.
        public let notify: [ResourceID]
        /// What it asks of those it notifies where that is not a restart (`{reload: ID}`).
        public let refreshes: [ResourceID: Refresh]
        let resource: any BoundResource
        /// The path it manages, if any.
        public let path: String?
        /// Every path it writes (`BoundResource.paths`).
        let paths: [String]

        init(id: ResourceID, location: SourceLocation, instance: String? = nil, dependencies: [ResourceID], dependencyPositions: [Int],
             notify: [ResourceID], refreshes: [ResourceID: Refresh] = [:], resource: any BoundResource, path: String?, paths: [String]) {
            self.id = id
            self.instance = instance
            self.path = path
            self.paths = paths
            self.location = location
            self.dependencies = dependencies
            self.dependencyPositions = dependencyPositions
            self.notify = notify
            self.refreshes = refreshes
            self.resource = resource
        }

        /// This resource as a notifier of `target`: what it asks of it.
        public func notifier(of target: ResourceID) -> Notifier {
            Notifier(id: id, refresh: refreshes[target] ?? .restart)
        }

        /// The digest of how it is declared: the same for the same declaration, in any commit.
        public var desiredDigest: String { resource.desiredDigest() }
    }

    /// Every resource, each after everything it depends on; ties keep declaration order.
    public let entries: [Entry]
    private let positions: [ResourceID: Int]
    /// Resources an earlier apply managed that the configuration no longer declares, in the
    /// catalog to be removed because tend.yaml says `prune:` (`Configuration.catalog`).
    public internal(set) var retired: Set<ResourceID> = []
    /// tend.yaml's `prune:`, when given.
    public internal(set) var prune: RepositoryConfig.Prune?
    /// Why the removals could not join the catalog, when they could not.
    public internal(set) var pruneProblem: String?
    /// tend.yaml's `rollout:`, when given: when a new commit reaches this host.
    public internal(set) var rollout: Rollout?
    /// The `health:` checks of this host's entries and manifests, run after an apply that changed something.
    public internal(set) var health: [HealthCheck] = []

    /// The most unknown names in `requires:` and `notify:` given a "did you mean".
    static let suggestionsPerCatalog = 20

    /// A dependency cycle of more resources than this is named by its first ten, how many more,
    /// and its last.
    static let cycleShown = 12

    /// The entry for `id`, if declared.
    public subscript(id: ResourceID) -> Entry? {
        positions[id].map { entries[$0] }
    }

    /// Where `id` is in `entries`, if declared.
    func position(of id: ResourceID) -> Int? {
        positions[id]
    }

    /// What later steps may take as in place: every resource not declared absent.
    public let declaredPresent: Set<ResourceID>

    /// The read-only view of the catalog that planning gets.
    public let planContext: PlanContext

    init(ordered entries: [Entry]) {
        self.entries = entries
        var positions: [ResourceID: Int] = [:]
        var declaredPresent: Set<ResourceID> = []
        var managedPaths: Set<String> = []
        positions.reserveCapacity(entries.count)
        declaredPresent.reserveCapacity(entries.count)
        managedPaths.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            positions[entry.id] = index
            if !entry.resource.isRemoval { declaredPresent.insert(entry.id) }
            managedPaths.formUnion(entry.paths)
        }
        self.positions = positions
        self.declaredPresent = declaredPresent
        planContext = PlanContext(managedPaths: managedPaths)
    }

    /// The paths whose content must never be shown nor kept (`DesiredState.isSensitive`).
    public var sensitivePaths: Set<String> {
        Set(entries.filter(\.resource.isSensitive).flatMap(\.paths))
    }

    /// Whether a resource needs a secret this host could not open (`DesiredState.lacksSecret`).
    public var hasUnopenedSecrets: Bool { entries.contains(where: \.resource.lacksSecret) }

    /// The paths whose content is a secret (`DesiredState.holdsSecret`): a snapshot keeps
    /// nothing of it.
    public var secretPaths: Set<String> {
        Set(entries.filter(\.resource.holdsSecret).flatMap(\.paths))
    }

    /// What wakes the agent, each with the resources it wakes (`WatchingProvider`).
    public var watches: [Watch: [ResourceID]] {
        var watches: [Watch: [ResourceID]] = [:]
        for entry in entries {
            for watch in entry.resource.watches { watches[watch, default: []].append(entry.id) }
        }
        return watches
    }

    /// Which entries a run limited to `ids` observes and plans, by position: those resources,
    /// everything that depends on them (directly or not) and what they notify, so that a repair
    /// is planned exactly as a full run would plan it.
    func positions(reaching ids: Set<ResourceID>) -> [Bool] {
        var inScope = [Bool](repeating: false, count: entries.count)
        var notified: Set<ResourceID> = []
        for (position, entry) in entries.enumerated() {
            guard ids.contains(entry.id) || notified.contains(entry.id)
                    || entry.dependencyPositions.contains(where: { inScope[$0] }) else { continue }
            inScope[position] = true
            notified.formUnion(entry.notify)
        }
        return inScope
    }
}

extension Catalog {
    /// Builds the catalog from declarations in declaration order: decodes each with its provider,
    /// checks ids and references against each other and against what `protected` keeps for tend,
    /// adds the implicit edges and orders the graph, what manages tend itself last. Every problem is
    /// collected; if there is any, throws them all.
    public static func build(_ declarations: [ResourceDeclaration], providers: ProviderSet, snapshot: any Snapshot,
                             variables: TemplateVariables = TemplateVariables(), protected: ProtectedPaths? = nil) throws(ConfigurationError) -> Catalog {
        var (bound, diagnostics) = decode(declarations, providers: providers, snapshot: snapshot, variables: variables)

        // Ids and paths must be unique, and none of tend's own.
        var byID: [ResourceID: Int] = [:]
        var byPath: [String: Int] = [:]
        var unique: [Declared] = []
        var managesTend: [Int] = []
        byID.reserveCapacity(bound.count)
        byPath.reserveCapacity(bound.count)
        unique.reserveCapacity(bound.count)
        for item in bound {
            let id = item.id
            let verdict = protected?.verdict(id: id, path: item.path, paths: item.paths, reachesBelow: item.resource.reachesBelow) ?? .anyones
            if case .refused(let why) = verdict {
                diagnostics.error(why, at: item.nameLocation)
                continue
            }
            if let first = byID[id] {
                diagnostics.error("duplicate resource \(id) (first declared at \(unique[first].nameLocation))", at: item.nameLocation)
                continue
            }
            if let (path, first) = item.paths.lazy.compactMap({ path in byPath[path].map { (path, $0) } }).first {
                diagnostics.error("\(id) manages \(path), which \(unique[first].id) (declared at \(unique[first].nameLocation)) already manages; the two would undo each other on every apply", at: item.nameLocation)
                continue
            }
            byID[id] = unique.count
            for path in item.paths { byPath[path] = unique.count }
            if verdict == .managesTend { managesTend.append(unique.count) }
            unique.append(item)
        }

        // Edges: dependencies[i] holds the indices that i comes after.
        var dependencies = [[Int]](repeating: [], count: unique.count)
        var notifies = [[ResourceID]](repeating: [], count: unique.count)
        var refreshes = [[ResourceID: Refresh]](repeating: [:], count: unique.count)
        // A suggestion compares the name with every declared id: for the first few unknown names
        // only, or 3,000 of them took 30 s (and 100,000 would take hours).
        var suggestionsLeft = Self.suggestionsPerCatalog
        lazy var declaredNames = byID.keys.map(\.description)
        func reference(_ text: Located<String>, from index: Int, as key: String) -> Int? {
            guard let id = ResourceID(parsing: text.value) else {
                diagnostics.error("'\(text.value)' in '\(key)' is not a resource id; write kind:name, as in file:/etc/motd", at: text.location)
                return nil
            }
            guard let target = byID[id] else {
                var message = "'\(key)' names \(id), which is not declared for this host"
                if suggestionsLeft > 0, let near = Suggestion.nearest(to: id.description, in: declaredNames) {
                    message += "; did you mean '\(near)'?"
                }
                suggestionsLeft -= 1
                diagnostics.error(message, at: text.location)
                return nil
            }
            if target == index {
                diagnostics.error("\(id) cannot \(key == "requires" ? "require" : "notify") itself", at: text.location)
                return nil
            }
            return target
        }
        for (index, item) in unique.enumerated() {
            for text in item.requires {
                if let target = reference(text, from: index, as: "requires") { dependencies[index].append(target) }
            }
            for notify in item.notify {
                let text = notify.id
                guard let target = reference(text, from: index, as: "notify") else { continue }
                guard unique[target].resource.acceptsNotifications else {
                    diagnostics.error("'notify' names \(unique[target].id), but a \(unique[target].id.kind) cannot be notified; only units restart or reload, and commands run, on a change", at: text.location)
                    continue
                }
                if notify.refresh != .restart {
                    guard let refreshes = unique[target].resource.refreshes, refreshes.contains(notify.refresh) else {
                        diagnostics.error("'\(notify.refresh.rawValue)' asks \(unique[target].id) for what a \(unique[target].id.kind) does not do; notify it with its id alone", at: text.location)
                        continue
                    }
                }
                dependencies[target].append(index)
                notifies[index].append(unique[target].id)
                if notify.refresh != .restart { refreshes[index][unique[target].id] = notify.refresh }
            }
            for id in item.resource.implicitDependencies {
                if let target = byID[id], target != index { dependencies[index].append(target) }
            }
            var ancestor = item.path.flatMap(HostPath.parent(of:))
            while let path = ancestor {
                if let target = byPath[path] {
                    // tend never writes through a link: what is declared below one could never converge.
                    if unique[target].id.kind == "symlink", !unique[target].resource.isRemoval {
                        diagnostics.error("\(item.id) is below \(unique[target].id) (declared at \(unique[target].nameLocation)), a symbolic link that tend never follows; declare the path the link leads to instead", at: item.nameLocation)
                    }
                    dependencies[index].append(target)
                    break
                }
                ancestor = HostPath.parent(of: path)
            }
        }

        // Folder edges last, and only where they close no cycle: an apt source that requires a
        // package (ca-certificates for an https mirror) keeps its own order, the rest of the
        // sources still come before the packages.
        // What lies in each such folder, found once: every package names the same few folders,
        // and looking through every path for each package made 5,000 packages beside 5,000 files
        // take about 20 s. (Each package still gets an edge to each file in those folders.)
        var insideFolder: [String: [Int]] = [:]
        for (index, item) in unique.enumerated() {
            for folder in item.resource.implicitFolderDependencies {
                if insideFolder[folder] == nil {
                    insideFolder[folder] = byPath.filter { $0.key == folder || $0.key.hasPrefix(folder + "/") }.map(\.value).sorted()
                }
                for target in insideFolder[folder]! where target != index && !Self.reaches(from: target, to: index, dependencies) {
                    dependencies[index].append(target)
                }
            }
        }

        for index in dependencies.indices where dependencies[index].count > 1 {
            var distinct: [Int] = []
            for target in dependencies[index] where !distinct.contains(target) { distinct.append(target) }
            dependencies[index] = distinct
        }
        var (order, cycle) = dependencyOrder(dependencies)
        if let cycle {
            // A cycle through 100,000 resources would be a line of megabytes (and the agent keeps
            // the first problems as the reason it refuses a commit): its start and its end.
            let name = { (index: Int) in "\(unique[index].id) (\(unique[index].nameLocation))" }
            var names = cycle.count <= Self.cycleShown ? cycle.map(name)
                : cycle.prefix(Self.cycleShown - 2).map(name) + ["… \(cycle.count - Self.cycleShown + 1) more …", name(cycle.last!)]
            names.append(unique[cycle[0]].id.description)
            diagnostics.error("dependency cycle (each needs the next): " + names.joined(separator: " → "), at: unique[cycle[0]].nameLocation)
        }
        guard diagnostics.isEmpty else { throw ConfigurationError(diagnostics.sorted) }
        if !managesTend.isEmpty { order = Self.last(managesTend, of: order, dependencies) }

        var positionInOrder = [Int](repeating: 0, count: unique.count)
        for (position, index) in order.enumerated() { positionInOrder[index] = position }
        return Catalog(ordered: order.map { index in
            Entry(id: unique[index].id, location: unique[index].nameLocation, instance: unique[index].instance,
                  dependencies: dependencies[index].map { unique[$0].id },
                  dependencyPositions: dependencies[index].map { positionInOrder[$0] },
                  notify: notifies[index], refreshes: refreshes[index], resource: unique[index].resource, path: unique[index].path, paths: unique[index].paths)
        })
    }

    /// Decodes every declaration with its provider; large catalogs on several threads, each on
    /// its own contiguous slice with its own diagnostics, merged in declaration order.
    private static func decode(_ declarations: [ResourceDeclaration], providers: ProviderSet, snapshot: any Snapshot,
                               variables: TemplateVariables) -> ([Declared], Diagnostics) {
        let slices = ParallelSlices.map(declarations.count, minimum: 1024) { _, range in
            var context = DecodeContext(snapshot: snapshot, variables: variables)
            var bound: [Declared] = []
            bound.reserveCapacity(range.count)
            for declaration in declarations[range] {
                let start = context.diagnostics.all.count
                // A problem in what a loop or component expanded names the item too.
                defer { context.diagnostics.mark(from: start, via: declaration.nameLocation.via) }
                if let resource = providers.bind(declaration, context: &context) {
                    bound.append(Declared(resource: resource, id: resource.id, path: resource.path, paths: resource.paths,
                                          nameLocation: declaration.nameLocation, instance: declaration.instance, requires: declaration.requires, notify: declaration.notify))
                }
            }
            return (bound, context.diagnostics)
        }
        var bound: [Declared] = []
        bound.reserveCapacity(declarations.count)
        var diagnostics = Diagnostics()
        for (slice, found) in slices {
            bound.append(contentsOf: slice)
            diagnostics.append(contentsOf: found)
        }
        return (bound, diagnostics)
    }

    /// What the graph needs of one decoded declaration; its id and paths are read once, while
    /// decoding on several threads, not at each of the graph's many uses. A class: building the
    /// graph passes each around several times, and copying its seven fields each time was a
    /// tenth of loading 10,000 resources.
    private final class Declared: Sendable {
        let resource: any BoundResource
        let id: ResourceID
        let path: String?
        let paths: [String]
        let nameLocation: SourceLocation
        let instance: String?
        let requires: [Located<String>]
        let notify: [NotifyTarget]

        init(resource: any BoundResource, id: ResourceID, path: String?, paths: [String], nameLocation: SourceLocation,
             instance: String?, requires: [Located<String>], notify: [NotifyTarget]) {
            self.resource = resource
            self.instance = instance
            self.id = id
            self.path = path
            self.paths = paths
            self.nameLocation = nameLocation
            self.requires = requires
            self.notify = notify
        }
    }

    /// `order` with `moved`, and everything that depends on them, at its end, each part in the
    /// order it had: what manages tend itself is applied once the rest of the run is done, so that
    /// a restart of the agent it causes cuts nothing short. Still a dependency order: nothing left
    /// in front depends on what moved.
    private static func last(_ moved: [Int], of order: [Int], _ dependencies: [[Int]]) -> [Int] {
        var late = [Bool](repeating: false, count: dependencies.count)
        for index in moved { late[index] = true }
        // In dependency order, a resource's dependencies are decided before it is.
        for index in order where !late[index] && dependencies[index].contains(where: { late[$0] }) { late[index] = true }
        return order.filter { !late[$0] } + order.filter { late[$0] }
    }

    /// Whether `start` depends on `goal`, directly or through others.
    private static func reaches(from start: Int, to goal: Int, _ dependencies: [[Int]]) -> Bool {
        var seen: Set<Int> = [start]
        var stack = [start]
        while let next = stack.popLast() {
            if next == goal { return true }
            for dependency in dependencies[next] where seen.insert(dependency).inserted { stack.append(dependency) }
        }
        return false
    }

    /// Resources in declaration order, each preceded by what it depends on that has not come yet
    /// (a depth-first walk, as Puppet orders its catalog). Returns the first cycle found, if any,
    /// starting at its earliest declared resource, each member needing the next.
    private static func dependencyOrder(_ dependencies: [[Int]]) -> (order: [Int], cycle: [Int]?) {
        enum Mark { case new, visiting, done }
        var marks = [Mark](repeating: .new, count: dependencies.count)
        var order: [Int] = []
        order.reserveCapacity(dependencies.count)
        for start in dependencies.indices where marks[start] == .new {
            // Each frame: a resource and how many of its dependencies have been looked at.
            var stack = [(node: start, next: 0)]
            marks[start] = .visiting
            while let (node, next) = stack.last {
                guard next < dependencies[node].count else {
                    marks[node] = .done
                    order.append(node)
                    stack.removeLast()
                    continue
                }
                stack[stack.count - 1].next += 1
                let dependency = dependencies[node][next]
                switch marks[dependency] {
                case .new:
                    marks[dependency] = .visiting
                    stack.append((dependency, 0))
                case .visiting:
                    let cycle = stack.map(\.node).drop { $0 != dependency }
                    let first = cycle.firstIndex(of: cycle.min()!)!
                    return (order, Array(cycle[first...] + cycle[..<first]))
                case .done:
                    break
                }
            }
        }
        return (order, nil)
    }
}
