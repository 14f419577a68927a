public import TendCore

extension ProviderSet {
    /// Every provider this version of tend has.
    public static var standard: ProviderSet { standard() }

    /// Every provider, with the package provider's options.
    public static func standard(packages: PackageProvider = PackageProvider()) -> ProviderSet {
        ProviderSet([GroupProvider(), UserProvider(), FileProvider(), DirectoryProvider(), SymlinkProvider(), UnitProvider(), CommandProvider(), packages])
    }
}

// MARK: Watching

/// Files, folders and links: their path (and its folder), by inotify.
extension FileProvider: WatchingProvider {
    public func watches(_ desired: Desired) -> [Watch] { desired.paths.map(Watch.path) }
}

extension DirectoryProvider: WatchingProvider {
    public func watches(_ desired: Desired) -> [Watch] { desired.paths.map(Watch.path) }
}

extension SymlinkProvider: WatchingProvider {
    public func watches(_ desired: Desired) -> [Watch] { desired.paths.map(Watch.path) }
}

/// A unit: its state on the bus, and its unit file and drop-ins.
extension UnitProvider: WatchingProvider {
    public func watches(_ desired: Desired) -> [Watch] { [.unit(desired.name)] + desired.paths.map(Watch.path) }
}

/// A package: dpkg's status file, which every install and removal rewrites.
extension PackageProvider: WatchingProvider {
    public func watches(_ desired: Desired) -> [Watch] { [.path(Debian.statusFile)] }
}

/// Accounts: the account databases, and a user's authorized_keys.
extension UserProvider: WatchingProvider {
    public func watches(_ desired: Desired) -> [Watch] {
        ["/etc/passwd", "/etc/shadow", "/etc/group"].map(Watch.path) + desired.paths.map(Watch.path)
    }
}

extension GroupProvider: WatchingProvider {
    public func watches(_ desired: Desired) -> [Watch] { ["/etc/group", "/etc/gshadow"].map(Watch.path) }
}
