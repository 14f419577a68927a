import TendSpec

/// How much of a repository tend unpacks: what one commit's tree may hold, checked from object
/// headers before any file of it is read, so that a small pack that inflates to gigabytes (a
/// sparse file, a million tiny files) is refused by its size, not found out by the memory or the
/// time it takes.
public struct CommitLimits: Sendable, Hashable {
    /// The largest file (`SnapshotLimits.fileSize`).
    public var fileSize = SnapshotLimits.fileSize
    /// The most entries (files, folders, links) in the whole tree.
    public var entries = CommitLimits.defaultEntries
    /// The most bytes its files may hold together (`fetch_max_size`).
    public var totalBytes: Int
    /// The deepest folder.
    public var depth = 256

    /// 50,000: a configuration repository of ten thousand files fits five times over.
    public static let defaultEntries = 50_000

    public init(totalBytes: Int) {
        self.totalBytes = totalBytes
    }
}
