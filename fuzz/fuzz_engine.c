/*
 * libFuzzer target: the whole engine (parse -> flow table -> TCP tracking -> RST events).
 *
 * Input layout
 *   byte 0  configuration and mode:
 *             bit 0     0 = raw frames, 1 = structured TCP segments
 *             bits 1-2  max_flows   64, 16, 4, 1      (small tables: eviction, drops)
 *             bits 3-4  age_budget  64, 16, 4, 1 (paced by time, except 4: every call)
 *             bit 5     fold_us 0 instead of 1 s
 *             bit 6     ttl_tolerance 2 instead of 0, and a held-event pool of an eighth
 *                       of the table (at least 1) instead of 64: resets fill it
 *             bit 7     tiny timeouts (100 ms / 1 s / 50 ms instead of 3 s / 20 s / 2 s)
 *   raw mode:   byte 1 link type: {Ethernet, raw IP, BSD loopback, OpenBSD loopback,
 *               Linux cooked v1, v2}[b % 8], 6 and 7 = Ethernet; then, repeated:
 *               len (2 bytes, big-endian), time delta (1 byte), len frame bytes
 *   structured mode, repeated: a segment record (see gen_segment()) or a control byte.
 *
 * Time delta byte d: (d & 0x3f) units of {10 us, 1 ms, 50 ms, 1 s}[d >> 6]; d == 0x3f steps
 * back 2 s instead (captures merged from several taps are not monotonic).
 * engine_age() runs every AGE_EVERY packets and after every delta of 50 ms units or more;
 * engine_flush() ends the input.
 *
 * Structured mode builds valid Ethernet (optionally VLAN / QinQ) + IPv4 (optionally with
 * options) / IPv6 (optionally with extension headers) + TCP (with options) frames for a
 * fixed set of 4-tuples, with sequence and acknowledgement numbers chosen relative to what
 * each side has sent, so that the fuzzer reaches handshakes, data, FINs, exact / in-window /
 * out-of-window RSTs, port reuse and folding. Each built frame is parsed back and compared
 * with what was built (a round-trip check of the parser) before it goes to the engine.
 *
 * Checks (abort on violation): every event is in range and consistent; the flow table's
 * index and free list agree with its flows after every step; the counters add up at every
 * step and, after engine_flush(), nothing is left and every flow created was removed; a
 * twin engine fed the same frames in bursts of 1..32 ends with the same counters and emitted
 * the same events, records and signals in the same order (see run_twin()).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fuzz_check.h"
#include "seq.h"

/* The checks are not what the fuzzer should explore: keep them out of coverage feedback
 * (and its comparison tracing, the bulk of the run time). */
#define NO_COV __attribute__((no_sanitize("coverage")))

#define TS_BASE           1700000000000000ULL /* Nov 2023, in us */
#define AGE_EVERY         8
#define TABLE_CHECK_EVERY 16 /* and before every flush */
#define WORKER_ID         3

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

struct harness {
    struct engine *e;
    struct engine_stats *stats;
    int structured;
    uint64_t events;
    uint64_t rst_sum; /* sum of rst_count over all events */
    uint64_t records; /* --flows records emitted */
    uint64_t inputs;  /* frames given to engine_input() */
    uint64_t bytes;
    uint64_t segments;     /* structured mode: segments built */
    int verbose;           /* RSTSCOPE_FUZZ_VERBOSE set: print events and counters */
    uint64_t digest;       /* of every event, --flows record and overload signal, in order */
    struct script *script; /* what was done, for the burst twin (NULL in the twin) */
};

/* ---- the burst twin ----
 * Every input also runs through a second engine, its frames handed to engine_input_burst() in
 * bursts of 1..ENGINE_BURST between the same ageing and flush steps. engine_input() is a
 * burst of one, so this checks that the burst size changes nothing: the counters, and the
 * events, records and signals in order (digests), must be equal. Bursts are where the stage-2
 * entry hint can be stale and where the per-burst counter sums run. */
enum op_kind { OP_FRAME, OP_AGE, OP_FLUSH };

struct op {
    uint8_t kind;
    uint32_t len;
    uint64_t ts;
    uint8_t *frame; /* an exact-size copy (OP_FRAME) */
};

struct script {
    struct op *ops;
    size_t n, cap;
};

NO_COV static void script_add(struct script *sc, uint8_t kind, const uint8_t *frame, uint32_t len,
                              uint64_t ts)
{
    if (!sc)
        return;
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? 2 * sc->cap : 256;
        sc->ops = realloc(sc->ops, sc->cap * sizeof(*sc->ops));
        CHECK(sc->ops != NULL);
    }
    struct op *o = &sc->ops[sc->n++];
    o->kind = kind;
    o->len = len;
    o->ts = ts;
    o->frame = NULL;
    if (kind == OP_FRAME) {
        o->frame = malloc(len ? len : 1);
        CHECK(o->frame != NULL);
        memcpy(o->frame, frame, len);
    }
}

NO_COV static void script_free(struct script *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        free(sc->ops[i].frame);
    free(sc->ops);
}

