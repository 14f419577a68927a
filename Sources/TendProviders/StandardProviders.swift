public import TendCore

extension ProviderSet {
    /// Every provider this version of tend has.
    public static var standard: ProviderSet { standard() }

    /// Every provider, with the package provider's options.
    public static func standard(packages: PackageProvider = PackageProvider()) -> ProviderSet {
        ProviderSet([GroupProvider(), UserProvider(), FileProvider(), DirectoryProvider(), SymlinkProvider(), UnitProvider(), packages])
    }
}
