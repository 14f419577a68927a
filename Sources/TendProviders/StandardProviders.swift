public import TendCore

extension ProviderSet {
    /// Every provider this version of tend has.
    public static var standard: ProviderSet {
        ProviderSet([FileProvider(), DirectoryProvider(), SymlinkProvider(), UnitProvider()])
    }
}
