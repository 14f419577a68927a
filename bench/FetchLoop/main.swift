// Fetches one source many times in one process and prints the resident memory as it goes, to show
// that nothing leaks across fetches (libgit2 handles, callbacks, snapshots).
// Usage: tend-fetch-loop URL STATE_DIR COUNT
import Logging
import TendGit
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
guard arguments.count == 4, let count = Int(arguments[3]) else {
    print("usage: tend-fetch-loop URL STATE_DIR COUNT")
    exit(64)
}
let source = GitSource(url: arguments[1], stateDirectory: arguments[2], logger: Logger(label: "fetch-loop"))
var first = 0
for index in 1...count {
    do {
        let snapshot = try source.snapshot()
        _ = try snapshot.read("tend.yaml")
    } catch {
        print("fetch \(index) failed: \(error)")
        exit(1)
    }
    if index == 1 { first = residentKiB() }
    if index == 1 || index % (max(count / 10, 1)) == 0 {
        print("fetch \(index): RSS \(residentKiB()) KiB")
    }
}
print("first \(first) KiB, last \(residentKiB()) KiB")
