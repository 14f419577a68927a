import Foundation
import Testing
import TendProcess

/// `ChildProcess.runWaiting`: binary in, binary out, held to its limit even by a child that
/// closes its outputs, and never deadlocked by a large input and output.
@Suite("a child run waiting")
struct RunWaitingTests {
    @Test("bytes go in and come out unchanged, 10 MiB each way at once; empty input is fine; a cut output says so")
    func bytes() {
        let input = (0..<(10 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }
        let cat = ChildProcess(["/bin/cat"], kept: 11 << 20).runWaiting(input: input)
        #expect(cat.finished.status == 0 && cat.output == input && !cat.truncated)
        let empty = ChildProcess(["/bin/echo", "hi"]).runWaiting(input: [])
        #expect(empty.finished.status == 0 && empty.output == Array("hi\n".utf8))
        let cut = ChildProcess(["/bin/cat"], kept: 1000).runWaiting(input: input)
        #expect(cut.truncated && cut.output.count == 1000)
        let failing = ChildProcess(["/bin/sh", "-c", "echo why >&2; exit 3"]).runWaiting(input: [])
        #expect(failing.finished.status == 3 && failing.finished.error == "why\n")
        let missing = ChildProcess(["/nonexistent/program"]).runWaiting(input: [])
        #expect(missing.finished.status == 127)
    }

    @Test("a child that closes its outputs and runs on is killed at its limit, and what it started with it")
    func limit() {
        let waited = ChildProcess(["/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 30.4041 & sleep 30"], limit: .milliseconds(300)).runWaiting(input: [])
        // Killed at the limit, not ended by its own sleep: the flag says the limit was enforced.
        #expect(waited.finished.timedOut && waited.finished.signal == SIGKILL)
        // The background sleep went with the group (a SIGKILL is delivered at once; look twice to be sure).
        var stray: [Int32] = []
        for _ in 0..<2 {
            usleep(100_000)
            stray = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) }.filter { pid in
                ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains("30.4041")
            } ?? []
        }
        #expect(stray.isEmpty, "what the child started survived: \(stray)")
    }

    @Test("several at once, from several threads, each get their own output")
    func concurrent() async {
        await withTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let text = Array("run \(index)\n".utf8)
                    return ChildProcess(["/bin/cat"]).runWaiting(input: text).output == text
                }
            }
            for await same in group { #expect(same) }
        }
    }
}
