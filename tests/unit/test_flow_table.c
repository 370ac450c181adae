/*
 * flow key canonicalisation and the open-addressing flow table: insert/lookup/remove,
 * exhaustion, and long randomised runs against a reference with forced hash collisions,
 * checking the probe invariant that backward-shift deletion must keep.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "flow_table.h"
#include "pktbuild.h"

static void mk_info(struct pkt_info *p, const char *src, uint16_t sport, const char *dst,
                    uint16_t dport)
{
    memset(p, 0, sizeof(*p));
    pb_addr(p->src, src);
    pb_addr(p->dst, dst);
    p->sport = sport;
    p->dport = dport;
    p->family = strchr(src, ':') ? 6 : 4;
}

static void reverse(const struct pkt_info *p, struct pkt_info *r)
{
    *r = *p;
    memcpy(r->src, p->dst, 16);
    memcpy(r->dst, p->src, 16);
    r->sport = p->dport;
    r->dport = p->sport;
}

/* Distinct key number i (i < 2^24), built through flow_key_make like real traffic. */
static void key_n(uint32_t i, struct flow_key *k)
{
    struct pkt_info p;
    int d;
    memset(&p, 0, sizeof(p));
    p.src[10] = p.src[11] = p.dst[10] = p.dst[11] = 0xff;
    p.src[12] = 10;
    p.src[13] = (uint8_t)(i >> 16);
    p.src[14] = (uint8_t)(i >> 8);
    p.src[15] = (uint8_t)i;
    p.dst[12] = 192;
    p.dst[15] = 1;
    p.sport = (uint16_t)(1024 + i % 50000);
    p.dport = 443;
    flow_key_make(&p, k, &d);
}

/* A hash whose home slot is `home` (< nslots): the multiply-shift reduction inverted, plus
 * salt within the range of hashes that share that home. */
static uint32_t hash_at(const struct flow_table *t, uint32_t home, uint32_t salt)
{
    uint64_t lo = (((uint64_t)home << 32) + t->nslots - 1) / t->nslots;
    uint64_t hi = (((uint64_t)(home + 1) << 32) + t->nslots - 1) / t->nslots;
    uint32_t h = (uint32_t)(lo + salt % (hi - lo));
    cr_assert_eq(flow_table_home(t, h), home);
    return h;
}

/* The table's structural invariants, checked slot by slot and along the free list. */
static void check_invariants(const struct flow_table *t)
{
    uint32_t occupied = 0;
    uint8_t *named = calloc(t->capacity, 1);

    cr_assert_not_null(named);
    cr_assert(t->nslots >= 16 && (uint64_t)t->nslots * 3 >= (uint64_t)t->capacity * 4,
              "load factor at most 3/4");
    cr_assert(t->capacity <= t->idx_mask && t->idx_mask == (1u << t->idx_bits) - 1);
    cr_assert(t->tag_shift <= 31 && t->tag_shift >= t->idx_bits, "a tag bit is left");
    cr_assert_eq(t->disp_max, (1u << (t->tag_shift - t->idx_bits)) - 1);
    cr_assert_eq(t->tag_mask, ~0u << t->tag_shift);
    cr_assert(t->hwm <= t->capacity && t->used <= t->hwm);
    for (uint32_t j = 0; j < t->nslots; j++) {
        uint32_t s = t->slots[j];
        if (!s)
            continue;
        occupied++;
        uint32_t idx1 = flow_table_slot_idx1(t, s);
        cr_assert(idx1 >= 1 && idx1 <= t->hwm, "slot %u: index %u out of range", j, idx1);
        cr_assert_not(named[idx1 - 1], "slot %u: entry %u named twice", j, idx1 - 1);
        named[idx1 - 1] = 1;
        const struct flow *f = &t->flows[idx1 - 1];
        cr_assert(flow_table_live(t, idx1 - 1), "slot %u points at a free flow", j);
        cr_assert_eq(flow_table_slot_tag(t, s), flow_table_tag(t, f->hash),
                     "slot %u: tag differs from its flow's hash", j);
        /* The distance: exact below disp_max, at least disp_max when it says so. */
        uint32_t dist = flow_table_dist(t, flow_table_home(t, f->hash), j);
        uint32_t code = flow_table_slot_disp(t, s);
        cr_assert(code < t->disp_max ? code == dist : dist >= t->disp_max,
                  "slot %u: distance code %u, %u slots from home", j, code, dist);
        /* Linear probing: no empty slot between the home slot and where the entry sits. */
        for (uint32_t i = flow_table_home(t, f->hash); i != j; i = flow_table_next(t, i))
            cr_assert(t->slots[i], "slot %u unreachable: hole at %u", j, i);
    }
    cr_assert_eq(occupied, t->used);
    uint32_t live = 0;
    for (uint32_t i = 0; i < t->capacity; i++) {
        live += (uint32_t)flow_table_live(t, i);
        if (i >= t->hwm)
            cr_assert_not(flow_table_live(t, i), "entry %u above the high-water mark is live", i);
    }
    for (uint32_t i = t->capacity; i < (t->capacity + 63) / 64 * 64; i++)
        cr_assert_not(flow_table_live(t, i), "bit %u past the capacity is set", i);
    cr_assert_eq(live, t->used);
    /* The free list: exactly the dead entries below the high-water mark, each once. */
    uint32_t nfree = 0;
    for (uint32_t n = t->free_head; n; n = t->flows[n - 1].hash) {
        cr_assert(n <= t->hwm, "free list names entry %u at or above hwm %u", n - 1, t->hwm);
        cr_assert_not(flow_table_live(t, n - 1), "free list names live entry %u", n - 1);
        cr_assert_not(named[n - 1], "free list names entry %u twice", n - 1);
        named[n - 1] = 1;
        cr_assert(++nfree <= t->hwm, "free list loops");
    }
    cr_assert_eq(nfree + t->used, t->hwm);
    free(named);
}

