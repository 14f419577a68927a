internal import CGit2

/// The libgit2 this process runs with, for `tend --version`: its version and the transports it was
/// built with. The corresponding C functions are `git_libgit2_version` and `git_libgit2_features`.
public enum GitLibrary {
    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, revision: Int32 = 0
        git_libgit2_version(&major, &minor, &revision)
        let features = git_libgit2_features()
        let transports = [
            (Int32(GIT_FEATURE_HTTPS.rawValue), "https"),
            (Int32(GIT_FEATURE_SSH.rawValue), "ssh"),
        ].filter { features & $0.0 != 0 }.map(\.1)
        return "libgit2 \(major).\(minor).\(revision)" + (transports.isEmpty ? "" : " (\(transports.joined(separator: ", ")))")
    }
}
