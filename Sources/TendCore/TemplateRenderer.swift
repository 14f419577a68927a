internal import Mustache
import Synchronization
public import TendSpec

/// Values that templates can use, built from tend.yaml's vars and the host's facts.
public struct TemplateVariables: @unchecked Sendable {
    /// The vars as templates see them, made the first time a template is rendered: a catalog
    /// without templates (10,000 files written by a loop over a list var) never converts them.
    private final class Lazy: Sendable {
        let vars: [String: YAMLNode]
        let facts: HostFacts?
        let secrets: (any SecretOpener)?
        private let made = Mutex<TemplateMap?>(nil)
        /// Why each var holding a secret that could not be opened here could not, by name.
        private let unopened = Mutex<[String: String]>([:])
        /// The names of the vars that hold a secret, found once with the map.
        private let secretNames = Mutex<Set<String>>([])

        init(vars: [String: YAMLNode], facts: HostFacts?, secrets: (any SecretOpener)?) {
            self.vars = vars
            self.facts = facts
            self.secrets = secrets
        }

        /// The vars that hold a secret, and why those that could not be opened could not.
        var secretVars: (names: Set<String>, unopened: [String: String]) {
            _ = map
            return (secretNames.withLock { $0 }, unopened.withLock { $0 })
        }

        var map: TemplateMap {
            made.withLock { made in
                if let made { return made }
                var failures: [String: String] = [:]
                var values: [String: Any] = [:]
                for (name, node) in vars {
                    values[name] = TemplateVariables.value(node) { secret in
                        guard let secrets = self.secrets else {
                            failures[name] = "\(secret.location): var '\(name)' is a secret, and no age identity is set for this run"
                            return ""
                        }
                        switch secrets.open(Array(secret.scalar?.text.utf8 ?? "".utf8)) {
                        case .success(let plaintext): return String(decoding: plaintext, as: UTF8.self)
                        case .failure(let error):
                            failures[name] = "\(secret.location): var '\(name)' is a secret that cannot be opened here: \(error.message)"
                            return ""
                        }
                    }
                }
                unopened.withLock { $0 = failures }
                secretNames.withLock { $0 = Set(vars.filter { $0.value.holdsSecret }.keys) }
                if let facts {
                    var host: [String: Any] = ["labels": TemplateMap(values: facts.labels)]
                    for (name, value) in facts.named { if let value { host[name] = value } }
                    values["host"] = TemplateMap(values: host)
                }
                let map = TemplateMap(values: values)
                made = map
                return map
            }
        }
    }

    private let lazy: Lazy
    /// What opens the `!age` vars and `.age` sources; nil when the run has no identity, and for
    /// the manifests of other hosts (`lenient`), whose secrets are not this host's to open.
    public var secrets: (any SecretOpener)? { opensSecrets ? lazy.secrets : nil }
    private var opensSecrets = true
    /// A resource's own values over the host's (`adding`), or nil.
    private var own: TemplateMap?
    /// Those of its own values that hold a secret, and why those that could not be opened here
    /// could not (a loop item with an `!age` field).
    private var ownSecrets: (names: Set<String>, unopened: [String: String]) = ([], [:])
    // Holds only String, Bool, TemplateList and TemplateMap values built from YAML, never mutated
    // after it is made: safe to share between threads.
    var values: TemplateMap { own ?? lazy.map }
    /// Whether a var that a template shows outside any section must be set. True for this
    /// host's catalog; false when manifests meant for other hosts are checked with this host's
    /// vars (a var set only by their host entries is missing here, and that is no error).
    public var requiresSetVars = true

    public init() {
        lazy = Lazy(vars: [:], facts: nil, secrets: nil)
    }

    /// The same vars, with unset vars allowed (manifests for other hosts).
    public var lenient: TemplateVariables {
        var copy = self
        copy.requiresSetVars = false
        copy.opensSecrets = false
        return copy
    }

    /// The vars of this host (`RepositoryConfig.vars(for:varFiles:)`: the schema's defaults,
    /// the repository's var files and vars, then each matching host entry's, merged deep), and
    /// `host` with the facts: `{{host.hostname}}`, `{{host.os}}`, `{{host.os_version}}`,
    /// `{{host.labels.env}}`.
    public init(vars: [String: YAMLNode], facts: HostFacts, secrets: (any SecretOpener)? = nil) {
        lazy = Lazy(vars: vars, facts: facts, secrets: secrets)
    }

