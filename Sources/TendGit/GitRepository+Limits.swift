internal import CGit2
import Synchronization
import TendSpec

/// What a tree holds, found from headers: its entries (below it too) and their bytes.
private struct Tally: Sendable {
    var entries = 0
    var bytes = 0
}

/// Why a tree does not fit its limits, for people.
struct LimitExceeded: Error {
    var message: String
}

/// What stops a walk of a tree: a limit passed, or libgit2 failing.
private enum TallyStop: Error {
    case exceeded(LimitExceeded)
    case git(GitError)
}

extension GitRepository {
    /// Trees found within limits, by id, kept by the process: a tree is immutable, so the next
    /// commit's check reads only the folders it changed. Emptied when it grows past 200,000.
    private static let tallied = Mutex<[GitObjectID: Tally]>([:])

    /// Checks the tree of a commit against `limits`, from object headers alone (no file is
    /// inflated). The corresponding C functions are `git_tree_lookup` and `git_odb_read_header`.
    func excess(ofTree tree: GitObjectID, limits: CommitLimits) throws(GitError) -> LimitExceeded? {
        try withHandle { repo throws(GitError) -> LimitExceeded? in
            var odb: OpaquePointer?
            try check(git_repository_odb(&odb, repo), "git_repository_odb")
            defer { git_odb_free(odb) }
            do throws(TallyStop) {
                let tally = try Self.tally(tree, path: "", depth: 0, repo: repo, odb: odb, limits: limits)
                if tally.bytes > limits.totalBytes {
                    return LimitExceeded(message: "its files hold \(Self.size(tally.bytes)) together, more than the \(Self.size(limits.totalBytes)) tend unpacks of one commit (--fetch-max-size, fetch_max_size:)")
                }
                return nil
            } catch {
                switch error {
                case .exceeded(let excess): return excess
                case .git(let failure): throw failure
                }
            }
        }
    }

    /// What `tree` holds; throws `LimitExceeded` as soon as a limit is passed.
    private static func tally(_ tree: GitObjectID, path: String, depth: Int, repo: OpaquePointer, odb: OpaquePointer?, limits: CommitLimits) throws(TallyStop) -> Tally {
        func call(_ result: Int32, _ function: String) throws(TallyStop) {
            do { try check(result, function) } catch { throw .git(error) }
        }
        if let known = tallied.withLock({ $0[tree] }) {
            guard known.entries <= limits.entries else { throw .exceeded(LimitExceeded(message: "it has more than \(limits.entries) files and folders, the most tend unpacks of one commit")) }
            return known
        }
        guard depth <= limits.depth else { throw .exceeded(LimitExceeded(message: "\(path) is more than \(limits.depth) folders deep")) }
        var handle: OpaquePointer?
        var oid = tree.raw
        try call(git_tree_lookup(&handle, repo, &oid), "git_tree_lookup")
        defer { git_tree_free(handle) }
        var tally = Tally()
        for index in 0..<git_tree_entrycount(handle) {
            guard let entry = git_tree_entry_byindex(handle, index) else { continue }
            tally.entries += 1
            let name = String(cString: git_tree_entry_name(entry))
            let full = path.isEmpty ? name : path + "/" + name
            switch git_tree_entry_type(entry) {
            case GIT_OBJECT_TREE:
                let below = try Self.tally(GitObjectID(git_tree_entry_id(entry).pointee), path: full, depth: depth + 1, repo: repo, odb: odb, limits: limits)
                tally.entries += below.entries
                tally.bytes += below.bytes
            case GIT_OBJECT_BLOB:
                var size = 0
                var type = GIT_OBJECT_BLOB
                let read = git_odb_read_header(&size, &type, odb, git_tree_entry_id(entry))
                // A file the cache did not keep when it was packed: one over the limit
                // (`GitRepository.repack`), which refused its commit before.
                if read == GIT_ENOTFOUND.rawValue {
                    throw .exceeded(LimitExceeded(message: "\(Printable.quoted(full)) (object \(GitObjectID(git_tree_entry_id(entry).pointee).short)) is not in the cache, which keeps no file over \(Self.size(limits.fileSize)), the most tend unpacks of one file"))
                }
                try call(read, "git_odb_read_header")
                guard size <= limits.fileSize else {
                    throw .exceeded(LimitExceeded(message: "\(Printable.quoted(full)) is \(Self.size(size)) (object \(GitObjectID(git_tree_entry_id(entry).pointee).short)), more than \(Self.size(limits.fileSize)), the most tend unpacks of one file"))
                }
                tally.bytes += size
            default:
                break
            }
            guard tally.entries <= limits.entries else {
                throw .exceeded(LimitExceeded(message: "it has more than \(limits.entries) files and folders, the most tend unpacks of one commit"))
            }
        }
        tallied.withLock { known in
            if known.count >= 200_000 { known.removeAll() }
            known[tree] = tally
        }
        return tally
    }

