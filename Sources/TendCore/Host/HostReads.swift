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
