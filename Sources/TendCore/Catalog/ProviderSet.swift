public import TendSpec

/// The providers a program knows, by kind. Built by the program and handed down; there is no
/// global registry.
public struct ProviderSet: Sendable {
    private let providers: [String: any ResourceProvider]

    public init(_ providers: [any ResourceProvider]) {
        var byKind: [String: any ResourceProvider] = [:]
        for provider in providers { byKind[provider.kind] = provider }
        self.providers = byKind
    }

    /// The kind keys that manifests may use.
    public var kinds: Set<String> { Set(providers.keys) }

    func provider(for kind: String) -> (any ResourceProvider)? { providers[kind] }

    /// The problems in `declarations` that their providers find when decoding them one by one.
    public func check(_ declarations: [ResourceDeclaration], snapshot: any Snapshot, variables: TemplateVariables = TemplateVariables()) -> [Diagnostic] {
        var context = DecodeContext(snapshot: snapshot, variables: variables)
        for declaration in declarations {
            let start = context.diagnostics.all.count
            _ = bind(declaration, context: &context)
            context.diagnostics.mark(from: start, via: declaration.nameLocation.via)
        }
        return context.diagnostics.all
    }

    /// Decodes one declaration with its kind's provider.
    func bind(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> (any BoundResource)? {
        guard let provider = providers[declaration.kind] else { return nil }
        return Self.bind(provider, declaration, &context)
    }

    private static func bind<P: ResourceProvider>(_ provider: P, _ declaration: ResourceDeclaration, _ context: inout DecodeContext) -> (any BoundResource)? {
        provider.decode(declaration, context: &context).map { Bound(provider: provider, desired: $0) }
    }
}

/// A provider and one desired state, with the provider's associated types erased so that a
/// catalog can hold resources of every kind.
protocol BoundResource: Sendable {
    var id: ResourceID { get }
    var path: String? { get }
    var paths: [String] { get }
    var implicitDependencies: [ResourceID] { get }
    var implicitFolderDependencies: [String] { get }
    var isRemoval: Bool { get }
    var reachesBelow: Bool { get }
    var isSensitive: Bool { get }
    var holdsSecret: Bool { get }
    var lacksSecret: Bool { get }
    var acceptsNotifications: Bool { get }
    var observesInParallel: Bool { get }
    var appliesInBatches: Bool { get }
    var stagesWrites: Bool { get }
    var changesOtherResources: Bool { get }
    var prefetches: Bool { get }
    /// What wakes the agent for this resource; empty when its provider does not watch.
    var watches: [Watch] { get }
    /// Applies this resource's change together with those of `others`, which are of the same kind.
    func apply(batch: [(change: Change, resource: any BoundResource)], host: HostWriter) async -> [StepFailure?]
    /// Prefetches for this resource and `others` of the same kind.
    func prefetch(with others: [any BoundResource], host: HostReader) async throws(HostError)
    /// Refreshes caches for this resource and `others` of the same kind.
    func refresh(with others: [any BoundResource], host: HostWriter) async throws(HostError)
    func desiredDigest() -> String
    func observe(_ host: HostReader) throws(HostError) -> any ObservedState
    func plan(_ observed: any ObservedState, context: PlanContext) -> Change?
    func notified(by notifiers: [Notifier], observed: any ObservedState, planned: Change?) -> Change?
    func apply(_ change: Change, host: HostWriter) async throws(HostError)
    /// What a notification may ask of it besides a restart, or nil if it cannot be notified.
    var refreshes: Set<Refresh>? { get }
}

struct Bound<P: ResourceProvider>: BoundResource {
    let provider: P
    let desired: P.Desired

    var id: ResourceID { desired.id }
    var path: String? { desired.path }
    var paths: [String] { desired.paths }
    var implicitDependencies: [ResourceID] { desired.implicitDependencies }
    var implicitFolderDependencies: [String] { desired.implicitFolderDependencies }
    var isRemoval: Bool { desired.isRemoval }
    var reachesBelow: Bool { desired.reachesBelow }
    var isSensitive: Bool { desired.isSensitive }
    var holdsSecret: Bool { desired.holdsSecret }
    var lacksSecret: Bool { desired.lacksSecret }
    var acceptsNotifications: Bool { provider.acceptsNotifications }
    var refreshes: Set<Refresh>? { provider.acceptsNotifications ? provider.refreshes : nil }
    var observesInParallel: Bool { provider.observesInParallel }
    var appliesInBatches: Bool { provider.appliesInBatches }
    var stagesWrites: Bool { provider.stagesWrites }
    var changesOtherResources: Bool { provider.changesOtherResources }
    var prefetches: Bool { provider.prefetches }
    var watches: [Watch] {
        guard let watching = provider as? any WatchingProvider else { return [] }
        return watches(of: watching)
    }

    private func watches<W: WatchingProvider>(of provider: W) -> [Watch] {
        guard let desired = desired as? W.Desired else { return [] }
        return provider.watches(desired)
    }

    func prefetch(with others: [any BoundResource], host: HostReader) async throws(HostError) {
        let all = others.compactMap { ($0 as? Bound<P>)?.desired }
        try await provider.prefetch(all, host: host)
    }

    func refresh(with others: [any BoundResource], host: HostWriter) async throws(HostError) {
        try await provider.refresh(others.compactMap { ($0 as? Bound<P>)?.desired }, host: host)
    }

    func apply(batch: [(change: Change, resource: any BoundResource)], host: HostWriter) async -> [StepFailure?] {
        let items = batch.map { item -> (change: Change, desired: P.Desired) in
            guard let bound = item.resource as? Bound<P> else {
                preconditionFailure("\(item.resource.id) was batched with \(provider.kind) resources")
            }
            return (item.change, bound.desired)
        }
        return await provider.apply(batch: items, host: host)
    }

    func desiredDigest() -> String {
        var digest = Digest()
        digest.add("kind", provider.kind)
        desired.digest(into: &digest)
        return digest.finalize()
    }

    func observe(_ host: HostReader) throws(HostError) -> any ObservedState {
        try provider.observe(desired, host: host)
    }

    func plan(_ observed: any ObservedState, context: PlanContext) -> Change? {
        guard let observed = observed as? P.Observed else {
            preconditionFailure("\(id): an observation of another kind was handed to the \(provider.kind) provider")
        }
        return provider.plan(desired, observed: observed, context: context)
    }

    func notified(by notifiers: [Notifier], observed: any ObservedState, planned: Change?) -> Change? {
        guard let observed = observed as? P.Observed else {
            preconditionFailure("\(id): an observation of another kind was handed to the \(provider.kind) provider")
        }
        return provider.notified(by: notifiers, desired: desired, observed: observed, planned: planned)
    }

    func apply(_ change: Change, host: HostWriter) async throws(HostError) {
        try await provider.apply(change, desired: desired, host: host)
    }
}