Test(flow_key, both_directions_same_key)
{
    static const char *const pairs[][2] = {
        {"10.0.0.1", "10.0.0.2"},       {"192.168.1.200", "10.0.0.2"},
        {"2001:db8::1", "2001:db8::2"}, {"fe80::ffff", "2001:db8::1"},
        {"10.1.1.1", "10.1.1.1"}, /* loopback-like: same address, ports decide */
    };
    static const uint16_t ports[][2] = {{40000, 80}, {80, 40000}, {443, 443}, {0, 65535}};

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        for (size_t j = 0; j < sizeof(ports) / sizeof(ports[0]); j++) {
            struct pkt_info a, b;
            struct flow_key ka, kb;
            int da, db;
            mk_info(&a, pairs[i][0], ports[j][0], pairs[i][1], ports[j][1]);
            reverse(&a, &b);
            flow_key_make(&a, &ka, &da);
            flow_key_make(&b, &kb, &db);
            cr_assert(flow_key_eq(&ka, &kb), "%s:%u <-> %s:%u keys differ", pairs[i][0],
                      ports[j][0], pairs[i][1], ports[j][1]);
            cr_assert_eq(flow_key_hash(&ka), flow_key_hash(&kb));
            int same_endpoint = !strcmp(pairs[i][0], pairs[i][1]) && ports[j][0] == ports[j][1];
            if (!same_endpoint)
                cr_assert_eq(da, 1 - db, "directions must be opposite");
            /* dir names the sender: index 0 is the key's lo endpoint. */
            const uint8_t *sender = da == 0 ? ka.lo_addr : ka.hi_addr;
            uint16_t sport = da == 0 ? ka.lo_port : ka.hi_port;
            cr_assert_arr_eq(sender, a.src, 16);
            cr_assert_eq(sport, a.sport);
            cr_assert_eq(ka.zero, 0u);
        }
    }
}

Test(flow_key, lo_endpoint_first)
{
    struct pkt_info p;
    struct flow_key k;
    int d;

    mk_info(&p, "10.0.0.9", 1000, "10.0.0.3", 2000);
    flow_key_make(&p, &k, &d);
    cr_assert_eq(d, 1, "the sender has the higher address");
    cr_assert_eq(k.lo_addr[15], 3);
    cr_assert_eq(k.lo_port, 2000);
    cr_assert_eq(k.hi_port, 1000);

    /* Equal addresses: the lower port is lo. */
    mk_info(&p, "10.0.0.3", 2000, "10.0.0.3", 1000);
    flow_key_make(&p, &k, &d);
    cr_assert_eq(d, 1);
    cr_assert_eq(k.lo_port, 1000);
}

Test(flow_key, distinct_tuples_distinct_keys)
{
    struct pkt_info p;
    struct flow_key k1, k2;
    int d;

    cr_assert_eq(sizeof(struct flow_key), 40u, "the hash reads the key as 5 words");
    mk_info(&p, "10.0.0.1", 40000, "10.0.0.2", 80);
    flow_key_make(&p, &k1, &d);
    mk_info(&p, "10.0.0.1", 40001, "10.0.0.2", 80);
    flow_key_make(&p, &k2, &d);
    cr_assert_not(flow_key_eq(&k1, &k2));
    cr_assert_neq(flow_key_hash(&k1), flow_key_hash(&k2));
    /* Swapping only the ports is a different connection. */
    mk_info(&p, "10.0.0.1", 80, "10.0.0.2", 40000);
    flow_key_make(&p, &k2, &d);
    cr_assert_not(flow_key_eq(&k1, &k2));
}

/* The burst path's shortcuts for an IPv4 packet (flow_key_hash_v4(), flow_ckey_of_family())
 * must give what the general functions give, which the distributor and every other caller
 * use: a different hash would put the two directions or the two paths of one connection in
 * different slots. An IPv6 packet between IPv4-mapped addresses is the same connection. */
Test(flow_key, ipv4_shortcuts_agree_with_the_general_path)
{
    static const char *const tuples[][2] = {
        {"10.0.0.1", "10.0.0.2"},           {"192.168.7.9", "10.0.0.2"},
        {"255.255.255.255", "0.0.0.0"},     {"10.1.2.3", "10.1.2.3"},
        {"2001:db8::1", "2001:db8::2"},     {"::ffff:10.0.0.1", "::ffff:10.0.0.2"},
        {"2001:db8::1", "::ffff:10.0.0.2"},
    };
    for (size_t i = 0; i < sizeof(tuples) / sizeof(tuples[0]); i++) {
        for (uint16_t port = 0; port < 3; port++) {
            struct pkt_info p;
            struct flow_key k;
            struct flow_ckey c, ref;
            int d;
            mk_info(&p, tuples[i][0], (uint16_t)(40000 + port), tuples[i][1], 443);
            flow_key_make(&p, &k, &d);
            int v6 = flow_ckey_make(&k, &ref);
            memset(&c, 0xa5, sizeof(c));
            cr_assert_eq(flow_ckey_of_family(&k, p.family, &c), v6, "%s", tuples[i][0]);
            cr_assert_eq(memcmp(&c, &ref, sizeof(c)), 0, "%s %s", tuples[i][0], tuples[i][1]);
            if (!v6)
                cr_assert_eq(flow_key_hash_v4(&k), flow_key_hash(&k), "%s", tuples[i][0]);
        }
    }
    /* ::ffff:10.0.0.1 over IPv6 and 10.0.0.1 over IPv4: one key, one hash. */
    struct pkt_info a, b;
    struct flow_key ka, kb;
    int d;
    mk_info(&a, "10.0.0.1", 40000, "10.0.0.2", 443);
    mk_info(&b, "::ffff:10.0.0.1", 40000, "::ffff:10.0.0.2", 443);
    flow_key_make(&a, &ka, &d);
    flow_key_make(&b, &kb, &d);
    cr_assert(flow_key_eq(&ka, &kb));
    cr_assert_eq(flow_key_hash_v4(&ka), flow_key_hash(&kb));
}

