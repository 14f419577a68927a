/// A recorded snapshot's answers; what it holds nothing of is taken as absent, and noted.
final class ReplayedReads: HostReads {
    let snapshot: HostSnapshot
    /// What was asked that the snapshot holds nothing of: paths, `user NAME`, `group NAME`.
    private(set) var unrecorded: Set<String> = []

    init(_ snapshot: HostSnapshot) {
        self.snapshot = snapshot
    }

    /// The recorded entry of `path`; nil (noted in `unrecorded`) when the snapshot does not hold it.
    private func replayed(_ path: String) -> HostSnapshot.Path? {
        guard let entry = snapshot.paths[path] else {
            unrecorded.insert(path)
            return nil
        }
        return entry
    }

    private func notInSnapshot(_ path: String, _ what: String) -> HostError {
        HostError(path: path, message: "\(what) is not in the snapshot")
    }

    func status(_ path: String) throws(HostError) -> FileStatus? {
        replayed(path)?.status
    }

    func read(_ path: String) throws(HostError) -> [UInt8] {
        guard let entry = replayed(path), entry.status != nil else { throw HostError(path: path, message: "no such file or directory") }
        guard let text = entry.text else { throw notInSnapshot(path, entry.digest == nil ? "its content" : "its content (only its digest)") }
        return Array(text)
    }

    func readLink(_ path: String) throws(HostError) -> String {
        guard let link = replayed(path)?.link else { throw notInSnapshot(path, "the link's target") }
        return link
    }

    func entries(of path: String) throws(HostError) -> [String] {
        guard let entries = replayed(path)?.entries else { throw notInSnapshot(path, "the folder's listing") }
        return entries
    }

    func nssID(_ name: String, user: Bool) -> UInt32? {
        guard let recorded = user ? snapshot.nssUsers[name] : snapshot.nssGroups[name] else {
            unrecorded.insert((user ? "user " : "group ") + name)
            return nil
        }
        return recorded
    }
}
