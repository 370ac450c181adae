/*
 * The flow table against DPDK's rte_hash on the same keys: what reaching a flow's state
 * costs per lookup, what a connection's removal and insertion cost, and the bytes per flow.
 *
 * usage: bench_table KEYS [ROUNDS] [-- EAL ARGS]
 *        bench_table --eal-mb KEYS
 *   KEYS 1000..16000000, ROUNDS 1..100 (default 4); EAL arguments default to --no-huge -m
 *   sized for the table (scripts/bench passes hugepage arguments instead, sized by what
 *   --eal-mb prints: the DPDK memory in MB a run of KEYS needs).
 *
 * Both tables hold KEYS canonical IPv4 keys (struct flow_key, 40 bytes) in room for 2 x KEYS,
 * as scripts/bench sizes the engine's table. Each key is hashed once by flow_key_hash() and
 * both tables get that hash (rte_hash_*_with_hash*): the hash function is not what is
 * compared. A flow's state is a 104-byte struct flow: the flow table's own entry, and for
 * rte_hash an entry of an array of them named by the key's data pointer, as a tracker built
 * on rte_hash would keep it.
 *
 * Lookups: ROUNDS passes over the keys in a scattered order, 32 at a time, each ending with a
 * read of the state (its index, stored at insertion, is checked):
 *   table     the engine's stages: every home slot prefetched, then each likely entry (the
 *             first slot from home whose tag matches) prefetched, then flow_table_lookup_hint();
 *   rte_hash  rte_hash_lookup_with_hash_bulk_data(), which prefetches its buckets itself, then
 *             every state prefetched.
 * Churn: every key removed and inserted again, one at a time, in another scattered order
 * (a connection's end and a new one's start).
 *
 * Prints one JSON object: cycles (TSC) per lookup and per churn of each, bytes per flow of
 * each (the flow table's index, entries and IPv6 pool; rte_hash's heap allocation plus the
 * state array), and lookups_ok. Exit status 1 when a lookup missed or found another state.
 */
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_malloc.h>

#include "bench_ticks.h"
#include "bigmem.h"
#include "flow_table.h"

#define BURST 32

/* Key i: 10.x.y.z:(1024 + i % 60000) <-> 172.16.a.b:443, canonical (the lower address first:
 * 10/8 sorts below 172.16/12). The addresses alone tell keys apart. */
