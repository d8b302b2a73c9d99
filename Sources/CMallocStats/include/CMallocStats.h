#ifndef HERALD_CMALLOCSTATS_H
#define HERALD_CMALLOCSTATS_H

#include <stddef.h>

/// glibc malloc's own statistics (mallinfo2), which Swift's Glibc module does not export.
typedef struct {
    /// Bytes allocated in the arenas and not freed (uordblks).
    size_t arena_in_use;
    /// Bytes freed but kept in the arenas (fordblks).
    size_t arena_free;
    /// Bytes in large blocks mapped on their own (hblkhd), all in use.
    size_t mapped;
} herald_malloc_stats;

herald_malloc_stats herald_read_malloc_stats(void);

/// malloc_trim(0): gives the kernel back every whole free page in every arena, not only the
/// top of the main heap. Returns 1 if any memory was released.
int herald_malloc_trim(void);

/// pthread_setname_np for the calling thread (glibc declares it only under _GNU_SOURCE, so
/// Swift's Glibc module does not export it either): the kernel's name for the thread, shown
/// by top -H, ps -L and profilers. Names longer than 15 bytes are cut. Returns 0 on success.
int herald_set_thread_name(const char *name);

#endif