    /// Whether `template` shows a var that holds a secret (its first name, as `{{db.password}}`
    /// or `{{#db}}` names `db`), and if one of those could not be opened here, why.
    func secretUse(of template: String, partials: [String: String]) -> (holdsSecret: Bool, unopened: String?) {
        let (hostNames, hostUnopened) = lazy.secretVars
        let names = hostNames.union(ownSecrets.names)
        let unopened = hostUnopened.merging(ownSecrets.unopened) { _, own in own }
        guard !names.isEmpty else { return (false, nil) }
        var used: [String] = []
        for text in [template] + partials.values.sorted() {
            TemplateRenderer.forEachTag(in: text) { tag in
                let head = String(tag.name.prefix { $0 != "." })
                if names.contains(head), !used.contains(head) { used.append(head) }
                return true
            }
        }
        return (!used.isEmpty, used.lazy.compactMap { unopened[$0] }.first)
    }

    /// The vars of a host with `facts` under `config`.
    public init(config: RepositoryConfig?, varFiles: [String: YAMLNode] = [:], facts: HostFacts) {
        self.init(vars: config?.vars(for: facts, varFiles: varFiles) ?? [:], facts: facts)
    }

    /// These vars with `extra` over them, one resource's (`ResourceDeclaration.vars`): a name
    /// of `extra` replaces the host's var of that name whole.
    public func adding(_ extra: [String: YAMLNode]) -> TemplateVariables {
        guard !extra.isEmpty else { return self }
        var copy = self
        var values = self.values.values
        for (name, node) in extra {
            guard node.holdsSecret else {
                values[name] = Self.value(node) { _ in "" }
                continue
            }
            // A loop item or a resource's var that holds a secret: opened as the host's vars are.
            copy.ownSecrets.names.insert(name)
            values[name] = Self.value(node) { secret in
                switch secrets.map({ $0.open(Array(secret.scalar?.text.utf8 ?? "".utf8)) }) {
                case .success(let plaintext)?: return String(decoding: plaintext, as: UTF8.self)
                case .failure(let error)?:
                    copy.ownSecrets.unopened[name] = "\(secret.location): '\(name)' holds a secret that cannot be opened here: \(error.message)"
                case nil:
                    copy.ownSecrets.unopened[name] = "\(secret.location): '\(name)' holds a secret, and no age identity is set for this run"
                }
                return ""
            }
        }
        copy.own = TemplateMap(values: values)
        return copy
    }

    /// A var as templates see it; `open` gives the text of a secret (`!age`).
    fileprivate static func value(_ node: YAMLNode, open: (YAMLNode) -> String) -> Any {
        if node.tag == YAMLNode.secretTag { return open(node) }
        switch node.content {
        case .scalar(let scalar): return scalar.boolValue ?? scalar.text
        case .sequence(let items): return TemplateList(items: items.map { value($0, open: open) })
        case .mapping(let pairs):
            return TemplateMap(values: Dictionary(pairs.compactMap { pair in pair.keyText.map { ($0, value(pair.value, open: open)) } }) { _, new in new })
        }
    }
}

/// A template that cannot be parsed, with where.
public struct TemplateError: Error, Sendable {
    public var message: String
    public var line: Int
    public var column: Int
    /// The partial it is in (`{{> name}}`); nil for the template itself.
    public var partial: String?

    public init(message: String, line: Int, column: Int, partial: String? = nil) {
        self.message = message
        self.line = line
        self.column = column
        self.partial = partial
    }
}

/// Mustache templates, rendered with swift-mustache.
public enum TemplateRenderer {
    /// The deepest nesting of sections (`{{#a}}…{{/a}}`, `{{^a}}`) a template may have: the
    /// template parser recurses once per level, and a hostile template could nest thousands.
    public static let maximumSectionDepth = 100

    /// The most list items a template may iterate over in one render, over all its sections
    /// together: five nested sections over a list of 100 would otherwise render 10^10 times. A list of
    /// hosts times their ports stays well below it.
    public static let maximumIterations = 10_000

    /// The most output a render may be able to produce, reckoned as it goes: the template's size
    /// for each list item (its text may all be inside the section) plus every string looked up.
    /// A 7 MB var inside a few nested sections would otherwise build gigabytes before any check.
    public static let maximumOutput = 256 << 20

