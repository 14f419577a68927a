internal import CYAML
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// Parses YAML text into nodes with positions, over libyaml's event API.
///
/// libyaml reports syntax errors; this layer adds what it leaves to its caller: duplicate mapping
/// keys, undefined aliases, and `<<` merge keys. Every problem is returned as a diagnostic with its
/// `path:line:col`; a syntax error or a limit (below) ends the parse of that file, the others do
/// not.
///
/// A long file is read by two threads: one runs libyaml and copies its events out, the other
/// builds the nodes from them (libyaml and the tree each took half of parsing a 40,000-line
/// manifest, on one core).
///
/// A repository is hostile input, so three limits end the parse of a file where they are passed:
/// nesting deeper than `maximumDepth` (every later stage walks nodes recursively), a document
/// whose aliases expand it to more than `maximumNodes` nodes (a "billion laughs" is a few lines
/// that expand to billions), and more than `maximumProblems` problems (`*a,` is three bytes and
/// a problem: a 3 MB file made a million lines of output, and took 3.7 s and 332 MiB).
public enum YAMLParser {
    /// The deepest nesting of sequences and mappings read.
    public static let maximumDepth = 100
    /// The most nodes one document may hold once every alias is expanded; a scalar counts one
    /// node per 64 bytes, so this also bounds the expanded text to about 64 MB.
    public static let maximumNodes = 1_000_000
    /// The most problems reported of one file; past them, one more says that reading stopped.
    public static let maximumProblems = 100

    /// The documents of one file (an empty file has none) and the problems found in it.
    public struct Result: Sendable {
        public var documents: [YAMLNode]
        public var diagnostics: [Diagnostic]
    }

    /// Below this many bytes a file is parsed on one thread.
    static let pipelineThreshold = 64 << 10

    /// Parses `bytes` (the whole file), naming positions after `file`.
    ///
    /// The corresponding C functions are `yaml_parser_initialize`, `yaml_parser_set_input_string`,
    /// `yaml_parser_parse` and `yaml_parser_delete`.
    public static func parse(_ bytes: [UInt8], file: String) -> Result {
        parse(bytes, file: file, pipelined: bytes.count >= pipelineThreshold && ProcessInfo.processInfo.activeProcessorCount > 1)
    }

    /// Parses on two threads when `pipelined`, on this one otherwise; the same either way.
    static func parse(_ bytes: [UInt8], file: String, pipelined: Bool) -> Result {
        var tree = TreeBuilder(file: file)
        var stopped = false
        /// Builds from a batch; false once a limit stopped the tree.
        func build(_ batch: [YAMLEvent]) -> Bool {
            for event in batch where !stopped {
                if !tree.take(event) { stopped = true }
            }
            return !stopped
        }
        var syntaxError: Diagnostic?
        let events = YAMLEventQueue()
        // libyaml gets a thread of its own, which never waits for this one to start.
        if pipelined, let reader = ReaderThread({ events.finish(syntaxError: read(bytes, file: file, deliver: events.put)) }) {
            while let batch = events.take(), build(batch) {}
            // Past a limit the tree is done: the reader stops at its next batch.
            events.stop()
            reader.join()
            syntaxError = events.syntaxError
        } else {
            syntaxError = read(bytes, file: file, deliver: build)
        }
        if !stopped, let syntaxError { tree.diagnostics.append(syntaxError) }
        return Result(documents: tree.documents, diagnostics: tree.diagnostics)
    }

