#include "CMallocStats.h"

#include <malloc.h>

herald_malloc_stats herald_read_malloc_stats(void) {
    struct mallinfo2 info = mallinfo2();
    herald_malloc_stats stats = {info.uordblks, info.fordblks, info.hblkhd};
    return stats;
}

int herald_malloc_trim(void) {
    return malloc_trim(0);
}
