public import TendCore
public import TendSpec

/// `symlink`: a symbolic link at a path pointing at `target`, or its absence.
///
/// The link is made under a temporary name and renamed into place, so it is never missing while
/// it changes target. The target is stored as written and never resolved or followed.
public struct SymlinkProvider: ResourceProvider {
    public init() {}

    public var kind: String { "symlink" }

    public var observesInParallel: Bool { true }
    public var stagesWrites: Bool { true }

    public struct Desired: DesiredState {
        var attributes: PathAttributes
        var target: String?

        public var id: ResourceID { ResourceID(kind: "symlink", name: attributes.path) }
        public var path: String? { attributes.path }
        public var isRemoval: Bool { attributes.state == .absent }
        /// A link in place of a folder leads whatever is below it elsewhere.
        public var reachesBelow: Bool { true }

        public func digest(into digest: inout Digest) {
            attributes.digest(into: &digest)
            digest.add("target", target)
        }
    }

    public struct Observed: ObservedState {
        var status: FileStatus?
        var target: String?

        public func fingerprint(into digest: inout Digest) {
            status?.fingerprint(into: &digest)
            digest.add("target", target)
        }
    }

    public func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired? {
        var declaration = declaration
        guard let attributes = PathAttributes(&declaration, ownership: false, context: &context) else { return nil }
        defer { declaration.attributes.finish(&context.diagnostics, context: "a symlink") }
        let targetNode = declaration.attributes.take("target")
        let target = targetNode?.string("'target'", &context.diagnostics)
        if let targetNode, let target {
            if target.isEmpty {
                context.diagnostics.error("'target' must not be empty", at: targetNode.location)
            } else if Printable.hasControlCharacters(target) {
                context.diagnostics.error("'target' \(Printable.quoted(target)) contains a control character", at: targetNode.location)
            } else if target.utf8.count > HostPath.maximumPathLength {
                context.diagnostics.error("'target' is longer than \(HostPath.maximumPathLength) bytes", at: targetNode.location)
            }
        }
        if attributes.state == .present, targetNode == nil {
            context.diagnostics.error("a symlink needs 'target:', the path it points to", at: declaration.nameLocation)
            return nil
        }
        return Desired(attributes: attributes, target: target)
    }

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        let path = desired.attributes.path
        let status = try host.status(path)
        switch status?.type {
        case .symlink?:
            return Observed(status: status, target: try host.readLink(path))
        case let type? where !desired.attributes.force:
            throw HostError(path: path, message: "is \(type.article), not a symbolic link; set 'force: true' to replace it")
        case .other?:
            throw HostError(path: path, message: "is a special file (device, socket or FIFO); tend will not replace it")
        default:
            return Observed(status: status, target: nil)
        }
    }

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        guard desired.attributes.state == .present, let target = desired.target else {
            guard let status = observed.status else { return nil }
            return Change(.delete, attributes: [AttributeChange("target", before: observed.target, after: nil)],
                          notes: status.type == .symlink ? [] : ["removes \(status.type.article)"], found: status.type)
        }
        guard let status = observed.status else {
            return Change(.create, attributes: [AttributeChange("target", before: nil, after: target)])
        }
        guard status.type == .symlink else {
            return Change(.replace, attributes: [AttributeChange("target", before: nil, after: target)],
                          notes: ["replaces \(status.type.article)\(status.type == .directory ? " and everything in it" : "")"], found: status.type)
        }
        guard observed.target != target else { return nil }
        return Change(.update, attributes: [AttributeChange("target", before: observed.target, after: target)], found: .symlink)
    }

    public func apply(_ change: Change, desired: Desired, host: HostWriter) throws(HostError) {
        let path = desired.attributes.path
        switch change.action {
        case .delete:
            let found = change.found ?? .symlink
            try host.remove(path, expected: found, recursive: found == .directory && desired.attributes.force)
        default:
            var replacing = change.action == .create ? nil : change.found
            if replacing == .directory {
                try host.remove(path, expected: .directory, recursive: true)
                replacing = nil
            }
            try host.makeParentDirectories(of: path)
            try host.makeSymlink(path, target: desired.target ?? "", replacing: replacing)
        }
    }
}
