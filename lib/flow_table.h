/*
 * Fixed-capacity flow table owned by one worker (shared-nothing: no locks, no atomics).
 *
 * Layout (issue 5, memory per flow):
 * - flows[capacity]: the entries. Entries [0, hwm) have been handed out at least once; a dead
 *   one among them is on a free list threaded through its `hash` field (next free + 1, 0 =
 *   end), with state FLOW_STATE_DEAD (flow.h). Insert takes the free list's head, else entry
 *   hwm: the same order (most recently freed first, then 0, 1, 2...) as the former free
 *   stack, without its 4 bytes per flow.
 * - live: one bit per entry (flows[i] in use), so the ageing scan skips dead entries without
 *   touching them.
 * - slots[nslots]: an open-addressing index of 4-byte slots, linear probing, load at most 3/4
 *   (nslots >= 4/3 capacity, at least 16), home slot by multiply-shift ((hash * nslots) >> 32,
 *   no power of two needed). A slot holds, from the low bits up: entry index + 1 in idx_bits
 *   (0 = empty); the entry's distance from its home slot in disp_bits (2, fewer only above
 *   2^29 entries), the top value meaning "that or more"; and the low bits of the hash that
 *   are left as a tag, so that most probes that do not match are rejected without touching
 *   the entry (6 tag bits up to 16M entries, at least 1 at the 2^30 limit). Deletion needs
 *   the home slot of each entry it shifts: the distance gives it without reading the entry,
 *   whose hash it reads only for the few entries 3 or more slots from home.
 * - v6[v6cap]: the address pairs of IPv6 flows (32 bytes each, the lo then the hi address as in
 *   struct flow_key), named by the entry's key.a = index + 1; IPv4 flows keep their whole key
 *   in the entry (struct flow_ckey). The pool holds v6cap pairs, by default capacity / 4
 *   (FLOW_V6_SHARE) and at least min(capacity, 64), so that an IPv6-only table of any size
 *   tracks a quarter of its capacity. A dead pair is on a free list threaded through its first
 *   4 bytes below v6hwm, like the entries. When every pair is taken, an IPv6 flow is refused
 *   as by a full table (flow_table_v6_full()); IPv4 flows are not affected.
 * Nothing is allocated after flow_table_create(): a full table refuses inserts instead of
 * growing. Deletion uses backward-shift, so there are no tombstones and probes stay short.
 */
#ifndef RS_FLOW_TABLE_H
#define RS_FLOW_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"

#define FLOW_V6_SHARE 4 /* default IPv6 pool: capacity / FLOW_V6_SHARE address pairs */

/* The address pair of an IPv6 flow: the lo then the hi address of its key. */
struct flow_v6pair {
    uint8_t addr[32];
};

struct flow_table {
    uint32_t capacity;  /* flows, 1 .. 2^30 */
    uint32_t nslots;    /* index slots: >= capacity * 4 / 3 and >= 16, so never full */
    uint32_t idx_bits;  /* low bits of a slot that hold index + 1: 2^idx_bits > capacity */
    uint32_t idx_mask;  /* (1 << idx_bits) - 1 */
    uint32_t tag_shift; /* idx_bits + disp_bits: where the tag starts, at most 31 */
    uint32_t disp_max;  /* (1 << disp_bits) - 1: the "this far or more" distance */
    uint32_t tag_mask;  /* the slot bits from tag_shift up */
    uint32_t used;
    uint32_t free_head; /* dead entry below hwm + 1, 0 = none */
    uint32_t hwm;       /* entries [hwm, capacity) were never handed out */
    uint32_t cursor;    /* ageing scan position in flows[] */
    uint32_t *slots;
    struct flow *flows;
    uint64_t *live; /* bit i: flows[i] in use */
    struct flow_v6pair *v6;
    uint32_t v6cap; /* IPv6 address pairs: IPv6 flows the table holds at once */
    uint32_t v6used;
    uint32_t v6free; /* dead pair below v6hwm + 1, 0 = none */
    uint32_t v6hwm;  /* pairs [v6hwm, v6cap) were never handed out */
};

/* The IPv6 pool for pct % of a table of this capacity: at least min(capacity, 64), so that a
 * small table still takes IPv6 connections. */
uint32_t flow_table_v6_share(uint32_t capacity, uint32_t pct);
/* The IPv6 pool of a table of this capacity when none is given: capacity / FLOW_V6_SHARE. */
uint32_t flow_table_v6_default(uint32_t capacity);
/* A table of capacity flows, at most v6cap of them IPv6 (0 = flow_table_v6_default(), more
 * than capacity = capacity). NULL when capacity is 0 or above 2^30, or out of memory. */
struct flow_table *flow_table_create_v6(uint32_t capacity, uint32_t v6cap);
static inline struct flow_table *flow_table_create(uint32_t capacity)
{
    return flow_table_create_v6(capacity, 0);
}
void flow_table_destroy(struct flow_table *t);
/* Fault in the table's memory on the calling thread (its worker) before traffic, while it is
 * still empty: see big_prefault(). */
void flow_table_prefault(struct flow_table *t);
/* Bytes of a table of capacity flows with the default IPv6 pool (flow_table_mem_bytes_v6()
 * with v6cap 0), index, live bits and pool included. */
size_t flow_table_mem_bytes(uint32_t capacity);
size_t flow_table_mem_bytes_v6(uint32_t capacity, uint32_t v6cap);

struct flow *flow_table_lookup(struct flow_table *t, const struct flow_key *k, uint32_t hash);
/* The same with k's stored form (flow_ckey_make()) already made. */
struct flow *flow_table_lookup_ckey(struct flow_table *t, const struct flow_key *k,
                                    const struct flow_ckey *c, int v6, uint32_t hash);
