/// Read-only access to the files of one configuration: one Git commit, or one local folder as it is.
///
/// Paths are relative to the repository root, separated by `/`, with no `.` or `..` components.
/// Loading reads only through this protocol, so it never knows where the files came from.
public protocol Snapshot: Sendable {
    /// How the source is named to people and in plan files ("examples/webhost", "git@host:repo@abc123").
    var description: String { get }

    /// What a plan file records so that `apply --plan` can open the same configuration again.
    var origin: SnapshotOrigin { get }

    /// The prefix that makes a repository path into the path a person can open, or "" if none.
    var displayPrefix: String { get }

    /// The entries directly in `directory` ("" for the root), sorted by name.
    func entries(in directory: String) throws(SnapshotError) -> [SnapshotEntry]

    /// The bytes of the regular file at `path`.
    func read(_ path: String) throws(SnapshotError) -> [UInt8]
}

/// One name in a snapshot folder.
public struct SnapshotEntry: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// `submodule`: a Git submodule (a commit of another repository), which tend does not fetch.
        case file, directory, symlink, submodule, other
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// Where a snapshot came from, as recorded in a plan file.
public struct SnapshotOrigin: Codable, Sendable, Hashable {
    /// `directory` for a local folder; `git` for a commit.
    public var type: String
    /// The folder's absolute path, or the repository URL.
    public var location: String
    /// The exact commit id for Git sources.
    public var commit: String?
    /// The folder of the repository that holds tend.yaml.
    public var path: String?

    public init(type: String, location: String, commit: String? = nil, path: String? = nil) {
        self.type = type
        self.location = location
        self.commit = commit
        self.path = path
    }
}

/// A file or folder of the snapshot could not be read.
public struct SnapshotError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        case notFound, notAFile, notADirectory, unreadable, tooLarge, symbolicLink
    }

    public var code: Code
    public var path: String
    public var message: String

    public init(_ code: Code, path: String, message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String { message }

    /// A file over `SnapshotLimits.fileSize`.
    public static func tooLarge(_ path: String, size: Int) -> SnapshotError {
        SnapshotError(.tooLarge, path: path, message: "\(path): is \(size) bytes; tend reads files of at most \(SnapshotLimits.fileSize >> 20) MiB from a configuration")
    }
}

/// What tend reads from a configuration at most, so that a hostile repository cannot exhaust the
/// host's memory or time. Each limit is reported at the position where it was passed.
public enum SnapshotLimits {
    /// Any one file (`source:`, `template:`).
    public static let fileSize = 64 << 20
    /// tend.yaml and each manifest.
    public static let yamlFileSize = 8 << 20
}

extension Snapshot {
    /// The kind of the entry at `path`, or nil if there is none.
    public func kind(of path: String) -> SnapshotEntry.Kind? {
        if path.isEmpty { return .directory }
        let (parent, name) = RepositoryPath.split(path)
        return (try? entries(in: parent))?.first { $0.name == name }?.kind
    }
}

/// Helpers for the `/`-separated paths inside a repository.
public enum RepositoryPath {
    /// Why `relative` cannot name a file of the repository, or nil: a NUL byte would end the name
    /// where the system reads it (so `..\0` would act as `..`), and control characters would
    /// reach messages.
    public static func problem(in relative: String) -> String? {
        if relative.utf8.contains(0) { return "\(Printable.quoted(relative)) contains a NUL byte" }
        if Printable.hasControlCharacters(relative) { return "\(Printable.quoted(relative)) contains a control character" }
        return nil
    }

    /// Joins `base` (a folder) and `relative` (which may contain `..`), or returns nil when the
    /// result would leave the repository or names no file (see `problem(in:)`).
    public static func resolve(_ relative: String, in base: String) -> String? {
        guard problem(in: relative) == nil else { return nil }
        var parts = relative.hasPrefix("/") ? [] : base.split(separator: "/").map(String.init)
        for component in relative.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default: parts.append(String(component))
            }
        }
        return parts.joined(separator: "/")
    }

    /// The folder and the last name of `path`.
    public static func split(_ path: String) -> (parent: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }
}
