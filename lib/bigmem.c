#include "bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define RS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RS_ASAN 1
#endif
#endif

#define HUGE_2M ((size_t)2 << 20)
#define MAP_MIN ((size_t)64 << 10)

/* From 64 KB on, a mapping of its own: zero pages placed lazily, where first touched (a
 * worker's tables are created on main, and must not all land on main's NUMA node, nor cost
 * memory before they are used). Below, a few pages at most: line_zalloc(). */
static int use_map(size_t n)
{
#ifdef RS_ASAN
    (void)n;
    return 0;
#else
    return n >= MAP_MIN;
#endif
}

/* Whole huge pages from 2 MB on (advised as such), whole 4 KB pages below. */
static size_t map_len(size_t n)
{
    size_t unit = n >= HUGE_2M ? HUGE_2M : 4096;
    return (n + unit - 1) & ~(unit - 1);
}

void *line_zalloc(size_t n)
{
#ifdef RS_ASAN
    return calloc(1, n ? n : 1); /* exact size: an overrun into the padding stays detected */
#else
    if (n > SIZE_MAX - 63)
        return NULL;
    size_t len = n ? (n + 63) & ~(size_t)63 : 64;
    void *p = aligned_alloc(64, len);
    if (p)
        memset(p, 0, len);
    return p;
#endif
}

void *big_zalloc(size_t n)
{
    if (!use_map(n))
        return line_zalloc(n);
    void *p = mmap(NULL, map_len(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (n >= HUGE_2M)
        madvise(p, map_len(n), MADV_HUGEPAGE); /* advice only: failure leaves 4 KB pages */
#endif
    return p;
}

void big_prefault(void *p, size_t n)
{
    volatile uint8_t *b = p;
    for (size_t off = 0; off < n; off += 4096)
        b[off] = 0; /* the memory is zero: a store of zero faults the page in, changes nothing */
}

void big_free(void *p, size_t n)
{
    if (!p)
        return;
    if (!use_map(n))
        free(p);
    else
        munmap(p, map_len(n));
}
