public import TendGit
import TendSpec

/// Where the configuration comes from, and how to trust it.
public struct SourceSpec: Sendable {
    public enum Location: Sendable {
        case folder(String)
        case git(url: String, ref: String?, path: String?)
    }

    public var location: Location
    /// Where the Git caches and the records of applied commits live.
    public var stateDirectory: String
    public var credentials: GitCredentials
    public var fetchTimeout: Duration
    /// The most bytes one fetch may bring.
    public var fetchMaxBytes: Int
    /// Use the commit in the cache; fetch nothing.
    public var offline: Bool
    /// Refuse a commit without a good SSH signature by a key of this allowed-signers file.
    public var allowedSigners: String?
    /// Refuse a commit without a good OpenPGP signature by a key of this keyring.
    public var openPGPKeyring: String?
    /// Apply a commit that does not descend from the last applied one.
    public var allowRewind: Bool
    /// Use exactly this commit from the cache, fetching nothing (the agent's last good commit
    /// while a newer one is refused or the remote cannot be reached).
    public var pinnedCommit: String?

    public init(location: Location, stateDirectory: String, credentials: GitCredentials = GitCredentials(), fetchTimeout: Duration = .seconds(60),
                fetchMaxBytes: Int = GitSource.defaultMaximumFetchBytes, offline: Bool = false, allowedSigners: String? = nil,
                openPGPKeyring: String? = nil, allowRewind: Bool = false) {
        self.location = location
        self.stateDirectory = stateDirectory
        self.credentials = credentials
        self.fetchTimeout = fetchTimeout
        self.fetchMaxBytes = fetchMaxBytes
        self.offline = offline
        self.allowedSigners = allowedSigners
        self.openPGPKeyring = openPGPKeyring
        self.allowRewind = allowRewind
    }
}

extension SourceSpec: CustomStringConvertible {
    /// The folder, or `URL (ref) //path`.
    public var description: String {
        switch location {
        case .folder(let folder): folder
        case .git(let url, let ref, let path): "\(url) (\(ref ?? "default branch"))\(path.map { " //" + $0 } ?? "")"
        }
    }
}