    /// The most partials one render may include, each inclusion counted (a partial inside a
    /// section is counted once: it is the same template each time).
    public static let maximumPartialIncludes = 100

    /// How deep partials may include partials.
    public static let maximumPartialDepth = 10

    /// Renders `text` with `variables`. `partials` holds the text of every partial the template
    /// may include (`{{> name}}`), by name (`DecodeContext.partials(of:path:)` finds them); a template error
    /// in one of them names it in `TemplateError.partial`.
    public static func render(_ text: String, with variables: TemplateVariables, partials: [String: String] = [:]) throws -> String {
        if let (line, column) = positionTooDeep(text) {
            throw TemplateError(message: "template error: sections nested deeper than \(maximumSectionDepth) levels", line: line, column: column)
        }
        for (name, partial) in partials {
            if let (line, column) = positionTooDeep(partial) {
                throw TemplateError(message: "template error: sections nested deeper than \(maximumSectionDepth) levels", line: line, column: column, partial: name)
            }
        }
        var library = MustacheLibrary()
        for (name, partial) in partials.sorted(by: { $0.key < $1.key }) {
            do {
                library.register(try MustacheTemplate(string: Self.textPragma + partial), named: name)
            } catch let error as MustacheTemplate.ParserError {
                throw TemplateError(message: "template error: " + describe(error.error), line: max(1, error.context.lineNumber - 1),
                                    column: error.context.columnNumber, partial: name)
            }
        }
        do {
            // Configuration files are text, not HTML: `{{value}}` writes the value as it is (swift-mustache escapes `&`, `<`, `>` and quotes by default, which corrupts them). The
            // pragma is a standalone line, which Mustache removes with its newline.
            let template = try MustacheTemplate(string: Self.textPragma + text)
            // Checked once the template parses, so that a broken tag is reported as broken.
            if variables.requiresSetVars, let unset = firstUnsetVar(in: text, variables: variables, partials: partials) {
                throw TemplateError(message: "template error: '\(unset.name)' is not set: " + (unset.inSection
                                        ? "no var, no fact, and not every item of the section around it has that name; set it, or make it optional with {{#\(unset.name)}}…{{/\(unset.name)}}"
                                        : "no var of tend.yaml, of a var file or of a host entry that matches this host, and no fact, has that name; set it, or make it optional with {{#\(unset.name)}}…{{/\(unset.name)}}"),
                                    line: unset.line, column: unset.column, partial: unset.partial)
            }
            let size = text.utf8.count + partials.values.reduce(0) { $0 + $1.utf8.count }
            let budget = IterationBudget(items: maximumIterations, bytes: maximumOutput, templateSize: size)
            let output = IterationBudget.$current.withValue(budget) { template.render(variables.values, library: library) }
            if let exhausted = budget.exhausted {
                let reason = switch exhausted {
                case .items: "its sections iterate over more than \(maximumIterations) list items in all"
                case .bytes: "it could render more than \(maximumOutput >> 20) MiB (its size for each list item, plus the values it shows)"
                }
                throw TemplateError(message: "template error: " + reason, line: 1, column: 1)
            }
            guard output.utf8.count <= SnapshotLimits.fileSize else {
                throw TemplateError(message: "template error: it renders to more than \(SnapshotLimits.fileSize >> 20) MiB", line: 1, column: 1)
            }
            return output
        } catch let error as MustacheTemplate.ParserError {
            // swift-mustache counts lines and columns from 1 already; the pragma's line is not the user's.
            throw TemplateError(message: "template error: " + describe(error.error), line: max(1, error.context.lineNumber - 1), column: error.context.columnNumber)
        }
    }

    /// Renders `{{value}}` as text for every template (swift-mustache's default is HTML).
    static let textPragma = "{{% CONTENT_TYPE: TEXT}}\n"

    /// Where sections first nest deeper than `maximumSectionDepth`, or nil. Sections, inverted
    /// sections, blocks and parents (`#`, `^`, `$`, `<`) all nest.
    static func positionTooDeep(_ text: String) -> (line: Int, column: Int)? {
        var found: (line: Int, column: Int)?
        forEachTag(in: text) { tag in
            guard tag.opensSection, tag.depth + 1 > maximumSectionDepth else { return true }
            found = (tag.line, tag.column)
            return false
        }
        return found
    }

