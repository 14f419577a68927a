internal import CYAML

/// Parses YAML text into nodes with positions, over libyaml's event API.
///
/// libyaml reports syntax errors; this layer adds what it leaves to its caller: duplicate mapping
/// keys, undefined aliases, and `<<` merge keys. Every problem is returned as a diagnostic with its
/// `path:line:col`; a syntax error ends the parse of that file, the others do not.
public enum YAMLParser {
    /// The documents of one file (an empty file has none) and the problems found in it.
    public struct Result: Sendable {
        public var documents: [YAMLNode]
        public var diagnostics: [Diagnostic]
    }

    /// Parses `bytes` (the whole file), naming positions after `file`.
    ///
    /// The corresponding C functions are `yaml_parser_initialize`, `yaml_parser_set_input_string`,
    /// `yaml_parser_parse` and `yaml_parser_delete`.
    public static func parse(_ bytes: [UInt8], file: String) -> Result {
        var builder = TreeBuilder(file: file)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return Result(documents: [], diagnostics: [Diagnostic("out of memory while starting the YAML parser", at: nil)])
        }
        defer { yaml_parser_delete(&parser) }
        // libyaml does not copy its input: the buffer must outlive every yaml_parser_parse call.
        bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    builder.diagnostics.append(syntaxError(parser, bytes: buffer, file: file))
                    return
                }
                let type = event.type
                builder.handle(event)
                yaml_event_delete(&event)
                if type == YAML_STREAM_END_EVENT { return }
            }
        }
        return Result(documents: builder.documents, diagnostics: builder.diagnostics)
    }

    private static func syntaxError(_ parser: yaml_parser_t, bytes: UnsafeBufferPointer<UInt8>, file: String) -> Diagnostic {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        if parser.error == YAML_READER_ERROR {
            // Reader errors (invalid UTF-8, control characters) carry a byte offset, not a mark.
            let (line, column) = position(ofByte: parser.problem_offset, in: bytes)
            return Diagnostic("\(problem) (byte offset \(parser.problem_offset))", at: SourceLocation(file: file, line: line, column: column))
        }
        var message = problem
        if let context = parser.context {
            message += " (\(String(cString: context)) at line \(parser.context_mark.line + 1), column \(parser.context_mark.column + 1))"
        }
        let mark = parser.problem_mark
        return Diagnostic(message, at: SourceLocation(file: file, line: mark.line + 1, column: mark.column + 1))
    }

    private static func position(ofByte offset: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (Int, Int) {
        var line = 1
        var lineStart = 0
        for index in 0..<min(offset, bytes.count) where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        let column = String(decoding: bytes[lineStart..<min(offset, bytes.count)], as: UTF8.self).count + 1
        return (line, column)
    }
}

/// Builds nodes from a stream of libyaml events.
private struct TreeBuilder {
    /// An open sequence or mapping; mutated in place on the stack so that appends never copy.
    struct Frame {
        var isMapping: Bool
        var items: [YAMLNode] = []
        var pairs: [YAMLPair] = []
        var pendingKey: YAMLNode?
        var location: SourceLocation
        var tag: String?
        var anchor: String?
    }

    let file: String
    var documents: [YAMLNode] = []
    var diagnostics: [Diagnostic] = []
    var stack: [Frame] = []
    var anchors: [String: YAMLNode] = [:]
    var documentHasRoot = false

    init(file: String) {
        self.file = file
    }

    mutating func handle(_ event: yaml_event_t) {
        let location = SourceLocation(file: file, line: event.start_mark.line + 1, column: event.start_mark.column + 1)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            anchors = [:]
            documentHasRoot = false
        case YAML_DOCUMENT_END_EVENT:
            if !documentHasRoot {
                documents.append(YAMLNode(.scalar(YAMLScalar("")), at: location))
            }
        case YAML_SCALAR_EVENT:
            let data = event.data.scalar
            let text = string(data.value, length: data.length)
            let style: YAMLScalar.Style = switch data.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: .literal
            case YAML_FOLDED_SCALAR_STYLE: .folded
            default: .plain
            }
            let node = YAMLNode(.scalar(YAMLScalar(text, style: style)), at: location, tag: cString(data.tag))
            complete(node, anchor: cString(data.anchor))
        case YAML_ALIAS_EVENT:
            let name = cString(event.data.alias.anchor) ?? ""
            if let target = anchors[name] {
                complete(target, anchor: nil)
            } else {
                diagnostics.append(Diagnostic("undefined alias '*\(name)'", at: location))
                complete(YAMLNode(.scalar(YAMLScalar("")), at: location), anchor: nil)
            }
        case YAML_SEQUENCE_START_EVENT:
            let data = event.data.sequence_start
            stack.append(Frame(isMapping: false, location: location, tag: cString(data.tag), anchor: cString(data.anchor)))
        case YAML_MAPPING_START_EVENT:
            let data = event.data.mapping_start
            stack.append(Frame(isMapping: true, location: location, tag: cString(data.tag), anchor: cString(data.anchor)))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return }
            let content: YAMLNode.Content = frame.isMapping ? .mapping(resolve(frame.pairs)) : .sequence(frame.items)
            complete(YAMLNode(content, at: frame.location, tag: frame.tag), anchor: frame.anchor)
        default:
            break
        }
    }

    /// Hands a finished node to its parent, or makes it the document's root.
    private mutating func complete(_ node: YAMLNode, anchor: String?) {
        if let anchor { anchors[anchor] = node }
        let top = stack.count - 1
        guard top >= 0 else {
            documents.append(node)
            documentHasRoot = true
            return
        }
        if !stack[top].isMapping {
            stack[top].items.append(node)
        } else if let key = stack[top].pendingKey {
            stack[top].pairs.append(YAMLPair(key: key, value: node))
            stack[top].pendingKey = nil
        } else {
            stack[top].pendingKey = node
        }
    }

    /// Rejects duplicate and non-scalar keys and applies `<<` merge keys (explicit keys win, then
    /// earlier merged mappings over later ones, as the YAML merge key specification says).
    private mutating func resolve(_ pairs: [YAMLPair]) -> [YAMLPair] {
        var seen: [String: SourceLocation] = [:]
        var explicit: [YAMLPair] = []
        var merged: [YAMLPair] = []
        for pair in pairs {
            guard let key = pair.key.scalar else {
                diagnostics.append(Diagnostic("mapping keys must be scalars, found \(pair.key.kindDescription)", at: pair.key.location))
                continue
            }
            if key.style == .plain, key.text == "<<", pair.key.tag == nil {
                merged.append(contentsOf: mergeSources(pair.value))
                continue
            }
            if let first = seen[key.text] {
                diagnostics.append(Diagnostic("duplicate key '\(key.text)' (first defined at line \(first.line), column \(first.column))", at: pair.key.location))
                continue
            }
            seen[key.text] = pair.key.location
            explicit.append(pair)
        }
        for pair in merged {
            guard let text = pair.keyText, seen[text] == nil else { continue }
            seen[text] = pair.key.location
            explicit.append(pair)
        }
        return explicit
    }

    private mutating func mergeSources(_ value: YAMLNode) -> [YAMLPair] {
        if let pairs = value.mapping { return pairs }
        if let items = value.sequence, items.allSatisfy({ $0.mapping != nil }) {
            return items.flatMap { $0.mapping ?? [] }
        }
        diagnostics.append(Diagnostic("a merge key '<<' needs a mapping or a sequence of mappings, found \(value.kindDescription)", at: value.location))
        return []
    }

    private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int) -> String {
        guard let pointer else { return "" }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    private func cString(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }
}
