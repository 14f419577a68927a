/// Where a `HostReader`'s answers come from: the filesystem under its root (`HostFiles`), the
/// same while what it says is recorded for a snapshot (`RecordingReads`, `tend snapshot`), or a
/// recorded snapshot (`ReplayedReads`, `tend plan --snapshot`). The reader asks without knowing
/// which, so no read of it branches on the mode, and neither does a provider.
protocol HostReads: AnyObject {
    /// `lstat` of `path`; nil when it or one of its folders does not exist.
    func status(_ path: String) throws(HostError) -> FileStatus?
    /// The bytes of the regular file at `path`.
    func read(_ path: String) throws(HostError) -> [UInt8]
    /// The target of the symbolic link at `path`.
    func readLink(_ path: String) throws(HostError) -> String
    /// The names in the folder at `path`, sorted, without `.` and `..`.
    func entries(of path: String) throws(HostError) -> [String]
    /// The id NSS gives the user (or group) `name`: for the root "/" only, for accounts that are
    /// not in its files (LDAP, sssd).
    func nssID(_ name: String, user: Bool) -> UInt32?
}

/// The filesystem's answers, each recorded as it is given (`HostSnapshot.Recorder`).
final class RecordingReads: HostReads {
    let files: HostFiles
    let recorder: HostSnapshot.Recorder

    init(_ files: HostFiles, recorder: HostSnapshot.Recorder) {
        self.files = files
        self.recorder = recorder
    }

    func status(_ path: String) throws(HostError) -> FileStatus? {
        let found = try files.status(path)
        recorder.status(path, found)
        return found
    }

    func read(_ path: String) throws(HostError) -> [UInt8] {
        let (bytes, status) = try files.readWithStatus(path)
        recorder.content(path, bytes, status: status, othersMayRead: files.othersMayRead(path, status: status))
        return bytes
    }

    func readLink(_ path: String) throws(HostError) -> String {
        let target = try files.readLink(path)
        recorder.path(path) { $0.link = target }
        return target
    }

    func entries(of path: String) throws(HostError) -> [String] {
        let names = try files.entries(of: path)
        recorder.path(path) { $0.entries = names }
        return names
    }

    func nssID(_ name: String, user: Bool) -> UInt32? {
        let id = files.nssID(name, user: user)
        recorder.update { snapshot in
            if user { snapshot.nssUsers.updateValue(id, forKey: name) } else { snapshot.nssGroups.updateValue(id, forKey: name) }
        }
        return id
    }
}

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