static void make_key(uint32_t i, struct flow_key *k)
{
    const uint8_t lo[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    const uint8_t hi[4] = {172, 16, (uint8_t)(i % 64), (uint8_t)(1 + i % 200)};
    struct flow_ckey c = {.lo_port = (uint16_t)(1024 + i % 60000), .hi_port = 443};
    memcpy(&c.a, lo, 4);
    memcpy(&c.b, hi, 4);
    flow_ckey_expand_v4(&c, k);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* A scattered order of 0..n-1: a stride near n times the golden ratio, coprime with n. */
static void scatter(uint32_t *order, uint32_t n, uint64_t seed)
{
    uint64_t stride = (uint64_t)(n * 0.6180339887) + 1;
    while (gcd(stride, n) != 1)
        stride++;
    for (uint32_t i = 0; i < n; i++)
        order[i] = (uint32_t)(((uint64_t)i * stride + seed) % n);
}

struct keys {
    uint32_t n;
    struct flow_key *key;
    uint32_t *hash;
    uint32_t *order; /* lookups */
    uint32_t *churn; /* removals and insertions */
};

/* One round of lookups through the flow table; returns the states that were not key i's. */
static uint64_t table_round(struct flow_table *t, const struct keys *ks)
{
    uint64_t bad = 0;
    for (uint32_t b = 0; b < ks->n; b += BURST) {
        uint32_t m = ks->n - b < BURST ? ks->n - b : BURST;
        const uint32_t *idx = ks->order + b;
        const struct flow *hint[BURST];
        for (uint32_t i = 0; i < m; i++)
            __builtin_prefetch(&t->slots[flow_table_home(t, ks->hash[idx[i]])]);
        for (uint32_t i = 0; i < m; i++) {
            hint[i] = flow_table_likely_entry(t, ks->hash[idx[i]]);
            if (hint[i])
                flow_prefetch(hint[i]);
        }
        for (uint32_t i = 0; i < m; i++) {
            const struct flow_key *k = &ks->key[idx[i]];
            struct flow_ckey c;
            int v6 = flow_ckey_make(k, &c);
            const struct flow *f = flow_table_lookup_hint(t, k, &c, v6, ks->hash[idx[i]], hint[i]);
            bad += !f || f->first_ts != idx[i];
        }
    }
    return bad;
}

static uint64_t rte_round(struct rte_hash *h, const struct keys *ks)
{
    uint64_t bad = 0;
    for (uint32_t b = 0; b < ks->n; b += BURST) {
        uint32_t m = ks->n - b < BURST ? ks->n - b : BURST;
        const uint32_t *idx = ks->order + b;
        const void *kp[BURST];
        hash_sig_t sig[BURST];
        void *data[BURST];
        uint64_t hit = 0;
        for (uint32_t i = 0; i < m; i++) {
            kp[i] = &ks->key[idx[i]];
            sig[i] = ks->hash[idx[i]];
        }
        rte_hash_lookup_with_hash_bulk_data(h, kp, sig, m, &hit, data);
        for (uint32_t i = 0; i < m; i++)
            if (hit >> i & 1)
                flow_prefetch(data[i]);
        for (uint32_t i = 0; i < m; i++) {
            const struct flow *f = (hit >> i & 1) ? data[i] : NULL;
            bad += !f || f->first_ts != idx[i];
        }
    }
    return bad;
}

static uint64_t table_churn(struct flow_table *t, const struct keys *ks, uint64_t *bad)
{
    uint64_t t0 = ticks();
    for (uint32_t r = 0; r < ks->n; r++) {
        uint32_t i = ks->churn[r];
        struct flow *f = flow_table_lookup(t, &ks->key[i], ks->hash[i]);
        if (!f) {
            (*bad)++;
            continue;
        }
        flow_table_remove(t, f);
        f = flow_table_insert(t, &ks->key[i], ks->hash[i]);
        if (f)
            f->first_ts = i;
        else
            (*bad)++;
    }
    return ticks() - t0;
}

static uint64_t rte_churn(struct rte_hash *h, struct flow *state, const struct keys *ks,
                          uint64_t *bad)
{
    uint64_t t0 = ticks();
    for (uint32_t r = 0; r < ks->n; r++) {
        uint32_t i = ks->churn[r];
        if (rte_hash_del_key_with_hash(h, &ks->key[i], ks->hash[i]) < 0 ||
            rte_hash_add_key_with_hash_data(h, &ks->key[i], ks->hash[i], &state[i]) < 0)
            (*bad)++;
    }
    return ticks() - t0;
}

/* DPDK memory for a run with room for cap keys, in MB: rte_hash takes ~200 bytes per entry
 * (its buckets, key store and free rings), plus 128 MB for the EAL itself. scripts/bench
 * reserves hugepages by it (--eal-mb), so this is the one place the estimate lives. */
static uint64_t eal_mb(uint32_t cap)
{
    return (uint64_t)cap * 200 / 1048576 + 128;
}

static int parse_args(int argc, char **argv, uint32_t *n, uint32_t *rounds, int *eal_at)
{
    *eal_at = argc;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            *eal_at = i + 1;
            argc = i;
            break;
        }
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_table KEYS [ROUNDS] [-- EAL ARGS]\n"
                        "       bench_table --eal-mb KEYS\n");
        return -1;
    }
    *n = (uint32_t)strtoul(argv[1], NULL, 10);
    *rounds = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 4;
    if (*n < 1000 || *n > 16000000 || *rounds < 1 || *rounds > 100) {
        fprintf(stderr, "bench_table: KEYS 1000..16000000, ROUNDS 1..100\n");
        return -1;
    }
    return 0;
}

static char runtime_dir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path); /* best effort: go on with the rest */
    return 0;
}

/* EAL's files go to the caller's RUNTIME_DIRECTORY, or to a private one removed at the end. */
static int runtime_dir_setup(void)
{
    if (getenv("RUNTIME_DIRECTORY"))
        return 0;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(runtime_dir, sizeof(runtime_dir), "%s/bench_table.XXXXXX", tmp);
    if (!mkdtemp(runtime_dir)) {
        runtime_dir[0] = '\0';
        return -1;
    }
    return setenv("RUNTIME_DIRECTORY", runtime_dir, 1);
}

/* EAL: the caller's arguments, or --no-huge with eal_mb() of memory. */
static int start_eal(int argc, char **argv, int eal_at, uint32_t cap)
{
    char prefix[64], mem[32];
    snprintf(prefix, sizeof(prefix), "--file-prefix=bench_table_%d", (int)getpid());
    snprintf(mem, sizeof(mem), "-m%" PRIu64, eal_mb(cap));
    char *def[] = {argv[0],          "--no-huge", "--no-pci", "--no-shconf",
                   "--no-telemetry", prefix,      mem,        "--log-level=lib.eal:error"};
    char *args[64];
    int n = 0;
    if (eal_at < argc) {
        args[n++] = argv[0];
        for (int i = eal_at; i < argc && n < 62; i++)
            args[n++] = argv[i];
        args[n++] = prefix;
    } else {
        for (size_t i = 0; i < sizeof(def) / sizeof(def[0]); i++)
            args[n++] = def[i];
    }
    return rte_eal_init(n, args);
}