    /// Runs libyaml over `bytes` and hands its events to `deliver` in batches, until it says no
    /// more; returns libyaml's syntax error, if there is one. It also stops by itself at the event
    /// where the builder stops at a limit of the text (nesting deeper than `maximumDepth`, a
    /// document of more than `maximumNodes` nodes), and so reads no further than the builder will;
    /// past `maximumProblems`, which only the builder counts, it reads at most one batch more.
    private static func read(_ bytes: [UInt8], file: String, deliver: ([YAMLEvent]) -> Bool) -> Diagnostic? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return Diagnostic("out of memory while starting the YAML parser", at: nil)
        }
        defer { yaml_parser_delete(&parser) }
        // libyaml does not copy its input: the buffer must outlive every yaml_parser_parse call.
        return bytes.withUnsafeBufferPointer { buffer -> Diagnostic? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var batch: [YAMLEvent] = []
            batch.reserveCapacity(YAMLEventQueue.batchSize)
            var depth = 0
            var nodes = 0
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    _ = deliver(batch)
                    return syntaxError(parser, bytes: buffer, file: file)
                }
                let type = event.type
                batch.append(YAMLEvent(event))
                yaml_event_delete(&event)
                switch type {
                case YAML_DOCUMENT_START_EVENT: nodes = 0
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT: depth += 1; nodes += 1
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT: depth -= 1
                case YAML_SCALAR_EVENT, YAML_ALIAS_EVENT: nodes += 1
                default: break
                }
                // The builder counts a node at least where this counts one: it stops here or before.
                if type == YAML_STREAM_END_EVENT || depth > maximumDepth || nodes > maximumNodes {
                    _ = deliver(batch)
                    return nil
                }
                if batch.count == YAMLEventQueue.batchSize {
                    guard deliver(batch) else { return nil }
                    batch.removeAll(keepingCapacity: true)
                }
            }
        }
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
        /// How many nodes it holds, with aliases counted at the size of what they stand for.
        var weight = 1
        /// How deep its children nest (0 when it has none), aliases counted at their own depth.
        var height = 0
    }

    let file: String
    var documents: [YAMLNode] = []
    var diagnostics: [Diagnostic] = []
    var stack: [Frame] = []
    var anchors: [String: (node: YAMLNode, weight: Int, height: Int)] = [:]
    var documentHasRoot = false
    /// Nodes in the current document, aliases counted at the size of what they stand for.
    var documentWeight = 0

    init(file: String) {
        self.file = file
    }

    /// Takes one event; false when a limit was passed and parsing must stop, which the last
    /// diagnostic says.
    mutating func take(_ event: YAMLEvent) -> Bool {
        guard handle(event) else { return false }
        guard diagnostics.count > YAMLParser.maximumProblems else { return true }
        // One event can add many (a mapping's duplicate keys are found at its end).
        diagnostics.removeSubrange(YAMLParser.maximumProblems...)
        diagnostics.append(Diagnostic("more than \(YAMLParser.maximumProblems) problems in this file; tend stops reading it here",
                                      at: SourceLocation(file: file, line: event.line, column: event.column)))
        return false
    }

    private mutating func handle(_ event: YAMLEvent) -> Bool {
        let location = SourceLocation(file: file, line: event.line, column: event.column)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            anchors = [:]
            documentHasRoot = false
            documentWeight = 0
        case YAML_DOCUMENT_END_EVENT:
            if !documentHasRoot {
                documents.append(YAMLNode(.scalar(YAMLScalar("")), at: location))
            }
        case YAML_SCALAR_EVENT:
            let node = YAMLNode(.scalar(YAMLScalar(event.text, style: event.style)), at: location, tag: event.tag)
            // A long scalar weighs more: aliases of a 1 MB string would otherwise pass as one node each.
            let weight = 1 + event.text.utf8.count / 64
            complete(node, weight: weight, height: 0, anchor: event.anchor)
            return count(weight, at: location)
        case YAML_ALIAS_EVENT:
            let name = event.anchor ?? ""
            if let target = anchors[name] {
                // An alias nests what it stands for here: a chain of them can nest deeper than the text.
                guard stack.count + target.height <= YAMLParser.maximumDepth else {
                    diagnostics.append(Diagnostic("nesting deeper than \(YAMLParser.maximumDepth) levels through the alias '*\(Printable.escaped(name))'; tend stops reading this file here", at: location))
                    return false
                }
                guard count(target.weight, at: location) else { return false }
                complete(target.node, weight: target.weight, height: target.height, anchor: nil)
                return true
            }
            diagnostics.append(Diagnostic("undefined alias '*\(Printable.escaped(name))'", at: location))
            complete(YAMLNode(.scalar(YAMLScalar("")), at: location), weight: 1, height: 0, anchor: nil)
            return count(1, at: location)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            guard stack.count < YAMLParser.maximumDepth else {
                diagnostics.append(Diagnostic("nesting deeper than \(YAMLParser.maximumDepth) levels; tend stops reading this file here", at: location))
                return false
            }
            let isMapping = event.type == YAML_MAPPING_START_EVENT
            stack.append(Frame(isMapping: isMapping, location: location, tag: event.tag, anchor: event.anchor))
            return count(1, at: location)
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return true }
            let content: YAMLNode.Content = frame.isMapping ? .mapping(resolve(frame.pairs)) : .sequence(frame.items)
            complete(YAMLNode(content, at: frame.location, tag: frame.tag), weight: frame.weight, height: frame.height + 1, anchor: frame.anchor)
        default:
            break
        }
        return true
    }

    /// Hands a finished node, which stands for `weight` nodes, to its parent, or makes it the
    /// document's root.
    private mutating func complete(_ node: YAMLNode, weight: Int, height: Int, anchor: String?) {
        if let anchor { anchors[anchor] = (node, weight, height) }
        let top = stack.count - 1
        guard top >= 0 else {
            documents.append(node)
            documentHasRoot = true
            return
        }
        stack[top].weight += weight
        stack[top].height = max(stack[top].height, height)
        if !stack[top].isMapping {
            stack[top].items.append(node)
        } else if let key = stack[top].pendingKey {
            // Room made when the first pair comes, for two (then grown as usual): an empty
            // mapping allocates nothing, and a one-key mapping little. Four reserved at every
            // mapping's start made a 5 MB manifest of `- {}` take 695 MiB (bench/hostile.py).
            if stack[top].pairs.isEmpty { stack[top].pairs.reserveCapacity(2) }
            stack[top].pairs.append(YAMLPair(key: key, value: node))
            stack[top].pendingKey = nil
        } else {
            stack[top].pendingKey = node
        }
    }

    /// Counts `weight` more nodes in the document; false (reported) past `maximumNodes`.
    private mutating func count(_ weight: Int, at location: SourceLocation) -> Bool {
        documentWeight += weight
        guard documentWeight <= YAMLParser.maximumNodes else {
            diagnostics.append(Diagnostic("this document grows to more than \(YAMLParser.maximumNodes) nodes once its aliases are expanded (long strings count one node per 64 bytes); tend stops reading this file here", at: location))
            return false
        }
        return true
    }

    /// Rejects duplicate and non-scalar keys and applies `<<` merge keys (explicit keys win, then
    /// earlier merged mappings over later ones, as the YAML merge key specification says).
    private mutating func resolve(_ pairs: [YAMLPair]) -> [YAMLPair] {
        // A resource has a handful of keys: comparing each with those before it costs less than
        // hashing them (a tenth of parsing a 40,000-line manifest went to those dictionaries).
        let plain = pairs.count <= 16 && !pairs.contains { $0.key.scalar.map(Self.isMergeKey) ?? true }
            && !pairs.indices.contains { index in pairs[..<index].contains { $0.keyText == pairs[index].keyText } }
        return plain ? pairs : resolveHashing(pairs)
    }

    private static func isMergeKey(_ key: YAMLScalar) -> Bool {
        key.style == .plain && key.text == "<<"
    }

    private mutating func resolveHashing(_ pairs: [YAMLPair]) -> [YAMLPair] {
        var seen: [String: SourceLocation] = [:]
        var explicit: [YAMLPair] = []
        var merged: [YAMLPair] = []
        for pair in pairs {
            guard let key = pair.key.scalar else {
                diagnostics.append(Diagnostic("mapping keys must be scalars, found \(pair.key.kindDescription)", at: pair.key.location))
                continue
            }
            if Self.isMergeKey(key), pair.key.tag == nil {
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
}

/// What the tree needs of one libyaml event, copied out of it: libyaml frees an event's strings
/// as soon as the next is read.
struct YAMLEvent: Sendable {
    var type: yaml_event_type_t
    /// Where it starts, 1-based.
    var line: Int
    var column: Int
    /// A scalar's text, as written once its quotes and escapes are read.
    var text = ""
    var style = YAMLScalar.Style.plain
    var tag: String?
    /// The anchor a scalar, sequence or mapping defines, or the one an alias names.
    var anchor: String?

    init(_ event: yaml_event_t) {
        type = event.type
        line = event.start_mark.line + 1
        column = event.start_mark.column + 1
        switch event.type {
        case YAML_SCALAR_EVENT:
            let data = event.data.scalar
            if let value = data.value {
                text = String(decoding: UnsafeBufferPointer(start: value, count: data.length), as: UTF8.self)
            }
            style = switch data.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: .literal
            case YAML_FOLDED_SCALAR_STYLE: .folded
            default: .plain
            }
            tag = Self.string(data.tag)
            anchor = Self.string(data.anchor)
        case YAML_ALIAS_EVENT:
            anchor = Self.string(event.data.alias.anchor)
        case YAML_SEQUENCE_START_EVENT:
            tag = Self.string(event.data.sequence_start.tag)
            anchor = Self.string(event.data.sequence_start.anchor)
        case YAML_MAPPING_START_EVENT:
            tag = Self.string(event.data.mapping_start.tag)
            anchor = Self.string(event.data.mapping_start.anchor)
        default:
            break
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}

/// The events of one file on their way from the thread that reads them to the one that builds the
/// tree. Bounded: the reader waits while `capacity` batches wait for the builder.
final class YAMLEventQueue: Sendable {
    static let batchSize = 1024
    static let capacity = 16

    private struct State {
        var batches: [[YAMLEvent]] = []
        var finished = false
        var syntaxError: Diagnostic?
        var stopped = false
    }

    private let state = Mutex(State())
    /// Signalled once per batch put, and once more when the reader finishes.
    private let available = DispatchSemaphore(value: 0)
    /// Room for batches; signalled as each is taken, and once by `stop`.
    private let room = DispatchSemaphore(value: 0)

    init() {
        // Made with no room and given it, not made with it: libdispatch traps when a semaphore
        // is freed below the value it was made with, as this one is when the builder stops early.
        for _ in 0..<Self.capacity { room.signal() }
    }

    /// Hands a batch over, waiting for room; false once the builder stopped, when reading on is
    /// of no use.
    func put(_ batch: [YAMLEvent]) -> Bool {
        guard !batch.isEmpty else { return !state.withLock { $0.stopped } }
        room.wait()
        let stopped = state.withLock { state in
            if !state.stopped { state.batches.append(batch) }
            return state.stopped
        }
        if !stopped { available.signal() }
        return !stopped
    }

    /// Says that no batch follows, and why: libyaml's syntax error, or nil at the end.
    func finish(syntaxError: Diagnostic?) {
        state.withLock {
            $0.finished = true
            $0.syntaxError = syntaxError
        }
        available.signal()
    }

    /// The next batch, waiting for it; nil once the reader finished and every batch was taken.
    func take() -> [YAMLEvent]? {
        while true {
            available.wait()
            let (batch, finished) = state.withLock { state -> ([YAMLEvent]?, Bool) in
                state.batches.isEmpty ? (nil, state.finished) : (state.batches.removeFirst(), false)
            }
            if let batch {
                room.signal()
                return batch
            }
            if finished { return nil }
        }
    }

    /// Tells the reader to stop at its next batch, waking it if it waits for room.
    func stop() {
        state.withLock { $0.stopped = true }
        room.signal()
    }

    var syntaxError: Diagnostic? { state.withLock { $0.syntaxError } }
}

/// A thread of its own for libyaml, so that the parse never depends on a pool having a thread free.
private final class ReaderThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private var thread = pthread_t()

    /// Starts `run` on a new thread; nil when the system gives none.
    init?(_ run: @escaping @Sendable () -> Void) {
        let body = Unmanaged.passRetained(Body(run)).toOpaque()
        guard pthread_create(&thread, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, body) == 0 else {
            Unmanaged<Body>.fromOpaque(body).release()
            return nil
        }
    }

    /// Waits for the thread to end.
    func join() {
        pthread_join(thread, nil)
    }
}
