public import SystemPackage

extension FileDescriptor {
    /// Every byte from the current position to the end, reading into a buffer sized for
    /// `sizeHint` bytes (the file's size from fstat) and growing it if the file grew meanwhile;
    /// `fileTooLarge` once more than `limit` bytes were read.
    public func readToEnd(sizeHint: Int, limit: Int = .max) throws(Errno) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: max(sizeHint, 0) + 1)
        var count = 0
        while true {
            if count == bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(bytes.count, 4096))) }
            let n: Int
            do {
                n = try bytes.withUnsafeMutableBytes { raw in
                    try read(into: UnsafeMutableRawBufferPointer(rebasing: raw[count...]))
                }
            } catch {
                throw error as? Errno ?? .ioError
            }
            if n == 0 { break }
            count += n
            if count > limit { throw .fileTooLarge }
        }
        bytes.removeSubrange(count...)
        return bytes
    }
}
