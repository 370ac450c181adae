#include "topk.h"

#include <stdlib.h>
#include <string.h>

static uint32_t key_hash(const struct topk_key *k)
{
    /* FNV-1a over the 20 key bytes: only a fast pre-filter for the bytewise compare. */
    const uint8_t *p = (const uint8_t *)k;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof(*k); i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

void topk_init(struct topk *t)
{
    memset(t, 0, sizeof(*t));
}

static void add_err(struct topk *t, const struct topk_key *k, uint64_t n, uint64_t err)
{
    uint32_t h = key_hash(k);
    uint32_t min_i = 0;

    t->total += n;
    for (uint32_t i = 0; i < t->n; i++) {
        struct topk_entry *e = &t->e[i];
        if (e->hash == h && memcmp(&e->key, k, sizeof(*k)) == 0) {
            e->count += n;
            e->err += err;
            return;
        }
        if (e->count < t->e[min_i].count)
            min_i = i;
    }
    if (t->n < TOPK_CAP) {
        t->e[t->n++] = (struct topk_entry){.key = *k, .hash = h, .count = n, .err = err};
        return;
    }
    /* Full: the new key takes over the smallest counter and inherits its count as error, so
     * count stays an upper bound of the true count. */
    struct topk_entry *m = &t->e[min_i];
    uint64_t floor = m->count;
    *m = (struct topk_entry){.key = *k, .hash = h, .count = floor + n, .err = floor + err};
}

void topk_add(struct topk *t, const struct topk_key *k, uint64_t n)
{
    add_err(t, k, n, 0);
}

void topk_merge(struct topk *dst, const struct topk *src)
{
    /* Invariant of both sketches: the counts sum to total (an eviction moves the floor into
     * the new count), so adding src's entries carries src's total over exactly. */
    for (uint32_t i = 0; i < src->n; i++)
        add_err(dst, &src->e[i].key, src->e[i].count, src->e[i].err);
}

static int by_count_desc(const void *a, const void *b)
{
    const struct topk_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return memcmp(&x->key, &y->key, sizeof(x->key));
}

unsigned topk_sorted(const struct topk *t, struct topk_entry *out, unsigned max)
{
    struct topk_entry tmp[TOPK_CAP];
    memcpy(tmp, t->e, t->n * sizeof(tmp[0]));
    qsort(tmp, t->n, sizeof(tmp[0]), by_count_desc);
    unsigned n = t->n < max ? t->n : max;
    memcpy(out, tmp, n * sizeof(out[0]));
    return n;
}