    /// `3.0 GiB`, `12 MiB`, `900 bytes`.
    static func size(_ bytes: Int) -> String {
        if bytes >= 1 << 30 { return String(Double(bytes * 10 / (1 << 30)) / 10) + " GiB" }
        if bytes >= 1 << 20 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}

extension GitRepository {
    /// Opens the repository at `path`, bare or not, without searching the folders above it.
    /// The corresponding C function is `git_repository_open_ext`.
    static func openLocal(_ path: String) throws(GitError) -> GitRepository {
        _ = Libgit2.initialized
        var handle: OpaquePointer?
        try check(git_repository_open_ext(&handle, path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil), "git_repository_open_ext")
        guard let handle else { throw GitError(function: "git_repository_open_ext", code: -1, errorClass: 0, message: "no repository") }
        return GitRepository(handle: handle, path: path)
    }

    /// What a fetch from `source`, a repository on this machine, would bring into `cache` beyond
    /// `limits`, found from object headers: libgit2 packs a local repository in this process,
    /// reading each object it sends whole, so a 3 GB file anywhere in the new history would take
    /// 3 GB of memory. Every commit of its branches and tags that `cache` does not have yet is
    /// walked. The corresponding C functions are `git_revwalk_push_glob`, `git_revwalk_hide`,
    /// `git_odb_exists` and `git_odb_read_header`.
    static func excess(ofFetchFrom source: GitRepository, into cache: GitRepository, limits: CommitLimits, maximumObjects: Int) throws(GitError) -> LimitExceeded? {
        let known = cache.referenceTargets()
        return try cache.withHandle { cacheRepo throws(GitError) -> LimitExceeded? in
            var cacheODB: OpaquePointer?
            try check(git_repository_odb(&cacheODB, cacheRepo), "git_repository_odb")
            defer { git_odb_free(cacheODB) }
            return try source.withHandle { repo throws(GitError) -> LimitExceeded? in
                var odb: OpaquePointer?
                try check(git_repository_odb(&odb, repo), "git_repository_odb")
                defer { git_odb_free(odb) }
                var walk: OpaquePointer?
                try check(git_revwalk_new(&walk, repo), "git_revwalk_new")
                defer { git_revwalk_free(walk) }
                for glob in ["refs/heads/*", "refs/tags/*"] { try check(git_revwalk_push_glob(walk, glob), "git_revwalk_push_glob") }
                for id in known {
                    var oid = id.raw
                    if git_odb_exists(odb, &oid) == 1 { _ = git_revwalk_hide(walk, &oid) }
                }
                var excess: LimitExceeded?
                var count = 0
                try walkObjects(repo: repo, odb: odb, walk: walk, known: { id in
                    var raw = id.raw
                    return git_odb_exists(cacheODB, &raw) == 1
                }) { object throws(GitError) -> Bool in
                    count += 1
                    if case .blob(let id, let path, let size?, let commit) = object, size > limits.fileSize {
                        excess = LimitExceeded(message: "\(Printable.quoted(path)) of commit \(commit.short) is \(Self.size(size)) (object \(id.short)), more than \(Self.size(limits.fileSize)), the most tend unpacks of one file; from a repository on this machine, libgit2 would read it whole to send it")
                        return false
                    }
                    guard count <= maximumObjects else {
                        excess = LimitExceeded(message: "its new history holds more than \(maximumObjects) objects, the most tend unpacks in one fetch")
                        return false
                    }
                    return true
                }
                return excess
            }
        }
    }

    /// The commits the references point at.
    func referenceTargets() -> [GitObjectID] {
        withHandle { repo in
            var list = git_strarray()
            guard git_reference_list(&list, repo) == 0 else { return [] }
            defer { git_strarray_dispose(&list) }
            return (0..<list.count).compactMap { index -> GitObjectID? in
                var oid = git_oid()
                guard let name = list.strings[index], git_reference_name_to_id(&oid, repo, name) == 0 else { return nil }
                return GitObjectID(oid)
            }
        }
    }
}
