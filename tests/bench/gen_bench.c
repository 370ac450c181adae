/*
 * Benchmark capture generator: a large synthetic Ethernet pcap, and its ground truth as JSON
 * on stdout.
 *
 * usage: gen_bench OUT.pcap CONNECTIONS SEED [--snaplen N] [--phase-ms MS]
 *
 * Every connection is a complete TCP conversation with a known ending: a clean FIN close or a
 * reset of one of nine causes (refused, client_abort, server_abort, after_fin,
 * stale_connection, accept_overflow, data_after_close, out_of_window, no_flow). The capture is
 * written phase by phase (phase_order.h): phase k of every connection, then phase k + 1, each
 * phase in another scattered order. So all CONNECTIONS flows are open in the sensor's table at
 * once (the concurrent flows the benchmark names), and consecutive packets hit unrelated table
 * entries, as on a busy link.
 *
 * Size mix: SYN and SYN-ACK with the usual options (MSS, SACK, timestamps, window scale), an
 * 80-400 byte request, one to four response segments of up to 1448 bytes, pure ACKs. A quarter
 * of the connections are IPv6. IPv4 IDs are per-direction counters (a Linux stack) and each
 * side keeps one TTL, so nothing looks forged. Frames longer than --snaplen (default 128) are
 * cut in the file as a header-only sensor capture is: each record keeps the original length,
 * and the benchmark can preload millions of packets in memory.
 *
 * The output for a seed is fixed: the cached captures of scripts/bench are reused by name.
 * It is byte for byte what this generator's Python original wrote (checked with cmp up to 1M
 * connections when it was ported). Memory: ~180 bytes per connection (1.8 GB for 10M).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_frame.h"
#include "phase_order.h"

enum { FIN = 1, SYN = 2, RST = 4, PSH = 8, ACK = 16 };
/* The longest conversation: handshake 3, request, 4 responses, ACK, out-of-window RST, FIN,
 * FIN, ACK. */
#define MAX_STEPS 13
#define T0_US     (1700000000ULL * 1000000ULL)

/* Endings and their weights: a realistic share of clean closes, every reset cause we make. */
enum kind {
    CLEAN,
    REFUSED,
    CLIENT_ABORT,
    SERVER_ABORT,
    AFTER_FIN,
    STALE,
    ACCEPT_OVERFLOW,
    DATA_AFTER_CLOSE,
    OUT_OF_WINDOW,
    NO_FLOW,
    KINDS
};
static const struct {
    const char *cause; /* NULL: not a reset */
    unsigned weight;
} kinds[KINDS] = {
    [CLEAN] = {NULL, 40},
    [REFUSED] = {"refused", 8},
    [CLIENT_ABORT] = {"client_abort", 9},
    [SERVER_ABORT] = {"server_abort", 9},
    [AFTER_FIN] = {"after_fin", 8},
    [STALE] = {"stale_connection", 6},
    [ACCEPT_OVERFLOW] = {"accept_overflow", 4},
    [DATA_AFTER_CLOSE] = {"data_after_close", 5},
    [OUT_OF_WINDOW] = {"out_of_window", 5},
    [NO_FLOW] = {"no_flow", 6},
};

/* One packet of a conversation; seq and ack are absolute (they wrap as on the wire). */
struct step {
    uint32_t seq, ack;
    uint16_t len;
    uint8_t flags;
    uint8_t from_client : 1, syn_opts : 1;
};

struct conn {
    uint32_t ci, si;   /* initial sequence numbers */
    uint16_t cid, sid; /* last IPv4 ID each side sent */
    uint8_t kind, steps;
    struct step plan[MAX_STEPS];
};

/* xorshift64*: deterministic for a seed. */
static uint64_t rng_state;
static uint64_t rnd(uint64_t m)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return ((x * 0x2545F4914F6CDD1DULL) >> 11) % m;
}

static void add(struct conn *k, int from_client, uint8_t flags, uint32_t seq, uint32_t ack,
                uint16_t len, int syn_opts)
{
    k->plan[k->steps++] = (struct step){seq, ack, len, flags, from_client != 0, syn_opts != 0};
}

