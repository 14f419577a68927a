import FoundationEssentials
import Synchronization

extension HostSnapshot {
    /// Builds a snapshot from the reads of one `HostReader` (which may be used from one thread at
    /// a time, as every reader is).
    public final class Recorder: Sendable {
        private let state = Mutex(HostSnapshot())
        /// Paths whose contents are kept as digests whatever their mode: those of resources
        /// declared `sensitive` (`Catalog.sensitivePaths`).
        private let hidden = Mutex(Set<String>())

        public init() {
            update { $0.taken = Date() }
        }

        /// Paths whose contents are not kept at all: secrets (`Catalog.secretPaths`).
        private let omitted = Mutex(Set<String>())

        /// Keeps only digests of the contents at `paths` from now on.
        public func hide(_ paths: Set<String>) {
            hidden.withLock { $0.formUnion(paths) }
        }

        /// Keeps nothing of the contents at `paths` from now on, and forgets what was kept.
        public func omit(_ paths: Set<String>) {
            omitted.withLock { $0.formUnion(paths) }
            update { snapshot in
                for path in paths {
                    snapshot.paths[path]?.text = nil
                    snapshot.paths[path]?.digest = nil
                }
            }
        }

        /// What was recorded so far.
        public var snapshot: HostSnapshot { state.withLock { $0 } }

        func update(_ change: (inout HostSnapshot) -> Void) {
            state.withLock { change(&$0) }
        }

        func status(_ path: String, _ status: FileStatus?) {
            self.path(path) { $0.status = status }
        }

        func path(_ path: String, _ change: (inout Path) -> Void) {
            update { change(&$0.paths[path, default: Path(status: nil)]) }
        }

        /// Records a file's content as it may be kept: whole when anyone on the host may read it,
        /// it is not declared sensitive and it is at most `HostSnapshot.largestText`; else its
        /// digest (or its redacted lines, for the shadow files).
        func content(_ path: String, _ bytes: [UInt8], status: FileStatus?, othersMayRead: Bool) {
            self.path(path) { entry in
                // A file read without its status asked first (os-release) is found as it was.
                entry.status = entry.status ?? status
                if omitted.withLock({ $0.contains(path) }) {
                    return
                } else if HostSnapshot.redactedFiles.contains(path) {
                    entry.text = Data(HostSnapshot.redacted(bytes))
                } else if othersMayRead, bytes.count <= HostSnapshot.largestText(path), !hidden.withLock({ $0.contains(path) }) {
                    entry.text = Data(bytes)
                } else {
                    entry.digest = StatCache.digest(of: bytes)
                }
            }
        }
    }
}