Test(flow_table, create_limits)
{
    cr_assert_null(flow_table_create(0));
    cr_assert_null(flow_table_create((1u << 30) + 1));
    struct flow_table *t = flow_table_create(1);
    cr_assert_not_null(t);
    cr_assert_eq(t->nslots, 16u, "at least 16 slots");
    cr_assert_eq(t->idx_bits, 1u, "index + 1 = 1 fits one bit");
    flow_table_destroy(t);
    t = flow_table_create(100);
    cr_assert_not_null(t);
    cr_assert_eq(t->nslots, 134u, "load factor at most 3/4: ceil(400 / 3)");
    cr_assert_eq(t->idx_bits, 7u, "index + 1 <= 100 < 128");
    cr_assert_eq(t->tag_shift, 9u, "two bits of distance from home");
    cr_assert_eq(t->disp_max, 3u);
    cr_assert_eq(t->hwm, 0u);
    cr_assert_eq(t->free_head, 0u);
    cr_assert_eq(flow_table_used(t), 0u);
    flow_table_destroy(t);
    flow_table_destroy(NULL);
    cr_assert(flow_table_mem_bytes(1000) > 1000 * sizeof(struct flow));
    cr_assert(flow_table_mem_bytes(2000) > flow_table_mem_bytes(1000));
}

Test(flow_table, insert_lookup_remove)
{
    struct flow_table *t = flow_table_create(8);
    struct flow_key k[3];

    for (int i = 0; i < 3; i++)
        key_n((uint32_t)i, &k[i]);
    uint32_t h0 = flow_key_hash(&k[0]);
    cr_assert_null(flow_table_lookup(t, &k[0], h0));

    struct flow *f0 = flow_table_insert(t, &k[0], h0);
    cr_assert_not_null(f0);
    struct flow_key got;
    flow_table_key(t, f0, &got);
    cr_assert(flow_key_eq(&got, &k[0]));
    cr_assert_eq(f0->hash, h0);
    cr_assert_eq(flow_table_used(t), 1u);
    cr_assert_eq(flow_table_lookup(t, &k[0], h0), f0);
    cr_assert_null(flow_table_lookup(t, &k[1], flow_key_hash(&k[1])));
    /* Same hash, different key: not found. */
    cr_assert_null(flow_table_lookup(t, &k[1], h0));

    struct flow *f1 = flow_table_insert(t, &k[1], flow_key_hash(&k[1]));
    struct flow *f2 = flow_table_insert(t, &k[2], flow_key_hash(&k[2]));
    cr_assert(f1 && f2 && f1 != f0 && f2 != f1);
    cr_assert_eq(flow_table_at(t, (uint32_t)(f1 - t->flows)), f1);
    check_invariants(t);

    flow_table_remove(t, f1);
    cr_assert_eq(flow_table_used(t), 2u);
    cr_assert_null(flow_table_lookup(t, &k[1], flow_key_hash(&k[1])));
    cr_assert_null(flow_table_at(t, (uint32_t)(f1 - t->flows)));
    cr_assert_eq(flow_table_lookup(t, &k[0], h0), f0);
    cr_assert_eq(flow_table_lookup(t, &k[2], flow_key_hash(&k[2])), f2);
    check_invariants(t);
    flow_table_destroy(t);
}

/* flow_table_lookup_hint() with the stored form of k made here, as segment() makes it. */
static struct flow *lookup_hint(struct flow_table *t, const struct flow_key *k, uint32_t h,
                                const struct flow *hint)
{
    struct flow_ckey c;
    int v6 = flow_ckey_make(k, &c);
    return flow_table_lookup_hint(t, k, &c, v6, h, hint);
}

/* A hint is only a shortcut: a stale one (its entry removed, or reused for another key) must
 * not be returned, and a right one must be. */
