import Foundation
import Testing
@testable import TendSystemd

/// systemd's own writer of journal files from entries in the export format.
private let journalRemote = "/lib/systemd/systemd-journal-remote"

@Suite("journal", .enabled(if: FileManager.default.isExecutableFile(atPath: journalRemote), "needs systemd-journal-remote (installed by make test)"))
struct JournalTests {
    /// A journal file written by systemd's own journal-remote from entries in the export format.
    func journal(_ entries: [[String: String]]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tend-journal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var export = ""
        for (index, fields) in entries.enumerated() {
            export += "__CURSOR=s=1;i=\(index + 1)\n__REALTIME_TIMESTAMP=\(1_700_000_000_000_000 + index * 1_000_000)\n"
            export += "__MONOTONIC_TIMESTAMP=\(1000 * (index + 1))\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=test\n"
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) { export += "\(key)=\(value)\n" }
            export += "\n"
        }
        try Data(export.utf8).write(to: URL(fileURLWithPath: folder + "/in.export"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: journalRemote)
        process.arguments = ["-o", folder + "/tend.journal", folder + "/in.export"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "systemd-journal-remote failed")
        try FileManager.default.removeItem(atPath: folder + "/in.export")
        return folder
    }

    @Test("the last messages of a unit are its own and systemd's about it, oldest first, at most the count asked for")
    func lastMessagesOfAUnit() throws {
        let folder = try journal([
            ["MESSAGE": "starting", "_SYSTEMD_UNIT": "demo.service"],
            ["MESSAGE": "another unit", "_SYSTEMD_UNIT": "other.service"],
            ["MESSAGE": "listening on :80", "_SYSTEMD_UNIT": "demo.service"],
            ["MESSAGE": "demo.service: Main process exited, code=exited, status=1/FAILURE", "UNIT": "demo.service"],
            ["MESSAGE": "other about other", "UNIT": "other.service"],
        ])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(Journal.lastMessages(unit: "demo.service", count: 2, directory: folder)
                == ["listening on :80", "demo.service: Main process exited, code=exited, status=1/FAILURE"])
        #expect(Journal.lastMessages(unit: "demo.service", count: 10, directory: folder).count == 3)
        #expect(Journal.lastMessages(unit: "missing.service", count: 10, directory: folder).isEmpty)
    }
}
