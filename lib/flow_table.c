#include "flow_table.h"

#include <stdlib.h>

#include "bigmem.h"

/* Load at most 3/4: ceil(capacity * 4 / 3) slots, at least 16 (capacity <= 2^30, so this
 * fits 32 bits and leaves at least one empty slot, which ends every probe). */
static uint32_t slots_for(uint32_t capacity)
{
    uint64_t n = ((uint64_t)capacity * 4 + 2) / 3;
    return n < 16 ? 16 : (uint32_t)n;
}

/* The live bitmap: one bit per entry, in whole 64-bit words. */
static size_t live_bytes(uint32_t capacity)
{
    return ((size_t)capacity + 63) / 64 * sizeof(uint64_t);
}

uint32_t flow_table_v6_share(uint32_t capacity, uint32_t pct)
{
    uint32_t n = (uint32_t)((uint64_t)capacity * pct / 100);
    if (n < 64)
        n = capacity < 64 ? capacity : 64;
    return n;
}

uint32_t flow_table_v6_default(uint32_t capacity)
{
    return flow_table_v6_share(capacity, 100 / FLOW_V6_SHARE);
}

static uint32_t v6_for(uint32_t capacity, uint32_t v6cap)
{
    if (v6cap == 0)
        return flow_table_v6_default(capacity);
    return v6cap > capacity ? capacity : v6cap;
}

size_t flow_table_mem_bytes_v6(uint32_t capacity, uint32_t v6cap)
{
    return sizeof(struct flow_table) + (size_t)slots_for(capacity) * sizeof(uint32_t) +
           (size_t)capacity * sizeof(struct flow) + live_bytes(capacity) +
           (size_t)v6_for(capacity, v6cap) * sizeof(struct flow_v6pair);
}

size_t flow_table_mem_bytes(uint32_t capacity)
{
    return flow_table_mem_bytes_v6(capacity, 0);
}

struct flow_table *flow_table_create_v6(uint32_t capacity, uint32_t v6cap)
{
    if (capacity == 0 || capacity > (1u << 30))
        return NULL;
    struct flow_table *t = line_zalloc(sizeof(*t));
    if (!t)
        return NULL;
    t->capacity = capacity;
    t->v6cap = v6_for(capacity, v6cap);
    t->nslots = slots_for(capacity);
    /* Smallest idx_bits with index + 1 <= capacity < 2^idx_bits: at most 31, so the tag
     * keeps at least one bit and the shifts stay below 32. */
    t->idx_bits = 32 - (uint32_t)__builtin_clz(capacity);
    t->idx_mask = (1u << t->idx_bits) - 1;
    /* Two distance bits while the tag keeps one bit or more (up to 2^29 entries). */
    uint32_t disp_bits = t->idx_bits <= 29 ? 2 : 31 - t->idx_bits;
    t->tag_shift = t->idx_bits + disp_bits;
    t->disp_max = (1u << disp_bits) - 1;
    t->tag_mask = ~0u << t->tag_shift;
    /* Zero pages mapped lazily (transparent huge pages for big tables, see bigmem.h): memory
     * is touched, and so placed on the NUMA node, by the worker that first uses it. */
    t->slots = big_zalloc((size_t)t->nslots * sizeof(*t->slots));
    t->flows = big_zalloc((size_t)capacity * sizeof(*t->flows));
    t->live = big_zalloc(live_bytes(capacity));
    t->v6 = big_zalloc((size_t)t->v6cap * sizeof(*t->v6));
    if (!t->slots || !t->flows || !t->live || !t->v6) {
        flow_table_destroy(t);
        return NULL;
    }
    return t;
}

void flow_table_prefault(struct flow_table *t)
{
    big_prefault(t->slots, (size_t)t->nslots * sizeof(*t->slots));
    big_prefault(t->flows, (size_t)t->capacity * sizeof(*t->flows));
    big_prefault(t->live, live_bytes(t->capacity));
    big_prefault(t->v6, (size_t)t->v6cap * sizeof(*t->v6));
}

void flow_table_destroy(struct flow_table *t)
{
    if (!t)
        return;
    big_free(t->slots, (size_t)t->nslots * sizeof(*t->slots));
    big_free(t->flows, (size_t)t->capacity * sizeof(*t->flows));
    big_free(t->live, live_bytes(t->capacity));
    big_free(t->v6, (size_t)t->v6cap * sizeof(*t->v6));
    free(t);
}

struct flow *flow_table_lookup(struct flow_table *t, const struct flow_key *k, uint32_t hash)
{
    struct flow_ckey c;
    int v6 = flow_ckey_make(k, &c);
    return flow_table_lookup_ckey(t, k, &c, v6, hash);
}