Test(flow_table, lookup_hint)
{
    struct flow_table *t = flow_table_create(4);
    struct flow_key k[3];

    for (int i = 0; i < 3; i++)
        key_n((uint32_t)i + 7, &k[i]);
    uint32_t h0 = flow_key_hash(&k[0]), h1 = flow_key_hash(&k[1]), h2 = flow_key_hash(&k[2]);
    struct flow *f0 = flow_table_insert(t, &k[0], h0);
    struct flow *f1 = flow_table_insert(t, &k[1], h1);
    cr_assert(f0 && f1);
    cr_assert_eq(lookup_hint(t, &k[0], h0, f0), f0, "right hint");
    cr_assert_eq(lookup_hint(t, &k[0], h0, f1), f0, "another flow's entry");
    cr_assert_eq(lookup_hint(t, &k[0], h0, NULL), f0, "no hint");
    cr_assert_null(lookup_hint(t, &k[2], h2, f0), "a new flow: the hint is wrong");

    /* Removed: its key is still in the dead entry, and must not be found through it. */
    flow_table_remove(t, f0);
    cr_assert_null(lookup_hint(t, &k[0], h0, f0));
    /* Reused for another key: k[0] is not there, k[2] is. */
    struct flow *f2 = flow_table_insert(t, &k[2], h2);
    cr_assert_eq(f2, f0, "the free list hands the dead entry out again");
    cr_assert_null(lookup_hint(t, &k[0], h0, f0));
    cr_assert_eq(lookup_hint(t, &k[2], h2, f0), f2);
    /* Back in another entry: a stale hint to the old place finds it by the probe. */
    flow_table_remove(t, f1);
    struct flow *g = flow_table_insert(t, &k[0], h0);
    cr_assert_eq(lookup_hint(t, &k[0], h0, f2), g);
    check_invariants(t);
    flow_table_destroy(t);
}

Test(flow_table, inserted_flow_is_zeroed)
{
    struct flow_table *t = flow_table_create(1);
    struct flow_key k1, k2;

    key_n(1, &k1);
    key_n(2, &k2);
    struct flow *f = flow_table_insert(t, &k1, 77);
    memset(&f->state, 0xa5, sizeof(*f) - offsetof(struct flow, state));
    flow_table_remove(t, f);
    f = flow_table_insert(t, &k2, 78);
    cr_assert_not_null(f, "a removed entry must be reusable");
    struct flow zero;
    memset(&zero, 0, sizeof(zero));
    flow_ckey_make(&k2, &zero.key);
    zero.hash = 78;
    cr_assert_arr_eq(f, &zero, sizeof(zero), "a reused entry must come back zeroed");
    flow_table_destroy(t);
}

Test(flow_table, capacity_exhaustion)
{
    const uint32_t cap = 10;
    struct flow_table *t = flow_table_create(cap);
    struct flow *f[10];
    struct flow_key k;

    for (uint32_t i = 0; i < cap; i++) {
        key_n(i, &k);
        f[i] = flow_table_insert(t, &k, flow_key_hash(&k));
        cr_assert_not_null(f[i], "insert %u of %u", i, cap);
    }
    cr_assert_eq(flow_table_used(t), cap);
    key_n(cap, &k);
    cr_assert_null(flow_table_insert(t, &k, flow_key_hash(&k)), "full table must refuse");
    cr_assert_null(flow_table_insert(t, &k, flow_key_hash(&k)), "and keep refusing");
    cr_assert_eq(flow_table_used(t), cap);
    check_invariants(t);
    /* Everything inserted is still found. */
    for (uint32_t i = 0; i < cap; i++) {
        key_n(i, &k);
        cr_assert_eq(flow_table_lookup(t, &k, flow_key_hash(&k)), f[i]);
    }
    flow_table_remove(t, f[4]);
    key_n(cap, &k);
    struct flow *n = flow_table_insert(t, &k, flow_key_hash(&k));
    cr_assert_eq(n, f[4], "the freed entry is the one handed out");
    key_n(cap + 1, &k);
    cr_assert_null(flow_table_insert(t, &k, flow_key_hash(&k)));
    check_invariants(t);
    flow_table_destroy(t);
}

/* All keys with one hash: a single cluster; removing from its middle must keep the rest. */
Test(flow_table, all_equal_hashes)
{
    const uint32_t cap = 12;
    struct flow_table *t = flow_table_create(cap);
    struct flow *f[12];
    struct flow_key k;
    const uint32_t h = UINT32_MAX; /* home = last slot: the cluster wraps to slot 0 */
    cr_assert_eq(flow_table_home(t, h), t->nslots - 1);

    for (uint32_t i = 0; i < cap; i++) {
        key_n(i, &k);
        f[i] = flow_table_insert(t, &k, h);
        cr_assert_not_null(f[i]);
    }
    check_invariants(t);
    static const int order[] = {5, 0, 11, 6, 1, 10, 3};
    int gone[12] = {0};
    for (size_t r = 0; r < sizeof(order) / sizeof(order[0]); r++) {
        flow_table_remove(t, f[order[r]]);
        gone[order[r]] = 1;
        check_invariants(t);
        for (uint32_t i = 0; i < cap; i++) {
            key_n(i, &k);
            if (gone[i])
                cr_assert_null(flow_table_lookup(t, &k, h), "removed key %u still found", i);
            else
                cr_assert_eq(flow_table_lookup(t, &k, h), f[i], "key %u lost after removing %d", i,
                             order[r]);
        }
    }
    flow_table_destroy(t);
}

/* Two interleaved clusters around the wrap point: entries whose home lies after the hole
 * must not be pulled back before it. */
