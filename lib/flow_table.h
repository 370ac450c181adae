/*
 * Fixed-capacity flow table owned by one worker (shared-nothing: no locks, no atomics).
 *
 * Layout (issue 5, memory per flow):
 * - flows[capacity]: the entries. Entries [0, hwm) have been handed out at least once; a dead
 *   one among them is on a free list threaded through its `hash` field (next free + 1, 0 =
 *   end). Insert takes the free list's head, else entry hwm: the same order (most recently
 *   freed first, then 0, 1, 2...) as the former free stack, without its 4 bytes per flow.
 * - live: one bit per entry (flows[i] in use), so the ageing scan skips dead entries without
 *   touching them.
 * - slots[nslots]: an open-addressing index of 4-byte slots, linear probing, load at most 3/4
 *   (nslots >= 4/3 capacity, at least 16), home slot by multiply-shift ((hash * nslots) >> 32,
 *   no power of two needed). A slot holds entry index + 1 in its low idx_bits (0 = empty) and
 *   the low 32 - idx_bits bits of the hash above them as a tag, so that most probes that do
 *   not match are rejected without touching the entry (8 tag bits up to 16M entries, at least
 *   1 at the 2^30 limit). The full hash stays in the entry: deletion reads it for the home
 *   slot of the entries it shifts.
 * Nothing is allocated after flow_table_create(): a full table refuses inserts instead of
 * growing. Deletion uses backward-shift, so there are no tombstones and probes stay short.
 */
#ifndef RS_FLOW_TABLE_H
#define RS_FLOW_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"

struct flow_table {
    uint32_t capacity; /* flows, 1 .. 2^30 */
    uint32_t nslots;   /* index slots: >= capacity * 4 / 3 and >= 16, so never full */
    uint32_t idx_bits; /* low bits of a slot that hold index + 1: 2^idx_bits > capacity */
    uint32_t idx_mask; /* (1 << idx_bits) - 1 */
    uint32_t used;
    uint32_t free_head; /* dead entry below hwm + 1, 0 = none */
    uint32_t hwm;       /* entries [hwm, capacity) were never handed out */
    uint32_t cursor;    /* ageing scan position in flows[] */
    uint32_t *slots;
    struct flow *flows;
    uint64_t *live; /* bit i: flows[i] in use */
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

/* Home slot of a hash: multiply-shift range reduction into [0, nslots). */
static inline uint32_t flow_table_home(const struct flow_table *t, uint32_t hash)
{
    return (uint32_t)(((uint64_t)hash * t->nslots) >> 32);
}

/* The slot after i, wrapping at nslots. */
static inline uint32_t flow_table_next(const struct flow_table *t, uint32_t i)
{
    return i + 1 == t->nslots ? 0 : i + 1;
}

/* The tag bits a slot of this hash carries (its low idx_bits are zero). */
static inline uint32_t flow_table_tag(const struct flow_table *t, uint32_t hash)
{
    return hash << t->idx_bits;
}

/* Entry index + 1 named by a slot value, 0 = empty. */
static inline uint32_t flow_table_slot_idx1(const struct flow_table *t, uint32_t s)
{
    return s & t->idx_mask;
}

static inline int flow_table_live(const struct flow_table *t, uint32_t i)
{
    return (int)((t->live[i >> 6] >> (i & 63)) & 1);
}

/* Iteration over live flows by index (ageing scan, flush). */
static inline struct flow *flow_table_at(struct flow_table *t, uint32_t i)
{
    return flow_table_live(t, i) ? &t->flows[i] : NULL;
}

#endif
