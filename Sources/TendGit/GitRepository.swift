internal import CGit2
import Synchronization
import FoundationEssentials
import TendSpec

/// An open Git repository (the bare cache of one source), freed in `deinit`.
///
/// Sendable because every use of the handle, and of every object looked up from it, happens inside
/// `lock`: no libgit2 object outlives the call that looked it up, and none crosses threads.
final class GitRepository: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lock = Mutex(())
    let path: String
    /// Parsed trees by id, kept for the repository's life: libgit2 caches no tree over 4 KB, and a
    /// folder of 10,000 files would otherwise be parsed again for every file read from it.
    /// Guarded by `lock`; freed in `deinit` before the repository.
    private var trees: [GitObjectID: OpaquePointer] = [:]

    init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    deinit {
        for tree in trees.values { git_tree_free(tree) }
        git_repository_free(handle)
    }

    /// Opens the bare repository at `path`. The corresponding C function is `git_repository_open_bare`.
    static func openBare(_ path: String) throws(GitError) -> GitRepository {
        _ = Libgit2.initialized
        var handle: OpaquePointer?
        try check(git_repository_open_bare(&handle, path), "git_repository_open_bare")
        guard let handle else { throw GitError(function: "git_repository_open_bare", code: -1, errorClass: 0, message: "no repository") }
        return GitRepository(handle: handle, path: path)
    }

    /// Creates an empty bare repository at `path` with a remote `origin` for `url`.
    /// The corresponding C functions are `git_repository_init` and `git_remote_create`.
    static func createBare(_ path: String, remote url: String) throws(GitError) -> GitRepository {
        _ = Libgit2.initialized
        var handle: OpaquePointer?
        try check(git_repository_init(&handle, path, 1), "git_repository_init")
        guard let handle else { throw GitError(function: "git_repository_init", code: -1, errorClass: 0, message: "no repository") }
        let repository = GitRepository(handle: handle, path: path)
        try repository.withHandle { repo throws(GitError) in
            var remote: OpaquePointer?
            try check(git_remote_create_with_fetchspec(&remote, repo, "origin", url, "+refs/heads/*:refs/remotes/origin/*"), "git_remote_create_with_fetchspec")
            git_remote_free(remote)
        }
        return repository
    }

    /// Runs `body` with the raw handle, under the lock.
    func withHandle<T, E: Error>(_ body: (OpaquePointer) throws(E) -> T) throws(E) -> T {
        try lock.withLock { _ throws(E) -> T in try body(handle) }
    }

    // MARK: References

    /// The commit a reference (or a symbolic reference) points at.
    /// The corresponding C function is `git_reference_name_to_id`.
    func resolve(_ name: String) throws(GitError) -> GitObjectID {
        try withHandle { repo throws(GitError) in
            var oid = git_oid()
            try check(git_reference_name_to_id(&oid, repo, name), "git_reference_name_to_id")
            return GitObjectID(oid)
        }
    }

    /// The target name of a symbolic reference, or nil if there is none.
    func symbolicTarget(_ name: String) -> String? {
        withHandle { repo in
            var reference: OpaquePointer?
            guard git_reference_lookup(&reference, repo, name) == 0, let reference else { return nil }
            defer { git_reference_free(reference) }
            return git_reference_symbolic_target(reference).map { String(cString: $0) }
        }
    }

    /// Creates or moves a symbolic reference. The corresponding C function is `git_reference_symbolic_create`.
    func setSymbolic(_ name: String, to target: String) throws(GitError) {
        try withHandle { repo throws(GitError) in
            var reference: OpaquePointer?
            try check(git_reference_symbolic_create(&reference, repo, name, target, 1, "tend: remote default branch"), "git_reference_symbolic_create")
            git_reference_free(reference)
        }
    }

    // MARK: Commits

    /// What a plan header shows of a commit.
    func commit(_ id: GitObjectID) throws(GitError) -> GitCommit {
        try withHandle { repo throws(GitError) in
            var commit: OpaquePointer?
            var oid = id.raw
            try check(git_commit_lookup(&commit, repo, &oid), "git_commit_lookup")
            defer { git_commit_free(commit) }
            let author = git_commit_author(commit)
            let summary = git_commit_summary(commit).map { String(cString: $0) } ?? ""
            let name = author?.pointee.name.map { String(cString: $0) } ?? ""
            let email = author?.pointee.email.map { String(cString: $0) } ?? ""
            let time = author.map { Int64($0.pointee.when.time) } ?? 0
            let offset = author.map { Int($0.pointee.when.offset) } ?? 0
            return GitCommit(id: id, tree: GitObjectID(git_commit_tree_id(commit).pointee), summary: summary,
                             author: name, email: email, time: time, offsetMinutes: offset, committed: Int64(git_commit_time(commit)))
        }
    }

    /// Whether `commit` is `ancestor` or descends from it. The corresponding C function is `git_graph_descendant_of`.
    func isSameOrDescendant(_ commit: GitObjectID, of ancestor: GitObjectID) throws(GitError) -> Bool {
        if commit == ancestor { return true }
        return try withHandle { repo throws(GitError) in
            var a = commit.raw, b = ancestor.raw
            let result = git_graph_descendant_of(repo, &a, &b)
            try check(result, "git_graph_descendant_of")
            return result == 1
        }
    }

    /// The commit's signature and the data it signs, or nil if the commit is not signed.
    /// The corresponding C function is `git_commit_extract_signature`.
    func signature(of id: GitObjectID) throws(GitError) -> (signature: String, payload: [UInt8])? {
        try withHandle { repo throws(GitError) in
            var signature = git_buf(), payload = git_buf()
            defer { git_buf_dispose(&signature); git_buf_dispose(&payload) }
            var oid = id.raw
            let result = git_commit_extract_signature(&signature, &payload, repo, &oid, nil)
            if result == GIT_ENOTFOUND.rawValue { return nil }
            try check(result, "git_commit_extract_signature")
            let text = String(decoding: UnsafeRawBufferPointer(start: signature.ptr, count: signature.size), as: UTF8.self)
            let bytes = Array(UnsafeRawBufferPointer(start: payload.ptr, count: payload.size))
            return (text, bytes)
        }
    }

    // MARK: Trees

    /// The entries of the folder `path` ("" for the top) of tree `tree`.
    func entries(ofTree tree: GitObjectID, path: String) throws(SnapshotError) -> [SnapshotEntry] {
        try withHandle { repo throws(SnapshotError) in
            let folder = try self.folder(repo, tree, path, of: path)
            var result: [SnapshotEntry] = []
            for index in 0..<git_tree_entrycount(folder) {
                guard let entry = git_tree_entry_byindex(folder, index) else { continue }
                let name = String(cString: git_tree_entry_name(entry))
                result.append(SnapshotEntry(name: name, kind: Self.kind(git_tree_entry_filemode(entry))))
            }
            return result
        }
    }

    /// The bytes of the regular file `path` in tree `tree`, read from the object database.
    func read(tree: GitObjectID, path: String) throws(SnapshotError) -> [UInt8] {
        try withHandle { repo throws(SnapshotError) in
            let (parent, name) = RepositoryPath.split(path)
            let folder = try self.folder(repo, tree, parent, of: path)
            guard let entry = git_tree_entry_byname(folder, name) else {
                throw SnapshotError(.notFound, path: path, message: "\(path): not found")
            }
            switch Self.kind(git_tree_entry_filemode(entry)) {
            case .file: break
            case .submodule: throw Self.submodule(path, name)
            default: throw SnapshotError(.notAFile, path: path, message: "\(path): not a regular file")
            }
            // The size from the object's header first: a huge blob is refused before it is inflated.
            var odb: OpaquePointer?
            if git_repository_odb(&odb, repo) == 0 {
                defer { git_odb_free(odb) }
                var size = 0
                var type = GIT_OBJECT_BLOB
                if git_odb_read_header(&size, &type, odb, git_tree_entry_id(entry)) == 0, size > SnapshotLimits.fileSize {
                    throw SnapshotError.tooLarge(path, size: size)
                }
            }
            var blob: OpaquePointer?
            guard git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) == 0 else {
                throw SnapshotError(.unreadable, path: path, message: "\(path): \(lastError(-1, "git_blob_lookup").message)")
            }
            defer { git_blob_free(blob) }
            // The blob's buffer is valid only until the blob is freed: copy it out.
            return Array(UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob))))
        }
    }

    /// Why `requested` cannot be read: `name` on its way is a submodule.
    private static func submodule(_ requested: String, _ name: some StringProtocol) -> SnapshotError {
        SnapshotError(.notADirectory, path: requested,
                      message: "\(requested): \(name) is a Git submodule, whose files are in another repository that tend does not fetch; commit them into this one")
    }

    /// The parsed tree of the folder `path` below `root`, walked one name at a time through the
    /// tree cache. Called with the lock held.
    private func folder(_ repo: OpaquePointer, _ root: GitObjectID, _ path: String, of requested: String) throws(SnapshotError) -> OpaquePointer {
        var current = try cachedTree(repo, root, requested)
        for name in path.split(separator: "/") {
            guard let entry = git_tree_entry_byname(current, String(name)) else {
                throw SnapshotError(.notFound, path: requested, message: "\(requested): not found")
            }
            guard git_tree_entry_type(entry) == GIT_OBJECT_TREE else {
                if git_tree_entry_type(entry) == GIT_OBJECT_COMMIT { throw Self.submodule(requested, name) }
                throw SnapshotError(.notADirectory, path: requested, message: "\(requested): \(name) is not a directory")
            }
            current = try cachedTree(repo, GitObjectID(git_tree_entry_id(entry).pointee), requested)
        }
        return current
    }

    private func cachedTree(_ repo: OpaquePointer, _ id: GitObjectID, _ requested: String) throws(SnapshotError) -> OpaquePointer {
        if let tree = trees[id] { return tree }
        var tree: OpaquePointer?
        var oid = id.raw
        guard git_tree_lookup(&tree, repo, &oid) == 0, let tree else {
            throw SnapshotError(.unreadable, path: requested, message: "\(requested): \(lastError(-1, "git_tree_lookup").message)")
        }
        trees[id] = tree
        return tree
    }

    private static func kind(_ mode: git_filemode_t) -> SnapshotEntry.Kind {
        switch mode {
        case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE: .file
        case GIT_FILEMODE_TREE: .directory
        case GIT_FILEMODE_LINK: .symlink
        case GIT_FILEMODE_COMMIT: .submodule
        default: .other
        }
    }
}