    /// A var no render can find, with where it is shown (`partial` nil for the template itself).
    struct UnsetVar {
        var name: String
        var line: Int
        var column: Int
        var partial: String?
        /// Whether it is shown inside a section (whose items might have had it).
        var inSection: Bool
    }

    /// A section open around a tag, as the unset-var check follows it: the mappings it may push
    /// as the context of its body (each item of a list of mappings, a mapping), and whether its
    /// body can render at all (its var is set somewhere).
    struct OpenSection {
        var name: String
        var frames: [TemplateMap]
        var renders: Bool
    }

    /// The first value tag (`{{name}}`, `{{{name}}}`, `{{&name}}`) whose var no render can find:
    /// not set at the top level, nor on every mapping of a section around it (a list's items, each
    /// of which is tried before the top level, as Mustache looks names up). A tag inside a section
    /// of the same name (`{{#tls}}{{tls}}{{/tls}}`) or inside a section whose var is set nowhere
    /// (its body never renders) is optional. Partials (`{{> name}}`) are followed, with the
    /// sections open where they are included.
    static func firstUnsetVar(in text: String, variables: TemplateVariables, partials: [String: String] = [:]) -> UnsetVar? {
        var followed = 0
        return firstUnsetVar(in: text, partial: nil, open: [], variables: variables, partials: partials, depth: 0, followed: &followed)
    }

    private static func firstUnsetVar(in text: String, partial: String?, open outer: [OpenSection], variables: TemplateVariables,
                                      partials: [String: String], depth: Int, followed: inout Int) -> UnsetVar? {
        var found: UnsetVar?
        var open = outer
        forEachTag(in: text) { tag in
            if tag.sigil == UInt8(ascii: "/") {
                if open.count > outer.count { open.removeLast() }
                return true
            }
            if tag.opensSection {
                let name = varName(tag.name)
                let renders = open.last?.renders ?? true
                if tag.sigil == UInt8(ascii: "#") {
                    let values = possibleValues(of: name, open: open, root: variables.values)
                    let frames = values.flatMap { value -> [TemplateMap] in
                        if let list = value as? TemplateList { return list.items.compactMap { $0 as? TemplateMap } }
                        return (value as? TemplateMap).map { [$0] } ?? []
                    }
                    open.append(OpenSection(name: name, frames: frames, renders: renders && !values.isEmpty))
                } else {
                    open.append(OpenSection(name: name, frames: [], renders: renders))
                }
                return true
            }
            if tag.sigil == UInt8(ascii: ">") {
                // Each partial once per place it is included, as deep as partials may go.
                guard depth < maximumPartialDepth, followed < maximumPartialIncludes, let included = partials[tag.name] else { return true }
                followed += 1
                found = firstUnsetVar(in: included, partial: tag.name, open: open, variables: variables, partials: partials,
                                      depth: depth + 1, followed: &followed)
                return found == nil
            }
            guard tag.showsValue, open.last?.renders ?? true else { return true }
            let name = varName(tag.name)
            guard !name.isEmpty, !name.hasPrefix(".") else { return true }
            let head = String(name.prefix { $0 != "." })
            guard !open.contains(where: { $0.name.prefix { $0 != "." } == head }), !isSetEverywhere(name, open: open, root: variables.values) else { return true }
            found = UnsetVar(name: tag.name, line: tag.line, column: tag.column, partial: partial, inSection: !open.isEmpty)
            return false
        }
        return found
    }

    /// The var a tag names: a transform, `count(list)` or `first(reversed(list))`, names its var
    /// inside the parentheses.
    private static func varName(_ tagName: String) -> String {
        var name = tagName
        while let open = name.firstIndex(of: "("), name.hasSuffix(")") {
            name = String(name[name.index(after: open)..<name.index(before: name.endIndex)])
        }
        return name
    }

    /// Whether every render finds `name`: at the top level, or on every mapping a section around
    /// it may push (those are tried first).
    private static func isSetEverywhere(_ name: String, open: [OpenSection], root: TemplateMap) -> Bool {
        if isSet(name, in: root) { return true }
        return open.contains { section in !section.frames.isEmpty && section.frames.allSatisfy { isSet(name, in: $0) } }
    }

