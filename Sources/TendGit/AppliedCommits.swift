import FoundationEssentials
public import TendSpec
internal import Glibc

/// The last commit applied from each source to each root, kept in the state directory, so that a
/// source that goes back in time (history rewritten, a stale mirror) is noticed.
public struct AppliedCommits: Sendable {
    public let source: GitSource
    /// The root applied to: what was applied to an image root says nothing of the host itself.
    public let root: String

    public init(source: GitSource, root: String = "/") {
        self.source = source
        self.root = root
    }

    private var file: String {
        var name = (source.cachePath.split(separator: "/").last.map(String.init) ?? "source") + (source.path.map { "-" + $0.replacing("/", with: "_") } ?? "")
        if root != "/" {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in root.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            name += "-root-" + String(hash, radix: 16)
        }
        return source.stateDirectory + "/applied/" + name
    }

    /// Every commit recorded as last applied from `source` (any folder of it, to any root): the
    /// cache keeps them when it is packed (`GitRepository.repack`), even once no branch reaches
    /// them.
    static func all(of source: GitSource) -> [GitObjectID] {
        let folder = source.stateDirectory + "/applied"
        let prefix = source.cachePath.split(separator: "/").last.map(String.init) ?? "source"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix(prefix) }.compactMap { name in
            FileManager.default.contents(atPath: folder + "/" + name).flatMap { GitObjectID(hex: String(decoding: $0, as: UTF8.self).trimmingWhitespace()) }
        }
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
