import Dispatch
import FoundationEssentials

/// Work over a long list split into contiguous slices, one per thread, each slice's result kept
/// in order: loading, decoding, observing and checking 10,000 resources use every core this way,
/// and each slice keeps its own diagnostics, so that problems still come out in declaration order.
public enum ParallelSlices {
    /// The most threads used; a 2-core machine uses 2.
    public static let maximumWorkers = 4

    /// How many slices `count` items are cut into: one below `minimum` items (a thread costs more
    /// than it saves on a short list), otherwise one per core, up to `maximumWorkers`.
    public static func workers(for count: Int, minimum: Int) -> Int {
        count < minimum ? 1 : max(1, min(ProcessInfo.processInfo.activeProcessorCount, maximumWorkers, count))
    }

    /// Calls `body(worker, range)` for contiguous slices of `0..<count`, one per core from
    /// `minimum` items on (`workers(for:minimum:)`), and returns the results in slice order.
    public static func map<Result: Sendable>(_ count: Int, minimum: Int, _ body: @Sendable (_ worker: Int, _ range: Range<Int>) -> Result) -> [Result] {
        map(count, workers: workers(for: count, minimum: minimum), body)
    }

    /// Calls `body(worker, range)` for `workers` contiguous slices of `0..<count`, concurrently
    /// when there is more than one, and returns the results in slice order.
    public static func map<Result: Sendable>(_ count: Int, workers: Int, _ body: @Sendable (_ worker: Int, _ range: Range<Int>) -> Result) -> [Result] {
        let workers = max(1, min(workers, count))
        let chunk = (count + workers - 1) / workers
        guard workers > 1 else { return [body(0, 0..<count)] }
        let slots = UnsafeMutableBufferPointer<Result?>.allocate(capacity: workers)
        slots.initialize(repeating: nil)
        defer {
            // The slots own their results: release them before the memory.
            _ = slots.deinitialize()
            slots.deallocate()
        }
        let shared = Slots(slots: slots)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            // With more workers than chunks, the last slices are empty, not past the end.
            shared.slots[worker] = body(worker, min(count, worker * chunk)..<min(count, (worker + 1) * chunk))
        }
        return slots.map { $0! }
    }

    /// One result slot per thread; each thread writes only its own.
    private struct Slots<Result>: @unchecked Sendable {
        let slots: UnsafeMutableBufferPointer<Result?>
    }
}
