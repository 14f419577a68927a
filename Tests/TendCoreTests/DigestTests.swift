import Testing
import TendCore

@Suite("digests")
struct DigestTests {
    /// Plan files written by earlier versions hold these digests: the input must stay SHA-256
    /// over each field's label, a NUL, its length (8 bytes, little-endian) and its bytes, shown
    /// as lowercase hex. The expected values were computed with Python's hashlib, not with tend.
    @Test("a digest is SHA-256 over each field's label, NUL, length and bytes, in lowercase hex")
    func layout() {
        var digest = Digest()
        digest.add("path", "/etc/motd")
        digest.add("content", Array("hello\n".utf8))
        digest.add("mode", nil)
        #expect(digest.finalize() == "8b74f468d45a65c89f8e8b7dcdd81a4e95226265d802693ac18caa4e07d1d50c")
        #expect(Digest().finalize() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("an empty value hashes as an empty byte field, no value differs from both, and non-ASCII labels and values hash as their UTF-8")
    func edges() {
        func digest(_ build: (inout Digest) -> Void) -> String {
            var digest = Digest()
            build(&digest)
            return digest.finalize()
        }
        let empty = "261731b41960f9c6ca0c8713fd46496b707ef1d0516592c93ff5f52e28df6660"
        #expect(digest { $0.add("v", "") } == empty)
        #expect(digest { $0.add("v", [UInt8]()) } == empty)
        #expect(digest { $0.add("v", nil) } == "1f70a22a3a06402b90696bf17ccf7ec7e3914d29362b5beddc75e32914b166c5")
        #expect(digest { $0.add("clé", "ünïcödé 🙂") } == "1005ac0832403f31783a1381199c9a15fea32b4a602268007e7f0173cffe5a87")
    }
}