Test(flow_table, backward_shift_respects_home_slots)
{
    struct flow_table *t = flow_table_create(8); /* 16 slots */
    struct flow_key k[6];
    struct flow *f[6];
    /* Homes 14, 14, 15, 0, 1, 1: occupy 14, 15, 0, 1, 2, 3. */
    static const uint32_t homes[6] = {14, 14, 15, 0, 1, 1};
    uint32_t hashes[6];

    cr_assert_eq(t->nslots, 16u);
    for (int i = 0; i < 6; i++)
        hashes[i] = hash_at(t, homes[i], (uint32_t)i * 0x01000193u);

    for (int i = 0; i < 6; i++) {
        key_n((uint32_t)i + 100, &k[i]);
        f[i] = flow_table_insert(t, &k[i], hashes[i]);
    }
    cr_assert_eq(flow_table_slot_idx1(t, t->slots[3]), (uint32_t)(f[5] - t->flows) + 1);
    check_invariants(t);
    /* Remove the first: 15 -> 14, 0 -> 15, 1 -> 0, and homes 1 move to 1 and 2. */
    flow_table_remove(t, f[0]);
    check_invariants(t);
    cr_assert_eq(flow_table_slot_idx1(t, t->slots[14]), (uint32_t)(f[1] - t->flows) + 1);
    cr_assert_eq(t->slots[3], 0u);
    for (int i = 1; i < 6; i++)
        cr_assert_eq(flow_table_lookup(t, &k[i], hashes[i]), f[i]);

    /* A hole in front of entries sitting in their home slot: nothing moves. */
    struct flow_table *u = flow_table_create(8);
    struct flow *a = flow_table_insert(u, &k[0], hash_at(u, 3, 7));
    struct flow *b = flow_table_insert(u, &k[1], hash_at(u, 4, 8));
    struct flow *c = flow_table_insert(u, &k[2], hash_at(u, 5, 9));
    flow_table_remove(u, a);
    cr_assert_eq(u->slots[3], 0u);
    cr_assert_eq(flow_table_slot_idx1(u, u->slots[4]), (uint32_t)(b - u->flows) + 1);
    cr_assert_eq(flow_table_slot_idx1(u, u->slots[5]), (uint32_t)(c - u->flows) + 1);
    check_invariants(u);
    flow_table_destroy(u);
    flow_table_destroy(t);
}

enum hash_mode { HASH_REAL, HASH_CLUSTERED, HASH_FEW };

static uint32_t hash_for(enum hash_mode m, uint32_t i, const struct flow_key *k,
                         const struct flow_table *t)
{
    switch (m) {
    case HASH_REAL:
        return flow_key_hash(k);
    case HASH_CLUSTERED:
        /* Homes crowd the last slots and wrap; salts differ so hashes rarely match. */
        return hash_at(t, (t->nslots - 3 + i % 7) % t->nslots, i * 2654435761u);
    default:
        /* Only 5 distinct full hashes: key comparison decides. */
        return 0x1234500u + (i % 5) * 3;
    }
}

/* Random insert/remove/lookup against a reference map of key -> flow pointer. */
static void stress(enum hash_mode mode, uint32_t cap, uint32_t nkeys, uint32_t ops, uint32_t seed)
{
    struct flow_table *t = flow_table_create(cap);
    struct flow_key *keys = calloc(nkeys, sizeof(*keys));
    uint32_t *hash = calloc(nkeys, sizeof(*hash));
    struct flow **ref = calloc(nkeys, sizeof(*ref));
    uint32_t present = 0, inserts = 0, removes = 0, refusals = 0;
    uint32_t x = seed;

    cr_assert(t && keys && hash && ref);
    for (uint32_t i = 0; i < nkeys; i++) {
        key_n(i, &keys[i]);
        hash[i] = hash_for(mode, i, &keys[i], t);
    }
    for (uint32_t op = 0; op < ops; op++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        uint32_t i = x % nkeys;
        uint32_t what = (x >> 20) % 8;
        struct flow *got = flow_table_lookup(t, &keys[i], hash[i]);
        cr_assert_eq(got, ref[i], "op %u: lookup of key %u: %p, want %p", op, i, (void *)got,
                     (void *)ref[i]);
        if (ref[i] && what < 3) {
            cr_assert_eq(ref[i]->last_ts, (uint64_t)i, "op %u: flow of key %u overwritten", op, i);
            flow_table_remove(t, ref[i]);
            ref[i] = NULL;
            present--;
            removes++;
        } else if (!ref[i] && what < 7) {
            struct flow *f = flow_table_insert(t, &keys[i], hash[i]);
            if (present == cap) {
                cr_assert_null(f, "op %u: insert into a full table", op);
                refusals++;
            } else {
                cr_assert_not_null(f, "op %u: insert with %u of %u used", op, present, cap);
                f->last_ts = i; /* a mark to detect entries handed out twice */
                ref[i] = f;
                present++;
                inserts++;
            }
        }
        cr_assert_eq(flow_table_used(t), present);
        if (op % 997 == 0 || op + 1 == ops) {
            check_invariants(t);
            for (uint32_t j = 0; j < nkeys; j++)
                cr_assert_eq(flow_table_lookup(t, &keys[j], hash[j]), ref[j],
                             "op %u: full check, key %u", op, j);
        }
    }
    /* The run must have exercised all paths. */
    cr_assert(inserts > ops / 10 && removes > ops / 10, "inserts %u removes %u", inserts, removes);
    if (nkeys > cap)
        cr_assert(refusals > 0, "the table never filled up");
    free(keys);
    free(hash);
    free(ref);
    flow_table_destroy(t);
}

Test(flow_table, stress_real_hash)
{
    stress(HASH_REAL, 64, 100, 100000, 1);
}

Test(flow_table, stress_clustered_hash)
{
    stress(HASH_CLUSTERED, 64, 100, 100000, 2);
}

Test(flow_table, stress_few_hashes)
{
    stress(HASH_FEW, 32, 48, 100000, 3);
}

Test(flow_table, stress_large_sparse)
{
    stress(HASH_REAL, 4096, 6000, 100000, 4);
}

/* Entries are handed out most recently freed first, then in array order (the order of the
 * former free stack): ageing and flush visit them in that order. */
