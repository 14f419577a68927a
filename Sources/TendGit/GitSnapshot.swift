public import TendSpec

/// The files of one commit, read straight from the cache's object database.
public struct GitSnapshot: Snapshot {
    let repository: GitRepository
    public let commit: GitCommit
    public let url: String
    public let ref: String?
    /// The folder of the repository that holds tend.yaml, or nil for the top.
    public let path: String?

    init(repository: GitRepository, commit: GitCommit, url: String, ref: String?, path: String?) {
        self.repository = repository
        self.commit = commit
        self.url = url
        self.ref = ref
        self.path = path
    }

    /// `URL (main) at 1a2b3c4 "Subject" by Alice, 2026-11-28T14:03:00+01:00`.
    public var description: String {
        "\(url)\(path.map { " //\($0)" } ?? "") (\(ref ?? "default branch")) at \(commit.id.short) \"\(commit.summary)\" by \(commit.author), \(commit.date)"
    }

    public var origin: SnapshotOrigin {
        SnapshotOrigin(type: "git", location: url, commit: commit.id.description, path: path)
    }

    public var displayPrefix: String { path ?? "" }

    public func entries(in directory: String) throws(SnapshotError) -> [SnapshotEntry] {
        try repository.entries(ofTree: commit.tree, path: full(directory))
    }

    public func read(_ file: String) throws(SnapshotError) -> [UInt8] {
        do {
            return try repository.read(tree: commit.tree, path: full(file))
        } catch {
            // Name the file relative to tend.yaml's folder, as everything after Source does.
            throw SnapshotError(error.code, path: file, message: error.code == .notFound ? "\(file): not found" : error.message)
        }
    }

    /// Refuses this commit unless it is `last` (the last commit applied from this source) or
    /// descends from it: a source that goes back in time (history rewritten, a stale mirror) is
    /// refused until `--allow-rewind`. The corresponding C function is `git_graph_descendant_of`.
    public func checkForward(from last: String) throws(GitSourceError) {
        guard let previous = GitObjectID(hex: last) else { return }
        let forward: Bool
        do {
            forward = try repository.isSameOrDescendant(commit.id, of: previous)
        } catch {
            throw GitSourceError(.refused, "commit \(commit.id.short) cannot be checked against the last applied commit \(previous.short) (\(error.message)); --allow-rewind applies it anyway")
        }
        guard forward else {
            throw GitSourceError(.refused, "commit \(commit.id.short) does not descend from \(previous.short), the last commit applied from \(url): history was rewritten or the mirror is stale. --allow-rewind applies it anyway")
        }
    }

    /// The kind of `path` from the top of the repository, ignoring `self.path`.
    func rootKind(of path: String) -> SnapshotEntry.Kind? {
        let (parent, name) = RepositoryPath.split(path)
        return (try? repository.entries(ofTree: commit.tree, path: parent))?.first { $0.name == name }?.kind
    }

    private func full(_ relative: String) -> String {
        guard let path else { return relative }
        return relative.isEmpty ? path : path + "/" + relative
    }
}
