import Glibc
import SystemPackage
import Testing
@testable import TendSpec

@Suite("atomic files")
struct AtomicFileTests {
    /// A fresh folder under /tmp, removed with everything in it by `remove`.
    private func folder() throws -> String {
        var template = Array("/tmp/tend-atomic.XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw Errno(rawValue: errno) }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func remove(_ path: String) {
        for name in (try? entries(path)) ?? [] { unlink(path + "/" + name) }
        rmdir(path)
    }

    private func entries(_ path: String) throws -> [String] {
        let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: .directory)
        defer { try? fd.close() }
        return try AtomicFile.entries(of: fd).sorted()
    }

    @Test("a file foreseen as owned at creation that a setgid folder gives another group is written again the careful way, with its declared group and mode",
          .enabled(if: geteuid() == 0, "changing a folder's group needs root"))
    func ownedAtCreationFallsBack() throws {
        let path = try folder()
        defer { remove(path) }
        // Foreseen wrongly on purpose: the folder is setgid and of group 33, so creating a file
        // in it gives group 33, not the creator's 0.
        #expect(chown(path, 0, 33) == 0)
        #expect(chmod(path, 0o2775) == 0)
        let directory = try FileDescriptor.open(FilePath(path), .readOnly, options: .directory)
        defer { try? directory.close() }
        let temporary = try AtomicFile.writeTemporary(Array("secret\n".utf8), for: "f", in: directory, mode: 0o640,
                                                      owner: 0, group: 0, ownedAtCreation: true, keepOpen: false)
        var info = stat()
        #expect(lstat(path + "/" + temporary.name, &info) == 0)
        #expect(info.st_gid == 0, "group \(info.st_gid)")
        #expect(info.st_mode & 0o7777 == 0o640, "mode \(String(info.st_mode, radix: 8))")
        #expect(try entries(path) == [temporary.name], "the first try left nothing behind")
        try AtomicFile.place(temporary.name, as: "f", in: directory, replacing: .nothing)
        #expect(try entries(path) == ["f"])
    }
}
