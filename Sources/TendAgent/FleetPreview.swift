public import FoundationEssentials
import TendCore
import TendSpec

/// The plan of one commit for each host of a fleet, from the hosts' snapshots (`tend snapshot`)
/// rather than from the hosts: `tend plan --snapshots DIR`.
public struct FleetPreview: Sendable {
    /// One host's preview.
    public struct Host: Sendable, Encodable {
        public enum Result: String, Sendable, Encodable {
            case unchanged, changes, fails
        }

        /// One resource that changes (`action`) or cannot be planned (`message`).
        public struct Resource: Sendable, Encodable, Hashable {
            public var resource: String
            public var action: String?
            public var message: String?
        }

        public var snapshot: String
        public var hostname: String
        public var result: Result
        public var changes: [Resource] = []
        public var errors: [Resource] = []
        /// Why no plan could be made (a snapshot that cannot be read, a configuration invalid
        /// for this host's facts).
        public var failure: String?
        /// What the snapshot held nothing of, which the plan took as absent.
        public var assumedAbsent: [String] = []

        enum CodingKeys: String, CodingKey {
            case snapshot, hostname, result, changes, errors, failure, assumedAbsent = "assumed_absent"
        }

        /// The preview of the host of `file` from the result of planning for it.
        init(_ path: String, file: HostSnapshotFile, result: ReconcileResult) {
            snapshot = path
            hostname = file.facts.hostname
            assumedAbsent = result.assumedAbsent
            if let failure = result.failure {
                self.result = .fails
                self.failure = ([failure.message] + failure.diagnostics.prefix(5).map(\.description)).joined(separator: "; ")
                return
            }
            for step in result.plan?.steps ?? [] {
                if let change = step.change {
                    changes.append(Resource(resource: step.id.description, action: change.action.rawValue))
                } else {
                    errors.append(Resource(resource: step.id.description, message: step.error))
                }
            }
            self.result = !errors.isEmpty ? .fails : changes.isEmpty ? .unchanged : .changes
        }

        init(unreadable path: String, name: String, error: HostSnapshotFileError) {
            snapshot = path
            hostname = name
            result = .fails
            failure = error.message
        }
    }

    /// Every host's preview, and the source and commit they were planned at.
    public var hosts: [Host]
    public var source: String
    public var commit: String?

    /// Plans `reconciler`'s configuration for each snapshot in `folder` (its `*.json` files, by
    /// name). The source is opened once: every host is planned at the commit the first plan read.
    public static func of(_ folder: String, reconciler: Reconciler, events: ReconcileEvents) async throws(HostSnapshotFileError) -> FleetPreview {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw HostSnapshotFileError(path: folder, message: "cannot read the folder of snapshots")
        }
        let files = names.filter { $0.hasSuffix(".json") }.sorted()
        guard !files.isEmpty else { throw HostSnapshotFileError(path: folder, message: "holds no snapshots (*.json files from tend snapshot)") }
        var reconciler = reconciler
        var preview = FleetPreview(hosts: [], source: "", commit: nil)
        for name in files {
            let path = folder + "/" + name
            let file: HostSnapshotFile
            do {
                file = try HostSnapshotFile.read(path)
            } catch {
                preview.hosts.append(Host(unreadable: path, name: name, error: error))
                continue
            }
            var planning = reconciler
            planning.identity.machineID = file.machineID
            let result = await planning.run(.preview(file), events: events)
            if preview.source.isEmpty, !result.sourceDescription.isEmpty { preview.source = result.sourceDescription }
            if reconciler.source.pinnedCommit == nil, let commit = result.commit {
                reconciler.source.pinnedCommit = commit
            }
            preview.hosts.append(Host(path, file: file, result: result))
        }
        if preview.source.isEmpty { preview.source = reconciler.source.description }
        preview.commit = reconciler.source.pinnedCommit
        return preview
    }
}
