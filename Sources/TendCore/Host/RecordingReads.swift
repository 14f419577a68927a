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