Test(flow_table, allocation_order)
{
    struct flow_table *t = flow_table_create(8);
    struct flow *f[8];
    struct flow_key k;

    for (uint32_t i = 0; i < 4; i++) {
        key_n(i, &k);
        f[i] = flow_table_insert(t, &k, flow_key_hash(&k));
        cr_assert_eq(f[i], &t->flows[i]);
    }
    flow_table_remove(t, f[1]);
    flow_table_remove(t, f[3]);
    check_invariants(t);
    static const uint32_t want[] = {3, 1, 4, 5, 6, 7};
    for (uint32_t i = 0; i < 6; i++) {
        key_n(10 + i, &k);
        struct flow *g = flow_table_insert(t, &k, flow_key_hash(&k));
        cr_assert_eq(g, &t->flows[want[i]], "insert %u got entry %ld", i, (long)(g - t->flows));
        check_invariants(t);
    }
    key_n(20, &k);
    cr_assert_null(flow_table_insert(t, &k, flow_key_hash(&k)));
    flow_table_destroy(t);
}

Test(flow_table, iteration_sees_live_flows)
{
    struct flow_table *t = flow_table_create(20);
    struct flow *f[20];
    struct flow_key k;

    for (uint32_t i = 0; i < 20; i++) {
        key_n(i, &k);
        f[i] = flow_table_insert(t, &k, flow_key_hash(&k));
    }
    for (uint32_t i = 0; i < 20; i += 3)
        flow_table_remove(t, f[i]);
    uint32_t seen = 0;
    for (uint32_t i = 0; i < t->capacity; i++) {
        struct flow *g = flow_table_at(t, i);
        if (!g)
            continue;
        seen++;
        flow_table_key(t, g, &k);
        cr_assert_eq(flow_table_lookup(t, &k, g->hash), g);
    }
    cr_assert_eq(seen, flow_table_used(t));
    cr_assert_eq(seen, 13u);
    flow_table_destroy(t);
}

/* IPv6 keys keep their addresses in the table's pool: a full pool refuses IPv6 flows as a full
 * table would, IPv4 flows still fit, and a removed flow's pair is reused. */
Test(flow_table, ipv6_pool)
{
    struct flow_table *t = flow_table_create_v6(8, 2);
    struct pkt_info p;
    struct flow_key k6[3], k4, got;
    int d;

    cr_assert_not_null(t);
    cr_assert_eq(t->v6cap, 2u);
    cr_assert_eq(flow_table_v6_default(1000), 250u);
    cr_assert_eq(flow_table_v6_default(100), 64u);
    cr_assert_eq(flow_table_v6_default(10), 10u);
    cr_assert_eq(flow_table_mem_bytes_v6(1000, 2) + 248 * sizeof(struct flow_v6pair),
                 flow_table_mem_bytes(1000));
    for (int i = 0; i < 3; i++) {
        mk_info(&p, "2001:db8::1", (uint16_t)(40000 + i), "2001:db8::2", 443);
        flow_key_make(&p, &k6[i], &d);
    }
    mk_info(&p, "10.0.0.1", 40000, "10.0.0.2", 443);
    flow_key_make(&p, &k4, &d);
    struct flow *a = flow_table_insert(t, &k6[0], flow_key_hash(&k6[0]));
    struct flow *b = flow_table_insert(t, &k6[1], flow_key_hash(&k6[1]));
    cr_assert(a && b && a->key_v6 && b->key_v6 && a->key.a != b->key.a);
    cr_assert(flow_table_v6_full(t));
    cr_assert_null(flow_table_insert(t, &k6[2], flow_key_hash(&k6[2])), "no IPv6 pair left");
    struct flow *c = flow_table_insert(t, &k4, flow_key_hash(&k4));
    cr_assert(c && !c->key_v6, "IPv4 flows do not need the pool");
    flow_table_key(t, b, &got);
    cr_assert(flow_key_eq(&got, &k6[1]));
    flow_table_key(t, c, &got);
    cr_assert(flow_key_eq(&got, &k4));
    /* Same hash and ports, other addresses: the pool's addresses decide. */
    struct flow_key other = k6[0];
    other.hi_addr[15] ^= 1;
    cr_assert_null(flow_table_lookup(t, &other, flow_key_hash(&k6[0])));
    cr_assert_eq(flow_table_lookup(t, &k6[0], flow_key_hash(&k6[0])), a);
    flow_table_remove(t, a);
    cr_assert_not(flow_table_v6_full(t));
    struct flow *e = flow_table_insert(t, &k6[2], flow_key_hash(&k6[2]));
    cr_assert_not_null(e, "the removed flow's pair is reused");
    cr_assert_eq(flow_table_lookup(t, &k6[2], flow_key_hash(&k6[2])), e);
    cr_assert_eq(flow_table_lookup(t, &k6[1], flow_key_hash(&k6[1])), b);
    cr_assert_null(flow_table_lookup(t, &k6[0], flow_key_hash(&k6[0])));
    check_invariants(t);
    flow_table_destroy(t);
}

/* ---------------------------------------------------------------- hash quality */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Keys of one structured family: addresses that differ in their last octets (as real
 * subnets do), ports that count up, IPv6 interface ids. */
