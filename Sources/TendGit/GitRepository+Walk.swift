internal import CGit2

/// An object met by `GitRepository.walkObjects`, with the commit whose tree reached it.
enum WalkedObject {
    case commit(GitObjectID)
    case tree(GitObjectID, path: String, commit: GitObjectID)
    /// Its size from the object's header, without reading it; nil when the database lacks it.
    case blob(GitObjectID, path: String, size: Int?, commit: GitObjectID)
}

extension GitRepository {
    /// Calls `visit` with every commit `walk` yields, then each tree and file its tree reaches,
    /// each object once: what checks a fetch before it happens (`excess(ofFetchFrom:)`) and what
    /// a repack keeps (`repack`) walk alike. An object `known` says is had already is skipped (a
    /// tree skipped is not entered). `visit` returns false to stop the walk. Called with the
    /// repository's lock held. The corresponding C functions are `git_revwalk_next`,
    /// `git_tree_lookup` and `git_odb_read_header`.
    static func walkObjects(repo: OpaquePointer, odb: OpaquePointer?, walk: OpaquePointer?, known: (GitObjectID) -> Bool,
                            visit: (WalkedObject) throws(GitError) -> Bool) throws(GitError) {
        var seen: Set<GitObjectID> = []
        var oid = git_oid()
        while git_revwalk_next(&oid, walk) == 0 {
            let commitID = GitObjectID(oid)
            var commit: OpaquePointer?
            try check(git_commit_lookup(&commit, repo, &oid), "git_commit_lookup")
            let tree = GitObjectID(git_commit_tree_id(commit).pointee)
            git_commit_free(commit)
            guard try visit(.commit(commitID)) else { return }
            var pending = [(tree, "")]
            while let (next, path) = pending.popLast() {
                guard seen.insert(next).inserted, !known(next) else { continue }
                guard try visit(.tree(next, path: path, commit: commitID)) else { return }
                var handle: OpaquePointer?
                var raw = next.raw
                try check(git_tree_lookup(&handle, repo, &raw), "git_tree_lookup")
                defer { git_tree_free(handle) }
                for index in 0..<git_tree_entrycount(handle) {
                    guard let entry = git_tree_entry_byindex(handle, index) else { continue }
                    let child = GitObjectID(git_tree_entry_id(entry).pointee)
                    let name = String(cString: git_tree_entry_name(entry))
                    let full = path.isEmpty ? name : path + "/" + name
                    switch git_tree_entry_type(entry) {
                    case GIT_OBJECT_TREE:
                        pending.append((child, full))
                    case GIT_OBJECT_BLOB:
                        guard seen.insert(child).inserted, !known(child) else { continue }
                        var size = 0
                        var type = GIT_OBJECT_BLOB
                        var childRaw = child.raw
                        let read = git_odb_read_header(&size, &type, odb, &childRaw)
                        if read != GIT_ENOTFOUND.rawValue { try check(read, "git_odb_read_header") }
                        guard try visit(.blob(child, path: full, size: read == 0 ? size : nil, commit: commitID)) else { return }
                    default:
                        break
                    }
                }
            }
        }
    }
}
