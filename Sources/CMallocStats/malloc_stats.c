#define _GNU_SOURCE
#include "CMallocStats.h"

#include <pthread.h>
#include <string.h>

#include <malloc.h>

herald_malloc_stats herald_read_malloc_stats(void) {
    struct mallinfo2 info = mallinfo2();
    herald_malloc_stats stats = {info.uordblks, info.fordblks, info.hblkhd};
    return stats;
}

int herald_malloc_trim(void) {
    return malloc_trim(0);
}

int herald_set_thread_name(const char *name) {
    char cut[16];
    strncpy(cut, name, sizeof cut - 1);
    cut[sizeof cut - 1] = '\0';
    return pthread_setname_np(pthread_self(), cut);
}