    /// The values `name` may take where `open` sections are around it: from the innermost
    /// mappings that have it, and further out for those that do not; empty when it is set nowhere.
    private static func possibleValues(of name: String, open: [OpenSection], root: TemplateMap) -> [Any] {
        var values: [Any] = []
        for section in open.reversed() {
            let found = section.frames.compactMap { value(of: name, in: $0) }
            values += found
            if !section.frames.isEmpty, found.count == section.frames.count { return values }
        }
        if let top = value(of: name, in: root) { values.append(top) }
        return values
    }

    private static func value(of name: String, in map: TemplateMap) -> Any? {
        var current: Any = map
        for component in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard let map = current as? TemplateMap, let next = map.values[String(component)] else { return nil }
            current = next
        }
        return current
    }

    private static func isSet(_ name: String, in values: TemplateMap) -> Bool {
        value(of: name, in: values) != nil
    }

    private static let sigils = Array("#^/!>=&{$<%".utf8)

    /// One tag of a template, as Mustache reads it.
    struct Tag {
        /// `#`, `^`, `/`, `!`, `>`, `=`, `&`, `{`, `$`, `<`, `%`, or 0 for a plain value tag.
        var sigil: UInt8
        /// What is inside, without the sigil and the spaces around it.
        var name: String
        var line: Int
        /// The bytes of its line before it; the column is worked out only when it is reported
        /// (decoding each line for every tag would make a long line quadratic).
        var before: ArraySlice<UInt8>
        /// How many sections are open around it.
        var depth: Int

        var column: Int { String(decoding: before, as: UTF8.self).count + 1 }

        var opensSection: Bool { [UInt8(ascii: "#"), UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: "<")].contains(sigil) }
        var showsValue: Bool { sigil == 0 || sigil == UInt8(ascii: "&") || sigil == UInt8(ascii: "{") }
    }

    /// Calls `body` with each tag of `text` in order, until it returns false. Follows
    /// set-delimiter tags (`{{=<% %>=}}`, with any whitespace) as Mustache does, so other
    /// delimiters cannot hide a tag.
    static func forEachTag(in text: String, _ body: (Tag) -> Bool) {
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") }
        let bytes = Array(text.utf8)
        var open = Array("{{".utf8), close = Array("}}".utf8)
        var depth = 0, index = 0, line = 1, lineStart = 0
        func matches(_ token: [UInt8], at position: Int) -> Bool {
            position + token.count <= bytes.count && bytes[position..<position + token.count].elementsEqual(token)
        }
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
                index += 1
                continue
            }
            guard matches(open, at: index) else { index += 1; continue }
            let tagStart = index
            var cursor = index + open.count
            while cursor < bytes.count, isSpace(bytes[cursor]) { cursor += 1 }
            let first = cursor < bytes.count ? bytes[cursor] : 0
            let sigil = Self.sigils.contains(first) ? first : 0
            var end = cursor
            while end < bytes.count, !matches(close, at: end) { end += 1 }
            if sigil == UInt8(ascii: "=") {
                // {{=<% %>=}}: the new delimiters are the two words inside, without the '='s.
                let inner = bytes[(cursor + 1)..<max(cursor + 1, end)]
                let words = inner.split(whereSeparator: isSpace)
                if words.count == 2, var newClose = words.last.map(Array.init), newClose.last == UInt8(ascii: "=") {
                    newClose.removeLast()
                    if let newOpen = words.first.map(Array.init), !newOpen.isEmpty, !newClose.isEmpty {
                        index = min(bytes.count, end + close.count)
                        open = newOpen
                        close = newClose
                        continue
                    }
                }
            }
            var inner = bytes[min(cursor + (sigil == 0 ? 0 : 1), end)..<end]
            if sigil == UInt8(ascii: "{"), inner.last == UInt8(ascii: "}") { inner = inner.dropLast() }
            let name = String(decoding: inner, as: UTF8.self).trimmingWhitespace()
            let tag = Tag(sigil: sigil, name: name, line: line, before: bytes[lineStart..<tagStart], depth: depth)
            guard body(tag) else { return }
            if sigil == UInt8(ascii: "/") {
                depth = max(0, depth - 1)
            } else if tag.opensSection {
                depth += 1
            }
            index = min(bytes.count, end + close.count + (sigil == UInt8(ascii: "{") && end + close.count < bytes.count && bytes[end + close.count] == UInt8(ascii: "}") ? 1 : 0))
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? MustacheTemplate.Error {
        case .expectedSectionEnd?: "a section is never closed ({{/name}} is missing)"
        case .sectionCloseNameIncorrect?: "a section is closed with another name than it was opened with"
        case .unfinishedName?: "a tag is not finished (}} is missing)"
        case .invalidSetDelimiter?: "a set-delimiter tag is malformed"
        // The parser's own error type is internal to swift-mustache; running off the end is the one
        // it throws when a tag is opened and the template ends.
        default: "\(error)" == "overflow" ? "a tag is not finished (}} is missing before the end)" : "\(error)"
        }
    }
}

