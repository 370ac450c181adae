/*
 * Fixed-capacity flow table owned by one worker (shared-nothing: no locks, no atomics).
 *
 * Layout: an open-addressing index of (hash, flow index + 1) slots, linear probing, at most
 * half full, and a preallocated array of struct flow with a free stack. Nothing is allocated
 * after flow_table_create(): a full table refuses inserts instead of growing.
 * Deletion uses backward-shift, so there are no tombstones and probes stay short.
 */
#ifndef RS_FLOW_TABLE_H
#define RS_FLOW_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"

struct ft_slot {
    uint32_t hash;
    uint32_t idx1; /* flow index + 1; 0 = empty */
};

struct flow_table {
    uint32_t capacity; /* flows */
    uint32_t mask;     /* slots - 1 */
    uint32_t used;
    uint32_t free_top;
    uint32_t cursor; /* ageing scan position in flows[] */
    uint32_t pad;
    struct ft_slot *slots;
    struct flow *flows;
    uint32_t *free_stack;
    uint8_t *live; /* flows[i] in use */
};

struct flow_table *flow_table_create(uint32_t capacity);
void flow_table_destroy(struct flow_table *t);
/* Fault in the table's memory on the calling thread (its worker) before traffic, while it is
 * still empty: see big_prefault(). */
void flow_table_prefault(struct flow_table *t);
size_t flow_table_mem_bytes(uint32_t capacity);

struct flow *flow_table_lookup(struct flow_table *t, const struct flow_key *k, uint32_t hash);
/* Insert a zeroed flow for k (must not be present). NULL when the table is full. */
struct flow *flow_table_insert(struct flow_table *t, const struct flow_key *k, uint32_t hash);
void flow_table_remove(struct flow_table *t, struct flow *f);

static inline uint32_t flow_table_used(const struct flow_table *t)
{
    return t->used;
}

/* Iteration over live flows by index (ageing scan, flush). */
static inline struct flow *flow_table_at(struct flow_table *t, uint32_t i)
{
    return t->live[i] ? &t->flows[i] : NULL;
}

#endif
