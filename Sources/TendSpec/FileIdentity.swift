internal import Glibc

/// Which file, and which version of it: device, inode, size and change time. A file replaced by
/// renaming has a new identity; one written in place changes its size or its change time. What
/// was decoded from a file is kept as long as its identity stays (`StateStore.read`, agent.yaml).
public struct FileIdentity: Hashable, Sendable {
    private let fields: [UInt64]

    /// The identity of the file open at `descriptor`. The corresponding C function is `fstat`.
    public init?(descriptor: Int32) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        self.init(info)
    }

    /// The identity of the file at `path` now, links followed; nil when there is none.
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }

    private init(_ info: stat) {
        fields = [UInt64(info.st_dev), UInt64(info.st_ino), UInt64(info.st_size), UInt64(info.st_ctim.tv_sec), UInt64(info.st_ctim.tv_nsec)]
    }
}