/// A list from the vars, as templates iterate it: each item taken counts against the budget of
/// the render in progress, and once it is spent the list ends early (the render is then refused).
struct TemplateList: MustacheSequence, MustacheTransformable, MustacheCustomRenderable, @unchecked Sendable {
    // Holds only values built from YAML (String, Bool, TemplateList, TemplateMap), never mutated
    // after init, as TemplateVariables does.
    let items: [Any]

    func makeIterator() -> Iterator {
        Iterator(items: items, budget: IterationBudget.current)
    }

    /// `{{list}}` shows nothing: the whole container as text is no use in a file, and would
    /// escape the budget (iterate it with a section).
    var renderText: String { "" }
    var isNull: Bool { false }

    /// The transforms swift-mustache gives arrays (`{{count(list)}}`, `{{#reversed(list)}}`).
    func transform(_ name: String) -> Any? {
        switch name {
        case "first": items.first.flatMap { IterationBudget.current?.take($0) ?? true ? $0 : nil }
        case "last": items.last.flatMap { IterationBudget.current?.take($0) ?? true ? $0 : nil }
        case "reversed": TemplateList(items: items.reversed())
        case "count": items.count
        case "empty": items.isEmpty
        default: nil
        }
    }

    struct Iterator: IteratorProtocol {
        let items: [Any]
        let budget: IterationBudget?
        var index = 0

        mutating func next() -> Any? {
            guard index < items.count, budget?.takeItem(items[index]) ?? true else { return nil }
            defer { index += 1 }
            return items[index]
        }
    }
}

/// A mapping from the vars: each value looked up counts its size against the render's budget.
/// Its transforms are `count` and `empty`; swift-mustache's `enumerated` and `sorted` of a
/// dictionary would hand out lists the budget cannot see.
struct TemplateMap: MustacheParent, MustacheTransformable, MustacheCustomRenderable, @unchecked Sendable {
    // As TemplateList.
    let values: [String: Any]

    /// `{{map}}` shows nothing, as a list does.
    var renderText: String { "" }
    var isNull: Bool { false }

    func child(named name: String) -> Any? {
        guard let value = values[name] else { return nil }
        guard IterationBudget.current?.take(value) ?? true else { return nil }
        return value
    }

    func transform(_ name: String) -> Any? {
        switch name {
        case "count": values.count
        case "empty": values.isEmpty
        default: nil
        }
    }
}

/// What one render may still do. Bound to the render through a task-local value, so that renders
/// on several threads (large catalogs decode in parallel) each have their own.
final class IterationBudget: @unchecked Sendable {
    // Read and written only by the thread that runs the render it is bound to.
    @TaskLocal static var current: IterationBudget?

    enum Limit { case items, bytes }

    private var items: Int
    private var bytes: Int
    private let templateSize: Int
    private(set) var exhausted: Limit?

    init(items: Int, bytes: Int, templateSize: Int) {
        self.items = items
        self.bytes = bytes
        self.templateSize = templateSize
    }

    /// Takes one list item: the template's size, and the item's own if it is text.
    func takeItem(_ item: Any) -> Bool {
        guard exhausted == nil else { return false }
        items -= 1
        guard items >= 0 else {
            exhausted = .items
            return false
        }
        return charge(templateSize) && take(item)
    }

    /// Takes a value looked up: its length if it is text, one byte otherwise.
    func take(_ value: Any) -> Bool {
        charge((value as? String)?.utf8.count ?? 1)
    }

    private func charge(_ size: Int) -> Bool {
        guard exhausted == nil else { return false }
        bytes -= size
        guard bytes >= 0 else {
            exhausted = .bytes
            return false
        }
        return true
    }
}