struct flow *flow_table_lookup_ckey(struct flow_table *t, const struct flow_key *k,
                                    const struct flow_ckey *c, int v6, uint32_t hash)
{
    const uint32_t tag = flow_table_tag(t, hash);
    /* Load factor <= 3/4 guarantees an empty slot, so the probe terminates. */
    for (uint32_t i = flow_table_home(t, hash);; i = flow_table_next(t, i)) {
        uint32_t s = t->slots[i];
        if (s == 0)
            return NULL;
        if (flow_table_slot_tag(t, s) == tag) {
            struct flow *f = &t->flows[(s & t->idx_mask) - 1];
            if (f->hash == hash && flow_table_key_matches(t, f, k, c, v6))
                return f;
        }
    }
}

/* A slot's distance field for an entry dist slots from home: exact below dmax, else dmax. */
static inline uint32_t disp_code(uint32_t dist, uint32_t dmax)
{
    return dist < dmax ? dist : dmax;
}

/* The slot of entry idx1 - 1 with these tag bits, dist slots from its home. */
static inline uint32_t slot_value(const struct flow_table *t, uint32_t tag, uint32_t dist,
                                  uint32_t idx1)
{
    return tag | disp_code(dist, t->disp_max) << t->idx_bits | idx1;
}

struct flow *flow_table_insert(struct flow_table *t, const struct flow_key *k, uint32_t hash)
{
    struct flow_ckey c;
    int v6 = flow_ckey_make(k, &c);
    if (v6 && flow_table_v6_full(t))
        return NULL;
    if (!t->free_head && t->hwm == t->capacity)
        return NULL;
    if (v6) {
        uint32_t p;
        if (t->v6free) {
            p = t->v6free - 1;
            memcpy(&t->v6free, t->v6[p].addr, 4); /* the next free pair + 1, see remove */
        } else {
            p = t->v6hwm++;
        }
        memcpy(t->v6[p].addr, k->lo_addr, 16);
        memcpy(t->v6[p].addr + 16, k->hi_addr, 16);
        c.a = p + 1;
        t->v6used++;
    }
    uint32_t idx;
    if (t->free_head) {
        idx = t->free_head - 1;
        t->free_head = t->flows[idx].hash; /* the next free entry + 1, see remove */
    } else {
        idx = t->hwm++; /* below capacity: checked above */
    }
    uint32_t home = flow_table_home(t, hash), i = home;
    while (t->slots[i] != 0)
        i = flow_table_next(t, i);
    t->slots[i] = slot_value(t, flow_table_tag(t, hash), flow_table_dist(t, home, i), idx + 1);
    struct flow *f = &t->flows[idx];
    memset(f, 0, sizeof(*f));
    f->key = c;
    f->key_v6 = (uint8_t)v6;
    f->hash = hash;
    t->live[idx >> 6] |= 1ull << (idx & 63);
    t->used++;
    return f;
}

void flow_table_remove(struct flow_table *t, struct flow *f)
{
    uint32_t idx = (uint32_t)(f - t->flows);
    uint32_t i = flow_table_home(t, f->hash);
    while (flow_table_slot_idx1(t, t->slots[i]) != idx + 1) /* present by contract */
        i = flow_table_next(t, i);
    /* Backward-shift deletion: pull a later member of the cluster, at j, into the hole at i
     * when its home slot does not lie cyclically in (i, j], that is when its distance from
     * home is at least the gap from i to j; moved, it is that much closer. The distance comes
     * from the slot, and from the member's hash only when the slot says "3 or more". The
     * table's fields are copied to locals: a store to a slot could alias them as far as C
     * knows. */
    uint32_t *const slots = t->slots;
    const uint32_t nslots = t->nslots, ib = t->idx_bits, dmax = t->disp_max;
    uint32_t gap = 0;
    for (uint32_t j = i;;) {
        j = j + 1 == nslots ? 0 : j + 1;
        gap++;
        uint32_t s = slots[j];
        if (s == 0)
            break;
        uint32_t d = (s >> ib) & dmax;
        if (d == dmax)
            d = flow_table_dist(
                t, flow_table_home(t, t->flows[flow_table_slot_idx1(t, s) - 1].hash), j);
        if (d >= gap) {
            d -= gap;
            slots[i] = (s & ~(dmax << ib)) | disp_code(d, dmax) << ib;
            i = j;
            gap = 0;
        }
    }
    slots[i] = 0;
    t->live[idx >> 6] &= ~(1ull << (idx & 63));
    if (f->key_v6) { /* its address pair heads the pool's free list */
        memcpy(t->v6[f->key.a - 1].addr, &t->v6free, 4);
        t->v6free = f->key.a;
        t->v6used--;
    }
    /* Dead: its hash field now links the free list (nothing reads a dead entry's hash), and
     * its state says so to a lookup hint that still names it. */
    f->hash = t->free_head;
    f->state = FLOW_STATE_DEAD;
    t->free_head = idx + 1;
    t->used--;
}

void flow_table_clear(struct flow_table *t)
{
    memset(t->slots, 0, (size_t)t->nslots * sizeof(*t->slots));
    memset(t->live, 0, live_bytes(t->capacity));
    t->used = 0;
    t->free_head = 0;
    t->hwm = 0;
    t->cursor = 0;
    t->v6used = 0;
    t->v6free = 0;
    t->v6hwm = 0;
}