static void family_key(int fam, uint32_t i, struct flow_key *k)
{
    struct pkt_info p;
    int d;
    memset(&p, 0, sizeof(p));
    if (fam < 3) {
        p.src[10] = p.src[11] = p.dst[10] = p.dst[11] = 0xff;
        uint8_t c[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        uint8_t s[4] = {172, 16, (uint8_t)(i % 64), (uint8_t)(1 + i % 200)};
        if (fam == 1) { /* many clients of one server */
            c[1] = 0, c[2] = (uint8_t)(i >> 14), c[3] = (uint8_t)(i >> 6);
            s[0] = 192, s[1] = 168, s[2] = 1, s[3] = 10;
        }
        memcpy(p.src + 12, c, 4);
        memcpy(p.dst + 12, s, 4);
        p.sport = fam == 1 ? (uint16_t)(32768 + (i & 63) * 400 + i % 7) : 1024;
        p.dport = 443;
        if (fam == 2) { /* one client scanning ports */
            memcpy(p.src + 12, "\x0a\x01\x02\x03", 4);
            p.dst[15] = (uint8_t)(4 + i / 60000);
            p.sport = (uint16_t)(40000 + i % 20000);
            p.dport = (uint16_t)(1 + i % 60000);
        }
    } else { /* IPv6 clients 2001:db8::i of one server */
        p.src[0] = p.dst[0] = 0x20, p.src[1] = p.dst[1] = 0x01;
        p.src[2] = p.dst[2] = 0x0d, p.src[3] = p.dst[3] = 0xb8;
        p.src[13] = (uint8_t)(i >> 16), p.src[14] = (uint8_t)(i >> 8), p.src[15] = (uint8_t)i;
        p.dst[15] = 1;
        p.sport = 50000;
        p.dport = 443;
    }
    flow_key_make(&p, k, &d);
}

/* 100,000 distinct keys give about 1.2 equal pairs of 32-bit hashes when the hash is as good
 * as random; a hash that only carries upward (products of the key's words, summed) gave
 * 37,951 on the first family, and 4x longer probes in the table. */
Test(flow_table, clear_empties_the_table_and_every_pool)
{
    enum { CAP = 64 };
    struct flow_table *t = flow_table_create_v6(CAP, 4);
    struct flow_key k[CAP], k6[4];
    struct pkt_info p;
    int d;

    cr_assert_not_null(t);
    for (int round = 0; round < 2; round++) {
        /* Full: every entry and every IPv6 pair, some removed and taken again. */
        for (uint32_t i = 0; i < CAP - 4; i++) {
            key_n(i + (uint32_t)round * 1000, &k[i]);
            cr_assert_not_null(flow_table_insert(t, &k[i], flow_key_hash(&k[i])));
        }
        for (int i = 0; i < 4; i++) {
            mk_info(&p, "2001:db8::1", (uint16_t)(40000 + i + round * 10), "2001:db8::2", 443);
            flow_key_make(&p, &k6[i], &d);
            cr_assert_not_null(flow_table_insert(t, &k6[i], flow_key_hash(&k6[i])));
        }
        flow_table_remove(t, flow_table_lookup(t, &k[3], flow_key_hash(&k[3])));
        flow_table_remove(t, flow_table_lookup(t, &k6[1], flow_key_hash(&k6[1])));
        cr_assert_not_null(flow_table_insert(t, &k[3], flow_key_hash(&k[3])));
        cr_assert_not_null(flow_table_insert(t, &k6[1], flow_key_hash(&k6[1])));
        cr_assert_eq(flow_table_used(t), (uint32_t)CAP);
        cr_assert(flow_table_v6_full(t));

        flow_table_clear(t);
        cr_assert_eq(flow_table_used(t), 0u);
        cr_assert(!flow_table_v6_full(t));
        for (uint32_t i = 0; i < t->nslots; i++)
            cr_assert_eq(t->slots[i], 0u, "slot %u still names an entry", i);
        for (uint32_t i = 0; i < CAP; i++)
            cr_assert_null(flow_table_at(t, i), "entry %u still live", i);
        for (uint32_t i = 0; i < CAP - 4; i++)
            cr_assert_null(flow_table_lookup(t, &k[i], flow_key_hash(&k[i])));
        for (int i = 0; i < 4; i++)
            cr_assert_null(flow_table_lookup(t, &k6[i], flow_key_hash(&k6[i])));
        /* Handed out from the start again, as a new table: the second round fills it. */
        key_n(99999, &k[0]);
        struct flow *f = flow_table_insert(t, &k[0], flow_key_hash(&k[0]));
        cr_assert_eq(f, &t->flows[0]);
        flow_table_remove(t, f);
    }
    flow_table_destroy(t);
}

Test(flow_table, hash_spreads_structured_keys)
{
    enum { N = 100000 };
    uint32_t *h = malloc(N * sizeof(*h));
    cr_assert_not_null(h);
    /* The built-in constants (replays), then keys such as a live sensor draws. */
    for (int key = 0; key < 3; key++) {
        if (key)
            flow_hash_seed(0x9e3779b97f4a7c15ULL * (uint64_t)key);
        else
            flow_hash_unseed();
        for (int fam = 0; fam < 4; fam++) {
            for (uint32_t i = 0; i < N; i++) {
                struct flow_key k;
                family_key(fam, i, &k);
                h[i] = flow_key_hash(&k);
            }
            qsort(h, N, sizeof(*h), cmp_u32);
            uint32_t equal = 0;
            for (uint32_t i = 1; i < N; i++)
                equal += h[i] == h[i - 1];
            cr_assert_leq(equal, 10u, "key %d, family %d: %u equal hashes among %u keys", key, fam,
                          equal, N);
        }
    }
    flow_hash_unseed();
    free(h);
}

/* A software distributor's worker choice must leave each worker's flows spread over all of
 * its table's home slots: choosing by the bits multiply-shift uses put a 2-worker replay's
 * flows in half of each table, one probe cluster, and throughput collapsed. */
Test(flow_table, worker_choice_spreads_home_slots)
{
    enum { N = 200000, PARTS = 8 };
    struct flow_table *t = flow_table_create(1u << 16);
    cr_assert_not_null(t);
    for (unsigned n = 2; n <= 4; n++) {
        uint32_t per_worker[4] = {0}, part[4][PARTS] = {{0}};
        for (uint32_t i = 0; i < N; i++) {
            struct flow_key k;
            key_n(i, &k);
            uint32_t h = flow_key_hash(&k);
            unsigned w = flow_worker_of(h, n);
            cr_assert_lt(w, n);
            per_worker[w]++;
            part[w][(uint64_t)flow_table_home(t, h) * PARTS / t->nslots]++;
        }
        for (unsigned w = 0; w < n; w++) {
            cr_assert(per_worker[w] > N / n * 9 / 10 && per_worker[w] < N / n * 11 / 10,
                      "%u workers: worker %u got %u of %u flows", n, w, per_worker[w], N);
            for (unsigned s = 0; s < PARTS; s++)
                cr_assert(part[w][s] > per_worker[w] / PARTS * 8 / 10 &&
                              part[w][s] < per_worker[w] / PARTS * 12 / 10,
                          "%u workers: worker %u has %u of its %u flows' home slots in "
                          "eighth %u of the table",
                          n, w, part[w][s], per_worker[w], s);
        }
    }
    flow_table_destroy(t);
}

/* Longest run of occupied slots (a probe cluster) after inserting keys[0..n). */
static uint32_t longest_cluster(const struct flow_key *keys, uint32_t n)
{
    struct flow_table *t = flow_table_create(1u << 14);
    cr_assert_not_null(t);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_not_null(flow_table_insert(t, &keys[i], flow_key_hash(&keys[i])));
    uint32_t best = 0, run = 0;
    for (uint32_t j = 0; j < 2 * t->nslots; j++) { /* twice round: a run may wrap */
        run = t->slots[j % t->nslots] ? run + 1 : 0;
        best = run > best ? run : best;
    }
    flow_table_destroy(t);
    return best; /* n < nslots: some slot is empty, so no run goes all the way round */
}

/* Hash flooding: with public constants, tuples whose hashes share the top bits are found by
 * plain search (here one key in 2^12), and they land on neighbouring home slots in a table
 * of any size, one cluster that every lookup walks. Seeded, the same tuples spread. */
Test(flow_table, seeded_hash_breaks_crafted_collisions)
{
    enum { N = 256 };
    struct flow_key *keys = malloc(N * sizeof(*keys));
    cr_assert_not_null(keys);
    flow_hash_unseed();
    uint32_t n = 0;
    for (uint32_t i = 0; i < (1u << 24) && n < N; i++) {
        key_n(i, &keys[n]);
        if (flow_key_hash(&keys[n]) >> 20 == 0x5a5) /* a 2^-12 range of hashes */
            n++;
    }
    cr_assert_eq(n, (uint32_t)N, "found only %u crafted keys", n);
    uint32_t crafted = longest_cluster(keys, N);
    cr_assert_geq(crafted, (uint32_t)N, "the crafted keys should form one cluster: %u", crafted);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        flow_hash_seed(seed);
        uint32_t seeded = longest_cluster(keys, N);
        cr_assert_leq(seeded, 12u, "seed %lu: cluster of %u slots", (unsigned long)seed, seeded);
    }
    flow_hash_unseed();
    free(keys);
}

