/*
 * Hash flooding: what crafted tuples cost the engine with the flow hash's public constants,
 * and with a random key (flow_hash_seed(), what the live sensor does).
 *
 * usage: bench_hashflood [SYNS [PCAP]]   (default 20000)
 *
 * With PCAP, the crafted SYNs are also written there as a capture (each twice, 1 µs apart),
 * to replay through rstscope: a replay's key comes from the capture's bytes, so that even a
 * capture of this attack replays at normal speed.
 *
 * An outsider who knows the constants (they are in our source) searches client tuples towards
 * one server whose hashes share their top 10 bits: one tuple in 1024, so a laptop finds tens of
 * thousands in a second, as this program does. Whatever the table's size, their home slots
 * are neighbours: one probe cluster that every new tuple's insert and every lookup walks.
 * The engine (default 1M-flow table) receives each tuple's SYN twice (a retransmission is a
 * lookup that hits), three ways:
 *   builtin    the crafted tuples, public constants (an unkeyed sensor under attack);
 *   seeded     the same tuples, the hash keyed with a random seed;
 *   uncrafted  as many ordinary tuples from the same addresses, public constants (the
 *              baseline).
 * Prints one JSON object: cycles per packet of each (TSC), and the first two over the third.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "bench_frame.h"
#include "bench_ticks.h"
#include "engine.h"

#define FRAME     54    /* Ethernet + IPv4 + TCP, no options */
#define TOP_BITS  10    /* the crafted hashes share this many top bits */
#define TOP_VALUE 0x2a5 /* any value: the attacker's choice */

/* Client tuple number i: 10.x.y.z, port 1024 + i % 60000, towards 192.0.2.80:80. */
static void tuple(uint32_t i, uint8_t cip[4], uint16_t *cport)
{
    uint32_t a = i / 60000;
    cip[0] = 10;
    cip[1] = (uint8_t)(a >> 16);
    cip[2] = (uint8_t)(a >> 8);
    cip[3] = (uint8_t)a;
    *cport = (uint16_t)(1024 + i % 60000);
}

static void syn_frame(uint8_t *f, uint32_t i)
{
    uint8_t cip[4];
    uint16_t cport;
    tuple(i, cip, &cport);
    struct bench_seg g = {
        .src = cip,
        .dst = (const uint8_t *)"\xc0\x00\x02\x50",
        .sport = cport,
        .dport = 80,
        .seq = i,      /* the ISN: any */
        .flags = 0x02, /* SYN */
        .ttl = 64,
        .win = 0xff00,
    };
    _Static_assert(FRAME == 14 + 20 + 20, "a SYN without options");
    bench_tcp_frame(f, &g);
}

/* The hash the engine will give tuple i's SYN, through the parser and key as in the engine. */
static uint32_t tuple_hash(uint32_t i)
{
    uint8_t f[FRAME];
    struct pkt_info p;
    struct flow_key k;
    int d;
    syn_frame(f, i);
    if (pkt_parse(f, FRAME, &p) != PKT_TCP)
        abort();
    flow_key_make(&p, &k, &d);
    return flow_key_hash(&k);
}

/* Is tuple i one the attacker keeps: its hash in the chosen range of the public constants? */
static int is_crafted(uint32_t i)
{
    return tuple_hash(i) >> (32 - TOP_BITS) == TOP_VALUE;
}

/* Cycles per packet of a fresh default engine given every tuple's SYN, twice. */
static double run(const uint32_t *ids, uint32_t n, uint64_t *created)
{
    struct engine_config cfg;
    struct engine_stats st;
    engine_config_defaults(&cfg);
    memset(&st, 0, sizeof(st));
    struct engine *e = engine_create(&cfg, &st, NULL, NULL, 0);
    if (!e) {
        fprintf(stderr, "bench_hashflood: cannot allocate the engine\n");
        exit(1);
    }
    uint8_t buf[ENGINE_BURST][FRAME];
    const uint8_t *fp[ENGINE_BURST];
    uint32_t len[ENGINE_BURST];
    uint64_t ts[ENGINE_BURST], now = 1700000000ULL * 1000000, busy = 0, pk = 0;
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < n; i += ENGINE_BURST) {
            unsigned nb = n - i < ENGINE_BURST ? n - i : ENGINE_BURST;
            for (unsigned b = 0; b < nb; b++) {
                syn_frame(buf[b], ids[i + b]);
                fp[b] = buf[b];
                len[b] = FRAME;
                ts[b] = now++;
            }
            uint64_t t0 = ticks();
            engine_input_burst(e, fp, len, ts, NULL, nb);
            busy += ticks() - t0;
            pk += nb;
        }
    }
    *created = st.flows_created;
    engine_destroy(e);
    return (double)busy / (double)pk;
}

/* The crafted tuples' SYNs, each twice (as run() feeds them), as a classic pcap. */
static int write_pcap(const char *path, const uint32_t *ids, uint32_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint8_t ghdr[24];
    pcap_file_header(ghdr, 65535);
    fwrite(ghdr, sizeof(ghdr), 1, f);
    uint64_t us = 1700000000ULL * 1000000;
    for (int round = 0; round < 2; round++)
        for (uint32_t i = 0; i < n; i++, us++) {
            uint8_t frame[FRAME];
            uint8_t rec[16];
            pcap_record_header(rec, us, FRAME, FRAME);
            syn_frame(frame, ids[i]);
            fwrite(rec, sizeof(rec), 1, f);
            fwrite(frame, FRAME, 1, f);
        }
    return fclose(f);
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 20000;
    if (n < 100 || n > 200000) {
        fprintf(stderr, "usage: bench_hashflood [SYNS 100..200000 [PCAP]]\n");
        return 2;
    }
    uint32_t *crafted = malloc(n * sizeof(*crafted)), *plain = malloc(n * sizeof(*plain));
    if (!crafted || !plain)
        return 1;
    flow_hash_unseed();
    uint32_t found = 0, tried = 0;
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    for (; found < n && tried < UINT32_MAX; tried++)
        if (is_crafted(tried))
            crafted[found++] = tried;
    clock_gettime(CLOCK_MONOTONIC, &w1);
    /* Ordinary tuples from the same addresses (one host-cache entry each, as the crafted
     * ones have): spread over the searched range, skipping the crafted. */
    for (uint32_t i = 0, step = tried / n; i < n; i++) {
        plain[i] = i * step;
        while (is_crafted(plain[i]))
            plain[i]++;
    }

    if (argc > 2 && write_pcap(argv[2], crafted, n) < 0) {
        fprintf(stderr, "bench_hashflood: cannot write %s\n", argv[2]);
        return 1;
    }
    uint64_t c_builtin, c_plain, c_seeded;
    double builtin = run(crafted, n, &c_builtin);
    double uncrafted = run(plain, n, &c_plain);
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)ticks();
    flow_hash_seed(seed);
    double seeded = run(crafted, n, &c_seeded);
    flow_hash_unseed();
    int ok = c_builtin == n && c_plain == n && c_seeded == n;
    printf("{\"syns\":%u,\"search_tuples\":%u,\"search_seconds\":%.2f,"
           "\"cycles_per_packet_builtin\":%.1f,\"cycles_per_packet_seeded\":%.1f,"
           "\"cycles_per_packet_uncrafted\":%.1f,\"slowdown_builtin\":%.1f,"
           "\"slowdown_seeded\":%.2f,\"flows_ok\":%s}\n",
           n, tried, (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9,
           builtin, seeded, uncrafted, builtin / uncrafted, seeded / uncrafted,
           ok ? "true" : "false");
    free(crafted);
    free(plain);
    return ok ? 0 : 1;
}
