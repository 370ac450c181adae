#include "host_table.h"

#include <stdlib.h>
#include <string.h>

#include "bigmem.h"

struct host_table *host_table_create(uint32_t entries, uint8_t tolerance)
{
    uint32_t n = 1;
    while (n < entries && n < (1u << 30))
        n <<= 1;
    struct host_table *t = line_zalloc(sizeof(*t));
    if (!t)
        return NULL;
    t->e = big_zalloc((size_t)n * sizeof(*t->e));
    if (!t->e) {
        free(t);
        return NULL;
    }
    t->mask = n - 1;
    t->tolerance = tolerance;
    return t;
}

size_t host_table_mem_bytes(const struct host_table *t)
{
    return ((size_t)t->mask + 1) * sizeof(*t->e);
}

void host_table_prefault(struct host_table *t)
{
    big_prefault(t->e, host_table_mem_bytes(t));
}

void host_table_destroy(struct host_table *t)
{
    if (!t)
        return;
    big_free(t->e, host_table_mem_bytes(t));
    free(t);
}

void host_table_note(struct host_table *t, const uint8_t addr[16], uint8_t ttl)
{
    struct host_entry *e = &t->e[host_table_slot(t, addr)];
    if (e->hits == 0 || memcmp(e->addr, addr, 16) != 0) {
        memcpy(e->addr, addr, 16);
        e->ttl = ttl;
        e->hits = 1;
        return;
    }
    int diff = (int)e->ttl - (int)ttl;
    if (diff < 0)
        diff = -diff;
    if (diff <= t->tolerance) {
        if (e->hits < 255)
            e->hits++;
    } else if (--e->hits == 0) {
        /* A route change: the new distance wins once it outvotes the old one. */
        e->ttl = ttl;
        e->hits = 1;
    }
}

uint8_t host_table_ttl(const struct host_table *t, const uint8_t addr[16])
{
    const struct host_entry *e = &t->e[host_table_slot(t, addr)];
    return e->hits && memcmp(e->addr, addr, 16) == 0 ? e->ttl : 0;
}
