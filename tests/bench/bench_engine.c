/*
 * Engine-only benchmark: TSC cycles per packet spent in engine_input_burst() alone, with no
 * DPDK, no packet copy and no capture file, so that it scales to 10M concurrent flows (the
 * preloaded captures of scripts/bench need ~5 GB of mbufs per million flows).
 *
 * usage: bench_engine FLOWS [PASSES]
 *
 * Traffic: FLOWS IPv4 connections, written phase by phase like gen_bench.py (every
 * connection's SYN, then every SYN-ACK, ...), each phase in another scattered order, so all
 * FLOWS are in the table at once and consecutive packets hit unrelated entries. Endings by
 * connection number: clean FIN close (4 in 10), client abort, server abort, refused, RST after
 * FIN, stale connection (bare RST), no flow (a lone RST). Time advances 250 ms per phase.
 * Frames are built into a 32-frame burst between two timed calls: only the engine is timed.
 * Each pass uses new client ports, so every pass creates, resets and expires FLOWS flows.
 *
 * Prints one JSON object: flows, packets, cycles_per_packet (TSC), ns_per_packet,
 * bytes_per_flow (engine_mem_bytes() / capacity), and ground_truth_ok (per-cause counts).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static uint64_t ticks(void)
{
    return __rdtsc();
}
#else
static uint64_t ticks(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}
#endif

enum { FIN = 1, SYN = 2, RST = 4, PSH = 8, ACK = 16 };
enum kind { K_CLEAN, K_CLIENT_ABORT, K_SERVER_ABORT, K_REFUSED, K_AFTER_FIN, K_STALE, K_NO_FLOW };

/* One step: sender (1 = client), flags, seq and ack relative to the ISNs, payload length. */
struct step {
    uint8_t from_client, flags;
    uint32_t seq, ack; /* offsets: client side from ci, server side from si */
    uint16_t len;
};
#define REQ       300
#define RESP      1448
#define MAX_STEPS 11
/* seq/ack offsets: c = ci + x, s = si + x. A 0xffffffff ack means "no ACK number". */
static const struct step plans[][MAX_STEPS] = {
    [K_CLEAN] = {{1, SYN, 0, 0, 0},
                 {0, SYN | ACK, 0, 1, 0},
                 {1, ACK, 1, 1, 0},
                 {1, PSH | ACK, 1, 1, REQ},
                 {0, ACK, 1, 1 + REQ, RESP},
                 {1, ACK, 1 + REQ, 1 + RESP, 0},
                 {0, FIN | ACK, 1 + RESP, 1 + REQ, 0},
                 {1, FIN | ACK, 1 + REQ, 2 + RESP, 0},
                 {0, ACK, 2 + RESP, 2 + REQ, 0}},
    [K_CLIENT_ABORT] = {{1, SYN, 0, 0, 0},
                        {0, SYN | ACK, 0, 1, 0},
                        {1, ACK, 1, 1, 0},
                        {1, PSH | ACK, 1, 1, REQ},
                        {0, ACK, 1, 1 + REQ, RESP},
                        {1, ACK, 1 + REQ, 1 + RESP, 0},
                        {1, RST | ACK, 1 + REQ, 1 + RESP, 0}},
    [K_SERVER_ABORT] = {{1, SYN, 0, 0, 0},
                        {0, SYN | ACK, 0, 1, 0},
                        {1, ACK, 1, 1, 0},
                        {1, PSH | ACK, 1, 1, REQ},
                        {0, ACK, 1, 1 + REQ, RESP},
                        {1, ACK, 1 + REQ, 1 + RESP, 0},
                        {0, RST | ACK, 1 + RESP, 1 + REQ, 0}},
    [K_REFUSED] = {{1, SYN, 0, 0, 0}, {0, RST | ACK, 0xffffffff, 1, 0}},
    [K_AFTER_FIN] = {{1, SYN, 0, 0, 0},
                     {0, SYN | ACK, 0, 1, 0},
                     {1, ACK, 1, 1, 0},
                     {1, PSH | ACK, 1, 1, REQ},
                     {0, ACK, 1, 1 + REQ, RESP},
                     {1, ACK, 1 + REQ, 1 + RESP, 0},
                     {0, FIN | ACK, 1 + RESP, 1 + REQ, 0},
                     {1, RST | ACK, 1 + REQ, 2 + RESP, 0}},
    [K_STALE] = {{1, SYN, 0, 0, 0},
                 {0, SYN | ACK, 0, 1, 0},
                 {1, ACK, 1, 1, 0},
                 {1, PSH | ACK, 1, 1, REQ},
                 {0, ACK, 1, 1 + REQ, RESP},
                 {1, ACK, 1 + REQ, 1 + RESP, 0},
                 {0, RST, 1 + RESP, 0xffffffff, 0}},
    [K_NO_FLOW] = {{0, RST | ACK, 1, 1, 0}},
};
static const int plan_len[] = {9, 7, 7, 2, 8, 7, 1};
static const enum rst_cause cause_of[] = {CAUSE_MAX,     CAUSE_CLIENT_ABORT, CAUSE_SERVER_ABORT,
                                          CAUSE_REFUSED, CAUSE_AFTER_FIN,    CAUSE_STALE_CONNECTION,
                                          CAUSE_NO_FLOW};