/* h[i] = the hash of key_n(i), i < n, under the key in force. */
static void hash_keys(uint32_t *h, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct flow_key k;
        key_n(i, &k);
        h[i] = flow_key_hash(&k);
    }
}

/* The seed is the key: equal seeds equal hashes (reproducible runs), different seeds unrelated
 * hashes, both directions of a connection one hash under any seed, and unseeding restores the
 * built-in constants. */
Test(flow_table, hash_seed_is_the_key)
{
    enum { N = 1000 };
    static uint32_t h[3][N];
    struct pkt_info p, r;
    struct flow_key kp, kr;
    int d;
    flow_hash_unseed();
    hash_keys(h[0], N);
    for (int s = 1; s <= 2; s++) {
        flow_hash_seed(0x1234);
        hash_keys(h[s], N);
    }
    uint32_t same_builtin = 0;
    for (uint32_t i = 0; i < N; i++) {
        cr_assert_eq(h[1][i], h[2][i], "key %u: one seed, two hashes", i);
        same_builtin += h[0][i] == h[1][i];
    }
    cr_assert_leq(same_builtin, 1u, "%u of %u hashes ignore the seed", same_builtin, N);
    flow_hash_seed(0x1235);
    struct flow_key k0;
    key_n(0, &k0);
    cr_assert_neq(flow_key_hash(&k0), h[1][0], "neighbouring seeds gave one hash");
    mk_info(&p, "2001:db8::1", 40000, "2001:db8::2", 443);
    reverse(&p, &r);
    flow_key_make(&p, &kp, &d);
    flow_key_make(&r, &kr, &d);
    cr_assert_eq(flow_key_hash(&kp), flow_key_hash(&kr), "seeded: directions differ");
    flow_hash_unseed();
    cr_assert_eq(flow_key_hash(&k0), h[0][0], "unseeding does not restore the constants");
}
