import Testing
@testable import TendSpec

@Suite("YAML layer")
struct YAMLParserTests {
    func parse(_ text: String) -> YAMLParser.Result {
        YAMLParser.parse(Array(text.utf8), file: "m.yaml")
    }

    @Test("nodes keep their file, line and column")
    func positions() throws {
        let result = parse("resources:\n  - file: /etc/motd\n    mode: \"0644\"\n")
        #expect(result.diagnostics.isEmpty)
        let root = try #require(result.documents.first?.mapping)
        let item = try #require(root[0].value.sequence?.first?.mapping)
        #expect(item[0].key.location == SourceLocation(file: "m.yaml", line: 2, column: 5))
        #expect(item[0].value.location == SourceLocation(file: "m.yaml", line: 2, column: 11))
        #expect(item[1].value.scalar == YAMLScalar("0644", style: .doubleQuoted))
        #expect(item[1].value.location.description == "m.yaml:3:11")
    }

    @Test("several documents in one file")
    func documents() {
        let result = parse("a: 1\n---\nb: 2\n---\n")
        #expect(result.documents.count == 3)
        #expect(result.documents[1].mapping?.first?.keyText == "b")
        #expect(result.documents[2].isNull)
        #expect(parse("").documents.isEmpty)
    }

    @Test("anchors and aliases resolve to copies of the anchored node")
    func aliases() throws {
        let result = parse("base: &b { mode: \"0600\" }\nother: *b\n")
        #expect(result.diagnostics.isEmpty)
        let other = try #require(result.documents.first?.mapping?[1].value.mapping)
        #expect(other.first?.keyText == "mode")
        #expect(other.first?.value.scalar?.text == "0600")
    }

    @Test("merge keys: explicit keys win over merged ones")
    func mergeKeys() throws {
        let result = parse("defaults: &d { mode: \"0600\", owner: root }\nfile:\n  <<: *d\n  mode: \"0644\"\n")
        #expect(result.diagnostics.isEmpty)
        let file = try #require(result.documents.first?.mapping?[1].value.mapping)
        #expect(file.map(\.keyText) == ["mode", "owner"])
        #expect(file[0].value.scalar?.text == "0644")
        #expect(file[1].value.scalar?.text == "root")
    }

    @Test("a duplicate key is an error at the second key, naming the first")
    func duplicateKeys() {
        let result = parse("a: 1\nb: 2\na: 3\n")
        #expect(result.diagnostics.map(\.description) == ["m.yaml:3:1: duplicate key 'a' (first defined at line 1, column 1)"])
    }

    @Test("an undefined alias is an error at the alias")
    func undefinedAlias() {
        #expect(parse("a: *missing\n").diagnostics.map(\.description) == ["m.yaml:1:4: undefined alias '*missing'"])
    }

    @Test("syntax errors carry libyaml's position, problem and context")
    func syntaxErrors() {
        #expect(parse("a: [1, 2\n").diagnostics.map(\.description) ==
                ["m.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 4)"])
        #expect(parse("a:\n\tb: 1\n").diagnostics.map(\.description) ==
                ["m.yaml:2:1: found character that cannot start any token (while scanning for the next token at line 2, column 1)"])
        #expect(parse("a: b: c\n").diagnostics.map(\.description) ==
                ["m.yaml:1:5: mapping values are not allowed in this context"])
    }

    @Test("invalid UTF-8 is reported at its line and column")
    func invalidUTF8() {
        let result = YAMLParser.parse(Array("a: 1\nb: x".utf8) + [0xFF, 0x0A], file: "m.yaml")
        #expect(result.diagnostics.map(\.description) == ["m.yaml:2:5: invalid leading UTF-8 octet (byte offset 9)"])
    }

    @Test("scalars read as YAML 1.2: yes is a string, true is a boolean, ~ is null")
    func scalarTypes() throws {
        let pairs = try #require(parse("a: yes\nb: true\nc: ~\nd: \"true\"\n").documents.first?.mapping)
        #expect(pairs[0].value.scalar?.boolValue == nil)
        #expect(pairs[1].value.scalar?.boolValue == true)
        #expect(pairs[2].value.isNull)
        #expect(pairs[3].value.scalar?.boolValue == nil)
    }
}

