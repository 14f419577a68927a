// Runs the agent's own loop (Agent.run, with its records, metrics file and lock) for COUNT cycles
// back to back against a Git source and root, and prints the resident memory as it goes, to show
// that nothing grows across cycles (bench/agent.py reads it).
// Usage: tend-agent-loop URL STATE_DIR ROOT COUNT
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

let arguments = CommandLine.arguments
guard arguments.count == 5, let count = Int(arguments[4]) else {
    print("usage: tend-agent-loop URL STATE_DIR ROOT COUNT")
    exit(64)
}
var logger = Logger(label: "agent-loop")
logger.logLevel = .warning
let source = SourceSpec(location: .git(url: arguments[1], ref: nil, path: nil), stateDirectory: arguments[2])
let reconciler = Reconciler(source: source, root: arguments[3], providers: .standard, lockTimeout: .seconds(5), tendVersion: "bench", logger: logger)
var settings = AgentSettings(reconciler: reconciler, interval: .zero, metricsFile: arguments[2] + "/tend.prom")
settings.cycles = count
let frozen = settings
let agent = Agent(settings: frozen, reload: { frozen }, logger: logger)
// Samples every two seconds while the cycles run, from a task of its own.
let sampler = Task.detached {
    var seconds = 0
    while !Task.isCancelled {
        print("after \(seconds) s: RSS \(residentKiB()) KiB")
        try? await Task.sleep(for: .seconds(2))
        seconds += 2
    }
}
let started = ContinuousClock.now
try await agent.run()
sampler.cancel()
print("\(count) cycles in \(ContinuousClock.now - started); last RSS \(residentKiB()) KiB")