static enum kind kind_of(uint32_t i)
{
    static const enum kind k[10] = {K_CLEAN,        K_CLEAN,   K_CLEAN,     K_CLEAN, K_CLIENT_ABORT,
                                    K_SERVER_ABORT, K_REFUSED, K_AFTER_FIN, K_STALE, K_NO_FLOW};
    return k[i % 10];
}

static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    return x ^ (x >> 16);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v);
}

/* Ethernet + IPv4 + TCP (SYNs with MSS and window scale) of step s of connection i. */
static uint32_t build(uint8_t *f, uint32_t i, uint32_t pass, const struct step *s, uint16_t *ipid)
{
    uint32_t ci = mix32(i * 2 + 1), si = mix32(i * 2 + 2);
    uint8_t cip[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    uint8_t sip[4] = {172, 16, (uint8_t)(i % 64), (uint8_t)(1 + i % 200)};
    uint16_t cport = (uint16_t)(1024 + pass * 7 % 60000), sport = 443;
    int opts = (s->flags & SYN) ? 8 : 0;
    uint32_t tcp_len = 20 + (uint32_t)opts;

    memset(f, 0, 14 + 20 + tcp_len);
    memcpy(f, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00", 14);
    uint8_t *ip = f + 14, *t = ip + 20;
    ip[0] = 0x45;
    put16(ip + 2, 20 + tcp_len + s->len);
    put16(ip + 4, (*ipid)++);
    ip[6] = 0x40;
    ip[8] = s->from_client ? 64 : 57;
    ip[9] = 6;
    memcpy(ip + 12, s->from_client ? cip : sip, 4);
    memcpy(ip + 16, s->from_client ? sip : cip, 4);
    put16(t, s->from_client ? cport : sport);
    put16(t + 2, s->from_client ? sport : cport);
    uint32_t own = s->from_client ? ci : si, peer = s->from_client ? si : ci;
    put32(t + 4, s->seq == 0xffffffff ? 0 : own + s->seq);
    put32(t + 8, s->ack == 0xffffffff ? 0 : peer + s->ack);
    t[12] = (uint8_t)((tcp_len / 4) << 4);
    t[13] = s->flags;
    put16(t + 14, opts ? 64240 : 502);
    if (opts)
        memcpy(t + 20, "\x02\x04\x05\xb4\x03\x03\x07\x00", 8); /* MSS 1460, WS 7, EOL */
    /* The payload is not in the frame: a header-only capture (the IP length says how much). */
    return 14 + 20 + tcp_len;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_engine FLOWS [PASSES]\n");
        return 2;
    }
    uint32_t n = (uint32_t)strtoul(argv[1], NULL, 10);
    uint32_t passes = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 2;
    if (n < 10 || n > 16000000 || passes < 1 || passes > 100) {
        fprintf(stderr, "bench_engine: FLOWS 10..16000000, PASSES 1..100\n");
        return 2;
    }
    static struct engine_stats stats;
    struct engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.max_flows = 2 * n; /* as scripts/bench sizes rstscope's table */
    struct engine *e = engine_create(&cfg, &stats, NULL, NULL, 0);
    if (!e) {
        fprintf(stderr, "bench_engine: cannot allocate the engine for %u flows\n", n);
        return 1;
    }
    engine_prefault(e);
    uint16_t *ipid = calloc(n, sizeof(*ipid));
    static uint8_t frames[ENGINE_BURST][128];
    const uint8_t *fp[ENGINE_BURST];
    uint32_t len[ENGINE_BURST];
    uint64_t ts[ENGINE_BURST];
    uint64_t busy = 0, packets = 0, expect[CAUSE_MAX + 1] = {0};
    unsigned nb = 0;
    struct timespec w0, w1;

    for (unsigned b = 0; b < ENGINE_BURST; b++)
        fp[b] = frames[b];
    uint64_t stride = 1000003; /* coprime with n: r -> r * stride mod n is a permutation */
    while (gcd(stride, n) != 1)
        stride++;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    uint64_t t_start = ticks();
    for (uint32_t pass = 0; pass < passes; pass++) {
        uint64_t base = 1700000000000000ULL + (uint64_t)pass * 20 * 1000000;
        for (uint32_t i = 0; i < n; i++)
            expect[cause_of[kind_of(i)]]++;
        for (int ph = 0; ph < MAX_STEPS; ph++) {
            uint64_t off = (uint64_t)ph * 7919;
            for (uint32_t r = 0; r < n; r++) {
                uint32_t i = (uint32_t)(((uint64_t)r * stride + off) % n);
                enum kind k = kind_of(i);
                if (ph >= plan_len[k])
                    continue;
                len[nb] = build(frames[nb], i, pass, &plans[k][ph], &ipid[i]);
                ts[nb] = base + (uint64_t)ph * 250000 + (uint64_t)r * 250000 / n;
                if (++nb == ENGINE_BURST) {
                    uint64_t t0 = ticks();
                    engine_input_burst(e, fp, len, ts, NULL, nb);
                    engine_age(e, 0);
                    busy += ticks() - t0;
                    packets += nb;
                    nb = 0;
                }
            }
        }
    }
    if (nb) {
        uint64_t t0 = ticks();
        engine_input_burst(e, fp, len, ts, NULL, nb);
        busy += ticks() - t0;
        packets += nb;
    }
    uint64_t t_total = ticks() - t_start;
    clock_gettime(CLOCK_MONOTONIC, &w1);
    engine_flush(e);
    double wall_ns = (double)(w1.tv_sec - w0.tv_sec) * 1e9 + (double)(w1.tv_nsec - w0.tv_nsec);
    double ticks_per_ns = (double)t_total / wall_ns;
    int ok = 1;
    for (int c = 0; c < CAUSE_MAX; c++)
        if (stats.causes[c] != expect[c]) {
            fprintf(stderr, "bench_engine: %s %" PRIu64 " != expected %" PRIu64 "\n", cause_name(c),
                    stats.causes[c], expect[c]);
            ok = 0;
        }
    double cpp = (double)busy / (double)packets;
    printf(
        "{\"flows\":%u,\"passes\":%u,\"packets\":%" PRIu64 ",\"cycles_per_packet\":%.1f,"
        "\"ns_per_packet\":%.1f,\"tsc_ghz\":%.3f,\"bytes_per_flow\":%.2f,\"rst_pool_full\":%" PRIu64
        ",\"ground_truth_ok\":%s}\n",
        n, passes, packets, cpp, cpp / ticks_per_ns, ticks_per_ns,
        (double)engine_mem_bytes(e) / (double)e->ft->capacity, stats.rst_pool_full,
        ok ? "true" : "false");
    engine_destroy(e);
    free(ipid);
    return ok ? 0 : 1;
}
