import Foundation
import Testing

/// One broken or hostile configuration of the corpus (Corpus/README.md): a repository and what
/// tend must do with it.
struct CorpusCase: CustomTestStringConvertible, Sendable {
    var name: String
    var repository: String
    var exitCode: Int32
    /// Texts the output must contain, the first usually the problem's `path:line:col`.
    var says: [String]

    var testDescription: String { name }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus").path

    /// Every case, in name order.
    static func all() -> [CorpusCase] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.first?.isNumber == true }.sorted()
        return names.compactMap { name in
            guard let expect = try? String(contentsOfFile: "\(folder)/\(name)/expect", encoding: .utf8) else { return nil }
            var result = CorpusCase(name: name, repository: "\(folder)/\(name)/repo", exitCode: -1, says: [])
            for line in expect.split(separator: "\n") {
                if line.hasPrefix("exit "), let code = Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) { result.exitCode = code }
                if line.hasPrefix("says ") { result.says.append(String(line.dropFirst(5))) }
            }
            return result
        }
    }
}

/// The malformed-input corpus: every case gets its documented exit code, a message at its
/// position, no crash, and not one byte changed under the root.
@Suite("malformed input corpus")
struct CorpusTests {
    @Test("the corpus holds at least 200 cases, each with an expectation")
    func corpusIsComplete() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: CorpusCase.folder).filter { $0.first?.isNumber == true }
        #expect(folders.count >= 200)
        #expect(CorpusCase.all().count == folders.count, "every case has an expect file")
        #expect(CorpusCase.all().allSatisfy { [3, 4].contains($0.exitCode) }, "every case is refused before anything changes")
    }

    @Test("a broken or hostile configuration is refused at its position and changes nothing", arguments: CorpusCase.all())
    func refused(_ corpusCase: CorpusCase) async throws {
        let root = try makeRoot()
        let state = try Scratch("tend-state")
        let before = try tree(root.path)
        let apply = try await tend(["apply", corpusCase.repository, "--root", root.path, "--hostname", "corpus-host", "--state-dir", state.path], timeout: 60)
        #expect(apply.status < 128, "tend crashed: \(apply)")
        #expect(apply.status == corpusCase.exitCode, "\(apply)")
        let output = apply.stdout + apply.stderr
        for text in corpusCase.says {
            #expect(output.contains(text), "\(apply)")
        }
        #expect(!output.contains("\u{1B}"), "a raw escape reached the terminal")
        #expect(try tree(root.path) == before, "the root changed")
    }
}
