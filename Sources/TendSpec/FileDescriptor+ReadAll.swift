public import SystemPackage

extension FileDescriptor {
    /// Every byte from the current position to the end, reading into a buffer sized for
    /// `sizeHint` bytes and growing it if the file grew meanwhile; `fileTooLarge` once more than
    /// `limit` bytes were read. With `sizeFromFstat` (the hint is a regular file's size, read
    /// from the start), a short read that reaches that size is taken as the end.
    public func readToEnd(sizeHint: Int, limit: Int = .max, sizeFromFstat: Bool = false) throws(Errno) -> [UInt8] {
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
            let asked = bytes.count - count
            count += n
            if count > limit { throw .fileTooLarge }
            // A short read that reaches the size fstat gave is the end as fstat saw it: asking
            // again for the 0 that says so is a tenth of the syscalls of checking a file. (A file
            // that grows from here on is read as one that grew just after: either way the next
            // check sees it.) A short read before that size, as some filesystems make, reads on;
            // so does any read of a file whose size fstat does not give (/proc, where it says 0).
            if sizeFromFstat, sizeHint > 0, n < asked, count >= sizeHint { break }
        }
        bytes.removeSubrange(count...)
        return bytes
    }
}