/* The conversation of k. The draws and their order are part of the output's definition. */
static void make_plan(struct conn *k)
{
    const int C = 1, S = 0;
    uint32_t ci = k->ci, si = k->si;
    if (k->kind == NO_FLOW) { /* a lone reset for a connection the sensor never saw */
        add(k, S, RST | ACK, si, ci, 0, 0);
        return;
    }
    add(k, C, SYN, ci, 0, 0, 1);
    if (k->kind == REFUSED) {
        add(k, S, RST | ACK, 0, ci + 1, 0, 0);
        return;
    }
    add(k, S, SYN | ACK, si, ci + 1, 0, 1);
    add(k, C, ACK, ci + 1, si + 1, 0, 0);
    if (k->kind == ACCEPT_OVERFLOW) { /* the listen queue dropped the handshake ACK */
        add(k, S, RST, si + 1, 0, 0, 0);
        return;
    }
    uint16_t req = (uint16_t)(80 + rnd(320));
    add(k, C, PSH | ACK, ci + 1, si + 1, req, 0);
    uint32_t cn = ci + 1 + req, sn = si + 1;
    for (uint64_t i = 0, segs = 1 + rnd(4); i < segs; i++) {
        uint16_t seg = rnd(3) ? 1448 : (uint16_t)(1 + rnd(1448));
        add(k, S, seg == 1448 ? ACK : PSH | ACK, sn, cn, seg, 0);
        sn += seg;
    }
    add(k, C, ACK, cn, sn, 0, 0);
    switch (k->kind) {
    case CLIENT_ABORT:
        add(k, C, RST | ACK, cn, sn, 0, 0);
        return;
    case SERVER_ABORT:
        add(k, S, RST | ACK, sn, cn, 0, 0);
        return;
    case STALE: /* the server lost the connection: a bare RST */
        add(k, S, RST, sn, 0, 0, 0);
        return;
    case OUT_OF_WINDOW: /* a forged-looking RST far outside the window, then a clean close */
        add(k, C, RST | ACK, cn + 0x40000000U, sn, 0, 0);
        break;
    default:
        break;
    }
    add(k, S, FIN | ACK, sn, cn, 0, 0);
    sn++;
    if (k->kind == AFTER_FIN) {
        add(k, C, RST | ACK, cn, sn, 0, 0);
    } else if (k->kind == DATA_AFTER_CLOSE) { /* the client keeps sending after the FIN */
        add(k, C, PSH | ACK, cn, sn, 100, 0);
        add(k, S, RST | ACK, sn, cn + 100, 0, 0);
    } else {
        add(k, C, FIN | ACK, cn, sn, 0, 0);
        add(k, S, ACK, sn, cn + 1, 0, 0);
    }
}

/* The sum of the endings' weights: the range an ending is drawn from. */
static unsigned total_weight(void)
{
    unsigned total = 0;
    for (int i = 0; i < KINDS; i++)
        total += kinds[i].weight;
    return total;
}

/* A connection drawn with rnd(): ISNs, IP IDs, its ending out of total (total_weight()), and
 * its plan. */
static void make_conn(struct conn *k, unsigned total)
{
    k->ci = (uint32_t)rnd(1ULL << 32);
    k->si = (uint32_t)rnd(1ULL << 32);
    k->cid = (uint16_t)rnd(1 << 16);
    k->sid = (uint16_t)rnd(1 << 16);
    unsigned x = (unsigned)rnd(total), acc = 0;
    k->kind = 0;
    for (int i = 0; i < KINDS; i++) {
        acc += kinds[i].weight;
        if (x < acc) {
            k->kind = (uint8_t)i;
            break;
        }
    }
    k->steps = 0;
    make_plan(k);
}

/* The addresses and ports of connection i: clients 10/8 and fd00:1::/32, servers 172.16/16
 * and fd00:2::/32, every fourth connection IPv6. */
static int conn_v6(uint64_t i)
{
    return i % 4 == 3;
}

