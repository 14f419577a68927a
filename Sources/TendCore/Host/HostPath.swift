import TendSpec

/// Helpers for absolute paths on the managed host (`/etc/nginx/nginx.conf`).
public enum HostPath {
    /// The longest name of one component (`NAME_MAX`) and of a whole path (`PATH_MAX` less its NUL).
    public static let maximumNameLength = 255
    public static let maximumPathLength = 4095

    /// Why `path` cannot name a managed file, or nil when it is a clean absolute path: absolute,
    /// no empty, `.` or `..` component, no control character or NUL, within the kernel's lengths.
    public static func problem(in path: String) -> String? {
        let scanned = scan(path)
        if let problem = scanned.problem { return problem }
        if Printable.hasControlCharacters(path) { return "\(Printable.quoted(path)) contains a control character" }
        if path.utf8.count > maximumPathLength { return "the path is longer than \(maximumPathLength) bytes" }
        if scanned.longestComponent > maximumNameLength {
            return "\(Printable.quoted(path)) has a component longer than \(maximumNameLength) bytes"
        }
        return nil
    }

    /// Why `path` cannot be walked from the root one component at a time without leaving it, or
    /// nil. Weaker than `problem(in:)`: names found on the host (which purge removes) may hold any
    /// byte but `/` and NUL.
    public static func structuralProblem(in path: String) -> String? {
        scan(path).problem
    }

    /// The structural problem of `path` and the length of its longest component, in one pass
    /// over its bytes (every declared path is checked: 10,000 of them in a large catalog).
    private static func scan(_ path: String) -> (problem: String?, longestComponent: Int) {
        let bytes = path.utf8
        guard bytes.first == slash else { return ("\(Printable.quoted(path)) is a relative path; paths must be absolute", 0) }
        if bytes.count == 1 { return (nil, 0) }
        var longest = 0, length = 0, dots = 0
        var hasNUL = false
        func componentProblem() -> String? {
            if length == 0 { return "\(Printable.quoted(path)) has an empty component or a trailing '/'" }
            if dots == length, length == 2 { return "\(Printable.quoted(path)) contains '..'" }
            if dots == length, length == 1 { return "\(Printable.quoted(path)) contains '.'" }
            return nil
        }
        for byte in bytes.dropFirst() {
            if byte == slash {
                if let problem = componentProblem() { return (problem, longest) }
                length = 0
                dots = 0
                continue
            }
            length += 1
            longest = max(longest, length)
            if byte == UInt8(ascii: ".") { dots += 1 }
            if byte == 0 { hasNUL = true }
        }
        if let problem = componentProblem() { return (problem, longest) }
        if hasNUL { return ("\(Printable.quoted(path)) contains a NUL byte", longest) }
        return (nil, longest)
    }

    private static let slash = UInt8(ascii: "/")

    /// The folder containing `path`, or nil for `/`.
    public static func parent(of path: String) -> String? {
        guard path != "/", let index = path.utf8.lastIndex(of: slash) else { return nil }
        return index == path.utf8.startIndex ? "/" : String(path.utf8[..<index])!
    }

    /// The last component of `path`.
    public static func name(of path: String) -> String {
        guard let index = path.utf8.lastIndex(of: slash) else { return path }
        return String(path.utf8[path.utf8.index(after: index)...])!
    }

    /// `parent` and `name` joined.
    public static func join(_ parent: String, _ name: String) -> String {
        parent == "/" ? "/" + name : parent + "/" + name
    }

    /// The components of an absolute path, without the empty first one.
    static func components(_ path: String) -> [Substring] {
        path.split(separator: "/")
    }
}
