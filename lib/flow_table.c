#include "flow_table.h"

#include <stdlib.h>

#include "bigmem.h"

static uint32_t slots_for(uint32_t capacity)
{
    uint32_t n = 16;
    while (n < 2 * (uint64_t)capacity && n < (1u << 31))
        n <<= 1;
    return n;
}

size_t flow_table_mem_bytes(uint32_t capacity)
{
    return sizeof(struct flow_table) + (size_t)slots_for(capacity) * sizeof(struct ft_slot) +
           (size_t)capacity * (sizeof(struct flow) + sizeof(uint32_t) + 1);
}

struct flow_table *flow_table_create(uint32_t capacity)
{
    if (capacity == 0 || capacity > (1u << 30))
        return NULL;
    struct flow_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    uint32_t nslots = slots_for(capacity);
    t->capacity = capacity;
    t->mask = nslots - 1;
    /* Zero pages mapped lazily (transparent huge pages for big tables, see bigmem.h): memory
     * is touched, and so placed on the NUMA node, by the worker that first uses it. */
    t->slots = big_zalloc((size_t)nslots * sizeof(*t->slots));
    t->flows = big_zalloc((size_t)capacity * sizeof(*t->flows));
    t->free_stack = malloc((size_t)capacity * sizeof(uint32_t));
    t->live = calloc(capacity, 1);
    if (!t->slots || !t->flows || !t->free_stack || !t->live) {
        flow_table_destroy(t);
        return NULL;
    }
    /* Pop order 0,1,2...: new flows fill the array from the front. */
    for (uint32_t i = 0; i < capacity; i++)
        t->free_stack[i] = capacity - 1 - i;
    t->free_top = capacity;
    return t;
}

void flow_table_prefault(struct flow_table *t)
{
    big_prefault(t->slots, ((size_t)t->mask + 1) * sizeof(*t->slots));
    big_prefault(t->flows, (size_t)t->capacity * sizeof(*t->flows));
}

void flow_table_destroy(struct flow_table *t)
{
    if (!t)
        return;
    big_free(t->slots, ((size_t)t->mask + 1) * sizeof(*t->slots));
    big_free(t->flows, (size_t)t->capacity * sizeof(*t->flows));
    free(t->free_stack);
    free(t->live);
    free(t);
}

struct flow *flow_table_lookup(struct flow_table *t, const struct flow_key *k, uint32_t hash)
{
    /* Load factor <= 1/2 guarantees an empty slot, so the probe terminates. */
    for (uint32_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        const struct ft_slot *s = &t->slots[i];
        if (s->idx1 == 0)
            return NULL;
        if (s->hash == hash) {
            struct flow *f = &t->flows[s->idx1 - 1];
            if (flow_key_eq(&f->key, k))
                return f;
        }
    }
}

struct flow *flow_table_insert(struct flow_table *t, const struct flow_key *k, uint32_t hash)
{
    if (t->free_top == 0)
        return NULL;
    uint32_t idx = t->free_stack[--t->free_top];
    uint32_t i = hash & t->mask;
    while (t->slots[i].idx1 != 0)
        i = (i + 1) & t->mask;
    t->slots[i].hash = hash;
    t->slots[i].idx1 = idx + 1;
    struct flow *f = &t->flows[idx];
    memset(f, 0, sizeof(*f));
    f->key = *k;
    f->hash = hash;
    t->live[idx] = 1;
    t->used++;
    return f;
}

void flow_table_remove(struct flow_table *t, struct flow *f)
{
    uint32_t idx = (uint32_t)(f - t->flows);
    uint32_t i = f->hash & t->mask;
    while (t->slots[i].idx1 != idx + 1) /* present by contract */
        i = (i + 1) & t->mask;
    /* Backward-shift deletion: pull later members of the cluster into the hole when their
     * home slot does not lie cyclically in (hole, j]. */
    for (uint32_t j = (i + 1) & t->mask;; j = (j + 1) & t->mask) {
        if (t->slots[j].idx1 == 0)
            break;
        uint32_t home = t->slots[j].hash & t->mask;
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].idx1 = 0;
    t->slots[i].hash = 0;
    t->live[idx] = 0;
    t->free_stack[t->free_top++] = idx;
    t->used--;
}
