// Runs the agent's own loop (Agent.run, with its records, metrics file and lock) for COUNT cycles
// back to back against a Git source and root, and prints the resident memory as it goes, to show
// that nothing grows across cycles (bench/agent.py reads it). With PUSH_EVERY and PUSH_COMMAND,
// the same agent runs PUSH_EVERY cycles at a time and the shell command (a push) runs between,
// and each round prints its RSS, open descriptors and threads (bench/growth.py reads it).
// Usage: tend-agent-loop URL STATE_DIR ROOT COUNT [PUSH_EVERY PUSH_COMMAND]
import Logging
import TendAgent
import TendCore
import TendProviders
import Glibc

func residentKiB() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return -1 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmRSS:") { return Int(text.split(separator: " ")[1]) ?? -1 }
    }
    return -1
}

/// The entries of a /proc folder: open descriptors, threads.
func entries(_ folder: String) -> Int {
    guard let directory = opendir(folder) else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { count += 1 }
    }
    return count
}

let arguments = CommandLine.arguments
guard arguments.count == 5 || arguments.count == 7, let count = Int(arguments[4]) else {
    print("usage: tend-agent-loop URL STATE_DIR ROOT COUNT [PUSH_EVERY PUSH_COMMAND]")
    exit(64)
}
var logger = Logger(label: "agent-loop")
logger.logLevel = .warning
let source = SourceSpec(location: .git(url: arguments[1], ref: nil, path: nil), stateDirectory: arguments[2])
let reconciler = Reconciler(source: source, root: arguments[3], providers: .standard, policy: Reconciler.Policy(lockTimeout: .seconds(5)), tendVersion: "bench", logger: logger)
var settings = AgentSettings(reconciler: reconciler, interval: .zero, metricsFile: arguments[2] + "/tend.prom")
let pushEvery = arguments.count == 7 ? Int(arguments[5]) ?? count : count
settings.cycles = pushEvery
let frozen = settings
let agent = Agent(settings: frozen, reload: { frozen }, logger: logger)
let started = ContinuousClock.now
if arguments.count == 7 {
    var done = 0
    while done < count {
        try await agent.run()
        done += pushEvery
        print("cycle \(done): RSS \(residentKiB()) KiB, fds \(entries("/proc/self/fd")), threads \(entries("/proc/self/task"))")
        guard system(arguments[6]) == 0 else {
            print("the push command failed")
            exit(1)
        }
    }
} else {
    // Samples every two seconds while the cycles run, from a task of its own.
    let sampler = Task.detached {
        var seconds = 0
        while !Task.isCancelled {
            print("after \(seconds) s: RSS \(residentKiB()) KiB")
            try? await Task.sleep(for: .seconds(2))
            seconds += 2
        }
    }
    try await agent.run()
    sampler.cancel()
}
print("\(count) cycles in \(ContinuousClock.now - started); last RSS \(residentKiB()) KiB")
