public import TendCore
public import TendGit
public import TendSpec
import Glibc
import FoundationEssentials

// The Source stage of a run: one commit (or folder), fetched, trusted, and no older than the last.
extension Reconciler {
    /// The snapshot and, for Git, the last commit applied from the same source to the root.
    struct Opened {
        var snapshot: any Snapshot
        var lastGood: String?
    }

    /// The Source stage: opens the source (or exactly the one a saved plan was made from), fetches,
    /// verifies the commit's signature and checks that it does not go back in time.
    func open(_ mode: Mode, root: String, events: ReconcileEvents, into result: inout ReconcileResult) async throws(ReconcileFailure) -> Opened {
        let saved = mode.saved
        let checkRewind = mode.checksRewind
        var location = source.location
        var pinned = source.pinnedCommit
        if let saved {
            switch saved.source.type {
            case "directory":
                // A folder named that opens and is another folder; one that does not open is reported below.
                if case .folder(let given) = location, let named = try? DirectorySnapshot(path: given), named.origin != saved.source {
                    throw ReconcileFailure(.usage, "the plan was made from \(saved.sourceDescription), not \(given)")
                }
                location = .folder(saved.source.location)
            case "git":
                location = .git(url: saved.source.location, ref: nil, path: saved.source.path)
                pinned = saved.source.commit
            default:
                throw ReconcileFailure(.usage, "the plan was made from a \(saved.source.type) source, which this tend cannot open")
            }
        }
        switch location {
        case .folder(let folder):
            do {
                let snapshot = try DirectorySnapshot(path: folder)
                result.commitInfo = CommitRecord(source: snapshot.origin.location, recorded: Date())
                return Opened(snapshot: snapshot)
            } catch {
                throw ReconcileFailure(.sourceUnreadable, "cannot read the source: \(error.message)")
            }
        case .git(let url, let ref, let path):
            let lastGood = lastGoodCommit(url: url, path: path, root: root)
            var git = try gitSource(url: url, ref: pinned ?? ref, path: path, events: events, into: &result)
            git.keeping = lastGood.map { [$0] } ?? []
            let snapshot: GitSnapshot
            do {
                snapshot = try git.snapshot(offline: source.offline || pinned != nil)
            } catch {
                throw ReconcileFailure(error.kind == .refused ? .refused : .sourceUnreadable, error.message)
            }
            // Known before it is trusted, so that a refusal names it.
            result.commit = snapshot.commit.id.description
            if pinned == nil, let reason = policy.unhealthyCommits[snapshot.commit.id.description] {
                throw ReconcileFailure(.unhealthy, Self.unhealthyMessage(snapshot.commit.id.description, reason: reason))
            }
            do {
                if let allowedSigners = source.allowedSigners { try await snapshot.verifySignature(.ssh(allowedSigners: allowedSigners)) }
                if let keyring = source.openPGPKeyring { try await snapshot.verifySignature(.openPGP(keyring: keyring)) }
                if checkRewind, !source.allowRewind, let lastGood { try snapshot.checkForward(from: lastGood) }
                result.commitInfo = CommitRecord(source: url, ref: ref, path: path, commit: snapshot.commit.id.description, subject: snapshot.commit.summary,
                                                 author: snapshot.commit.author, date: snapshot.commit.date, recorded: Date())
                return Opened(snapshot: snapshot, lastGood: lastGood)
            } catch {
                throw ReconcileFailure(error.kind == .refused ? .refused : .sourceUnreadable, error.message)
            }
        }
    }

    /// Fetches the Git source into its cache and resolves its ref, and nothing else: the agent
    /// fetches beside its drift repairs, so that a server that never answers holds none of them,
    /// then runs with `source.offline`. Does nothing for a folder source.
    public func fetch(events: ReconcileEvents = ReconcileEvents()) throws(ReconcileFailure) {
        guard case .git(let url, let ref, let path) = source.location, !source.offline, source.pinnedCommit == nil else { return }
        var result = ReconcileResult()
        let git = try gitSource(url: url, ref: ref, path: path, events: events, into: &result)
        do {
            _ = try git.snapshot(offline: false)
        } catch {
            throw ReconcileFailure(error.kind == .refused ? .refused : .sourceUnreadable, error.message)
        }
    }

    /// The Git source of `url`, its state folder prepared (a folder others could enter is
    /// tightened, and said so).
    private func gitSource(url: String, ref: String?, path: String?, events: ReconcileEvents,
                           into result: inout ReconcileResult) throws(ReconcileFailure) -> GitSource {
        do {
            if let tightened = try PrivateDirectory.prepare(source.stateDirectory) { result.note(tightened, events) }
        } catch {
            throw ReconcileFailure(.unusableHost, "cannot prepare the state directory: \(error)"
                                   + (error.isPermission ? "; " + PrivateDirectory.permissionAdvice : ""))
        }
        var git = GitSource(url: url, ref: ref, path: path, stateDirectory: source.stateDirectory,
                            credentials: source.credentials, timeout: source.fetchTimeout, maximumFetchBytes: source.fetchMaxBytes, logger: logger)
        git.progress = events.fetching
        return git
    }

    /// The last commit of this Git source applied to the root; nil for a folder, or before any.
    public var lastAppliedCommit: String? {
        guard case .git(let url, _, let path) = source.location else { return nil }
        return lastGoodCommit(url: url, path: path, root: root)
    }

    /// The last good commit of the root (`last-good.json`, the one record of it), when it came
    /// from the repository `url` (and its folder `path`): what the rewind check holds a new
    /// commit to, and what the agent enforces while a newer one is refused.
    func lastGoodCommit(url: String, path: String?, root: String) -> String? {
        let record = StateStore(stateDirectory: source.stateDirectory, root: root).read(.lastGood, as: CommitRecord.self)
        guard let record, record.source == url, record.path == path else { return nil }
        return record.commit
    }

    /// `root` with links and `..` resolved, so that one root has one record however it is written.
    static func canonical(_ root: String) -> String {
        guard let resolved = realpath(root, nil) else { return root }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
