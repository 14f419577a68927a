public import TendSpec
public import SystemPackage
import Synchronization
internal import Glibc

/// What the agent knows of the content of the files it manages without reading them again: for
/// each path, the status `lstat` gave (device, inode, size, modification and change times in
/// nanoseconds, mode, owner, group) when its content was last read and found to be what was
/// declared, with the digest of that content. A later check that finds the very same status
/// trusts the recorded content; any write moves the change time, so only changed files are read.
///
/// Git's index has the same problem and the same rule for *racy* entries: a file whose change
/// time lies within `racyMargin` of the moment it was read may be written again within the
/// same timestamp tick without its status changing, so it is not recorded, and the next check
/// reads it again. Only the agent keeps one (`tend plan` and `tend apply` trust nothing); it is
/// saved with the agent's records, atomically, and a missing or unreadable cache only means that
/// every file is read once more.
public final class StatCache: Sendable {
    public struct Entry: Sendable, Hashable {
        var device: UInt64
        var inode: UInt64
        var size: Int
        var modificationTime: Int64
        var changeTime: Int64
        var permissions: UInt32
        var owner: UInt32
        var group: UInt32
        /// The digest of the content (`StatCache.digest(of:)`).
        var digest: String

        init(_ status: FileStatus, digest: String) {
            device = status.device
            inode = status.inode
            size = status.size
            modificationTime = status.modificationTime
            changeTime = status.changeTime
            permissions = status.permissions
            owner = status.owner
            group = status.group
            self.digest = digest
        }

        init(device: UInt64, inode: UInt64, size: Int, modificationTime: Int64, changeTime: Int64,
             permissions: UInt32, owner: UInt32, group: UInt32, digest: String) {
            self.device = device
            self.inode = inode
            self.size = size
            self.modificationTime = modificationTime
            self.changeTime = changeTime
            self.permissions = permissions
            self.owner = owner
            self.group = group
            self.digest = digest
        }

        func matches(_ status: FileStatus) -> Bool {
            status.type == .regular && status.device == device && status.inode == inode && status.size == size
                && status.modificationTime == modificationTime && status.changeTime == changeTime
                && status.permissions == permissions && status.owner == owner && status.group == group
        }
    }

    /// A file changed this close to the moment it was read (or after it) is read again next time:
    /// two seconds, the coarsest timestamps a Linux filesystem keeps (vfat's, as on /boot/efi).
    public static let racyMargin: Int64 = 2_000_000_000

    private struct State {
        var entries: [String: Entry]
        var dirty = false
    }

    private let state: Mutex<State>

    public init() {
        state = Mutex(State(entries: [:]))
    }

    private init(entries: [String: Entry]) {
        state = Mutex(State(entries: entries))
    }

    /// The digest tend keeps for `content`.
    public static func digest(of content: [UInt8]) -> String {
        var digest = Digest()
        digest.add("content", content)
        return digest.finalize()
    }

    /// The digest recorded for the content of `path` when `status` is exactly what was recorded.
    public func trustedDigest(_ path: String, status: FileStatus) -> String? {
        state.withLock { state in
            guard let entry = state.entries[path], entry.matches(status) else { return nil }
            return entry.digest
        }
    }

    /// Records that `path`, found with `status` just before its content was read at `readAt`
    /// (`now()`), holds content of `digest`; a racy status is forgotten instead.
    public func record(_ path: String, status: FileStatus, digest: String, readAt: Int64) {
        let racy = status.changeTime >= readAt - Self.racyMargin || status.modificationTime >= readAt - Self.racyMargin
        let entry = racy ? nil : Entry(status, digest: digest)
        state.withLock { state in
            guard state.entries[path] != entry else { return }
            state.entries[path] = entry
            state.dirty = true
        }
    }

    /// Forgets what was recorded of `path` (its content is not what was declared).
    public func forget(_ path: String) {
        state.withLock { state in
            if state.entries.removeValue(forKey: path) != nil { state.dirty = true }
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }

    /// The wall clock in nanoseconds, as file times are kept.
    public static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    // MARK: On disk

    private static let header = "tend stat cache 1"

    /// The cache saved at `path`; empty when it is missing, unreadable or of another format.
    public static func load(from path: String) -> StatCache {
        guard let fd = try? FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .noFollow]) else { return StatCache() }
        defer { try? fd.close() }
        guard let bytes = try? fd.readToEnd(sizeHint: 1 << 20, limit: 256 << 20),
              let text = String(validating: bytes, as: UTF8.self) else { return StatCache() }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard lines.popFirst() == Substring(header) else { return StatCache() }
        var entries: [String: Entry] = [:]
        entries.reserveCapacity(lines.count)
        for line in lines {
            // digest device inode size mtime ctime mode uid gid path (the path last: it may hold spaces)
            let fields = line.split(separator: " ", maxSplits: 9, omittingEmptySubsequences: false)
            guard fields.count == 10, let device = UInt64(fields[1]), let inode = UInt64(fields[2]), let size = Int(fields[3]),
                  let mtime = Int64(fields[4]), let ctime = Int64(fields[5]), let mode = UInt32(fields[6], radix: 8),
                  let uid = UInt32(fields[7]), let gid = UInt32(fields[8]), fields[0].utf8.count == 64 else { return StatCache() }
            entries[String(fields[9])] = Entry(device: device, inode: inode, size: size, modificationTime: mtime, changeTime: ctime,
                                               permissions: mode, owner: uid, group: gid, digest: String(fields[0]))
        }
        return StatCache(entries: entries)
    }

    /// Writes the cache to `path` (mode 0600, atomically) when it changed since it was loaded or
    /// last saved.
    public func save(to path: String) throws(AtomicFileError) {
        guard let entries = state.withLock({ state -> [String: Entry]? in state.dirty ? state.entries : nil }) else { return }
        var text = Self.header + "\n"
        for (path, e) in entries.sorted(by: { $0.key < $1.key }) {
            text += "\(e.digest) \(e.device) \(e.inode) \(e.size) \(e.modificationTime) \(e.changeTime) \(String(e.permissions, radix: 8)) \(e.owner) \(e.group) \(path)\n"
        }
        try AtomicFile.write(Array(text.utf8), toPath: path, mode: 0o600)
        state.withLock { $0.dirty = false }
    }
}