/* FNV-1a over the bytes of a sink's record, chained into the running digest. */
NO_COV static uint64_t digest_add(uint64_t d, const void *rec, size_t len)
{
    const uint8_t *b = rec;
    d ^= len;
    for (size_t i = 0; i < len; i++)
        d = (d ^ b[i]) * 0x100000001b3ULL;
    return d;
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint64_t advance(uint64_t ts, uint8_t d)
{
    static const uint64_t unit[4] = {10, 1000, 50000, 1000000};

    if (d == 0x3f)
        return ts >= TS_BASE + 2000000 ? ts - 2000000 : TS_BASE;
    return ts + (uint64_t)(d & 0x3f) * unit[d >> 6];
}

/* ---- structured mode: endpoints ---- */

struct tuple {
    uint8_t family; /* of the IP header used on the wire */
    uint8_t cli[16];
    uint8_t srv[16];
    uint16_t cport;
    uint16_t sport;
};

#define V4(a, b, c, d)                                                                             \
    {                                                                                              \
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d                                       \
    }
#define V6(x0, x1, last)                                                                           \
    {                                                                                              \
        x0, x1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last                                  \
    }
#define HOST_A V4(10, 0, 0, 1)
#define HOST_B V4(10, 0, 0, 2)
#define HOST_C V4(192, 168, 1, 1)
#define HOST_D V6(0x20, 0x01, 1)
#define HOST_E V6(0x20, 0x01, 2)
#define HOST_F                                                                                     \
    {                                                                                              \
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1                                       \
    }

#define NTUPLES 16
static const struct tuple tuples[NTUPLES] = {
    {4, HOST_A, HOST_B, 40000, 80},
    {4, HOST_A, HOST_B, 40001, 80},
    {4, HOST_B, HOST_A, 40000, 80},
    {4, HOST_A, HOST_B, 80, 40000}, /* same key as tuple 2, roles swapped */
    {4, HOST_C, HOST_A, 1234, 443},
    {4, HOST_A, HOST_A, 5000, 5000}, /* both ends identical: one direction index */
    {4, HOST_A, HOST_A, 5000, 5001},
    {4, HOST_C, HOST_B, 65535, 0},
    {6, HOST_D, HOST_E, 40000, 80},
    {6, HOST_D, HOST_E, 40001, 80},
    {6, HOST_E, HOST_D, 40000, 80},
    {6, HOST_F, HOST_D, 12345, 443},
    {6, HOST_D, HOST_D, 7, 7},
    {6, HOST_A, HOST_E, 40000, 80}, /* IPv4-mapped source in an IPv6 header */
    {4, HOST_B, HOST_C, 443, 50000},
    {6, HOST_E, HOST_F, 443, 50000},
};

/* What each side has sent, as the generator sees it. [tuple][0 = client, 1 = server] */
struct gen_dir {
    uint32_t isn;
    uint32_t nxt;      /* highest seq + len (+SYN/FIN) sent */
    uint32_t last_ack; /* last ACK number sent */
    uint16_t ip_id;
};

struct gen {
    struct gen_dir d[NTUPLES][2];
    uint32_t tsval;
};

static void gen_init(struct gen *g)
{
    memset(g, 0, sizeof(*g));
    for (int t = 0; t < NTUPLES; t++)
        for (int s = 0; s < 2; s++) {
            struct gen_dir *gd = &g->d[t][s];
            /* Tuple 4 starts just below the wrap of the sequence space. */
            gd->isn = t == 4 ? 0xffffff00u + (uint32_t)s * 0x10
                             : 0x10000000u * (uint32_t)(t + 1) + (uint32_t)s * 0x08000000u + 0x1234;
            gd->nxt = gd->isn;
            gd->last_ack = 0;
            gd->ip_id = (uint16_t)(t * 1000 + s * 500);
        }
    g->tsval = 1000;
}

/* A bounded reader over the fuzzer input. Past the end it yields zeros. */
struct rd {
    const uint8_t *p;
    size_t left;
};

static uint8_t take8(struct rd *r)
{
    if (!r->left)
        return 0;
    r->left--;
    return *r->p++;
}

static uint32_t take32(struct rd *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | take8(r);
    return v;
}

static const uint8_t common_flags[16] = {
    TCP_SYN,
    TCP_SYN | TCP_ACK,
    TCP_ACK,
    TCP_PSH | TCP_ACK,
    TCP_FIN | TCP_ACK,
    TCP_RST,
    TCP_RST | TCP_ACK,
    TCP_ACK,
    TCP_PSH | TCP_ACK,
    TCP_FIN | TCP_PSH | TCP_ACK,
    TCP_SYN | TCP_ECE | TCP_CWR,
    TCP_SYN | TCP_ACK | TCP_ECE,
    TCP_RST | TCP_ACK,
    TCP_ACK,
    TCP_FIN,
    TCP_RST | TCP_PSH | TCP_ACK,
};

#define FRAME_MAX        512
#define PAYLOAD_IN_FRAME 64

struct built {
    uint8_t frame[FRAME_MAX];
    uint32_t len;
    struct pkt_info want; /* what pkt_parse() must return for it */
};

/*
 * One segment record:
 *   b0  tuple (bits 0-3), sender is the server (bit 4), TTL variant (bits 5-7, 0..6)
 *       (b0 >= 0xe0 is a control byte, handled by the caller)
 *   b1  flags: < 0x80 picks common_flags[b1 & 15]; otherwise the six classic flags b1 & 0x3f
 *   b2  seq mode (low nibble), ack mode (high nibble); some modes read 1 or 4 more bytes
 *   b3  payload length: b3 < 0x80 ? b3 : (b3 & 0x7f) * 256
 *   b4  time delta
 *   b5  bits 0-1 encapsulation (none, 802.1Q, QinQ, IPv4 options / IPv6 extension headers),
 *       bit 2 MSS, bit 3 window scale, bit 4 SACK-permitted, bit 5 timestamps,
 *       bit 6 a malformed option (voids the options), bit 7 payload bytes in the frame
 *   b6  window scale value (high nibble, 15 checks the clamp), window (low nibble * 4096)
 */
static void gen_segment(struct gen *g, uint8_t b0, struct rd *r, struct built *out,
                        uint8_t *time_delta)
{
    int t = b0 & 0x0f;
    int s = (b0 >> 4) & 1; /* sender: 0 client, 1 server */
    int ttl_mode = b0 >> 5;
    const struct tuple *tp = &tuples[t];
    struct gen_dir *me = &g->d[t][s];
    struct gen_dir *peer = &g->d[t][1 - s];
    uint8_t b1 = take8(r), b2 = take8(r), b3 = take8(r);
    uint8_t flags = b1 < 0x80 ? common_flags[b1 & 15] : (uint8_t)(b1 & 0x3f);
    uint32_t plen = b3 < 0x80 ? b3 : (uint32_t)(b3 & 0x7f) * 256;
    uint32_t seq, ack;

    switch (b2 & 0x0f) {
    case 1:
        seq = me->nxt - 1;
        break;
    case 2:
        seq = me->nxt + (uint32_t)(int32_t)(int8_t)take8(r);
        break;
    case 3:
        seq = me->nxt + 0x40000000u;
        break;
    case 4:
        seq = peer->last_ack;
        break;
    case 5:
        seq = me->nxt + (uint32_t)take8(r) * 1024;
        break;
    case 6:
        seq = take32(r);
        break;
    case 7:
        seq = 0;
        break;
    case 8:
        seq = me->isn;
        break;
    case 9:
        seq = me->nxt - (uint32_t)take8(r) * 1024;
        break;
    default:
        seq = me->nxt;
        break;
    }
    switch (b2 >> 4) {
    case 1:
        ack = peer->nxt - 1;
        break;
    case 2:
        ack = peer->isn + 1;
        break;
    case 3:
        ack = peer->nxt + (uint32_t)(int32_t)(int8_t)take8(r);
        break;
    case 4:
        ack = take32(r);
        break;
    case 5:
        ack = 0;
        break;
    case 6:
        ack = peer->nxt + 0x40000000u;
        break;
    default:
        ack = peer->nxt;
        break;
    }
    *time_delta = take8(r);
    uint8_t b5 = take8(r), b6 = take8(r);

    /* Generator bookkeeping: what this side has now sent. */
    uint32_t end = seq + plen + ((flags & TCP_SYN) ? 1 : 0) + ((flags & TCP_FIN) ? 1 : 0);
    if (flags & TCP_SYN) {
        me->isn = seq;
        me->nxt = end;
    } else if (seq_gt(end, me->nxt)) {
        me->nxt = end;
    }
    if (flags & TCP_ACK)
        me->last_ack = ack;
    me->ip_id++;

    static const uint8_t ttl_sub[7] = {0, 1, 2, 3, 10, 30, 63};
    uint8_t ttl = (uint8_t)((s ? 64 : 128) - ttl_sub[ttl_mode]);
    const uint8_t *src = s ? tp->srv : tp->cli;
    const uint8_t *dst = s ? tp->cli : tp->srv;
    uint16_t sport = s ? tp->sport : tp->cport;
    uint16_t dport = s ? tp->cport : tp->sport;
    int encap = b5 & 3;
    int v6 = tp->family == 6;

    /* TCP options */
    uint8_t opt[40];
    uint32_t ol = 0;
    struct tcp_opts want_opt = {.wscale = 0xff};
    if (b5 & 0x04) {
        uint16_t mss = (uint16_t)(1200 + t * 20);
        opt[ol++] = 2;
        opt[ol++] = 4;
        wr16(opt + ol, mss);
        ol += 2;
        want_opt.mss = mss;
    }
    if (b5 & 0x08) {
        uint8_t ws = b6 >> 4;
        opt[ol++] = 1;
        opt[ol++] = 3;
        opt[ol++] = 3;
        opt[ol++] = ws;
        want_opt.wscale = ws > 14 ? 14 : ws;
    }
    if (b5 & 0x10) {
        opt[ol++] = 1;
        opt[ol++] = 1;
        opt[ol++] = 4;
        opt[ol++] = 2;
        want_opt.sack_ok = 1;
    }
    if (b5 & 0x20) {
        uint32_t tsecr = (flags & TCP_ACK) ? g->tsval - 7 : 0;
        g->tsval += 13;
        opt[ol++] = 1;
        opt[ol++] = 1;
        opt[ol++] = 8;
        opt[ol++] = 10;
        wr32(opt + ol, g->tsval);
        wr32(opt + ol + 4, tsecr);
        ol += 8;
        want_opt.has_ts = 1;
        want_opt.tsval = g->tsval;
        want_opt.tsecr = tsecr;
    }
    int bad_opt = (b5 & 0x40) != 0;
    if (bad_opt) {
        opt[ol++] = 2; /* MSS with length 3 */
        opt[ol++] = 3;
        opt[ol++] = 0;
    }
    while (ol % 4)
        opt[ol++] = 0; /* EOL padding */
    if (bad_opt) {
        memset(&want_opt, 0, sizeof(want_opt));
        want_opt.wscale = 0xff;
    }
    uint32_t doff = 20 + ol;

    /* Ethernet */
    uint8_t *f = out->frame;
    uint32_t off = 0;
    memcpy(f, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
    off = 12;
    uint16_t vlan = (uint16_t)(0x100 + t);
    if (encap == 1) {
        wr16(f + off, 0x8100);
        wr16(f + off + 2, (uint16_t)(0x2000 | vlan)); /* PCP 1 */
        off += 4;
    } else if (encap == 2) {
        wr16(f + off, 0x88a8);
        wr16(f + off + 2, vlan);
        wr16(f + off + 4, 0x8100);
        wr16(f + off + 6, 0x0fff);
        off += 8;
    }
    wr16(f + off, v6 ? 0x86dd : 0x0800);
    off += 2;

    /* IP */
    if (!v6) {
        uint32_t ihl = encap == 3 ? 24 : 20;
        uint8_t *ip = f + off;
        memset(ip, 0, ihl);
        ip[0] = (uint8_t)(0x40 | ihl / 4);
        wr16(ip + 2, (uint16_t)(ihl + doff + plen));
        wr16(ip + 4, me->ip_id);
        wr16(ip + 6, 0x4000); /* DF */
        ip[8] = ttl;
        ip[9] = 6;
        memcpy(ip + 12, src + 12, 4);
        memcpy(ip + 16, dst + 12, 4);
        if (ihl == 24) {
            ip[20] = 1; /* NOP NOP NOP EOL */
            ip[21] = 1;
            ip[22] = 1;
            ip[23] = 0;
        }
        off += ihl;
    } else {
        uint8_t *ip = f + off;
        uint32_t ext = encap == 3 ? 16 : 0;
        memset(ip, 0, 40 + ext);
        ip[0] = 0x60;
        wr16(ip + 4, (uint16_t)(ext + doff + plen));
        ip[6] = ext ? 0 : 6;
        ip[7] = ttl;
        memcpy(ip + 8, src, 16);
        memcpy(ip + 24, dst, 16);
        if (ext) {
            ip[40] = 44; /* hop-by-hop: PadN, then an atomic fragment header (RFC 6946) */
            ip[41] = 0;
            ip[42] = 1;
            ip[43] = 4;
            ip[48] = 6;
            wr32(ip + 52, 0xabcd0000u + me->ip_id);
        }
        off += 40 + ext;
    }

    /* TCP */
    uint8_t *tcp = f + off;
    uint16_t win = (uint16_t)((b6 & 0x0f) * 4096);
    memset(tcp, 0, 20);
    wr16(tcp, sport);
    wr16(tcp + 2, dport);
    wr32(tcp + 4, seq);
    wr32(tcp + 8, ack);
    tcp[12] = (uint8_t)(doff / 4 << 4);
    tcp[13] = flags;
    wr16(tcp + 14, win);
    memcpy(tcp + 20, opt, ol);
    off += doff;
    if (b5 & 0x80) {
        uint32_t n = plen < PAYLOAD_IN_FRAME ? plen : PAYLOAD_IN_FRAME;
        memset(f + off, 'x', n);
        off += n;
    }
    out->len = off;

    struct pkt_info *w = &out->want;
    memset(w, 0, sizeof(*w));
    if (v6) {
        memcpy(w->src, src, 16);
        memcpy(w->dst, dst, 16);
    } else {
        memcpy(w->src, v4_mapped_prefix, 12);
        memcpy(w->src + 12, src + 12, 4);
        memcpy(w->dst, v4_mapped_prefix, 12);
        memcpy(w->dst + 12, dst + 12, 4);
    }
    w->sport = sport;
    w->dport = dport;
    w->family = v6 ? 6 : 4;
    w->ttl = ttl;
    w->flags = flags;
    w->df = 1;
    w->ip_id = v6 ? 0 : me->ip_id;
    w->vlan = encap == 1 || encap == 2 ? vlan : 0;
    w->vlan_depth = encap == 1 ? 1 : encap == 2 ? 2 : 0;
    w->malformed = bad_opt ? MAL_TCP_BAD_OPTION : MAL_NONE;
    w->win = win;
    w->seq = seq;
    w->ack = ack;
    w->payload_len = plen;
    w->opt = want_opt;
}

NO_COV static void check_roundtrip(const struct built *b)
{
    struct pkt_info p;
    uint8_t *copy = malloc(b->len); /* exact size, so ASan sees any over-read */

    CHECK(copy != NULL);
    memcpy(copy, b->frame, b->len);
    CHECK(pkt_parse(copy, b->len, &p) == PKT_TCP);
    free(copy);
    const struct pkt_info *w = &b->want;
    CHECK(memcmp(p.src, w->src, 16) == 0 && memcmp(p.dst, w->dst, 16) == 0);
    CHECK(p.sport == w->sport && p.dport == w->dport);
    CHECK(p.family == w->family && p.ttl == w->ttl && p.flags == w->flags);
    CHECK(p.df == w->df && p.ip_id == w->ip_id);
    CHECK(p.vlan == w->vlan && p.vlan_depth == w->vlan_depth);
    CHECK(p.malformed == w->malformed);
    CHECK(p.win == w->win && p.seq == w->seq && p.ack == w->ack);
    CHECK(p.payload_len == w->payload_len);
    CHECK(p.opt.mss == w->opt.mss && p.opt.wscale == w->opt.wscale);
    CHECK(p.opt.sack_ok == w->opt.sack_ok && p.opt.has_ts == w->opt.has_ts);
    CHECK(p.opt.tsval == w->opt.tsval && p.opt.tsecr == w->opt.tsecr);
}

/* ---- checks ---- */

NO_COV static int is_mapped(const uint8_t a[16])
{
    return memcmp(a, v4_mapped_prefix, 12) == 0;
}

NO_COV static int endpoint_eq(const uint8_t *a, uint16_t ap, const uint8_t *b, uint16_t bp)
{
    return ap == bp && memcmp(a, b, 16) == 0;
}

NO_COV static void sink(void *ctx, const struct rst_event *ev)
{
    struct harness *h = ctx;
    const struct engine *e = h->e;

    CHECK(ev->cause < CAUSE_MAX);
    CHECK(ev->origin < ORIGIN_MAX);
    CHECK(ev->state < CS_MAX);
    CHECK(ev->check < SEQ_MAX);
    CHECK(ev->sender <= 1 && ev->direction_known <= 1);
    CHECK(ev->worker == WORKER_ID);
    CHECK(ev->rst_count >= 1);
    CHECK(ev->rst_flags & TCP_RST);
    CHECK(ev->ts_us >= TS_BASE && ev->ts_us <= e->now_us);
    CHECK(ev->pad == 0 && ev->pad2 == 0);
    CHECK(ev->evidence < (1u << EV_MAX_BIT));
    CHECK(ev->low_confidence <= 1);
    /* The event's family is that of the canonical key's lower address. */
    const uint8_t *lo =
        memcmp(ev->client_ip, ev->server_ip, 16) <= 0 ? ev->client_ip : ev->server_ip;
    CHECK(ev->family == (is_mapped(lo) ? 4 : 6));
    /* No flow seen before the RST -> no_flow, and then nothing to compare TTLs to. The only
     * other no_flow is a client RST answering a SYN-ACK whose SYN never passed. */
    if (ev->state == CS_NONE)
        CHECK(ev->cause == CAUSE_NO_FLOW);
    if (ev->cause == CAUSE_NO_FLOW)
        CHECK(ev->state == CS_NONE || (ev->state == CS_SYN_RECEIVED && ev->sender == 0));
    if (ev->check == SEQ_OUT_OF_WINDOW || ev->check == SEQ_ACK_BAD)
        CHECK(ev->cause == CAUSE_OUT_OF_WINDOW || ev->cause == CAUSE_NO_FLOW);
    if (ev->cause == CAUSE_REFUSED || ev->cause == CAUSE_MIDDLEBOX_REFUSED)
        CHECK(ev->state == CS_SYN_SENT && ev->sender == 1);
    if (ev->cause == CAUSE_MIDDLEBOX_REFUSED || ev->cause == CAUSE_MIDDLEBOX_INJECTED)
        CHECK(ev->origin == ORIGIN_MIDDLEBOX);
    if (ev->cause == CAUSE_ACCEPT_OVERFLOW)
        CHECK(ev->sender == 1 && !(ev->rst_flags & TCP_ACK));
    if (ev->cause == CAUSE_CLIENT_ABORT)
        CHECK(ev->sender == 0);
    if (ev->cause == CAUSE_SERVER_ABORT)
        CHECK(ev->sender == 1);

    if (h->structured) {
        int found = 0;
        for (int t = 0; t < NTUPLES && !found; t++) {
            const struct tuple *tp = &tuples[t];
            found = (endpoint_eq(ev->client_ip, ev->client_port, tp->cli, tp->cport) &&
                     endpoint_eq(ev->server_ip, ev->server_port, tp->srv, tp->sport)) ||
                    (endpoint_eq(ev->client_ip, ev->client_port, tp->srv, tp->sport) &&
                     endpoint_eq(ev->server_ip, ev->server_port, tp->cli, tp->cport));
        }
        CHECK(found);
    }
    h->events++;
    h->rst_sum += ev->rst_count;
    h->digest = digest_add(h->digest, ev, sizeof(*ev));
    if (h->verbose)
        fprintf(stderr,
                "event ts=%llu cport=%u sport=%u fam=%u cause=%s state=%s check=%s origin=%s "
                "sender=%u known=%u rsts=%u\n",
                (unsigned long long)(ev->ts_us - TS_BASE), ev->client_port, ev->server_port,
                ev->family, cause_name(ev->cause), conn_state_name(ev->state),
                seq_check_name(ev->check), origin_name(ev->origin), ev->sender, ev->direction_known,
                ev->rst_count);
}

/* A --flows record: a Zeek state, a bounded history, a sane time span. */
NO_COV static void flow_sink(void *ctx, const struct flow_record *r)
{
    static const char *const states[] = {"S0",   "S1",     "SF",    "REJ", "S2",  "S3", "RSTO",
                                         "RSTR", "RSTOS0", "RSTRH", "SH",  "SHR", "OTH"};
    struct harness *h = ctx;
    int known = 0;
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        known |= strcmp(r->conn_state, states[i]) == 0;
    CHECK(known);
    CHECK(strlen(r->history) <= ZEEK_HIST_MAX);
    CHECK(r->ts_start >= TS_BASE && r->ts_start <= r->ts_end && r->ts_end <= h->e->now_us);
    CHECK(r->cause <= CAUSE_MAX);
    CHECK(r->family == 4 || r->family == 6);
    CHECK(r->orig_pkts + r->resp_pkts >= 1);
    h->records++;
    h->digest = digest_add(h->digest, r, sizeof(*r));
}

NO_COV static void signal_sink(void *ctx, const struct overload_event *ov)
{
    struct harness *h = ctx;
    CHECK(ov->signal < OVL_MAX);
    CHECK(ov->family == 4 || ov->family == 6);
    h->digest = digest_add(h->digest, ov, sizeof(*ov));
}

/* The twin's sinks: the same records, digested only. */
NO_COV static void twin_sink(void *ctx, const struct rst_event *ev)
{
    uint64_t *d = ctx;
    *d = digest_add(*d, ev, sizeof(*ev));
}

NO_COV static void twin_flow_sink(void *ctx, const struct flow_record *r)
{
    uint64_t *d = ctx;
    *d = digest_add(*d, r, sizeof(*r));
}

NO_COV static void twin_signal_sink(void *ctx, const struct overload_event *ov)
{
    uint64_t *d = ctx;
    *d = digest_add(*d, ov, sizeof(*ov));
}

/* The table's index, free list and flows agree; every live flow is sane and findable. */
NO_COV static void check_table(struct engine *e)
{
    struct flow_table *t = e->ft;
    uint32_t live = 0, slots = 0, held = 0, v6live = 0;

    CHECK(t->used <= t->hwm && t->hwm <= t->capacity);
    CHECK(t->cursor < t->capacity);
    CHECK((uint64_t)t->nslots * 3 >= (uint64_t)t->capacity * 4);
    for (uint32_t i = 0; i < t->nslots; i++) {
        uint32_t s = t->slots[i];
        if (!s)
            continue;
        slots++;
        uint32_t idx1 = flow_table_slot_idx1(t, s);
        CHECK(idx1 >= 1 && idx1 <= t->hwm);
        CHECK(flow_table_live(t, idx1 - 1));
        uint32_t hash = t->flows[idx1 - 1].hash;
        CHECK(flow_table_slot_tag(t, s) == flow_table_tag(t, hash));
        /* The distance code: exact below disp_max, "that or more" at it. */
        uint32_t dist = flow_table_dist(t, flow_table_home(t, hash), i);
        uint32_t code = flow_table_slot_disp(t, s);
        CHECK(code < t->disp_max ? code == dist : dist >= t->disp_max);
    }
    CHECK(slots == t->used);
    for (uint32_t i = 0; i < t->capacity; i++) {
        struct flow *f = flow_table_at(t, i);
        if (!f)
            continue;
        live++;
        struct flow_key k;
        flow_table_key(t, f, &k);
        CHECK(flow_key_hash(&k) == f->hash);
        CHECK(flow_table_lookup(t, &k, f->hash) == f);
        CHECK(f->key_v6 == !flow_key_is_v4(&k));
        CHECK(!f->key_v6 || (f->key.a >= 1 && f->key.a <= t->v6hwm && f->key.b == 0));
        v6live += f->key_v6;
        int c = memcmp(k.lo_addr, k.hi_addr, 16);
        CHECK(c < 0 || (c == 0 && k.lo_port <= k.hi_port));
        CHECK(f->state < CS_MAX);
        CHECK(f->client_dir <= 1 && f->direction_known <= 1 && f->wscale_ok <= 1);
        for (int d = 0; d < 2; d++) {
            const struct flow_dir *fd = &f->dir[d];
            if (fd->seen & (DIR_SYN | DIR_SYNACK))
                CHECK(fd->wscale <= 14 || fd->wscale == DIR_WSCALE_NONE);
            if (f->wscale_ok)
                CHECK(fd->wscale <= 14);
        }
        CHECK(f->last_ts <= e->now_us);
        /* A held event sits in a pooled slot, never in the scratch entry between calls. */
        CHECK(f->rst_slot <= e->rst_cap);
        held += f->rst_slot != 0;
        const struct pending_rst *r = engine_rst(e, f);
        if (r) {
            CHECK(r->active == 1);
            CHECK(r->rst_count >= 1);
            CHECK(r->sender_dir <= 1 && r->state < CS_MAX && r->check < SEQ_MAX);
            CHECK(r->rst_flags & TCP_RST);
            CHECK(r->had_flow == (r->state != CS_NONE));
            /* On the timer wheel, naming this entry, filed no later than its deadline. */
            CHECK(r->wheel_bucket < HW_BUCKETS);
            CHECK(&t->flows[r->flow_idx] == f);
        }
    }
    CHECK(live == t->used);
    CHECK(held + e->rst_free_top == e->rst_cap); /* no held-event slot leaks */
    CHECK(e->wheel.linked == held);              /* every held event on the wheel, once */
    for (uint32_t b = 0; b < HW_BUCKETS; b++)    /* the occupancy bitmap follows every head */
        CHECK(hold_wheel_marked(&e->wheel, b) == !!e->wheel.head[b]);
    /* The free list holds exactly the dead entries below the high-water mark (the bound on
     * its length also catches a cycle), and nothing above the mark is live. */
    uint32_t nfree = 0;
    for (uint32_t n = t->free_head; n && nfree <= t->hwm; n = t->flows[n - 1].hash) {
        CHECK(n <= t->hwm);
        CHECK(!flow_table_live(t, n - 1));
        nfree++;
    }
    CHECK(nfree + t->used == t->hwm);
    /* The IPv6 pool: one pair per live IPv6 flow, the rest on its free list. */
    CHECK(v6live == t->v6used && t->v6used <= t->v6hwm && t->v6hwm <= t->v6cap);
    nfree = 0;
    for (uint32_t n = t->v6free; n && nfree <= t->v6hwm; memcpy(&n, t->v6[n - 1].addr, 4)) {
        CHECK(n <= t->v6hwm);
        nfree++;
    }
    CHECK(nfree + t->v6used == t->v6hwm);
    for (uint32_t i = t->hwm; i < t->capacity; i++)
        CHECK(!flow_table_live(t, i));
}

NO_COV static void check_stats(struct harness *h)
{
    const struct engine_stats *s = h->stats;
    uint64_t causes = 0, mal = 0;

    for (int c = 0; c < CAUSE_MAX; c++)
        causes += s->causes[c];
    for (int m = 1; m < MAL_MAX; m++)
        mal += s->malformed[m];
    CHECK(s->resets == causes);
    CHECK(s->resets == h->events);
    CHECK(s->malformed[MAL_NONE] == 0);
    CHECK(mal == s->malformed_total + s->malformed[MAL_TCP_BAD_OPTION]);
    CHECK(s->packets == h->inputs);
    CHECK(s->bytes == h->bytes);
    CHECK(s->packets ==
          s->tcp_packets + s->non_ip + s->non_tcp + s->fragments + s->malformed_total);
    CHECK(s->ipv4 + s->ipv6 <= s->packets);
    CHECK(s->rst_packets <= s->tcp_packets);
    CHECK(s->syn + s->synack <= s->tcp_packets);
    CHECK(s->fin <= s->tcp_packets);
    CHECK(h->rst_sum <= s->rst_packets); /* the rest is held in open events */
    CHECK(s->flows_active == flow_table_used(h->e->ft));
    CHECK(s->flows_active <= h->e->cfg.max_flows);
    CHECK(s->flows_created == s->flows_expired + s->flows_evicted + s->flows_active);
    CHECK(s->events_dropped == 0);
    if (h->structured) {
        CHECK(s->tcp_packets == h->segments);
        CHECK(s->non_ip == 0 && s->non_tcp == 0 && s->fragments == 0);
        CHECK(s->malformed_total == 0);
        CHECK(s->tcp_packets == s->ipv4 + s->ipv6);
        /* 16 tuples never fill a table of 16 or more flows. */
        if (h->e->cfg.max_flows >= NTUPLES)
            CHECK(s->flows_evicted == 0 && s->flows_dropped == 0);
    }
}

NO_COV static void check_flushed(struct harness *h)
{
    const struct engine_stats *s = h->stats;

    check_stats(h);
    CHECK(flow_table_used(h->e->ft) == 0);
    CHECK(s->flows_active == 0);
    CHECK(s->flows_created == s->flows_expired + s->flows_evicted);
    /* Every RST ended up in one event, or was a late RST on a judged connection, or a
     * mirrored copy of another. */
    CHECK(h->rst_sum + s->late_rsts <= s->rst_packets);
    CHECK(h->rst_sum + s->late_rsts + s->duplicates >= s->rst_packets);
    /* Every connection left at least one --flows record. */
    CHECK(h->records >= s->flows_created);
}

static void step_done(struct harness *h, uint64_t ts, uint8_t delta)
{
    if (h->inputs % AGE_EVERY == 0 || delta >> 6 >= 2) {
        engine_age(h->e, ts);
        script_add(h->script, OP_AGE, NULL, 0, ts);
    }
    /* Corruption of the table persists, so a periodic full check finds it, only later. */
    if (h->inputs % TABLE_CHECK_EVERY == 0)
        check_table(h->e);
    check_stats(h);
}

static void feed(struct harness *h, const uint8_t *frame, uint32_t len, uint64_t ts)
{
    h->inputs++;
    h->bytes += len;
    engine_input(h->e, frame, len, ts);
    script_add(h->script, OP_FRAME, frame, len, ts);
}

static void run_raw(struct harness *h, struct rd *r, uint64_t ts)
{
    while (r->left >= 3) {
        uint32_t len = (uint32_t)r->p[0] << 8 | r->p[1];
        uint8_t delta = r->p[2];
        r->p += 3;
        r->left -= 3;
        if (len > r->left)
            len = (uint32_t)r->left;
        /* An exact-size copy: ASan flags any read past the frame. */
        uint8_t *frame = malloc(len ? len : 1);
        CHECK(frame != NULL);
        memcpy(frame, r->p, len);
        r->p += len;
        r->left -= len;
        ts = advance(ts, delta);
        feed(h, frame, len, ts);
        free(frame);
        step_done(h, ts, delta);
    }
}

static void run_structured(struct harness *h, struct rd *r, uint64_t ts)
{
    static struct gen g;
    static struct built b;

    gen_init(&g);
    while (r->left) {
        uint8_t b0 = take8(r);
        if (b0 >= 0xf0) { /* control: flush mid-stream */
            check_table(h->e);
            engine_flush(h->e);
            script_add(h->script, OP_FLUSH, NULL, 0, 0);
            check_flushed(h);
            continue;
        }
        if (b0 >= 0xe0) { /* control: jump ahead and age */
            ts += (uint64_t)(b0 & 0x0f) * 1000000;
            engine_age(h->e, ts);
            script_add(h->script, OP_AGE, NULL, 0, ts);
            check_stats(h);
            continue;
        }
        uint8_t delta;
        gen_segment(&g, b0, r, &b, &delta);
        check_roundtrip(&b);
        ts = advance(ts, delta);
        h->segments++;
        feed(h, b.frame, b.len, ts);
        step_done(h, ts, delta);
    }
}

/* Run the script through a new engine in bursts whose sizes rotate from seed; flush at the
 * end. Returns the twin's digest; its counters are in *stats. */
NO_COV static uint64_t run_twin(const struct engine_config *cfg, const struct script *sc,
                                unsigned seed, struct engine_stats *stats)
{
    static const uint8_t sizes[8] = {ENGINE_BURST, 1, 5, ENGINE_BURST, 17, 2, ENGINE_BURST, 9};
    const uint8_t *frames[ENGINE_BURST];
    uint32_t lens[ENGINE_BURST];
    uint64_t ts[ENGINE_BURST];
    uint64_t digest = 0;
    unsigned n = 0, want = sizes[seed & 7];

    memset(stats, 0, sizeof(*stats));
    struct engine *e = engine_create(cfg, stats, twin_sink, &digest, WORKER_ID);
    CHECK(e != NULL);
    CHECK(engine_set_flow_sink(e, twin_flow_sink, &digest) == 0);
    engine_set_signal_sink(e, twin_signal_sink, &digest);
    for (size_t i = 0; i <= sc->n; i++) {
        const struct op *o = i < sc->n ? &sc->ops[i] : NULL;
        if (o && o->kind == OP_FRAME) {
            frames[n] = o->frame;
            lens[n] = o->len;
            ts[n] = o->ts;
            if (++n < want)
                continue;
        }
        if (n) { /* the burst is full, or a step or the end comes */
            engine_input_burst(e, frames, lens, ts, NULL, n);
            n = 0;
            want = sizes[++seed & 7];
        }
        if (o && o->kind == OP_AGE)
            engine_age(e, o->ts);
        else if (o && o->kind == OP_FLUSH)
            engine_flush(e);
    }
    engine_flush(e);
    engine_destroy(e);
    return digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t flows_tab[4] = {64, 16, 4, 1};
    static const uint32_t budget_tab[4] = {64, 16, 4, 1};
    struct engine_stats stats;
    struct engine_config cfg;
    struct harness h;

    if (size < 1)
        return 0;
    uint8_t c = data[0];
    engine_config_defaults(&cfg);
    cfg.max_flows = flows_tab[(c >> 1) & 3];
    cfg.age_budget = budget_tab[(c >> 3) & 3];
    if (((c >> 3) & 3) == 2)
        cfg.age_sweep_us = 0; /* unpaced: age_budget entries every call */
    cfg.hold_us = (c & 0x20) ? 0 : 500000;
    cfg.hold_min_us = (c & 0x20) ? 0 : 20000;
    cfg.ttl_tolerance = (c & 0x40) ? 2 : 0;
    if (c & 0x40)
        cfg.rst_pool = cfg.max_flows >= 8 ? cfg.max_flows / 8 : 1;
    if (c & 0x80) {
        cfg.handshake_timeout_us = 100000;
        cfg.established_timeout_us = 1000000;
        cfg.closed_timeout_us = 50000;
    } else {
        cfg.handshake_timeout_us = 3000000;
        cfg.established_timeout_us = 20000000;
        cfg.closed_timeout_us = 2000000;
    }

    static struct script sc;
    memset(&stats, 0, sizeof(stats));
    memset(&h, 0, sizeof(h));
    memset(&sc, 0, sizeof(sc));
    h.stats = &stats;
    h.script = &sc;
    h.structured = c & 1;
    h.verbose = getenv("RSTSCOPE_FUZZ_VERBOSE") != NULL;
    struct rd r = {data + 1, size - 1};
    if (!h.structured) {
        static const int links[8] = {LINK_ETHERNET,  LINK_RAW,        LINK_NULL,     LINK_LOOP,
                                     LINK_LINUX_SLL, LINK_LINUX_SLL2, LINK_ETHERNET, LINK_ETHERNET};
        cfg.link = links[take8(&r) & 7];
    }
    h.e = engine_create(&cfg, &stats, sink, &h, WORKER_ID);
    CHECK(h.e != NULL);
    CHECK(engine_set_flow_sink(h.e, flow_sink, &h) == 0);
    engine_set_signal_sink(h.e, signal_sink, &h);

    if (h.structured)
        run_structured(&h, &r, TS_BASE);
    else
        run_raw(&h, &r, TS_BASE);

    check_table(h.e);
    engine_flush(h.e);
    check_flushed(&h);
    /* The burst twin: the same counters and the same records, in the same order. */
    struct engine_stats twin;
    uint64_t twin_digest = run_twin(&cfg, &sc, c, &twin);
    CHECK(memcmp(&twin, &stats, sizeof(stats)) == 0);
    CHECK(twin_digest == h.digest);
    script_free(&sc);
    if (h.verbose)
        fprintf(stderr,
                "config=0x%02x link=%d packets=%llu tcp=%llu rst=%llu resets=%llu created=%llu "
                "expired=%llu evicted=%llu dropped=%llu malformed=%llu\n",
                c, cfg.link, (unsigned long long)stats.packets,
                (unsigned long long)stats.tcp_packets, (unsigned long long)stats.rst_packets,
                (unsigned long long)stats.resets, (unsigned long long)stats.flows_created,
                (unsigned long long)stats.flows_expired, (unsigned long long)stats.flows_evicted,
                (unsigned long long)stats.flows_dropped, (unsigned long long)stats.malformed_total);
    /* Flushing again is harmless. */
    engine_flush(h.e);
    check_flushed(&h);
    engine_destroy(h.e);
    return 0;
}
