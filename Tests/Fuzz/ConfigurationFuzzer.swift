// A libFuzzer target over the Load stage: the YAML layer, tend.yaml and manifest decoding, and
// every provider's decoding (templates included), on input that a repository's author controls.
//
// Built for fuzzing by `make fuzz` (`-sanitize=fuzzer,address -D TEND_FUZZING`): libFuzzer then
// provides `main` and calls `LLVMFuzzerTestOneInput`. Built as usual it is a replayer: each file
// named on the command line goes through the same function once, so a crash that fuzzing found
// can be run again under a debugger.
import Glibc
import TendCore
import TendProviders
import TendSpec

/// The files of a configuration held in memory.
struct MemorySnapshot: Snapshot {
    var files: [String: [UInt8]]

    var description: String { "fuzz" }
    var origin: SnapshotOrigin { SnapshotOrigin(type: "memory", location: "fuzz") }
    var displayPrefix: String { "" }

    func entries(in directory: String) throws(SnapshotError) -> [SnapshotEntry] {
        var names: [String: SnapshotEntry.Kind] = [:]
        let prefix = directory.isEmpty ? "" : directory + "/"
        for path in files.keys where path.hasPrefix(prefix) {
            let rest = path.dropFirst(prefix.count)
            if let slash = rest.firstIndex(of: "/") { names[String(rest[..<slash])] = .directory } else { names[String(rest)] = .file }
        }
        guard !names.isEmpty || directory.isEmpty else { throw SnapshotError(.notFound, path: directory, message: "\(directory): not found") }
        return names.sorted { $0.key < $1.key }.map { SnapshotEntry(name: $0.key, kind: $0.value) }
    }

    func read(_ path: String) throws(SnapshotError) -> [UInt8] {
        guard let bytes = files[path] else { throw SnapshotError(.notFound, path: path, message: "\(path): not found") }
        return bytes
    }
}

/// The input is used three ways: as a manifest, as tend.yaml, and as a template.
func fuzz(_ input: [UInt8]) {
    _ = YAMLParser.parse(input, file: "input.yaml")
    let facts = HostFacts(hostname: "web-1", os: "debian", labels: ["env": "prod"])
    let config = Array("vars:\n  name: fuzz\n  list: [a, b]\nhosts:\n  - apply: [m]\n".utf8)
    let manifest = Array("resources:\n  - file: /etc/t\n    template: t.mustache\n  - unit: a.service\n    source: a.service\n".utf8)
    let shapes: [[String: [UInt8]]] = [
        ["tend.yaml": config, "m/a.yaml": input, "m/t.mustache": Array("{{name}}\n".utf8), "m/a.service": Array("[Install]\nWantedBy=multi-user.target\n".utf8)],
        ["tend.yaml": input, "m/a.yaml": Array("resources: []\n".utf8)],
        ["tend.yaml": config, "m/a.yaml": manifest, "m/t.mustache": input, "m/a.service": input],
    ]
    for files in shapes {
        _ = try? Configuration.catalog(from: MemorySnapshot(files: files), providers: .standard, facts: facts)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzz(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

#if TEND_FUZZING
// SwiftPM links an executable's entry point under its own name (`tend_fuzz_main`), so libFuzzer's
// `main` is not the one that runs: start its driver from here.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@main
struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
    }
}
#else
@main
struct Replay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let file = fopen(path, "rb") else { continue }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&buffer, 1, buffer.count, file)
                if n == 0 { break }
                bytes += buffer[..<n]
            }
            fclose(file)
            fuzz(bytes)
            print("\(path): ok")
        }
    }
}
#endif
