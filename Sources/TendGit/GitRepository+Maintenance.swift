internal import CGit2
import FoundationEssentials
internal import Glibc
import TendSpec

/// Keeping the cache small: libgit2 has no `git gc`, and every fetch that brings something adds a
/// pack of its own (about 24 KB a push), never packed again nor pruned.
extension GitRepository {
    /// Packs past which `repack` runs, however small.
    static let packsBeforeRepack = 32

    /// Whether the cache is due a repack: the packs fetches added since the last one weigh half
    /// the largest (a geometric rule, as git's own: the cache stays within about 1.5 times what
    /// one pack of it holds, and a large cache is repacked seldom), or there are many, or loose
    /// objects lie beside them.
    var needsRepack: Bool {
        let folder = path + "/objects"
        var sizes: [Int] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder + "/pack")) ?? [] where name.hasSuffix(".pack") {
            var info = stat()
            if stat(folder + "/pack/" + name, &info) == 0 { sizes.append(Int(info.st_size)) }
        }
        if ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains(where: { $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) { return true }
        guard sizes.count >= 2 else { return false }
        let largest = sizes.max() ?? 0
        return sizes.count >= Self.packsBeforeRepack || (sizes.reduce(0, +) - largest) * 2 > largest
    }

    /// Writes everything the references and `keeping` (commits no reference may reach any more,
    /// such as the last applied one after history was rewritten) reach into one pack, then
    /// removes the other packs and the loose objects: what nothing reaches is pruned. A file
    /// larger than `maximumFileSize` is not kept (a commit holding one is refused, and packing it
    /// would read it whole). Returns the objects kept and the packs removed.
    /// The corresponding C functions are `git_packbuilder_new`, `git_packbuilder_insert` and
    /// `git_packbuilder_write`.
    func repack(keeping: [GitObjectID], maximumFileSize: Int) throws(GitError) -> (objects: Int, removed: Int) {
        // What is there now is all that is removed afterwards: a pack another tend (a manual
        // `tend plan --repo`) fetches meanwhile holds objects this walk did not see.
        let before = objectFiles()
        let (name, count) = try withHandle { repo throws(GitError) -> (String, Int) in
            var odb: OpaquePointer?
            try check(git_repository_odb(&odb, repo), "git_repository_odb")
            defer { git_odb_free(odb) }
            var builder: OpaquePointer?
            try check(git_packbuilder_new(&builder, repo), "git_packbuilder_new")
            defer { git_packbuilder_free(builder) }
            var walk: OpaquePointer?
            try check(git_revwalk_new(&walk, repo), "git_revwalk_new")
            defer { git_revwalk_free(walk) }
            try check(git_revwalk_push_glob(walk, "refs/*"), "git_revwalk_push_glob")
            for id in keeping {
                var oid = id.raw
                if git_odb_exists(odb, &oid) == 1 { try check(git_revwalk_push(walk, &oid), "git_revwalk_push") }
            }
            var inserted: Set<GitObjectID> = []
            func insert(_ id: GitObjectID) throws(GitError) {
                guard inserted.insert(id).inserted else { return }
                var oid = id.raw
                try check(git_packbuilder_insert(builder, &oid, nil), "git_packbuilder_insert")
            }
            // Annotated tags are objects of their own, which a walk of commits does not meet.
            var list = git_strarray()
            if git_reference_list(&list, repo) == 0 {
                defer { git_strarray_dispose(&list) }
                for index in 0..<list.count {
                    var oid = git_oid()
                    var size = 0
                    var type = GIT_OBJECT_ANY
                    guard let reference = list.strings[index], git_reference_name_to_id(&oid, repo, reference) == 0,
                          git_odb_read_header(&size, &type, odb, &oid) == 0, type == GIT_OBJECT_TAG else { continue }
                    try insert(GitObjectID(oid))
                }
            }
            try Self.walkObjects(repo: repo, odb: odb, walk: walk, known: { _ in false }) { object throws(GitError) -> Bool in
                switch object {
                case .commit(let id), .tree(let id, _, _): try insert(id)
                case .blob(let id, _, let size?, _) where size <= maximumFileSize: try insert(id)
                case .blob: break
                }
                return true
            }
            try check(git_packbuilder_write(builder, nil, 0, nil, nil), "git_packbuilder_write")
            guard let name = git_packbuilder_name(builder) else {
                throw GitError(function: "git_packbuilder_name", code: -1, errorClass: 0, message: "the pack written has no name")
            }
            return ("pack-" + String(cString: name), inserted.count)
        }
        return (count, remove(before, keeping: name))
    }

    /// The pack files (`objects/pack/pack-*`) and loose objects (`objects/xx/…`) there are now,
    /// relative to `objects`.
    private func objectFiles() -> [String] {
        let objects = path + "/objects"
        var files = ((try? FileManager.default.contentsOfDirectory(atPath: objects + "/pack")) ?? []).filter { $0.hasPrefix("pack-") }.map { "pack/" + $0 }
        for folder in (try? FileManager.default.contentsOfDirectory(atPath: objects)) ?? [] where folder.count == 2 && folder.allSatisfy(\.isHexDigit) {
            files += ((try? FileManager.default.contentsOfDirectory(atPath: objects + "/" + folder)) ?? []).map { folder + "/" + $0 }
        }
        return files
    }

    /// Removes `files` (from `objectFiles`) but those of `pack`, then syncs the folders; returns
    /// the packs removed. What is open of them stays readable until closed.
    private func remove(_ files: [String], keeping pack: String) -> Int {
        let objects = path + "/objects"
        var removed = 0
        for file in files where !file.hasPrefix("pack/" + pack + ".") {
            if unlink(objects + "/" + file) == 0, file.hasSuffix(".pack") { removed += 1 }
        }
        for folder in Set(files.filter { !$0.hasPrefix("pack/") }.map { $0.prefix(2) }) { rmdir(objects + "/" + folder) }
        for folder in [objects + "/pack", objects] {
            let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 { fsync(fd); close(fd) }
        }
        return removed
    }
}