/// What a plan shows of the commit it was made from.
public struct GitCommit: Sendable, Hashable {
    public var id: GitObjectID
    public var tree: GitObjectID
    public var summary: String
    public var author: String
    public var email: String
    /// Seconds since 1970 and the author's UTC offset in minutes.
    public var time: Int64
    public var offsetMinutes: Int
    /// When it was committed (the committer's time, seconds since 1970): a rebased or merged
    /// commit has its author's old date but a new commit time. Rollout waves count from it.
    public var committed: Int64

    /// The author date in the author's time zone, as ISO 8601 (`2026-11-28T14:03:00+01:00`).
    public var date: String {
        let zone = TimeZone(secondsFromGMT: offsetMinutes * 60) ?? .gmt
        return Date(timeIntervalSince1970: Double(time)).formatted(Date.ISO8601FormatStyle(timeZone: zone))
    }
}

extension GitRepository {
    /// The commit `name` points at, through annotated tags. The corresponding C function is `git_revparse_single`.
    func peelToCommit(_ name: String) throws(GitError) -> GitObjectID {
        try withHandle { repo throws(GitError) in
            var object: OpaquePointer?
            try check(git_revparse_single(&object, repo, name + "^{commit}"), "git_revparse_single")
            defer { git_object_free(object) }
            return GitObjectID(git_object_id(object).pointee)
        }
    }

    /// Whether the reference `name` exists (symbolic references count if their target does).
    func referenceExists(_ name: String) -> Bool {
        withHandle { repo in
            var reference: OpaquePointer?
            guard git_reference_lookup(&reference, repo, name) == 0, let reference else { return false }
            defer { git_reference_free(reference) }
            var resolved: OpaquePointer?
            guard git_reference_resolve(&resolved, reference) == 0 else { return false }
            git_reference_free(resolved)
            return true
        }
    }

    /// The short names of the references under `prefix`, sorted.
    func referenceNames(prefix: String) -> [String] {
        withHandle { repo in
            var list = git_strarray()
            guard git_reference_list(&list, repo) == 0 else { return [] }
            defer { git_strarray_dispose(&list) }
            return (0..<list.count).compactMap { index in
                guard let name = list.strings[index].map({ String(cString: $0) }), name.hasPrefix(prefix) else { return nil }
                return String(name.dropFirst(prefix.count))
            }.sorted()
        }
    }
}
