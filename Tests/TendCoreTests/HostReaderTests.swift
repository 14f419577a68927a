import Foundation
import Testing
@testable import TendCore
import TendSpec

@Suite("host reader")
struct HostReaderTests {
    func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tend-core-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path + "/etc/app", withIntermediateDirectories: true)
        return path
    }

    @Test("reads files under the root, reports missing paths as nil")
    func reads() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "x=1\n".write(toFile: root + "/etc/app/conf", atomically: false, encoding: .utf8)
        let reader = try HostReader(root: root)
        #expect(try reader.read("/etc/app/conf") == Array("x=1\n".utf8))
        #expect(try reader.status("/etc/app/conf")?.type == .regular)
        #expect(try reader.status("/etc/app/missing") == nil)
        #expect(try reader.status("/no/such/folder/file") == nil)
        #expect(try reader.entries(of: "/etc/app") == ["conf"])
    }

    @Test("never follows a link above a path, and names the link")
    func refusesLinks() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/linked", withDestinationPath: "/etc")
        let reader = try HostReader(root: root)
        #expect(throws: HostError.self) { try reader.status("/etc/linked/passwd") }
        do {
            _ = try reader.read("/etc/linked/passwd")
            Issue.record("read through a link")
        } catch {
            #expect(error.description == "/etc/linked: is a symbolic link; tend never writes or reads through links")
        }
        #expect(try reader.status("/etc/linked")?.type == .symlink)
        #expect(try reader.readLink("/etc/linked") == "/etc")
    }

    @Test("paths must be absolute and clean")
    func paths() {
        #expect(HostPath.problem(in: "/etc/motd") == nil)
        #expect(HostPath.problem(in: "etc/motd") == "'etc/motd' is a relative path; paths must be absolute")
        #expect(HostPath.problem(in: "/etc/../x") == "'/etc/../x' contains '..'")
        #expect(HostPath.problem(in: "/etc//x") == "'/etc//x' has an empty component or a trailing '/'")
        #expect(HostPath.problem(in: "/etc/") == "'/etc/' has an empty component or a trailing '/'")
        #expect(HostPath.problem(in: "/") == nil)
        #expect(HostPath.problem(in: "/etc/.") == "'/etc/.' contains '.'")
        #expect(HostPath.problem(in: "/../etc") == "'/../etc' contains '..'")
        #expect(HostPath.problem(in: "/a/.../.b/..c") == nil, "names made of or starting with dots are names")
        #expect(HostPath.problem(in: "/a\u{0}b") == "'/a\\0b' contains a NUL byte")
        #expect(HostPath.problem(in: "/a\tb") == "'/a\\tb' contains a control character")
        #expect(HostPath.problem(in: "/" + String(repeating: "x", count: 255)) == nil)
        #expect(HostPath.problem(in: "/" + String(repeating: "x", count: 256))?.hasSuffix("has a component longer than 255 bytes") == true)
        #expect(HostPath.problem(in: String(repeating: "/abcdefgh", count: 456)) == "the path is longer than 4095 bytes")
        #expect(HostPath.structuralProblem(in: "/a/\u{1}b") == nil, "a name found on the host may hold control characters")
        #expect(HostPath.parent(of: "/etc/motd") == "/etc")
        #expect(HostPath.parent(of: "/etc") == "/")
        #expect(HostPath.parent(of: "/") == nil)
        #expect(HostPath.name(of: "/etc/motd") == "motd")
    }

    @Test("modes are octal text of three or four digits")
    func modes() {
        #expect(FileMode.parse("0644") == 0o644)
        #expect(FileMode.parse("644") == 0o644)
        #expect(FileMode.parse("2755") == 0o2755)
        #expect(FileMode.parse("0999") == nil)
        #expect(FileMode.parse("12345") == nil)
        #expect(FileMode.format(0o644) == "0644")
    }
}
