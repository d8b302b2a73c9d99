import CMallocStats
import Foundation
import Glibc

/// The worker's memory as the kernel and the allocator each see it: the resident set
/// (`/proc/self/statm`) and the allocator's own statistics (jemalloc's, which the herald
/// binary runs on, or glibc malloc's `mallinfo2`). They tell growth
/// apart: a rising `heapInUseBytes` is memory the program holds (a leak or a collection that
/// only grows); a rising resident set over a flat heap is the allocator keeping freed memory
/// (fragmentation).
public struct ProcessMemory: Encodable, Sendable, Equatable {
    public var residentBytes: Int
    /// Allocated and not freed: small blocks in the arenas plus large blocks mapped on their own.
    public var heapInUseBytes: Int
    /// Freed but kept by the allocator in its arenas.
    public var heapFreeBytes: Int
    /// Of `heapInUseBytes`, the large blocks mapped on their own (glibc; 0 with jemalloc).
    public var heapMappedBytes: Int
    /// Whose statistics these are: "jemalloc" or "glibc".
    public var allocator: String

    public init(residentBytes: Int, heapInUseBytes: Int, heapFreeBytes: Int, heapMappedBytes: Int, allocator: String) {
        self.residentBytes = residentBytes
        self.heapInUseBytes = heapInUseBytes
        self.heapFreeBytes = heapFreeBytes
        self.heapMappedBytes = heapMappedBytes
        self.allocator = allocator
    }

    /// Reads both now. The resident set is 0 if `/proc` cannot be read.
    public static func current() -> ProcessMemory {
        let heap = herald_read_malloc_stats()
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        return ProcessMemory(
            residentBytes: residentBytes(statm: statm, pageSize: Int(sysconf(Int32(_SC_PAGESIZE)))),
            heapInUseBytes: Int(heap.arena_in_use + heap.mapped), heapFreeBytes: Int(heap.arena_free),
            heapMappedBytes: Int(heap.mapped), allocator: heap.jemalloc == 1 ? "jemalloc" : "glibc")
    }

    /// Gives the kernel back the free pages the allocator keeps (jemalloc: a purge of every
    /// arena, beside its own timed decay). glibc returns freed memory
    /// on its own only from the top of each heap; pages freed between blocks still in use
    /// stay resident. Over days of mixed allocations on several threads (each with an arena
    /// of its own) that is a slow climb in RSS over a flat heap: +2.7 MiB/h in a 30-minute
    /// run (scripts/bench-memory) while bytes in use did not grow. It walks every arena's
    /// free lists under that arena's lock, so it runs on a timer of its own (every 30 s),
    /// never on a delivery or claim path.
    @discardableResult
    public static func releaseFreePages() -> Bool {
        herald_malloc_trim() == 1
    }

    /// The resident set from `/proc/self/statm`: its second field, in pages.
    static func residentBytes(statm: String, pageSize: Int) -> Int {
        let fields = statm.split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
        return pages * pageSize
    }
}