/* Insert a zeroed flow for k (must not be present). NULL when the table is full, or when k is
 * IPv6 and the IPv6 pool is (flow_table_v6_full()). */
struct flow *flow_table_insert(struct flow_table *t, const struct flow_key *k, uint32_t hash);
void flow_table_remove(struct flow_table *t, struct flow *f);
/* Remove every entry at once: the index and the live bits are zeroed and every entry and
 * IPv6 pair is as never handed out (O(index), no entry read). The entries' contents stay
 * until handed out again, unnamed by the index: nothing reads them. */
void flow_table_clear(struct flow_table *t);

static inline uint32_t flow_table_used(const struct flow_table *t)
{
    return t->used;
}

/* Every IPv6 address pair is taken: no new IPv6 flow until one ends. */
static inline int flow_table_v6_full(const struct flow_table *t)
{
    return t->v6used == t->v6cap;
}

/* The full canonical key of a live entry (its IPv6 addresses from the pool). */
static inline void flow_table_key(const struct flow_table *t, const struct flow *f,
                                  struct flow_key *k)
{
    if (f->key_v6) {
        memset(k, 0, sizeof(*k));
        memcpy(k->lo_addr, t->v6[f->key.a - 1].addr, 16);
        memcpy(k->hi_addr, t->v6[f->key.a - 1].addr + 16, 16);
        k->lo_port = f->key.lo_port;
        k->hi_port = f->key.hi_port;
    } else {
        flow_ckey_expand_v4(&f->key, k);
    }
}

/* f's stored key is k's (c: k's stored form, v6: k is IPv6). */
static inline int flow_table_key_matches(const struct flow_table *t, const struct flow *f,
                                         const struct flow_key *k, const struct flow_ckey *c,
                                         int v6)
{
    if (f->key_v6 != v6 || f->key.lo_port != c->lo_port || f->key.hi_port != c->hi_port)
        return 0;
    if (!v6)
        return f->key.a == c->a && f->key.b == c->b;
    const uint8_t *pair = t->v6[f->key.a - 1].addr;
    return addr_cmp16(pair, k->lo_addr) == 0 && addr_cmp16(pair + 16, k->hi_addr) == 0;
}

/* Home slot of a hash: multiply-shift range reduction into [0, nslots). */
static inline uint32_t flow_table_home(const struct flow_table *t, uint32_t hash)
{
    return (uint32_t)(((uint64_t)hash * t->nslots) >> 32);
}

/* Cyclic distance from slot a forward to slot b. */
static inline uint32_t flow_table_dist(const struct flow_table *t, uint32_t a, uint32_t b)
{
    return b >= a ? b - a : b + t->nslots - a;
}

/* The slot after i, wrapping at nslots. */
static inline uint32_t flow_table_next(const struct flow_table *t, uint32_t i)
{
    return i + 1 == t->nslots ? 0 : i + 1;
}

/* The tag bits a slot of this hash carries (its bits below tag_shift are zero). */
static inline uint32_t flow_table_tag(const struct flow_table *t, uint32_t hash)
{
    return hash << t->tag_shift;
}

/* The tag bits of slot s. */
static inline uint32_t flow_table_slot_tag(const struct flow_table *t, uint32_t s)
{
    return s & t->tag_mask;
}

/* The distance code of slot s: from its entry's home slot, capped at disp_max. */
static inline uint32_t flow_table_slot_disp(const struct flow_table *t, uint32_t s)
{
    return (s >> t->idx_bits) & t->disp_max;
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

/* Slots flow_table_likely_entry() looks at: most probes end within them at load <= 3/4. */
#define FLOW_TABLE_HINT_PROBES 4

/*
 * The entry a lookup of hash h most likely ends at, from the index alone: that of the first
 * slot from home whose tag matches, within FLOW_TABLE_HINT_PROBES slots. Following the probe
 * rather than taking the home slot's entry matters when another flow sits at home. NULL at an
 * empty slot or when none matches. A hint, to prefetch: it may hold another key with the tag.
 */
static inline const struct flow *flow_table_likely_entry(const struct flow_table *t, uint32_t h)
{
    const uint32_t tag = flow_table_tag(t, h);
    uint32_t i = flow_table_home(t, h);
    for (unsigned n = 0; n < FLOW_TABLE_HINT_PROBES; n++, i = flow_table_next(t, i)) {
        uint32_t s = t->slots[i];
        if (s == 0)
            return NULL;
        if (flow_table_slot_tag(t, s) == tag)
            return &t->flows[flow_table_slot_idx1(t, s) - 1];
    }
    return NULL;
}

/*
 * flow_table_lookup() with a hint: an entry that an earlier look at the index named for k,
 * possibly stale since (removed, or reused for another key). A live entry holding k's key is
 * k's entry, as a table holds one entry per key: then the probe is skipped. Otherwise, or
 * with no hint, the full lookup runs.
 */
static inline struct flow *flow_table_lookup_hint(struct flow_table *t, const struct flow_key *k,
                                                  const struct flow_ckey *c, int v6, uint32_t hash,
                                                  const struct flow *hint)
{
    if (hint) {
        struct flow *f = &t->flows[hint - t->flows];
        /* Liveness from the entry, whose lines stage 2 fetched, not from the live bitmap: a
         * random word of it was a miss that every packet waited for (14 % of the burst's
         * samples at 1M flows). */
        if (f->state != FLOW_STATE_DEAD && flow_table_key_matches(t, f, k, c, v6))
            return f;
    }
    return flow_table_lookup_ckey(t, k, c, v6, hash);
}

#endif