@Suite("decoding helpers")
struct DecodingTests {
    @Test("unknown keys are reported with the nearest known key")
    func unknownKeys() throws {
        let node = try #require(YAMLParser.parse(Array("mdoe: x\nowner: root\nzzz: 1\n".utf8), file: "m.yaml").documents.first)
        var diagnostics = Diagnostics()
        var reader = try #require(MappingReader(node, what: "a file", diagnostics: &diagnostics))
        _ = reader.take("mode")
        _ = reader.take("owner")
        reader.finish(&diagnostics, context: "a file")
        #expect(diagnostics.all.map(\.description) == [
            "m.yaml:1:1: unknown key 'mdoe' in a file; did you mean 'mode'?",
            "m.yaml:3:1: unknown key 'zzz' in a file (valid keys: mode, owner)",
        ])
    }

    @Test("wrong types name what was found")
    func wrongTypes() throws {
        let pairs = try #require(YAMLParser.parse(Array("a: [1]\nb: x\nc: {}\n".utf8), file: "m.yaml").documents.first?.mapping)
        var diagnostics = Diagnostics()
        #expect(pairs[0].value.string("'a'", &diagnostics) == nil)
        #expect(pairs[1].value.bool("'b'", &diagnostics) == nil)
        #expect(pairs[2].value.stringList("'c'", &diagnostics) == nil)
        #expect(diagnostics.all.map(\.description) == [
            "m.yaml:1:4: 'a' must be a string, found a sequence",
            "m.yaml:2:4: 'b' must be true or false, found a string",
            "m.yaml:3:4: 'c' must be a list of strings, found a mapping",
        ])
    }

    @Test("repository paths resolve inside the repository and refuse to leave it")
    func repositoryPaths() {
        #expect(RepositoryPath.resolve("files/a", in: "roles/web") == "roles/web/files/a")
        #expect(RepositoryPath.resolve("../common/a", in: "roles/web") == "roles/common/a")
        #expect(RepositoryPath.resolve("../../../etc/shadow", in: "roles/web") == nil)
    }
}

/// A long file is parsed by two threads (libyaml's events copied out on one, the tree built on the
/// other): what comes out must be what one thread makes of it, problems and limits included.
@Suite("YAML layer, long files")
struct YAMLPipelineTests {
    /// The nodes and problems of `text` as one line each, from one thread or two.
    func outline(_ text: String, pipelined: Bool) -> [String] {
        let result = YAMLParser.parse(Array(text.utf8), file: "long.yaml", pipelined: pipelined)
        var lines: [String] = []
        func walk(_ node: YAMLNode, _ depth: Int) {
            let at = "\(node.location) \(node.tag ?? "")"
            switch node.content {
            case .scalar(let scalar): lines.append("\(depth) \(at) scalar \(scalar.style) \(scalar.text)")
            case .sequence(let items):
                lines.append("\(depth) \(at) sequence \(items.count)")
                for item in items { walk(item, depth + 1) }
            case .mapping(let pairs):
                lines.append("\(depth) \(at) mapping \(pairs.count)")
                for pair in pairs {
                    walk(pair.key, depth + 1)
                    walk(pair.value, depth + 1)
                }
            }
        }
        for document in result.documents { walk(document, 0) }
        return lines + result.diagnostics.map { "problem \($0)" }
    }

    /// `count` resources with anchors, aliases, merge keys, block scalars and tags.
    func manifest(_ count: Int) -> String {
        var text = "defaults: &defaults\n  mode: \"0644\"\n  owner: root\nresources:\n"
        for index in 0..<count {
            text += "  - file: /srv/data/f\(index).conf\n    <<: *defaults\n"
            text += index % 3 == 0 ? "    content: |\n      line one \(index)\n      line two\n" : "    content: !!str 'quoted \(index)'\n"
        }
        return text
    }

