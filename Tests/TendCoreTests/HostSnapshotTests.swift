import Foundation
import Testing
@testable import TendCore
import TendSpec

@Suite("host snapshots")
struct HostSnapshotTests {
    static let hash = "$6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmn"

    @Test("a recorded reader's answers come back from the snapshot, through JSON; what it never read is taken as absent and named")
    func replays() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tend-snapshot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc/app", withIntermediateDirectories: true)
        try "open\n".write(toFile: root + "/etc/app/open.conf", atomically: false, encoding: .utf8)
        try "private\n".write(toFile: root + "/etc/app/private.conf", atomically: false, encoding: .utf8)
        try "declared sensitive\n".write(toFile: root + "/etc/app/secret", atomically: false, encoding: .utf8)
        chmod(root + "/etc/app/open.conf", 0o644)
        chmod(root + "/etc/app/secret", 0o644)
        chmod(root + "/etc/app/private.conf", 0o600)
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/app/link", withDestinationPath: "open.conf")

        let recorder = HostSnapshot.Recorder()
        recorder.hide(["/etc/app/secret"])
        let reader = try HostReader(root: root, recorder: recorder)
        let open = try reader.read("/etc/app/open.conf")
        _ = try reader.read("/etc/app/private.conf")
        _ = try reader.read("/etc/app/secret")
        let openStatus = try reader.status("/etc/app/open.conf")
        #expect(try reader.status("/etc/app/missing") == nil)
        #expect(try reader.readLink("/etc/app/link") == "open.conf")
        #expect(try reader.entries(of: "/etc/app") == ["link", "open.conf", "private.conf", "secret"])

        let json = try JSONEncoder().encode(recorder.snapshot)
        #expect(!String(decoding: json, as: UTF8.self).contains("cHJpdmF0ZQ"), "the private file's content (base64) is in the snapshot")
        let replay = HostReader(replaying: try JSONDecoder().decode(HostSnapshot.self, from: json))
        #expect(try replay.read("/etc/app/open.conf") == open)
        #expect(try replay.status("/etc/app/open.conf") == openStatus)
        #expect(try replay.status("/etc/app/missing") == nil)
        #expect(try replay.readLink("/etc/app/link") == "open.conf")
        #expect(try replay.entries(of: "/etc/app") == ["link", "open.conf", "private.conf", "secret"])
        #expect(replay.recordedDigest("/etc/app/private.conf") == StatCache.digest(of: Array("private\n".utf8)))
        #expect(replay.recordedDigest("/etc/app/secret") == StatCache.digest(of: Array("declared sensitive\n".utf8)))
        #expect(replay.recordedDigest("/etc/app/open.conf") == nil)
        #expect(throws: HostError.self) { try replay.read("/etc/app/private.conf") }
        #expect(try replay.status("/etc/app/private.conf")?.permissions == 0o600, "a file read without its status asked first has it recorded")
        #expect(replay.unrecorded.isEmpty)
        #expect(try replay.status("/etc/app/new.conf") == nil)
        // What this machine has and the snapshot does not is not read here: absent, and named.
        #expect(try replay.status("/etc/passwd") == nil)
        #expect(throws: HostError.self) { try replay.read("/etc/passwd") }
        #expect(try replay.userID(named: "root") == nil)
        #expect(replay.unrecorded == ["/etc/app/new.conf", "/etc/group", "/etc/passwd", "user root"])
    }

    @Test("a shadow file keeps its lines with each hash as a digest, which still matches the declared hash")
    func redactsShadow() {
        let shadow = "root:*:19000:0:99999:7:::\ndeploy:\(Self.hash):19000:0:99999:7:::\nlocked:!\(Self.hash):19000::::::\nnone:!:19000::::::\n"
        let redacted = String(decoding: HostSnapshot.redacted(Array(shadow.utf8)), as: UTF8.self)
        #expect(!redacted.contains("saltsalt"))
        let lines = redacted.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines[0][1] == "*" && lines[3][1] == "!")
        #expect(lines[2][1].hasPrefix("!" + HostSnapshot.secretPrefix))
        #expect(HostSnapshot.secret(lines[1][1], is: Self.hash))
        #expect(HostSnapshot.secret(String(lines[2][1].dropFirst()), is: Self.hash))
        #expect(!HostSnapshot.secret(lines[1][1], is: Self.hash + "x"))
        #expect(!HostSnapshot.secret(Self.hash, is: Self.hash), "only a snapshot's digest is compared so")
    }
}
