import FoundationEssentials
public import TendSpec
internal import Glibc

/// The last commit applied from each source, kept in the state directory, so that a source that
/// goes back in time (history rewritten, a stale mirror) is noticed.
public struct AppliedCommits: Sendable {
    public let source: GitSource

    public init(source: GitSource) {
        self.source = source
    }

    private var file: String {
        source.stateDirectory + "/applied/" + (source.cachePath.split(separator: "/").last.map(String.init) ?? "source") + (source.path.map { "-" + $0.replacing("/", with: "_") } ?? "")
    }

    /// The commit last applied from this source, if any.
    public var last: String? {
        FileManager.default.contents(atPath: file).map { String(decoding: $0, as: UTF8.self).trimmingWhitespace() }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Refuses `snapshot` unless it is the last applied commit or descends from it.
    public func checkForward(_ snapshot: GitSnapshot) throws(GitSourceError) {
        guard let last, let previous = GitObjectID(hex: last) else { return }
        let forward: Bool
        do {
            forward = try snapshot.repository.isSameOrDescendant(snapshot.commit.id, of: previous)
        } catch {
            throw GitSourceError(.refused, "commit \(snapshot.commit.id.short) cannot be checked against the last applied commit \(previous.short) (\(error.message)); --allow-rewind applies it anyway")
        }
        guard forward else {
            throw GitSourceError(.refused, "commit \(snapshot.commit.id.short) does not descend from \(previous.short), the last commit applied from \(source.url): history was rewritten or the mirror is stale. --allow-rewind applies it anyway")
        }
    }

    /// Records `snapshot`'s commit as the last applied, atomically, in a folder only root enters.
    public func record(_ snapshot: GitSnapshot) throws(AtomicFileError) {
        try PrivateDirectory.prepare(source.stateDirectory)
        try PrivateDirectory.prepare(source.stateDirectory + "/applied")
        try AtomicFile.write(Array((snapshot.commit.id.description + "\n").utf8), toPath: file, mode: 0o600)
    }
}
