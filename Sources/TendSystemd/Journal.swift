internal import CSystemd
import Glibc

/// Reading the journal.
enum Journal {
    /// The last `count` messages about `unit` (from its processes and from systemd about it),
    /// oldest first, from this machine's journal, or from the journal files in `directory`.
    /// The corresponding C functions are `sd_journal_open` (`sd_journal_open_directory`),
    /// `sd_journal_add_match`, `sd_journal_seek_tail`, `sd_journal_previous` and
    /// `sd_journal_get_data`.
    static func lastMessages(unit: String, count: Int, directory: String? = nil) -> [String] {
        var journal: OpaquePointer?
        let opened = if let directory { sd_journal_open_directory(&journal, directory, 0) } else { sd_journal_open(&journal, Int32(SD_JOURNAL_LOCAL_ONLY)) }
        guard opened >= 0, let journal else { return [] }
        defer { sd_journal_close(journal) }
        for (index, match) in ["_SYSTEMD_UNIT=\(unit)", "UNIT=\(unit)"].enumerated() {
            if index > 0 { sd_journal_add_disjunction(journal) }
            _ = match.withCString { sd_journal_add_match(journal, $0, 0) }
        }
        sd_journal_seek_tail(journal)
        var lines: [String] = []
        while lines.count < count, sd_journal_previous(journal) > 0 {
            var data: UnsafeRawPointer?
            var length = 0
            guard sd_journal_get_data(journal, "MESSAGE", &data, &length) >= 0, let data else { continue }
            let field = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            lines.append(String(field.dropFirst("MESSAGE=".count)))
        }
        return lines.reversed()
    }
}
