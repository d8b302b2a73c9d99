#define _GNU_SOURCE
#include "CMallocStats.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <malloc.h>

/* jemalloc's options when the process runs on it (the herald binary links it; glibc never
 * reads this). background_thread: unused pages are returned to the kernel by jemalloc's own
 * thread instead of inline on whichever thread frees; on the drain benchmark that cut
 * Herald's CPU per event by about a microsecond. MALLOC_CONF still overrides it. */
__attribute__((visibility("default"), used)) const char *malloc_conf = "background_thread:true";

/* jemalloc's control interface, found at run time: the herald binary links jemalloc (it
 * replaces malloc for the whole process), the test binaries do not. */
typedef int (*herald_mallctl_fn)(const char *name, void *old, size_t *old_length, void *new_value,
                                 size_t new_length);
static herald_mallctl_fn found_mallctl;
static pthread_once_t mallctl_once = PTHREAD_ONCE_INIT;

static void find_mallctl(void) {
    found_mallctl = (herald_mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
}

static herald_mallctl_fn jemalloc_mallctl(void) {
    pthread_once(&mallctl_once, find_mallctl);
    return found_mallctl;
}

static size_t jemalloc_size(herald_mallctl_fn mallctl, const char *name) {
    size_t value = 0, length = sizeof value;
    return mallctl(name, &value, &length, NULL, 0) == 0 ? value : 0;
}

herald_malloc_stats herald_read_malloc_stats(void) {
    herald_mallctl_fn mallctl = jemalloc_mallctl();
    if (mallctl) {
        /* jemalloc caches its statistics; writing the epoch refreshes them. */
        uint64_t epoch = 1;
        size_t length = sizeof epoch;
        mallctl("epoch", &epoch, &length, &epoch, sizeof epoch);
        size_t allocated = jemalloc_size(mallctl, "stats.allocated");
        size_t resident = jemalloc_size(mallctl, "stats.resident");
        herald_malloc_stats stats = {allocated, resident > allocated ? resident - allocated : 0, 0, 1};
        return stats;
    }
    struct mallinfo2 info = mallinfo2();
    herald_malloc_stats stats = {info.uordblks, info.fordblks, info.hblkhd, 0};
    return stats;
}

int herald_malloc_trim(void) {
    herald_mallctl_fn mallctl = jemalloc_mallctl();
    if (mallctl) {
        /* "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages back to the kernel. */
        return mallctl("arena.4096.purge", NULL, NULL, NULL, 0) == 0 ? 1 : 0;
    }
    return malloc_trim(0);
}

int herald_set_thread_name(const char *name) {
    char cut[16];
    strncpy(cut, name, sizeof cut - 1);
    cut[sizeof cut - 1] = '\0';
    return pthread_setname_np(pthread_self(), cut);
}
