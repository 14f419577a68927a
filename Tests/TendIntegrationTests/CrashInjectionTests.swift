import Foundation
import Testing

/// kill -9 at random moments of applies (bench/torture.py; `make torture` runs 1,000 kills): no
/// file torn, missing or with a mode unlike its content, no torn state record, and the next run
/// converges and removes every temporary file the kill left.
@Suite("crash injection")
struct CrashInjectionTests {
    @Test("ten kill -9s during applies of 2,500 files (three parts, each made durable on its own) leave nothing torn, and every next run converges")
    func killsLeaveNothingBroken() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../bench/torture.py").standardized.path
        let output = try await sh("/usr/bin/python3", [script, tendBinary, "--kills", "10", "--files", "2500", "--seed", "7", "--json"])
        let counts = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        for key in ["torn", "missing", "wrongmode", "state", "unconverged", "leftovers"] {
            #expect(counts[key] as? Int == 0, "\(key): \(counts)")
        }
        #expect(counts["kills"] as? Int == 10)
    }
}