static size_t heap_bytes(void)
{
    struct rte_malloc_socket_stats st;
    size_t sum = 0;
    for (int s = 0; s < RTE_MAX_NUMA_NODES; s++)
        if (rte_malloc_get_socket_stats(s, &st) == 0)
            sum += st.heap_allocsz_bytes;
    return sum;
}

int main(int argc, char **argv)
{
    uint32_t n, rounds;
    int eal_at;
    if (argc == 3 && strcmp(argv[1], "--eal-mb") == 0) {
        char *end;
        unsigned long keys = strtoul(argv[2], &end, 10);
        if (*end || keys < 1000 || keys > 16000000) {
            fprintf(stderr, "bench_table: --eal-mb KEYS, KEYS 1000..16000000, not '%s'\n", argv[2]);
            return 2;
        }
        printf("%" PRIu64 "\n", eal_mb(2 * (uint32_t)keys));
        return 0;
    }
    if (parse_args(argc, argv, &n, &rounds, &eal_at) < 0)
        return 2;
    const uint32_t cap = 2 * n;
    if (runtime_dir_setup() < 0) {
        fprintf(stderr, "bench_table: cannot create a runtime directory\n");
        return 1;
    }
    if (start_eal(argc, argv, eal_at, cap) < 0) {
        fprintf(stderr, "bench_table: rte_eal_init: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    struct keys ks = {.n = n,
                      .key = big_zalloc((size_t)n * sizeof(struct flow_key)),
                      .hash = big_zalloc((size_t)n * 4),
                      .order = big_zalloc((size_t)n * 4),
                      .churn = big_zalloc((size_t)n * 4)};
    struct flow *state = big_zalloc((size_t)cap * sizeof(struct flow));
    struct flow_table *t = flow_table_create(cap);
    size_t heap0 = heap_bytes();
    struct rte_hash_parameters hp = {
        .name = "bench_table", .entries = cap, .key_len = sizeof(struct flow_key), .socket_id = 0};
    struct rte_hash *h = rte_hash_create(&hp);
    uint64_t bad = 0;
    if (!ks.key || !ks.hash || !ks.order || !ks.churn || !state || !t || !h) {
        fprintf(stderr, "bench_table: cannot allocate the tables for %u keys: %s\n", n,
                h ? "out of memory" : rte_strerror(rte_errno));
        bad = 1;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        make_key(i, &ks.key[i]);
        ks.hash[i] = flow_key_hash(&ks.key[i]);
        struct flow *f = flow_table_insert(t, &ks.key[i], ks.hash[i]);
        if (f)
            f->first_ts = i;
        state[i].first_ts = i;
        bad += !f || rte_hash_add_key_with_hash_data(h, &ks.key[i], ks.hash[i], &state[i]) < 0;
    }
    size_t rte_bytes = heap_bytes() - heap0 + (size_t)cap * sizeof(struct flow);
    scatter(ks.order, n, 7919);
    scatter(ks.churn, n, 104729);

    /* Alternate the two, round by round, so that both see the same machine. */
    uint64_t tt = 0, tr = 0;
    for (uint32_t r = 0; r < rounds; r++) {
        uint64_t t0 = ticks();
        bad += table_round(t, &ks);
        uint64_t t1 = ticks();
        bad += rte_round(h, &ks);
        tr += ticks() - t1;
        tt += t1 - t0;
    }
    uint64_t ct = table_churn(t, &ks, &bad), cr = rte_churn(h, state, &ks, &bad);
    bad += table_round(t, &ks) + rte_round(h, &ks); /* both still find every key */

    double lookups = (double)n * rounds;
    printf("{\"keys\":%u,\"capacity\":%u,\"rounds\":%u,\"table_cycles_per_lookup\":%.1f,"
           "\"rte_hash_cycles_per_lookup\":%.1f,\"table_cycles_per_churn\":%.1f,"
           "\"rte_hash_cycles_per_churn\":%.1f,\"table_bytes_per_flow\":%.1f,"
           "\"rte_hash_bytes_per_flow\":%.1f,\"lookups_ok\":%s}\n",
           n, cap, rounds, (double)tt / lookups, (double)tr / lookups, (double)ct / n,
           (double)cr / n, (double)flow_table_mem_bytes(cap) / cap, (double)rte_bytes / cap,
           bad ? "false" : "true");
out:
    rte_hash_free(h);
    flow_table_destroy(t);
    big_free(state, (size_t)cap * sizeof(struct flow));
    big_free(ks.key, (size_t)n * sizeof(struct flow_key));
    big_free(ks.hash, (size_t)n * 4);
    big_free(ks.order, (size_t)n * 4);
    big_free(ks.churn, (size_t)n * 4);
    rte_eal_cleanup();
    if (runtime_dir[0])
        nftw(runtime_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return bad ? 1 : 0;
}
