#ifndef HERALD_CMALLOCSTATS_H
#define HERALD_CMALLOCSTATS_H

#include <stddef.h>

/// The allocator's own statistics, which Swift's Glibc module does not export: jemalloc's
/// (mallctl) when the process runs on it, as the herald binary does, else glibc malloc's
/// (mallinfo2).
typedef struct {
    /// Bytes allocated and not freed, outside `mapped` (glibc: uordblks; jemalloc:
    /// stats.allocated).
    size_t arena_in_use;
    /// Bytes freed but kept resident by the allocator (glibc: fordblks; jemalloc:
    /// stats.resident - stats.allocated).
    size_t arena_free;
    /// glibc: bytes in large blocks mapped on their own (hblkhd), all in use; jemalloc: 0
    /// (its large blocks are counted in `arena_in_use`).
    size_t mapped;
    /// 1 when the figures are jemalloc's.
    int jemalloc;
} herald_malloc_stats;

herald_malloc_stats herald_read_malloc_stats(void);

/// Gives the kernel back the free pages the allocator keeps: glibc's malloc_trim(0) (every
/// whole free page in every arena, not only the top of the main heap), or a purge of every
/// jemalloc arena. Returns 1 if the allocator reports it done (glibc: memory was released).
int herald_malloc_trim(void);

/// pthread_setname_np for the calling thread (glibc declares it only under _GNU_SOURCE, so
/// Swift's Glibc module does not export it either): the kernel's name for the thread, shown
/// by top -H, ps -L and profilers. Names longer than 15 bytes are cut. Returns 0 on success.
int herald_set_thread_name(const char *name);

#endif