static void conn_addrs(uint64_t i, uint8_t c[16], uint8_t s[16])
{
    memset(c, 0, 16);
    memset(s, 0, 16);
    if (conn_v6(i)) {
        memcpy(c, "\xfd\0\0\1", 4);
        put32(c + 12, (uint32_t)i);
        memcpy(s, "\xfd\0\0\2", 4);
        s[15] = (uint8_t)(1 + i % 200);
    } else {
        uint8_t c4[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        uint8_t s4[4] = {172, 16, (uint8_t)((i >> 8) % 64), (uint8_t)(1 + i % 200)};
        memcpy(c, c4, 4);
        memcpy(s, s4, 4);
    }
}

/* Headers of one packet of connection i into f; returns their length, *orig the length on
 * the wire (headers and payload). */
static uint32_t frame(uint8_t *f, uint64_t i, const struct step *st, uint16_t ipid, uint32_t *orig)
{
    static const uint8_t syn_opts[20] = {2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0,
                                         0, 1, 0, 0,    0, 0, 1, 3,  3, 7};
    uint8_t c[16], s[16];
    conn_addrs(i, c, s);
    uint16_t cp = (uint16_t)(1024 + (i * 7919) % 64000), sp = (uint16_t[]){80, 443, 8080}[i % 3];
    struct bench_seg g = {
        .v6 = conn_v6(i),
        .src = st->from_client ? c : s,
        .dst = st->from_client ? s : c,
        .sport = st->from_client ? cp : sp,
        .dport = st->from_client ? sp : cp,
        .seq = st->seq,
        .ack = st->ack,
        .flags = st->flags,
        .ttl = st->from_client ? 64 : 57,
        .win = st->syn_opts ? 64240 : 502, /* SYN windows unscaled; later ones by 2^7 */
        .ip_id = ipid,
        .ip_csum = 1,
        .opts = st->syn_opts ? syn_opts : NULL,
        .olen = st->syn_opts ? 20 : 0,
        .payload = st->len,
    };
    uint32_t hdr = bench_tcp_frame(f, &g);
    *orig = hdr + st->len;
    return hdr;
}

static int usage(void)
{
    fprintf(stderr, "usage: gen_bench OUT.pcap CONNECTIONS SEED [--snaplen N] [--phase-ms MS]\n");
    return 2;
}

static int parse_u64(const char *what, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "gen_bench: bad %s '%s' (%" PRIu64 "..%" PRIu64 ")\n", what, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    uint64_t n, seed, snaplen = 128;
    double phase_ms = 250.0;
    if (parse_u64("connection count", argv[2], 1, 100000000, &n) < 0 ||
        parse_u64("seed", argv[3], 0, UINT64_MAX, &seed) < 0)
        return 2;
    for (int a = 4; a < argc; a++) {
        if (!strcmp(argv[a], "--snaplen") && a + 1 < argc) {
            if (parse_u64("snaplen", argv[++a], 64, 65535, &snaplen) < 0)
                return 2;
        } else if (!strcmp(argv[a], "--phase-ms") && a + 1 < argc) {
            char *end;
            phase_ms = strtod(argv[++a], &end);
            if (*end || end == argv[a] || !(phase_ms > 0 && phase_ms < 1e6)) {
                fprintf(stderr, "gen_bench: bad --phase-ms '%s'\n", argv[a]);
                return 2;
            }
        } else {
            return usage();
        }
    }

    struct conn *conns = malloc(n * sizeof(*conns));
    if (!conns) {
        fprintf(stderr, "gen_bench: no memory for %" PRIu64 " connections\n", n);
        return 1;
    }
    rng_state = seed * 2654435761ULL;
    if (!rng_state)
        rng_state = 1;
    uint64_t truth[KINDS] = {0};
    int phases = 0;
    unsigned total = total_weight();
    for (uint64_t i = 0; i < n; i++) {
        make_conn(&conns[i], total);
        truth[conns[i].kind]++;
        if (conns[i].steps > phases)
            phases = conns[i].steps;
    }

    FILE *f = fopen(argv[1], "wb");
    if (!f) {
        fprintf(stderr, "gen_bench: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    static char iobuf[1 << 20];
    setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
    uint8_t gh[24];
    pcap_file_header(gh, (uint32_t)snaplen);
    fwrite(gh, 1, sizeof(gh), f);

    uint64_t phase_us = (uint64_t)(phase_ms * 1000), packets = 0;
    for (int ph = 0; ph < phases; ph++) {
        uint64_t stride = phase_stride(n, ph), off = (uint64_t)ph * 7919 % n, live = 0;
        for (uint64_t i = 0; i < n; i++)
            live += ph < conns[i].steps;
        /* The phase's packets are spread evenly over its phase_us. */
        double step = (double)phase_us / (double)(live ? live : 1);
        uint64_t j = 0;
        for (uint64_t r = 0; r < n; r++) {
            uint64_t i = (r * stride + off) % n;
            struct conn *k = &conns[i];
            if (ph >= k->steps)
                continue;
            const struct step *st = &k->plan[ph];
            uint16_t ipid = st->from_client ? ++k->cid : ++k->sid;
            uint8_t rec[16 + 14 + 40 + 40], *fr = rec + 16;
            uint32_t orig, hdr = frame(fr, i, st, ipid, &orig);
            uint32_t cap = orig < snaplen ? orig : (uint32_t)snaplen;
            uint64_t ts = T0_US + (uint64_t)ph * phase_us + (uint64_t)((double)j++ * step);
            pcap_record_header(rec, ts, cap, orig);
            /* Headers, cut at the snaplen; then zero payload bytes up to it. */
            fwrite(rec, 1, 16 + (cap < hdr ? cap : hdr), f);
            for (uint32_t z = hdr; z < cap; z++)
                putc(0, f);
        }
        packets += live;
    }
    /* A failed write (a full disk: the 10M capture is 8.7 GB) must not pass for a capture. */
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "gen_bench: %s: write failed: %s\n", argv[1], strerror(errno));
        return 1;
    }
    free(conns);

    uint64_t resets = 0;
    printf("{\"packets\": %" PRIu64 ", \"connections\": %" PRIu64
           ", \"phases\": %d, \"snaplen\": %" PRIu64 ", \"causes\": {",
           packets, n, phases, snaplen);
    for (int i = 1; i < KINDS; i++) {
        printf("%s\"%s\": %" PRIu64, i > 1 ? ", " : "", kinds[i].cause, truth[i]);
        resets += truth[i];
    }
    printf("}, \"resets\": %" PRIu64 "}\n", resets);
    return 0;
}
