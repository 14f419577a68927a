// The agent's periodic check, timed in-process, one check per line read on standard input, so
// that bench/check.py can pair each with a run of the C floor (issue 9).
//
// Usage: tend-check-loop URL STATE_DIR ROOT [--no-stat-cache]
// Applies the commit once, waits past the stat cache's racy margin, checks once more so that the
// cache records every file, then for each line "check" on stdin runs one check and prints its
// wall time in microseconds and how many steps it planned. A check is what the agent's cycle does
// once its fetch found no new commit: the same Reconciler run, with the commit pinned (no
// network), the catalog kept by the agent's CatalogCache and, unless --no-stat-cache, its
// StatCache.
import Logging
import TendAgent
import TendCore
import TendProviders
import Glibc

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    print("usage: tend-check-loop URL STATE_DIR ROOT [--no-stat-cache]")
    exit(64)
}
var logger = Logger(label: "check-loop")
logger.logLevel = .warning
let source = SourceSpec(location: .git(url: arguments[1], ref: nil, path: nil), stateDirectory: arguments[2])
var policy = Reconciler.Policy(lockTimeout: .seconds(5))
policy.runBy = "tend agent"
var reconciler = Reconciler(source: source, root: arguments[3], providers: .standard, policy: policy, tendVersion: "bench", logger: logger)
reconciler.caches = Reconciler.Caches(catalogs: CatalogCache(), stat: arguments.contains("--no-stat-cache") ? nil : StatCache())

let first = await reconciler.run(.apply)
guard first.failure == nil, let commit = first.commit else {
    print("the first apply failed: \(first.failure?.message ?? "no commit")")
    exit(1)
}
reconciler.source.pinnedCommit = commit
try await Task.sleep(for: .milliseconds(2100))
_ = await reconciler.run(.apply)
print("ready; stat cache entries: \(reconciler.caches.stat?.count ?? 0)")
fflush(nil)
while let line = readLine(), line == "check" {
    let started = ContinuousClock.now
    let result = await reconciler.run(.apply)
    let elapsed = ContinuousClock.now - started
    let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
    print("\(micros) \(result.plan?.steps.count ?? -1)")
    fflush(nil)
}