    @Test("a long manifest gives the same nodes from two threads as from one")
    func sameNodes() {
        let text = manifest(4_000)
        #expect(text.utf8.count > YAMLParser.pipelineThreshold)
        let one = outline(text, pipelined: false), two = outline(text, pipelined: true)
        #expect(one.count > 30_000)
        #expect(two == one)
        #expect(!one.contains { $0.hasPrefix("problem") })
    }

    @Test("problems deep in a long file are found by two threads as by one, in the same order")
    func sameProblems() {
        let duplicate = manifest(3_000) + "  - file: /etc/a\n    mode: \"0600\"\n    mode: \"0640\"\n  - file: *nowhere\n"
        #expect(outline(duplicate, pipelined: true) == outline(duplicate, pipelined: false))
        #expect(outline(duplicate, pipelined: true).filter { $0.hasPrefix("problem") }.count == 2)

        let syntax = manifest(3_000) + "  - file: [unclosed\n"
        let problems = outline(syntax, pipelined: true).filter { $0.hasPrefix("problem") }
        #expect(problems == outline(syntax, pipelined: false).filter { $0.hasPrefix("problem") })
        #expect(problems.count == 1 && problems[0].contains("long.yaml:"))
    }

    @Test("a long file that passes a limit in its first lines stops there, on two threads as on one", .timeLimit(.minutes(1)))
    func limitAtTheStart() {
        let deep = "deep: " + String(repeating: "[", count: 500) + "\n" + manifest(3_000)
        var laughs = "lol0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 { laughs += "lol\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        laughs += manifest(3_000)
        for (text, problem) in [(deep, "nesting deeper than \(YAMLParser.maximumDepth) levels"), (laughs, "more than \(YAMLParser.maximumNodes) nodes")] {
            #expect(text.utf8.count > YAMLParser.pipelineThreshold)
            let two = outline(text, pipelined: true)
            #expect(two == outline(text, pipelined: false))
            let problems = two.filter { $0.hasPrefix("problem") }
            #expect(problems.count == 1 && problems[0].contains(problem), "\(problems)")
        }
    }

    @Test("past 100 problems a file is read no further, on two threads as on one, and the last problem says so", .timeLimit(.minutes(1)))
    func problemLimit() {
        // Three bytes a problem: a 3 MB file would otherwise be a million lines of output.
        let aliases = "resources: [" + String(repeating: "*a, ", count: 1_000_000) + "]\n"
        let duplicates = manifest(2_000) + "many:\n" + (0..<1_000).map { _ in "  key: x\n" }.joined() + "after: *nowhere\n"
        for (text, first) in [(aliases, "long.yaml:1:13: undefined alias '*a'"), (duplicates, "duplicate key 'key'")] {
            let two = outline(text, pipelined: true)
            #expect(two == outline(text, pipelined: false))
            let problems = two.filter { $0.hasPrefix("problem") }
            #expect(problems.count == YAMLParser.maximumProblems + 1)
            #expect(problems.first?.contains(first) == true, "\(problems.prefix(2))")
            #expect(problems.last?.contains("more than 100 problems in this file; tend stops reading it here") == true, "\(problems.suffix(2))")
            // Nothing after the stop is read: the undefined alias that ends the second file is not reported.
            #expect(!problems.contains { $0.contains("*nowhere") })
        }
    }

    @Test("a long file past a limit stops where one thread stops, and says so once")
    func sameLimits() {
        var laughs = manifest(2_000) + "lol0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 { laughs += "lol\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let two = outline(laughs, pipelined: true)
        #expect(two == outline(laughs, pipelined: false))
        #expect(two.filter { $0.hasPrefix("problem") }.count == 1)
        #expect(two.last?.contains("more than \(YAMLParser.maximumNodes) nodes") == true)
    }
}
