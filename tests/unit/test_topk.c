/*
 * The Space-Saving sketch: exact while it holds every key, its error bounds once it must
 * evict, heavy hitters kept under a flood of one-off keys, merging, and stable ordering.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "topk.h"

static struct topk_key server(uint32_t ip, uint16_t port)
{
    struct topk_key k;
    memset(&k, 0, sizeof(k));
    k.addr[10] = k.addr[11] = 0xff;
    memcpy(k.addr + 12, &ip, 4);
    k.port = port;
    k.family = 4;
    return k;
}

static uint64_t count_of(const struct topk *t, const struct topk_key *k, uint64_t *err)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (memcmp(&t->e[i].key, k, sizeof(*k)) == 0) {
            if (err)
                *err = t->e[i].err;
            return t->e[i].count;
        }
    return 0;
}

static uint64_t sum_counts(const struct topk *t)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < t->n; i++)
        s += t->e[i].count;
    return s;
}

Test(topk, exact_below_capacity)
{
    struct topk t;
    topk_init(&t);
    for (uint32_t i = 0; i < TOPK_CAP; i++)
        for (uint32_t r = 0; r <= i % 7; r++)
            topk_add(&t, &(struct topk_key){.port = (uint16_t)i}, 1);
    cr_assert_eq(t.n, TOPK_CAP);
    for (uint32_t i = 0; i < TOPK_CAP; i++) {
        uint64_t err = 99;
        struct topk_key k = {.port = (uint16_t)i};
        cr_assert_eq(count_of(&t, &k, &err), i % 7 + 1, "port %u", i);
        cr_assert_eq(err, 0);
    }
    cr_assert_eq(sum_counts(&t), t.total);
}

Test(topk, heavy_hitters_survive_a_flood_of_one_off_keys)
{
    struct topk t;
    topk_init(&t);
    struct topk_key heavy[3] = {server(0x0a000001, 443), server(0x0a000002, 80),
                                server(0x0a000003, 25)};
    uint64_t n = 0;
    /* 20000 distinct one-off keys interleaved with 3 keys of 2000, 1500 and 1000. */
    for (uint32_t i = 0; i < 20000; i++) {
        struct topk_key k = server(0xc0000000u + i, (uint16_t)(1024 + i % 5000));
        topk_add(&t, &k, 1);
        n++;
        for (int h = 0; h < 3; h++)
            if (i % (10 + 3 * h) == 0 && i / (10 + 3 * h) < (uint32_t)(2000 - 500 * h)) {
                topk_add(&t, &heavy[h], 1);
                n++;
            }
    }
    cr_assert_eq(t.total, n);
    cr_assert_eq(sum_counts(&t), n, "counts sum to the total");
    cr_assert_leq(t.n, TOPK_CAP);
    uint64_t want[3] = {2000, 1500, 1000};
    for (int h = 0; h < 3; h++) {
        uint64_t err = 0, c = count_of(&t, &heavy[h], &err);
        cr_assert_geq(c, want[h], "heavy %d kept with count >= its true count", h);
        cr_assert_leq(c - err, want[h], "lower bound holds for heavy %d", h);
        cr_assert_leq(err, n / TOPK_CAP, "error bounded by N/K");
    }
    struct topk_entry out[3];
    cr_assert_eq(topk_sorted(&t, out, 3), 3);
    cr_assert(memcmp(&out[0].key, &heavy[0], sizeof(heavy[0])) == 0, "largest first");
    cr_assert_geq(out[0].count, out[1].count);
    cr_assert_geq(out[1].count, out[2].count);
}

Test(topk, merge_adds_counts_and_totals)
{
    struct topk a, b, m;
    topk_init(&a);
    topk_init(&b);
    topk_init(&m);
    struct topk_key s1 = server(1, 80), s2 = server(2, 80), s3 = server(3, 443);
    topk_add(&a, &s1, 5);
    topk_add(&a, &s2, 2);
    topk_add(&b, &s1, 4);
    topk_add(&b, &s3, 7);
    topk_merge(&m, &a);
    topk_merge(&m, &b);
    cr_assert_eq(m.n, 3);
    cr_assert_eq(count_of(&m, &s1, NULL), 9);
    cr_assert_eq(count_of(&m, &s2, NULL), 2);
    cr_assert_eq(count_of(&m, &s3, NULL), 7);
    cr_assert_eq(m.total, 18);
    struct topk_entry out[TOPK_CAP];
    unsigned n = topk_sorted(&m, out, TOPK_CAP);
    cr_assert_eq(n, 3);
    cr_assert_eq(out[0].count, 9);
    cr_assert_eq(out[1].count, 7);
    cr_assert_eq(out[2].count, 2);
}

Test(topk, sorted_is_stable_on_ties_and_bounded_by_max)
{
    struct topk t;
    topk_init(&t);
    for (uint16_t p = 10; p > 0; p--)
        topk_add(&t, &(struct topk_key){.port = p}, 3);
    struct topk_entry out[4];
    cr_assert_eq(topk_sorted(&t, out, 4), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(out[i].key.port, i + 1, "ties ordered by key");
    cr_assert_eq(topk_sorted(&t, out, 0), 0);
}

Test(topk, full_sketch_eviction_keeps_upper_bound)
{
    struct topk t;
    topk_init(&t);
    for (uint32_t i = 0; i < TOPK_CAP; i++)
        topk_add(&t, &(struct topk_key){.port = (uint16_t)i}, 10);
    struct topk_key fresh = {.port = 60000};
    topk_add(&t, &fresh, 1);
    uint64_t err = 0;
    cr_assert_eq(count_of(&t, &fresh, &err), 11, "takes over a counter of 10");
    cr_assert_eq(err, 10);
    cr_assert_eq(t.n, TOPK_CAP);
    cr_assert_eq(sum_counts(&t), t.total);
}
