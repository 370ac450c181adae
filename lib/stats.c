#include "stats.h"

#include <stddef.h>

void stats_accumulate(struct engine_stats *acc, const struct engine_stats *s)
{
    /* The struct is only uint64_t counters: walk it as an array so new fields cannot be
     * forgotten here. */
    const uint64_t *src = (const uint64_t *)s;
    uint64_t *dst = (uint64_t *)acc;
    size_t n = offsetof(struct engine_stats, busy_cycles) / sizeof(uint64_t) + 1;
    for (size_t i = 0; i < n; i++)
        dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
