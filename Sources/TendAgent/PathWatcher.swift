import Dispatch
import Glibc
import Synchronization
import SystemPackage
import TendCore

/// Tells the agent, the moment it happens, that a path it manages changed: inotify on each path
/// and on its folder, read on a thread of its own.
///
/// The folder's watch sees what happens to the name (a write, a change of mode or owner, a
/// deletion, a rename over it, a re-creation); the path's own watch sees its inode changed through
/// another name (a hard link). A replaced file is a new inode: `watch` is called again after each
/// repair, and adding a watch that exists costs one call that changes nothing. Events on names no
/// resource manages (tend's own temporary files among them) are dropped; a queue overflow asks for
/// a full check, since events were lost.
final class PathWatcher: Sendable {
    /// What the agent is told: the resources whose paths changed, that events were lost, or that
    /// the watcher stopped for good (and why).
    enum Event: Sendable {
        case changed(Set<ResourceID>)
        case overflow
        /// poll(2) failed with this errno.
        case failed(Errno)
    }

    private struct Watched {
        /// By watch descriptor: the folder it watches, or the path whose inode it watches.
        var folders: [Int32: String] = [:]
        var inodes: [Int32: String] = [:]
        /// By folder, then entry name: the resources of that path.
        var names: [String: [String: [ResourceID]]] = [:]
        /// By path under the root: its resources.
        var resources: [String: [ResourceID]] = [:]
    }

    private let inotify: Int32
    /// Written to stop the thread.
    private let stopPipe: (read: Int32, write: Int32)
    private let watched = Mutex(Watched())
    private let deliver: @Sendable (Event) -> Void

    /// Starts the thread; throws when inotify cannot be used at all.
    static func start(deliver: @escaping @Sendable (Event) -> Void) throws(WatchError) -> PathWatcher {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw WatchError("inotify_init1: \(String(cString: strerror(errno)))") }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            close(fd)
            throw WatchError("pipe: \(String(cString: strerror(errno)))")
        }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let watcher = PathWatcher(inotify: fd, stopPipe: (pipeEnds[0], pipeEnds[1]), deliver: deliver)
        // A serial queue of its own is a thread of its own while the loop blocks in poll(2).
        DispatchQueue(label: "tend.watch.paths").async { watcher.readLoop() }
        return watcher
    }

    private init(inotify: Int32, stopPipe: (read: Int32, write: Int32), deliver: @escaping @Sendable (Event) -> Void) {
        self.inotify = inotify
        self.stopPipe = stopPipe
        self.deliver = deliver
    }

    /// The descriptors are closed only when nothing can use them any more: the loop holds the
    /// watcher while it runs, so `stop()` never writes to a number reused by another file.
    deinit {
        close(inotify)
        close(stopPipe.read)
        close(stopPipe.write)
    }

    /// Ends the thread.
    func stop() {
        var byte: UInt8 = 1
        _ = write(stopPipe.write, &byte, 1)
    }

    /// Watches `paths` (declared paths, each with its resources) under `root`, in addition to what
    /// is watched already; returns how many watches the kernel holds for them and, when the
    /// per-user limit (`fs.inotify.max_user_watches`) was reached, what to do about it.
    @discardableResult
    func watch(_ paths: [String: [ResourceID]], root: String) -> (count: Int, problem: String?) {
        var problem: String?
        let count = watched.withLock { watched -> Int in
            for (path, ids) in paths {
                watched.resources[path] = ids
                let folder = HostPath.parent(of: path) ?? "/"
                let name = String(path.split(separator: "/").last ?? "")
                watched.names[folder, default: [:]][name] = ids
            }
            // IN_MASK_ADD: a managed folder is watched both as a folder and as a path, one watch
            // of one inode, whose masks must add up rather than the second replace the first.
            let folderMask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE | IN_MODIFY
                                    | IN_DELETE_SELF | IN_MOVE_SELF) | UInt32(IN_ONLYDIR) | UInt32(IN_EXCL_UNLINK) | UInt32(IN_MASK_ADD)
            // A managed folder's own watch also sees entries come and go (an unmanaged file in a
            // folder with `purge: true`); for a file these bits never fire.
            let inodeMask = UInt32(IN_ATTRIB | IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)
                | UInt32(IN_DONT_FOLLOW) | UInt32(IN_EXCL_UNLINK) | UInt32(IN_MASK_ADD)
            func add(_ path: String, mask: UInt32) -> Int32? {
                let full = root == "/" ? path : root + path
                let wd = inotify_add_watch(inotify, full, mask)
                if wd < 0, errno == ENOSPC, problem == nil {
                    problem = "the inotify watch limit is reached (fs.inotify.max_user_watches): some managed paths are checked on the timer only; raise it with sysctl"
                }
                return wd >= 0 ? wd : nil
            }
            for folder in Set(paths.keys.map { HostPath.parent(of: $0) ?? "/" }) {
                if let wd = add(folder, mask: folderMask) { watched.folders[wd] = folder }
            }
            for path in paths.keys {
                if let wd = add(path, mask: inodeMask), watched.folders[wd] == nil { watched.inodes[wd] = path }
            }
            return watched.folders.count + watched.inodes.count
        }
        return (count, problem)
    }

    /// Forgets every watch (a new catalog is watched from scratch).
    func unwatchAll() {
        watched.withLock { watched in
            for wd in Array(watched.folders.keys) + Array(watched.inodes.keys) { inotify_rm_watch(inotify, wd) }
            watched = Watched()
        }
    }

    private func readLoop() {
        let size = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            guard poll(&fds, 2, -1) >= 0 || errno == EINTR else {
                deliver(.failed(Errno(rawValue: errno)))
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            var changed: Set<ResourceID> = []
            var overflow = false
            while true {
                let count = read(inotify, buffer, size)
                guard count > 0 else { break }
                var offset = 0
                while offset + MemoryLayout<inotify_event>.size <= count {
                    let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                    let nameStart = offset + MemoryLayout<inotify_event>.size
                    // The kernel never splits an event; a length past what was read would be a bug of ours.
                    guard nameStart + Int(event.len) <= count else { break }
                    let nameBytes = UnsafeRawBufferPointer(start: buffer + nameStart, count: Int(event.len))
                    let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                    offset = nameStart + Int(event.len)
                    if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                        overflow = true
                        continue
                    }
                    changed.formUnion(resources(for: event.wd, mask: event.mask, name: name))
                }
            }
            if overflow { deliver(.overflow) }
            if !changed.isEmpty { deliver(.changed(changed)) }
        }
    }

    private func resources(for wd: Int32, mask: UInt32, name: String) -> [ResourceID] {
        watched.withLock { watched -> [ResourceID] in
            if mask & UInt32(IN_IGNORED) != 0 {
                // The watch is gone (its inode deleted or its folder removed): the next `watch` adds it again.
                let path = watched.inodes.removeValue(forKey: wd) ?? watched.folders.removeValue(forKey: wd)
                return path.flatMap { watched.resources[$0] } ?? []
            }
            if let folder = watched.folders[wd] {
                if name.isEmpty {
                    // The folder itself was deleted or moved: everything in it, and itself if managed.
                    return (watched.names[folder]?.values.flatMap { $0 } ?? []) + (watched.resources[folder] ?? [])
                }
                return watched.names[folder]?[name] ?? []
            }
            if let path = watched.inodes[wd] { return watched.resources[path] ?? [] }
            return []
        }
    }
}

/// Why watching cannot be done; the agent then checks on its timer only.
struct WatchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
