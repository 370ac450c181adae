/*
 * The engine end to end: real frames through engine_input() (and parsed segments through
 * engine_segment()), counters, event folding and fields, ageing, flushing, a full table, and
 * port reuse. Events are collected by the harness sink in emission order.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "pktbuild.h"
#include "tcp_track.h"

#define SYN TCP_SYN
#define ACK TCP_ACK
#define FIN TCP_FIN
#define PSH TCP_PSH
#define RST TCP_RST

#define MS  1000ULL
#define SEC 1000000ULL

static struct pb_harness *harness(uint32_t max_flows, uint64_t fold_us)
{
    struct engine_config cfg;

    engine_config_defaults(&cfg);
    cfg.max_flows = max_flows;
    cfg.hold_us = fold_us;
    cfg.hold_min_us = fold_us;
    cfg.age_budget = 1u << 20; /* whole table per engine_age() unless a test says otherwise */
    cfg.age_sweep_us = 0;
    return pb_harness_new(&cfg);
}

/* Run segments, all at time t (relative to c->t0). */
static void run_at(struct pb_harness *h, const struct pb_conv *c, const struct pb_seg *s, size_t n,
                   uint64_t t, enum pb_mode mode)
{
    for (size_t i = 0; i < n; i++) {
        struct pb_seg x = s[i];
        x.t = t;
        pb_run(h, c, &x, 1, mode);
    }
}

static void run1(struct pb_harness *h, const struct pb_conv *c, struct pb_seg s, uint64_t t)
{
    s.t = t;
    pb_run(h, c, &s, 1, PB_FRAMES);
}

static void open_conn(struct pb_harness *h, const struct pb_conv *c, uint64_t t)
{
    run_at(h, c, pb_handshake, 3, t, PB_FRAMES);
    run_at(h, c, pb_exchange, 3, t, PB_FRAMES);
}

/* n established connections of c, client ports port0, port0 + 1, ... (c keeps the last). */
static void fill_established(struct pb_harness *h, struct pb_conv *c, uint32_t n, uint16_t port0)
{
    for (uint32_t i = 0; i < n; i++) {
        c->cport = (uint16_t)(port0 + i);
        open_conn(h, c, 0);
    }
}

/* A table of cap entries, all established connections of *est (client ports from port0), and
 * *other: a fresh IPv4 conversation from client address other_cli, which finds no room. */
static struct pb_harness *full_of_established(uint32_t cap, struct pb_conv *est, uint16_t port0,
                                              struct pb_conv *other, const char *other_cli)
{
    struct pb_harness *h = harness(cap, SEC);
    pb_conv_init(est, 4);
    fill_established(h, est, cap, port0);
    pb_conv_init(other, 4);
    pb_addr(other->cli, other_cli);
    return h;
}

static struct flow *find_flow(struct pb_harness *h, const struct pb_conv *c)
{
    struct pb_seg s = PB_C(ACK, 0, 0, 0);
    struct pkt_info p;
    struct flow_key k;
    int d;

    pb_conv_info(c, &s, &p);
    flow_key_make(&p, &k, &d);
    return flow_table_lookup(h->e->ft, &k, flow_key_hash(&k));
}

/* resets == sum of causes == events delivered. */
static void check_sums(const struct pb_harness *h)
{
    uint64_t sum = 0;
    for (int c = 0; c < CAUSE_MAX; c++)
        sum += h->stats.causes[c];
    cr_assert_eq(h->stats.resets, sum, "resets %lu, sum of causes %lu",
                 (unsigned long)h->stats.resets, (unsigned long)sum);
    cr_assert_eq(h->stats.resets, (uint64_t)h->nev, "resets %lu, events %u",
                 (unsigned long)h->stats.resets, h->nev);
}

static uint32_t frame_len(const struct pb_conv *c, const struct pb_seg *s)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    pb_conv_pkt(c, s, &p);
    return pb_build(&p, buf, sizeof(buf), NULL);
}

/* ---------------------------------------------------------------- counters */

Test(engine, clean_conversation_counters)
{
    const struct pb_seg close[] = {
        PB_C(FIN | ACK, 101, 1001, 0),
        PB_S(FIN | ACK, 1001, 102, 0),
        PB_C(ACK, 102, 1002, 0),
    };

    for (int fam = 4; fam <= 6; fam += 2) {
        struct pb_harness *h = harness(64, SEC);
        struct pb_conv c;
        uint64_t bytes = 0;

        pb_conv_init(&c, fam);
        open_conn(h, &c, 0);
        run_at(h, &c, close, 3, 10 * MS, PB_FRAMES);
        for (int i = 0; i < 3; i++)
            bytes += frame_len(&c, &pb_handshake[i]) + frame_len(&c, &pb_exchange[i]) +
                     frame_len(&c, &close[i]);
        const struct engine_stats *s = &h->stats;
        cr_assert_eq(s->packets, 9u);
        cr_assert_eq(s->tcp_packets, 9u);
        cr_assert_eq(s->bytes, bytes);
        cr_assert_eq(fam == 4 ? s->ipv4 : s->ipv6, 9u);
        cr_assert_eq(fam == 4 ? s->ipv6 : s->ipv4, 0u);
        cr_assert_eq(s->syn, 1u);
        cr_assert_eq(s->synack, 1u);
        cr_assert_eq(s->fin, 2u);
        cr_assert_eq(s->rst_packets, 0u);
        cr_assert_eq(s->resets, 0u);
        cr_assert_eq(s->malformed_total, 0u);
        cr_assert_eq(s->flows_created, 1u);
        cr_assert_eq(s->flows_active, 1u);
        struct flow *f = find_flow(h, &c);
        cr_assert_not_null(f);
        cr_assert_eq(f->state, CS_CLOSED);

        engine_flush(h->e);
        cr_assert_eq(s->flows_expired, 1u);
        cr_assert_eq(s->flows_active, 0u);
        cr_assert_eq(flow_table_used(h->e->ft), 0u);
        cr_assert_eq(h->nev, 0u, "a clean close has no reset event");
        check_sums(h);
        pb_harness_free(h);
    }
}

Test(engine, non_tcp_and_malformed_counters)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pb_layout lay;
    uint32_t len;

    pb_pkt_init(&p, 4);
    p.ethertype = PB_ETH_ARP;
    pb_input(h, &p, 1); /* non_ip */

    pb_pkt_init(&p, 4);
    p.proto = PB_IP_UDP;
    pb_input(h, &p, 2); /* non_tcp, ipv4 */
    pb_pkt_init(&p, 6);
    p.proto = PB_IP_UDP;
    pb_input(h, &p, 3); /* non_tcp, ipv6 */

    pb_pkt_init(&p, 4);
    p.mf = 1;
    p.payload_len = 100;
    pb_input(h, &p, 4); /* fragment, ipv4 */
    pb_pkt_init(&p, 6);
    p.n_ext = 1;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_FRAGMENT, .frag_off = 10};
    pb_input(h, &p, 5); /* fragment, ipv6 */

    pb_pkt_init(&p, 4);
    len = pb_build(&p, buf, sizeof(buf), &lay);
    engine_input(h->e, buf, 10, 6);          /* l2_truncated */
    engine_input(h->e, buf, lay.l3 + 10, 7); /* ipv4_truncated (family not yet known) */
    engine_input(h->e, buf, lay.l4 + 10, 8); /* tcp_truncated, ipv4 */
    engine_input(h->e, buf, lay.l4 + 10, 9); /* again */
    buf[lay.l4 + 12] = 0x30;
    engine_input(h->e, buf, len, 10); /* tcp_bad_data_offset, ipv4 */

    pb_pkt_init(&p, 6);
    p.raw_opts[0] = 8; /* timestamps with length 3 */
    p.raw_opts[1] = 3;
    p.raw_opts_len = 2;
    pb_input(h, &p, 11); /* tcp_bad_option: counted, tracked; ipv6 */

    const struct engine_stats *s = &h->stats;
    cr_assert_eq(s->packets, 11u);
    cr_assert_eq(s->non_ip, 1u);
    cr_assert_eq(s->non_tcp, 2u);
    cr_assert_eq(s->fragments, 2u);
    cr_assert_eq(s->malformed_total, 5u, "bad options are not dropped packets");
    cr_assert_eq(s->malformed[MAL_L2_TRUNCATED], 1u);
    cr_assert_eq(s->malformed[MAL_IPV4_TRUNCATED], 1u);
    cr_assert_eq(s->malformed[MAL_TCP_TRUNCATED], 2u);
    cr_assert_eq(s->malformed[MAL_TCP_BAD_DATA_OFFSET], 1u);
    cr_assert_eq(s->malformed[MAL_TCP_BAD_OPTION], 1u);
    cr_assert_eq(s->malformed[MAL_NONE], 0u);
    cr_assert_eq(s->tcp_packets, 1u, "only the bad-option segment reaches tracking");
    cr_assert_eq(s->flows_created, 1u);
    cr_assert_eq(s->ipv4, 5u);
    cr_assert_eq(s->ipv6, 3u);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- causes */

struct cause_case {
    const char *what;
    struct pb_seg segs[12];
    int n;
    enum rst_cause cause;
    uint8_t sender; /* 0 client, 1 server */
    enum conn_state state;
    enum seq_check check;
};

#define HS PB_C(SYN, 0, 0, 0), PB_S(SYN | ACK, 0, 1, 0), PB_C(ACK, 1, 1, 0)
#define EX PB_C(ACK | PSH, 1, 1, 100), PB_S(ACK | PSH, 1, 101, 1000), PB_C(ACK, 101, 1001, 0)

/* clang-format off */
static const struct cause_case cause_cases[] = {
    {"refused", {PB_C(SYN, 0, 0, 0), PB_S(RST | ACK, 0, 1, 0)}, 2,
     CAUSE_REFUSED, 1, CS_SYN_SENT, SEQ_ACK_OK},
    {"RST to SYN with a wrong ack", {PB_C(SYN, 0, 0, 0), PB_S(RST | ACK, 0, 7, 0)}, 2,
     CAUSE_OUT_OF_WINDOW, 1, CS_SYN_SENT, SEQ_ACK_BAD},
    {"server abort", {HS, EX, PB_S(RST | ACK, 1001, 101, 0)}, 7,
     CAUSE_SERVER_ABORT, 1, CS_ESTABLISHED, SEQ_EXACT},
    {"client abort", {HS, EX, PB_C(RST | ACK, 101, 1001, 0)}, 7,
     CAUSE_CLIENT_ABORT, 0, CS_ESTABLISHED, SEQ_EXACT},
    {"scanner: SYN, SYN-ACK, RST",
     {PB_C(SYN, 0, 0, 0), PB_S(SYN | ACK, 0, 1, 0), PB_C(RST, 1, 0, 0)}, 3,
     CAUSE_CLIENT_ABORT, 0, CS_SYN_RECEIVED, SEQ_EXACT},
    {"after fin",
     {HS, EX, PB_S(FIN | ACK, 1001, 101, 0), PB_C(ACK, 101, 1002, 0),
      PB_C(RST | ACK, 101, 1002, 0)}, 9,
     CAUSE_AFTER_FIN, 0, CS_FIN_WAIT, SEQ_EXACT},
    {"no flow", {PB_C(RST | ACK, 5000, 6000, 0)}, 1,
     CAUSE_NO_FLOW, 0, CS_NONE, SEQ_UNKNOWN},
    {"out of window, connection goes on",
     {HS, EX, PB_C(RST | ACK, 101 + (1u << 30), 1001, 0), PB_C(ACK | PSH, 101, 1001, 50),
      PB_S(ACK | PSH, 1001, 151, 70), PB_C(ACK, 151, 1071, 0)}, 10,
     CAUSE_OUT_OF_WINDOW, 0, CS_ESTABLISHED, SEQ_OUT_OF_WINDOW},
    {"in window, receiver sends new data",
     {HS, EX, PB_C(RST | ACK, 101 + 500, 1001, 0), PB_S(ACK | PSH, 1001, 101, 100)}, 8,
     CAUSE_OUT_OF_WINDOW, 0, CS_ESTABLISHED, SEQ_IN_WINDOW},
    {"in window, nothing after", {HS, EX, PB_C(RST | ACK, 101 + 500, 1001, 0)}, 7,
     CAUSE_CLIENT_ABORT, 0, CS_ESTABLISHED, SEQ_IN_WINDOW},
    {"in window, receiver only retransmits old data",
     {HS, EX, PB_S(RST | ACK, 1001 + 500, 101, 0), PB_C(ACK | PSH, 1, 1001, 100)}, 8,
     CAUSE_SERVER_ABORT, 1, CS_ESTABLISHED, SEQ_IN_WINDOW},
};
/* clang-format on */

Test(engine, every_cause_end_to_end)
{
    for (size_t i = 0; i < sizeof(cause_cases) / sizeof(cause_cases[0]); i++) {
        const struct cause_case *cc = &cause_cases[i];
        /* Guard the hand-written counts: the last segment is set, the one after is not. */
        cr_assert(cc->n > 0 && cc->n <= 12 && cc->segs[cc->n - 1].flags, "%s: n", cc->what);
        cr_assert(cc->n == 12 || !cc->segs[cc->n].flags, "%s: n too small", cc->what);
        for (int mode = PB_FRAMES; mode <= PB_INFO; mode++) {
            for (int fam = 4; fam <= 6; fam += 2) {
                struct pb_harness *h = harness(64, SEC);
                struct pb_conv c;
                pb_conv_init(&c, fam);
                for (int k = 0; k < cc->n; k++) {
                    struct pb_seg s = cc->segs[k];
                    s.t = (uint64_t)k * MS;
                    pb_run(h, &c, &s, 1, (enum pb_mode)mode);
                }
                cr_assert_eq(h->nev, 0u, "%s: event emitted before it closed", cc->what);
                engine_flush(h->e);
                cr_assert_eq(h->nev, 1u, "%s: %u events", cc->what, h->nev);
                const struct rst_event *ev = &h->ev[0];
                cr_assert_eq(ev->cause, cc->cause, "%s (mode %d, v%d): %s", cc->what, mode, fam,
                             cause_name(ev->cause));
                cr_assert_eq(ev->sender, cc->sender, "%s: sender", cc->what);
                cr_assert_eq(ev->state, cc->state, "%s: state %s", cc->what,
                             conn_state_name(ev->state));
                cr_assert_eq(ev->check, cc->check, "%s: check %s", cc->what,
                             seq_check_name(ev->check));
                cr_assert_eq(ev->rst_count, 1u);
                cr_assert_eq(ev->family, fam);
                cr_assert_eq(h->stats.causes[cc->cause], 1u);
                cr_assert_eq(h->stats.rst_packets, 1u);
                check_sums(h);
                pb_harness_free(h);
            }
        }
    }
}

/* ---------------------------------------------------------------- folding */

Test(engine, rsts_within_fold_window_are_one_event)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;
    const struct pb_seg rst = PB_S(RST | ACK, 1001, 101, 0);

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run1(h, &c, rst, 10 * MS);
    run1(h, &c, rst, 400 * MS);
    run1(h, &c, rst, 900 * MS);
    engine_age(h->e, c.t0 + 900 * MS + SEC); /* exactly fold_us after the last: still open */
    cr_assert_eq(h->nev, 0u, "the event is held while RSTs may still fold into it");
    engine_age(h->e, c.t0 + 900 * MS + SEC + 1);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].rst_count, 3u);
    cr_assert_eq(h->ev[0].ts_us, c.t0 + 10 * MS, "ts of the first RST");
    cr_assert_eq(h->ev[0].cause, CAUSE_SERVER_ABORT);
    cr_assert_eq(h->stats.rst_packets, 3u);
    cr_assert_eq(h->stats.resets, 1u);
    check_sums(h);
    pb_harness_free(h);
}

Test(engine, fold_window_is_inclusive)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;
    const struct pb_seg rst = PB_S(RST | ACK, 1001, 101, 0);

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run1(h, &c, rst, 0);
    run1(h, &c, rst, SEC);         /* exactly the hold later: folds */
    run1(h, &c, rst, 2 * SEC + 1); /* one µs more: the event is judged, this one is late */
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].rst_count, 2u);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->stats.late_rsts, 1u);
    pb_harness_free(h);
}

Test(engine, fold_window_runs_from_the_last_rst)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;
    const struct pb_seg rst = PB_C(RST | ACK, 101, 1001, 0);

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    /* 0.9 s apart each: 2.7 s from first to last, still one event. */
    for (int i = 0; i < 4; i++)
        run1(h, &c, rst, (uint64_t)i * 900 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].rst_count, 4u);
    cr_assert_eq(h->ev[0].cause, CAUSE_CLIENT_ABORT);
    pb_harness_free(h);
}

Test(engine, rsts_farther_apart_are_separate_events)
{
    struct pb_harness *h = harness(64, 500 * MS);
    struct pb_conv c;
    /* An ignored out-of-window RST, then a real one later. */
    const struct pb_seg bogus = PB_C(RST | ACK, 101 + (1u << 30), 1001, 0);
    const struct pb_seg real = PB_S(RST | ACK, 1001, 101, 0);

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run1(h, &c, bogus, 10 * MS);
    run1(h, &c, real, 10 * MS + 500 * MS + 1);
    cr_assert_eq(h->nev, 1u, "the next RST of the flow closes the expired event");
    cr_assert_eq(h->ev[0].cause, CAUSE_OUT_OF_WINDOW);
    cr_assert_eq(h->ev[0].rst_count, 1u);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 2u);
    cr_assert_eq(h->ev[1].cause, CAUSE_SERVER_ABORT);
    cr_assert_eq(h->ev[1].state, CS_ESTABLISHED, "the ignored RST did not end it");
    cr_assert_eq(h->ev[1].ts_us, c.t0 + 510 * MS + 1);
    cr_assert_eq(h->stats.resets, 2u);
    check_sums(h);

    /* The same RST repeated after the hold: the connection is already reset and judged. */
    struct pb_harness *g = harness(64, 500 * MS);
    open_conn(g, &c, 0);
    run1(g, &c, real, 0);
    run1(g, &c, real, 2 * SEC);
    engine_flush(g->e);
    cr_assert_eq(g->nev, 1u);
    cr_assert_eq(g->ev[0].cause, CAUSE_SERVER_ABORT);
    cr_assert_eq(g->stats.late_rsts, 1u);
    check_sums(g);
    pb_harness_free(g);
    pb_harness_free(h);
}

Test(engine, both_sides_reset_is_one_event)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run1(h, &c, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), 10 * MS);
    run1(h, &c, (struct pb_seg)PB_C(RST, 101, 0, 0), 20 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].rst_count, 2u);
    cr_assert_eq(h->ev[0].sender, 1, "equally decisive: the first RST decides");
    cr_assert_eq(h->ev[0].cause, CAUSE_SERVER_ABORT);
    pb_harness_free(h);
}

Test(engine, most_decisive_rst_decides)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;
    const struct pb_seg guess = PB_C(RST | ACK, 101 + 300, 1001, 0); /* in window */
    const struct pb_seg exact = PB_C(RST | ACK, 101, 1001, 0);
    const struct pb_seg far = PB_C(RST | ACK, 101 + (1u << 31), 1001, 0);

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run1(h, &c, guess, 10 * MS);
    run1(h, &c, exact, 20 * MS); /* RFC 5961 sender corrects after a challenge ACK */
    run1(h, &c, far, 30 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].check, SEQ_EXACT);
    cr_assert_eq(h->ev[0].seq, c.cisn + 101, "seq of the decisive RST");
    cr_assert_eq(h->ev[0].ack, c.sisn + 1001);
    cr_assert_eq(h->ev[0].rst_count, 3u);
    cr_assert_eq(h->ev[0].cause, CAUSE_CLIENT_ABORT);
    cr_assert_eq(h->ev[0].ts_us, c.t0 + 10 * MS);
    pb_harness_free(h);
}

/* After an exact RST the receiver's data still arriving was in flight when the RST crossed
 * it: the reset stands, and a SYN on the tuple opens a new connection. */
Test(engine, receiver_data_in_flight_does_not_undo_an_exact_reset)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run1(h, &c, (struct pb_seg)PB_C(RST | ACK, 101, 1001, 0), MS);
    struct flow *f = find_flow(h, &c);
    cr_assert_eq(f->state, CS_RESET);
    run1(h, &c, (struct pb_seg)PB_S(ACK | PSH, 1001, 101, 500), 2 * MS);
    cr_assert_eq(f->state, CS_RESET, "state %s", conn_state_name(f->state));
    struct pb_conv c2 = c;
    c2.cisn = 4242;
    run_at(h, &c2, pb_handshake, 1, 5 * MS, PB_FRAMES);
    cr_assert_eq(h->stats.flows_created, 2u);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].check, SEQ_EXACT);
    cr_assert_eq(h->ev[0].cause, CAUSE_CLIENT_ABORT);
    pb_harness_free(h);
}

/* A capture of another link type: the engine parses frames with cfg.link. */
Test(engine, raw_ip_link)
{
    struct engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.max_flows = 64;
    cfg.link = LINK_RAW;
    struct pb_harness *h = pb_harness_new(&cfg);
    struct pb_conv c;
    const struct pb_seg s[] = {PB_C(SYN, 0, 0, 0), PB_S(RST | ACK, 0, 1, 0)};
    uint8_t buf[PB_MAX_FRAME];
    struct pb_layout lay;

    pb_conv_init(&c, 6);
    for (int i = 0; i < 2; i++) {
        struct pb_pkt p;
        pb_conv_pkt(&c, &s[i], &p);
        uint32_t len = pb_build(&p, buf, sizeof(buf), &lay);
        engine_input(h->e, buf + lay.l3, len - lay.l3, c.t0 + (uint64_t)i);
    }
    /* An Ethernet frame read as raw IP: version nibble 0, not IP. */
    struct pb_pkt p;
    pb_conv_pkt(&c, &s[0], &p);
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    engine_input(h->e, buf, len, c.t0 + 5);
    engine_flush(h->e);
    cr_assert_eq(h->stats.packets, 3u);
    cr_assert_eq(h->stats.ipv6, 2u);
    cr_assert_eq(h->stats.non_ip, 1u);
    cr_assert_eq(h->stats.malformed_total, 0u);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].cause, CAUSE_REFUSED);
    cr_assert_eq(h->ev[0].family, 6);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- event fields */

Test(engine, event_fields_v4)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    pb_addr(c.cli, "192.168.7.9"); /* the client is the key's hi endpoint */
    pb_addr(c.srv, "10.1.2.3");
    c.cport = 1000; /* lower than the server's: roles come from the SYN */
    c.sport = 8443;
    open_conn(h, &c, 0);
    struct pb_seg rst = PB_S(RST | ACK, 1001, 101, 0);
    rst.ttl = c.sttl; /* the server's own TTL, exactly: same path, same stack */
    run1(h, &c, rst, 5 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    const struct rst_event *ev = &h->ev[0];
    cr_assert_arr_eq(ev->client_ip, c.cli, 16);
    cr_assert_arr_eq(ev->server_ip, c.srv, 16);
    cr_assert_eq(ev->client_port, 1000);
    cr_assert_eq(ev->server_port, 8443);
    cr_assert_eq(ev->family, 4);
    cr_assert_eq(ev->direction_known, 1);
    cr_assert_eq(ev->sender, 1);
    cr_assert_eq(ev->state, CS_ESTABLISHED);
    cr_assert_eq(ev->check, SEQ_EXACT);
    cr_assert_eq(ev->cause, CAUSE_SERVER_ABORT);
    cr_assert_eq(ev->origin, ORIGIN_HOST);
    cr_assert_eq(ev->seq, c.sisn + 1001);
    cr_assert_eq(ev->ack, c.cisn + 101);
    cr_assert_eq(ev->rst_flags, RST | ACK);
    cr_assert_eq(ev->ttl, c.sttl);
    cr_assert_eq(ev->worker, 3, "the engine id");
    cr_assert_eq(ev->ts_us, c.t0 + 5 * MS);
    cr_assert_eq(ev->rst_count, 1u);
    pb_harness_free(h);
}

Test(engine, event_fields_v6_middlebox)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;

    pb_conv_init(&c, 6);
    pb_addr(c.cli, "2001:db8:1::77");
    pb_addr(c.srv, "2001:db8:1::5");
    open_conn(h, &c, 0);
    /* A firewall forging the server's RST with its own hop limit. */
    struct pb_seg rst = PB_S(RST, 1001, 0, 0);
    rst.ttl = 250;
    run1(h, &c, rst, 5 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    const struct rst_event *ev = &h->ev[0];
    cr_assert_eq(ev->family, 6);
    cr_assert_arr_eq(ev->client_ip, c.cli, 16);
    cr_assert_arr_eq(ev->server_ip, c.srv, 16);
    cr_assert_eq(ev->client_port, c.cport);
    cr_assert_eq(ev->server_port, c.sport);
    cr_assert_eq(ev->origin, ORIGIN_MIDDLEBOX);
    cr_assert_eq(ev->rst_flags, RST);
    cr_assert_eq(ev->ttl, 250);
    pb_harness_free(h);
}

Test(engine, event_fields_midstream_and_no_flow)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;
    const struct pb_seg s[] = {
        PB_S(ACK | PSH, 1, 1, 500),
        PB_C(ACK, 1, 501, 0),
    };

    pb_conv_init(&c, 4);
    c.cport = 50000;
    c.sport = 443;
    run_at(h, &c, s, 2, 0, PB_FRAMES);
    run1(h, &c, (struct pb_seg)PB_C(RST | ACK, 1, 501, 0), MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].direction_known, 0);
    cr_assert_eq(h->ev[0].client_port, 50000, "the higher port is guessed as the client");
    cr_assert_eq(h->ev[0].sender, 0);
    cr_assert_eq(h->ev[0].state, CS_MIDSTREAM);
    cr_assert_eq(h->ev[0].cause, CAUSE_CLIENT_ABORT);
    cr_assert_eq(h->ev[0].origin, ORIGIN_HOST);

    /* A lone RST: no flow, but its sender's TTL is known from the other connection. */
    struct pb_conv d;
    pb_conv_init(&d, 4);
    d.cport = 33333;
    run1(h, &d, (struct pb_seg)PB_S(RST, 1, 0, 0), 2 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 2u);
    cr_assert_eq(h->ev[1].cause, CAUSE_NO_FLOW);
    cr_assert_eq(h->ev[1].state, CS_NONE);
    cr_assert_eq(h->ev[1].direction_known, 0);
    cr_assert_eq(h->ev[1].origin, ORIGIN_HOST, "host baseline");
    cr_assert_eq(h->ev[1].client_port, 33333);
    cr_assert_eq(h->ev[1].sender, 1);
    pb_harness_free(h);
}

Test(engine, vlan_tagged_frames)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    c.n_vlans = 2;
    c.vlan_tpid[0] = PB_ETH_QINQ;
    c.vlan_tpid[1] = PB_ETH_VLAN;
    c.vlan_tci[0] = 100;
    c.vlan_tci[1] = 200;
    open_conn(h, &c, 0);
    run1(h, &c, (struct pb_seg)PB_C(RST | ACK, 101, 1001, 0), MS);
    engine_flush(h->e);
    cr_assert_eq(h->stats.tcp_packets, 7u);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].cause, CAUSE_CLIENT_ABORT);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- ageing */

Test(engine, idle_expiry_by_state)
{
    struct engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.max_flows = 64;
    cfg.handshake_timeout_us = 2 * SEC;
    cfg.established_timeout_us = 10 * SEC;
    cfg.closed_timeout_us = 1 * SEC;
    cfg.age_budget = 1000;
    cfg.age_sweep_us = 0;
    struct pb_harness *h = pb_harness_new(&cfg);
    struct pb_conv est, half, closed;
    const struct pb_seg close[] = {
        PB_C(FIN | ACK, 101, 1001, 0),
        PB_S(FIN | ACK, 1001, 102, 0),
        PB_C(ACK, 102, 1002, 0),
    };

    pb_conv_init(&est, 4);
    pb_conv_init(&half, 4);
    half.cport = 40001;
    pb_conv_init(&closed, 4);
    closed.cport = 40002;
    open_conn(h, &est, 0);
    run_at(h, &half, pb_handshake, 1, 0, PB_FRAMES);
    open_conn(h, &closed, 0);
    run_at(h, &closed, close, 3, 0, PB_FRAMES);
    cr_assert_eq(h->stats.flows_active, 3u);

    uint64_t t0 = est.t0;
    engine_age(h->e, t0 + SEC);
    cr_assert_eq(h->stats.flows_expired, 0u, "nothing idle for more than its limit yet");
    engine_age(h->e, t0 + SEC + 1);
    cr_assert_eq(h->stats.flows_expired, 1u);
    cr_assert_null(find_flow(h, &closed));
    cr_assert_eq(h->stats.flows_active, 2u);
    engine_age(h->e, t0 + 2 * SEC + 1);
    cr_assert_eq(h->stats.flows_expired, 2u);
    cr_assert_null(find_flow(h, &half));
    cr_assert_not_null(find_flow(h, &est));
    /* Traffic keeps the established one alive. */
    run1(h, &est, (struct pb_seg)PB_C(ACK, 101, 1001, 0), 9 * SEC);
    engine_age(h->e, t0 + 10 * SEC + 1);
    cr_assert_not_null(find_flow(h, &est));
    engine_age(h->e, t0 + 19 * SEC + 1);
    cr_assert_null(find_flow(h, &est));
    cr_assert_eq(h->stats.flows_expired, 3u);
    cr_assert_eq(h->stats.flows_active, 0u);
    /* Time never goes back. */
    engine_age(h->e, t0);
    cr_assert_eq(h->e->now_us, t0 + 19 * SEC + 1);
    cr_assert_eq(h->nev, 0u);
    pb_harness_free(h);
}

Test(engine, age_budget_bounds_work)
{
    struct engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.max_flows = 16;
    cfg.age_budget = 4;
    cfg.age_sweep_us = 0;
    cfg.handshake_timeout_us = SEC;
    struct pb_harness *h = pb_harness_new(&cfg);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    for (int i = 0; i < 8; i++) {
        c.cport = (uint16_t)(41000 + i);
        run_at(h, &c, pb_handshake, 1, 0, PB_FRAMES);
    }
    engine_age(h->e, c.t0 + 5 * SEC);
    cr_assert_eq(h->stats.flows_expired, 4u, "age_budget flows examined per call");
    engine_age(h->e, c.t0 + 5 * SEC);
    cr_assert_eq(h->stats.flows_expired, 8u);
    pb_harness_free(h);
}

/* engine_input_burst_keys() hands back the engine's own parse (--dump-resets files frames by
 * it): the canonical key and hash of each TCP frame, its flags, and tcp = 0 for the rest. */
Test(engine, burst_keys_are_the_engines_parse)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c4, c6;
    uint8_t buf[3][PB_MAX_FRAME];
    const uint8_t *fr[3];
    uint32_t len[3];
    uint64_t ts[3];
    struct engine_frame_key fk[3];
    struct pb_pkt p;

    pb_conv_init(&c4, 4);
    pb_conv_init(&c6, 6);
    pb_conv_pkt(&c4, &pb_handshake[1], &p); /* server -> client SYN-ACK */
    len[0] = pb_build(&p, buf[0], sizeof(buf[0]), NULL);
    pb_conv_pkt(&c6, &pb_handshake[0], &p);
    len[1] = pb_build(&p, buf[1], sizeof(buf[1]), NULL);
    p.ethertype = PB_ETH_ARP;
    len[2] = pb_build(&p, buf[2], sizeof(buf[2]), NULL);
    for (int i = 0; i < 3; i++) {
        fr[i] = buf[i];
        ts[i] = c4.t0;
    }
    memset(fk, 0xa5, sizeof(fk));
    engine_input_burst_keys(h->e, fr, len, ts, NULL, 3, fk);
    for (int i = 0; i < 2; i++) {
        struct pkt_info pi;
        struct flow_key k;
        int d;
        cr_assert_eq(pkt_parse_link(fr[i], len[i], LINK_ETHERNET, &pi), PKT_TCP);
        flow_key_make(&pi, &k, &d);
        cr_assert_eq(fk[i].tcp, 1);
        cr_assert(flow_key_eq(&fk[i].key, &k), "frame %d: the canonical key", i);
        cr_assert_eq(fk[i].hash, flow_key_hash(&k));
        cr_assert_eq(fk[i].flags, pi.flags);
    }
    cr_assert_eq(fk[2].tcp, 0, "ARP is not a TCP frame");
    cr_assert_eq(h->stats.tcp_packets, 2u, "and the frames were analysed");
    pb_harness_free(h);
}

Test(engine, paced_scan_covers_the_table_once_per_sweep)
{
    struct engine_config cfg;
    engine_config_defaults(&cfg); /* age_budget 64, one sweep a second */
    cfg.max_flows = 256;
    cfg.handshake_timeout_us = SEC;
    struct pb_harness *h = pb_harness_new(&cfg);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    for (int i = 0; i < 40; i++) {
        c.cport = (uint16_t)(42000 + i);
        run_at(h, &c, pb_handshake, 1, 0, PB_FRAMES);
    }
    uint64_t t = c.t0 + 4 * SEC; /* past the timeout and the 3 s of an unanswered SYN */
    engine_age(h->e, t);         /* the first call only starts the clock */
    cr_assert_eq(h->stats.flows_expired, 0u);
    engine_age(h->e, t + SEC / 4);
    cr_assert_eq(h->stats.flows_expired, 10u, "a quarter second: a quarter of the 40 entries");
    for (int i = 1; i <= 10; i++) /* the remainder carries over between calls */
        engine_age(h->e, t + SEC / 4 + (uint64_t)i * SEC / 40);
    cr_assert_eq(h->stats.flows_expired, 20u);
    engine_age(h->e, t + 3 * SEC); /* a long pause is capped at the age_budget */
    cr_assert_eq(h->stats.flows_expired, 40u);
    cr_assert_eq(h->stats.overload[OVL_SYN_UNANSWERED], 40u, "each unanswered SYN counted once");
    pb_harness_free(h);
}

Test(engine, unanswered_syn_counted_when_its_late_answer_arrives)
{
    struct engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.max_flows = 64;
    struct pb_harness *h = pb_harness_new(&cfg);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    run_at(h, &c, pb_handshake, 1, 0, PB_FRAMES);
    /* No ageing call in between: the SYN-ACK 4 s later still shows the SYN went unanswered
     * for 3 s, whatever the scan's pace. */
    run_at(h, &c, pb_handshake + 1, 1, 4 * SEC, PB_FRAMES);
    cr_assert_eq(h->stats.overload[OVL_SYN_UNANSWERED], 1u);
    engine_flush(h->e);
    cr_assert_eq(h->stats.overload[OVL_SYN_UNANSWERED], 1u, "once");
    pb_harness_free(h);
}

Test(engine, age_closes_held_event)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run1(h, &c, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), 0);
    engine_age(h->e, c.t0 + SEC / 2);
    cr_assert_eq(h->nev, 0u);
    engine_age(h->e, c.t0 + SEC + 1);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].cause, CAUSE_SERVER_ABORT);
    struct flow *f = find_flow(h, &c);
    cr_assert_not_null(f, "the reset flow lingers for closed_timeout");
    cr_assert_eq(f->state, CS_RESET);
    cr_assert_eq(f->rst_slot, 0u);
    /* A late RST neither reopens the judged event nor makes a second one: it is counted. */
    run1(h, &c, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), 2 * SEC);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].rst_count, 1u);
    cr_assert_eq(h->stats.late_rsts, 1u);
    check_sums(h);
    pb_harness_free(h);
}

Test(engine, flush_closes_pending_events)
{
    struct pb_harness *h = harness(64, 10 * SEC);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    for (int i = 0; i < 5; i++) {
        c.cport = (uint16_t)(42000 + i);
        open_conn(h, &c, 0);
        run1(h, &c, (struct pb_seg)PB_C(RST | ACK, 101, 1001, 0), MS);
    }
    c.cport = 42100;
    open_conn(h, &c, 0); /* no RST */
    cr_assert_eq(h->nev, 0u);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 5u);
    cr_assert_eq(h->stats.causes[CAUSE_CLIENT_ABORT], 5u);
    cr_assert_eq(h->stats.flows_expired, 6u);
    cr_assert_eq(h->stats.flows_active, 0u);
    cr_assert_eq(flow_table_used(h->e->ft), 0u);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 5u, "a second flush has nothing left");
    check_sums(h);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- full table */

Test(engine, syn_flood_evicts_half_open_keeps_established)
{
    const uint32_t cap = 16;
    struct pb_harness *h = harness(cap, SEC);
    struct pb_conv est[4], c;

    for (int i = 0; i < 4; i++) {
        pb_conv_init(&est[i], 4);
        est[i].cport = (uint16_t)(43000 + i);
        open_conn(h, &est[i], 0);
    }
    pb_conv_init(&c, 4);
    pb_addr(c.cli, "172.16.0.1");
    for (int i = 0; i < 200; i++) {
        c.cport = (uint16_t)(1024 + i);
        c.cisn = 7777u * (uint32_t)i;
        run_at(h, &c, pb_handshake, 1, MS + (uint64_t)i, PB_FRAMES);
        cr_assert_leq(flow_table_used(h->e->ft), cap);
    }
    const struct engine_stats *s = &h->stats;
    cr_assert_eq(s->syn, 204u);
    cr_assert_eq(s->flows_created, 204u, "each SYN got an entry");
    cr_assert_eq(s->flows_evicted, 200u - (cap - 4), "evicted %lu",
                 (unsigned long)s->flows_evicted);
    cr_assert_eq(s->flows_dropped, 0u);
    cr_assert_eq(s->flows_active, cap);
    for (int i = 0; i < 4; i++) {
        struct flow *f = find_flow(h, &est[i]);
        cr_assert_not_null(f, "established flow %d was evicted", i);
        cr_assert_eq(f->state, CS_ESTABLISHED);
    }
    /* The survivors still classify as tracked connections. */
    for (int i = 0; i < 4; i++)
        run1(h, &est[i], (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), 2 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 4u);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(h->ev[i].cause, CAUSE_SERVER_ABORT);
    pb_harness_free(h);
}

Test(engine, full_of_established_drops_new_flows)
{
    const uint32_t cap = 8;
    struct pb_harness *h = harness(cap, SEC);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    fill_established(h, &c, cap, 44000);
    c.cport = 45000;
    run_at(h, &c, pb_handshake, 3, MS, PB_FRAMES);
    cr_assert_eq(h->stats.flows_dropped, 3u, "every packet of the untracked flow");
    cr_assert_eq(h->stats.flows_evicted, 0u, "established flows are never evicted");
    cr_assert_null(find_flow(h, &c));
    cr_assert_eq(h->stats.tcp_packets, 8u * 6 + 3, "dropped flows' packets still count");
    pb_harness_free(h);
}

/* IPv6 flows need a pair of the table's IPv6 address pool: when it is full, a new IPv6
 * connection may only evict an IPv6 flow (an IPv4 one would free no pair), and is refused
 * like on a full table when none is evictable. IPv4 flows are untouched throughout. */
Test(engine, ipv6_pool_full_refuses_ipv6_only)
{
    struct engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.max_flows = 8;
    cfg.ipv6_flows = 2;
    cfg.age_budget = 1u << 20;
    struct pb_harness *h = pb_harness_new(&cfg);
    struct pb_conv v4[2], est6, syn6, new6, late6;

    for (int i = 0; i < 2; i++) { /* half-open IPv4 flows: evictable, but not for IPv6 */
        pb_conv_init(&v4[i], 4);
        v4[i].cport = (uint16_t)(41000 + i);
        run_at(h, &v4[i], pb_handshake, 1, MS, PB_FRAMES);
    }
    pb_conv_init(&est6, 6);
    est6.cport = 42000;
    open_conn(h, &est6, MS);
    pb_conv_init(&syn6, 6);
    syn6.cport = 42001;
    run_at(h, &syn6, pb_handshake, 1, MS, PB_FRAMES);
    cr_assert(flow_table_v6_full(h->e->ft));

    /* A third IPv6 connection evicts the half-open IPv6 flow, not an IPv4 one. */
    pb_conv_init(&new6, 6);
    new6.cport = 42002;
    open_conn(h, &new6, 2 * MS);
    cr_assert_eq(h->stats.flows_evicted, 1u);
    cr_assert_null(find_flow(h, &syn6));
    cr_assert_not_null(find_flow(h, &new6));
    cr_assert_not_null(find_flow(h, &v4[0]));
    cr_assert_not_null(find_flow(h, &v4[1]));

    /* Both IPv6 flows established: a fourth is refused, its packets dropped and counted. */
    pb_conv_init(&late6, 6);
    late6.cport = 42003;
    run_at(h, &late6, pb_handshake, 3, 3 * MS, PB_FRAMES);
    cr_assert_null(find_flow(h, &late6));
    cr_assert_eq(h->stats.flows_dropped, 3u);
    cr_assert_eq(h->stats.ipv6_pool_full, 3u);
    cr_assert_eq(h->stats.flows_evicted, 1u, "no IPv4 flow evicted for an IPv6 one");
    cr_assert_eq(flow_table_used(h->e->ft), 4u, "the table itself has room");

    /* An IPv4 connection still gets an entry, and the IPv6 flows' events carry their
     * addresses from the pool. */
    struct pb_conv v4new;
    pb_conv_init(&v4new, 4);
    v4new.cport = 41002;
    open_conn(h, &v4new, 4 * MS);
    cr_assert_not_null(find_flow(h, &v4new));
    run1(h, &est6, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), 5 * MS);
    engine_flush(h->e);
    cr_assert_geq(h->nev, 1u);
    const struct rst_event *ev = &h->ev[0];
    cr_assert_eq(ev->family, 6);
    cr_assert_arr_eq(ev->client_ip, est6.cli, 16);
    cr_assert_arr_eq(ev->server_ip, est6.srv, 16);
    cr_assert_eq(ev->client_port, 42000);
    cr_assert_eq(ev->cause, CAUSE_SERVER_ABORT);
    pb_harness_free(h);
}

Test(engine, eviction_prefers_closed_over_half_open)
{
    const uint32_t cap = 4;
    struct pb_harness *h = harness(cap, SEC);
    struct pb_conv half1, half2, closed, est, n;
    const struct pb_seg close[] = {
        PB_C(FIN | ACK, 101, 1001, 0),
        PB_S(FIN | ACK, 1001, 102, 0),
        PB_C(ACK, 102, 1002, 0),
    };

    /* Insertion order puts the half-open flows first in the table. */
    pb_conv_init(&half1, 4);
    half1.cport = 46001;
    pb_conv_init(&half2, 4);
    half2.cport = 46002;
    pb_conv_init(&closed, 4);
    closed.cport = 46003;
    pb_conv_init(&est, 4);
    est.cport = 46004;
    run_at(h, &half1, pb_handshake, 1, 0, PB_FRAMES);
    run_at(h, &half2, pb_handshake, 1, 0, PB_FRAMES);
    open_conn(h, &closed, 0);
    run_at(h, &closed, close, 3, 0, PB_FRAMES);
    open_conn(h, &est, 0);
    cr_assert_eq(flow_table_used(h->e->ft), cap);

    pb_conv_init(&n, 4);
    n.cport = 47000;
    run_at(h, &n, pb_handshake, 1, MS, PB_FRAMES);
    cr_assert_eq(h->stats.flows_evicted, 1u);
    cr_assert_null(find_flow(h, &closed), "the closed flow goes first");
    cr_assert_not_null(find_flow(h, &half1));
    cr_assert_not_null(find_flow(h, &half2));
    cr_assert_not_null(find_flow(h, &n));

    /* Then half-open ones; the established one survives any number of SYNs. */
    for (int i = 1; i < 50; i++) {
        n.cport = (uint16_t)(47000 + i);
        run_at(h, &n, pb_handshake, 1, 2 * MS, PB_FRAMES);
        cr_assert_not_null(find_flow(h, &n), "SYN %d found no room", i);
        cr_assert_not_null(find_flow(h, &est), "established flow evicted by SYN %d", i);
    }
    cr_assert_null(find_flow(h, &half1));
    cr_assert_eq(h->stats.flows_evicted, 50u);
    cr_assert_eq(h->stats.flows_dropped, 0u);
    cr_assert_eq(flow_table_used(h->e->ft), cap);
    pb_harness_free(h);
}

Test(engine, evicted_flow_emits_its_pending_event)
{
    const uint32_t cap = 2;
    struct pb_harness *h = harness(cap, 10 * SEC);
    struct pb_conv a, b, n;

    pb_conv_init(&a, 4);
    a.cport = 48001;
    pb_conv_init(&b, 4);
    b.cport = 48002;
    open_conn(h, &a, 0);
    open_conn(h, &b, 0);
    run1(h, &a, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), MS);
    cr_assert_eq(h->nev, 0u);
    pb_conv_init(&n, 4);
    n.cport = 48003;
    run_at(h, &n, pb_handshake, 1, 2 * MS, PB_FRAMES);
    cr_assert_eq(h->stats.flows_evicted, 1u);
    cr_assert_eq(h->nev, 1u, "the reset flow's event is emitted when it is evicted");
    cr_assert_eq(h->ev[0].cause, CAUSE_SERVER_ABORT);
    cr_assert_eq(h->ev[0].client_port, 48001);
    cr_assert_not_null(find_flow(h, &b));
    check_sums(h);
    pb_harness_free(h);
}

/* A table full of established connections under a SYN flood: a victim search that finds
 * nothing makes the next inserts skip it (doubling up to a cap), since each search reads
 * dozens of entries, mostly cache misses. Nothing else changes: every SYN is dropped as it
 * would have been, and once an entry becomes evictable a new connection takes it within the
 * backoff (and after at least one skipped SYN: without the backoff the very next one would). */
Test(engine, futile_victim_searches_back_off_and_recover)
{
    const uint32_t cap = 64;
    struct pb_conv est, c;
    struct pb_harness *h = full_of_established(cap, &est, 44000, &c, "172.16.0.1");
    uint16_t port = 1024;
    for (int i = 0; i < 2000; i++, port++) {
        c.cport = port;
        run1(h, &c, (struct pb_seg)PB_C(SYN, 1, 0, 0), MS);
    }
    cr_assert_eq(h->stats.flows_dropped, 2000u);
    cr_assert_eq(h->stats.flows_evicted, 0u);
    cr_assert_eq(h->e->evict_backoff[0], 256u, "backoff %u", h->e->evict_backoff[0]);

    cr_assert_gt(h->e->evict_wait[0], 0u, "the next SYN must be one that skips the search");
    /* One connection resets: its entry may now be evicted. */
    est.cport = 44000;
    run1(h, &est, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), 2 * MS);
    uint32_t skipped = 0;
    for (; h->stats.flows_evicted == 0 && skipped < 1000; skipped++, port++) {
        c.cport = port;
        run1(h, &c, (struct pb_seg)PB_C(SYN, 1, 0, 0), 2 * MS);
    }
    cr_assert_eq(h->stats.flows_evicted, 1u, "no SYN took the reset entry");
    /* A search can miss the one victim among 64 entries: allow a few rounds of backoff. */
    cr_assert(skipped >= 2 && skipped <= 3 * 257, "tracked after %u SYNs", skipped);
    cr_assert_not_null(find_flow(h, &c), "the SYN that evicted is tracked");
    cr_assert_eq(h->e->evict_backoff[0], 0u, "a search that finds a victim ends the backoff");
    check_sums(h);
    pb_harness_free(h);
}

Test(engine, rst_flood_with_full_table)
{
    const uint32_t cap = 8;
    struct pb_conv c, r;
    struct pb_harness *h = full_of_established(cap, &c, 49000, &r, "198.51.100.1");
    for (int i = 0; i < 100; i++) {
        r.cport = (uint16_t)(2000 + i);
        run1(h, &r, (struct pb_seg)PB_S(RST, 1, 0, 0), MS + (uint64_t)i);
    }
    cr_assert_eq(h->nev, 100u, "with no room, each RST is judged and emitted at once");
    for (uint32_t i = 0; i < h->nev; i++) {
        cr_assert_eq(h->ev[i].cause, CAUSE_NO_FLOW);
        cr_assert_eq(h->ev[i].rst_count, 1u);
        cr_assert_eq(h->ev[i].client_port, 2000 + i);
    }
    cr_assert_eq(h->stats.causes[CAUSE_NO_FLOW], 100u);
    cr_assert_eq(h->stats.rst_packets, 100u);
    cr_assert_eq(h->stats.flows_evicted, 0u, "a RST never evicts");
    cr_assert_eq(h->stats.flows_created, cap);
    cr_assert_eq(flow_table_used(h->e->ft), cap);
    c.cport = 49000;
    cr_assert_not_null(find_flow(h, &c));
    check_sums(h);
    pb_harness_free(h);
}

/* A reset storm fills the held-event pool: the event nearest its verdict is judged early to
 * make room, and the new one is held, so what follows its RST still counts. */
Test(engine, full_rst_pool_judges_the_earliest_early)
{
    struct pb_harness *h = harness(256, SEC);
    struct pb_conv c;
    const uint32_t cap = h->e->rst_cap;

    cr_assert_eq(cap, 64u, "the smallest pool");
    pb_conv_init(&c, 4);
    fill_established(h, &c, cap + 1, 30000);
    for (uint32_t i = 0; i < cap; i++) {
        c.cport = (uint16_t)(30000 + i);
        run1(h, &c, (struct pb_seg)PB_C(RST | ACK, 101, 1001, 0), MS + i);
    }
    cr_assert_eq(h->nev, 0u, "every event held");
    cr_assert_eq(h->stats.rst_pool_full, 0u);
    c.cport = (uint16_t)(30000 + cap);
    run1(h, &c, (struct pb_seg)PB_C(RST | ACK, 101, 1001, 0), 100 * MS);
    cr_assert_eq(h->stats.rst_pool_full, 1u);
    cr_assert_eq(h->nev, 1u, "one event judged to make room");
    cr_assert_eq(h->ev[0].client_port, 30000, "the earliest held, not the new one (port %u)",
                 h->ev[0].client_port);
    cr_assert_eq(h->ev[0].cause, CAUSE_CLIENT_ABORT);
    /* The purported sender carries on: seen only because its RST is held. */
    run1(h, &c, (struct pb_seg)PB_C(ACK | PSH, 101, 1001, 50), 101 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, cap + 1);
    for (uint32_t i = 0; i < h->nev; i++) {
        enum rst_cause want =
            h->ev[i].client_port == 30000 + cap ? CAUSE_MIDDLEBOX_INJECTED : CAUSE_CLIENT_ABORT;
        cr_assert_eq(h->ev[i].cause, want, "port %u: %s", h->ev[i].client_port,
                     cause_name(h->ev[i].cause));
    }
    cr_assert_eq(h->stats.rst_pool_full, 1u);
    check_sums(h);
    pb_harness_free(h);
}

Test(engine, rst_flood_does_not_block_new_connections)
{
    const uint32_t cap = 16;
    struct pb_harness *h = harness(cap, SEC);
    struct pb_conv r, c;

    pb_conv_init(&r, 6);
    for (int i = 0; i < 300; i++) {
        r.cport = (uint16_t)(3000 + i);
        run1(h, &r, (struct pb_seg)PB_C(RST | ACK, 1, 1, 0), (uint64_t)i);
    }
    cr_assert_eq(flow_table_used(h->e->ft), cap, "lone RSTs occupy the free entries");
    cr_assert_eq(h->nev, 300u - cap);
    pb_conv_init(&c, 6);
    c.cport = 60000;
    open_conn(h, &c, MS);
    struct flow *f = find_flow(h, &c);
    cr_assert_not_null(f, "a SYN evicts a RST-only entry");
    cr_assert_eq(f->state, CS_ESTABLISHED);
    cr_assert_eq(h->stats.flows_evicted, 1u);
    engine_flush(h->e);
    cr_assert_eq(h->stats.causes[CAUSE_NO_FLOW], 300u);
    check_sums(h);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- reuse */

Test(engine, port_reuse_after_rst)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c, c2;

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run1(h, &c, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), MS);
    /* The client reconnects from the same port 100 ms later, inside the fold window. */
    c2 = c;
    c2.cisn = 9000000;
    c2.sisn = 7000000;
    run_at(h, &c2, pb_handshake, 1, 100 * MS, PB_FRAMES);
    cr_assert_eq(h->nev, 1u, "the old connection's event closes when the tuple is reused");
    cr_assert_eq(h->ev[0].cause, CAUSE_SERVER_ABORT);
    cr_assert_eq(h->stats.flows_created, 2u);
    cr_assert_eq(h->stats.flows_expired, 1u);
    struct flow *f = find_flow(h, &c2);
    cr_assert_not_null(f);
    cr_assert_eq(f->state, CS_SYN_SENT);
    cr_assert_eq(f->dir[pb_conv_dir(&c2, PB_C2S)].isn, c2.cisn, "a fresh entry");
    cr_assert_eq(f->rst_slot, 0u);

    run_at(h, &c2, &pb_handshake[1], 2, 101 * MS, PB_FRAMES);
    run_at(h, &c2, pb_exchange, 3, 102 * MS, PB_FRAMES);
    run1(h, &c2, (struct pb_seg)PB_C(RST | ACK, 101, 1001, 0), 200 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 2u);
    cr_assert_eq(h->ev[1].cause, CAUSE_CLIENT_ABORT);
    cr_assert_eq(h->ev[1].state, CS_ESTABLISHED);
    cr_assert_eq(h->ev[1].seq, c2.cisn + 101);
    check_sums(h);
    pb_harness_free(h);
}

Test(engine, port_reuse_after_close_and_syn_retransmit)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c, c2;
    const struct pb_seg close[] = {
        PB_C(FIN | ACK, 101, 1001, 0),
        PB_S(FIN | ACK, 1001, 102, 0),
        PB_C(ACK, 102, 1002, 0),
    };

    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    run_at(h, &c, close, 3, MS, PB_FRAMES);
    c2 = c;
    c2.cisn = 123456789;
    run_at(h, &c2, pb_handshake, 1, 2 * MS, PB_FRAMES);
    run_at(h, &c2, pb_handshake, 1, 1002 * MS, PB_FRAMES); /* SYN retransmission */
    cr_assert_eq(h->stats.flows_created, 2u, "a retransmitted SYN is the same attempt");
    cr_assert_eq(h->stats.flows_expired, 1u);
    /* A new attempt with another ISN while the first is unanswered: a new connection. */
    c2.cisn = 55;
    run_at(h, &c2, pb_handshake, 1, 3000 * MS, PB_FRAMES);
    cr_assert_eq(h->stats.flows_created, 3u);
    cr_assert_eq(h->nev, 0u);
    pb_harness_free(h);
}

/* Traffic after a lone RST: the sensor now sees a connection mid-stream. */
Test(engine, lone_rst_then_traffic_becomes_midstream)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;
    /* Upload: the server only acknowledges. */
    const struct pb_seg s[] = {
        PB_C(ACK | PSH, 1, 1, 1000),
        PB_S(ACK, 1, 1001, 0),
        PB_C(ACK | PSH, 1001, 1, 1000),
        PB_S(ACK, 1, 2001, 0),
    };

    pb_conv_init(&c, 4);
    /* An injected RST the server ignored was the first packet the sensor saw. */
    run1(h, &c, (struct pb_seg)PB_C(RST | ACK, 1u << 30, 1, 0), 0);
    run_at(h, &c, s, 4, 10 * MS, PB_FRAMES);
    struct flow *f = find_flow(h, &c);
    cr_assert_not_null(f);
    cr_assert_eq(f->state, CS_MIDSTREAM, "state %s", conn_state_name(f->state));
    engine_age(h->e, c.t0 + 2 * SEC);
    cr_assert_eq(h->nev, 1u);
    cr_assert_eq(h->ev[0].cause, CAUSE_NO_FLOW);
    /* The connection is then reset for real: an abort, not an unclassified RST. */
    run1(h, &c, (struct pb_seg)PB_S(RST | ACK, 1, 2001, 0), 3 * SEC);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 2u);
    cr_assert_eq(h->ev[1].check, SEQ_EXACT);
    cr_assert_eq(h->ev[1].state, CS_MIDSTREAM, "state %s", conn_state_name(h->ev[1].state));
    cr_assert_eq(h->ev[1].cause, CAUSE_SERVER_ABORT, "cause %s", cause_name(h->ev[1].cause));
    check_sums(h);
    pb_harness_free(h);
}

/* Two lone RSTs on one tuple, farther apart than the fold window: both are no_flow. */
Test(engine, repeated_lone_rsts_stay_no_flow)
{
    struct pb_harness *h = harness(64, SEC);
    struct pb_conv c;
    const struct pb_seg rst = PB_C(RST | ACK, 100, 100, 0);

    pb_conv_init(&c, 4);
    run1(h, &c, rst, 0);
    run1(h, &c, rst, 3 * SEC);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 2u);
    cr_assert_eq(h->ev[0].cause, CAUSE_NO_FLOW);
    cr_assert_eq(h->ev[1].cause, CAUSE_NO_FLOW, "cause %s", cause_name(h->ev[1].cause));
    cr_assert_eq(h->ev[1].state, CS_NONE);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- paths agree */

Test(engine, frames_and_segments_give_the_same_events)
{
    struct pb_harness *hf = harness(32, SEC), *hi = harness(32, SEC);
    struct pb_conv c;

    for (int round = 0; round < 2; round++) {
        struct pb_harness *h = round ? hi : hf;
        enum pb_mode mode = round ? PB_INFO : PB_FRAMES;
        for (size_t i = 0; i < sizeof(cause_cases) / sizeof(cause_cases[0]); i++) {
            pb_conv_init(&c, i & 1 ? 6 : 4);
            c.cport = (uint16_t)(30000 + i);
            for (int k = 0; k < cause_cases[i].n; k++) {
                struct pb_seg s = cause_cases[i].segs[k];
                s.t = (uint64_t)(i * 100 + k) * MS;
                pb_run(h, &c, &s, 1, mode);
            }
        }
        engine_flush(h->e);
    }
    cr_assert_eq(hf->nev, sizeof(cause_cases) / sizeof(cause_cases[0]));
    cr_assert_eq(hi->nev, hf->nev);
    for (uint32_t i = 0; i < hf->nev; i++)
        cr_assert_arr_eq(&hf->ev[i], &hi->ev[i], sizeof(struct rst_event), "event %u", i);
    cr_assert_arr_eq(hf->stats.causes, hi->stats.causes, sizeof(hf->stats.causes));
    cr_assert_eq(hf->stats.tcp_packets, hi->stats.tcp_packets);
    cr_assert_eq(hi->stats.packets, 0u, "engine_segment does not count frames");
    pb_harness_free(hf);
    pb_harness_free(hi);
}

/* engine_input_burst() of any size ends where as many engine_input() calls end: the same
 * counters, the same events in the same order. Every cause's conversation at once, their
 * segments interleaved so that each burst holds many flows, in a table too small for them
 * (evictions, drops, a held-event pool that fills), with tagged, truncated and non-IP frames
 * mixed in. The fuzzer's burst twin checks the same on arbitrary input. */
Test(engine, bursts_equal_frame_by_frame)
{
    enum { NCASES = sizeof(cause_cases) / sizeof(cause_cases[0]), MAXF = 8 * NCASES };
    static const unsigned sizes[] = {ENGINE_BURST, 7, 1, 19, 2};
    static uint8_t buf[MAXF][PB_MAX_FRAME];
    const uint8_t *frames[MAXF];
    uint32_t lens[MAXF];
    uint64_t ts[MAXF];
    unsigned n = 0;
    struct pb_conv c;
    struct pb_pkt pk;

    for (int k = 0; k < 8; k++) {
        for (size_t i = 0; i < NCASES; i++) {
            if (k >= cause_cases[i].n)
                continue;
            pb_conv_init(&c, i % 3 == 1 ? 6 : 4);
            c.cport = (uint16_t)(30000 + i % (NCASES / 2)); /* tuples reused: port reuse */
            if (i % 4 == 2) {
                c.n_vlans = 1;
                c.vlan_tpid[0] = PB_ETH_VLAN;
                c.vlan_tci[0] = (uint16_t)(100 + i);
            }
            pb_conv_pkt(&c, &cause_cases[i].segs[k], &pk);
            lens[n] = pb_build(&pk, buf[n], PB_MAX_FRAME, NULL);
            if (i % 11 == 5 && k == 1)
                lens[n] = 30; /* cut inside the IP header: malformed */
            ts[n] = SEC + (uint64_t)n * 50 * MS;
            n++;
        }
        pb_pkt_init(&pk, 4);
        pk.ethertype = PB_ETH_ARP;
        lens[n] = pb_build(&pk, buf[n], PB_MAX_FRAME, NULL);
        ts[n] = SEC + (uint64_t)n * 50 * MS;
        n++;
    }
    cr_assert(n <= MAXF);
    for (unsigned i = 0; i < n; i++)
        frames[i] = buf[i];

    struct pb_harness *one = harness(8, 200 * MS), *many = harness(8, 200 * MS);
    for (unsigned i = 0; i < n; i++)
        engine_input(one->e, frames[i], lens[i], ts[i]);
    for (unsigned i = 0, b = 0; i < n; b++) {
        unsigned m = sizes[b % (sizeof(sizes) / sizeof(sizes[0]))];
        if (m > n - i)
            m = n - i;
        engine_input_burst(many->e, frames + i, lens + i, ts + i, NULL, m);
        i += m;
    }
    engine_flush(one->e);
    engine_flush(many->e);
    cr_assert_gt(one->nev, 5u, "the frames make reset events");
    cr_assert_gt(one->stats.flows_evicted + one->stats.flows_dropped, 0u, "the table fills");
    cr_assert_gt(one->stats.malformed_total, 0u);
    cr_assert_gt(one->stats.non_ip, 0u);
    cr_assert_eq(many->nev, one->nev);
    for (uint32_t i = 0; i < one->nev; i++)
        cr_assert_arr_eq(&many->ev[i], &one->ev[i], sizeof(struct rst_event), "event %u", i);
    cr_assert_arr_eq(&many->stats, &one->stats, sizeof(one->stats), "every counter");
    pb_harness_free(one);
    pb_harness_free(many);
}

/* Stale entry hints: within one burst, new connections evict closed ones from a full table
 * and take their entries; later segments of the closed ones, whose stage-2 hint names those
 * entries, must not be applied to the new connections. */
Test(engine, burst_hints_of_evicted_flows)
{
    enum { N = 8 };
    static uint8_t buf[3 * N][PB_MAX_FRAME];
    const uint8_t *frames[3 * N];
    uint32_t lens[3 * N];
    uint64_t ts[3 * N];
    static const struct pb_seg close4[4] = {
        PB_C(FIN | ACK, 1, 1, 0), PB_S(FIN | ACK, 1, 2, 0), PB_C(ACK, 2, 2, 0),
        PB_C(ACK | PSH, 2, 2, 10), /* a straggler, sent after the close */
    };
    struct pb_harness *one = harness(N, 200 * MS), *many = harness(N, 200 * MS);
    struct pb_conv c;
    struct pb_pkt pk;
    unsigned n = 0;

    /* N closed connections fill the table (each one's straggler kept for later). */
    for (int i = 0; i < N; i++) {
        pb_conv_init(&c, 4);
        c.cport = (uint16_t)(20000 + i);
        for (int k = 0; k < 3; k++) {
            struct pb_seg sg = pb_handshake[k];
            sg.t = (uint64_t)(i * 10 + k) * MS;
            pb_run(one, &c, &sg, 1, PB_FRAMES);
            pb_run(many, &c, &sg, 1, PB_FRAMES);
        }
        for (int k = 0; k < 3; k++) {
            struct pb_seg sg = close4[k];
            sg.t = (uint64_t)(100 + i * 10 + k) * MS;
            pb_run(one, &c, &sg, 1, PB_FRAMES);
            pb_run(many, &c, &sg, 1, PB_FRAMES);
        }
    }
    cr_assert_eq(one->stats.flows_active, (uint64_t)N);
    /* One burst: N new connections' SYNs (each evicts a closed one), then the stragglers. */
    for (int i = 0; i < 2 * N; i++) {
        pb_conv_init(&c, 4);
        c.cport = (uint16_t)(i < N ? 30000 + i : 20000 + i - N);
        pb_conv_pkt(&c, i < N ? &pb_handshake[0] : &close4[3], &pk);
        lens[n] = pb_build(&pk, buf[n], PB_MAX_FRAME, NULL);
        frames[n] = buf[n];
        ts[n] = SEC + (uint64_t)n * MS;
        n++;
    }
    for (unsigned i = 0; i < n; i++)
        engine_input(one->e, frames[i], lens[i], ts[i]);
    engine_input_burst(many->e, frames, lens, ts, NULL, n);
    cr_assert_gt(one->stats.flows_evicted, 0u);
    engine_flush(one->e);
    engine_flush(many->e);
    cr_assert_eq(many->nev, one->nev);
    cr_assert_arr_eq(&many->stats, &one->stats, sizeof(one->stats), "every counter");
    pb_harness_free(one);
    pb_harness_free(many);
}

Test(engine, stats_accumulate_sums_workers)
{
    struct pb_harness *a = harness(16, SEC), *b = harness(16, SEC);
    struct pb_conv c;

    pb_conv_init(&c, 4);
    open_conn(a, &c, 0);
    run1(a, &c, (struct pb_seg)PB_C(RST | ACK, 101, 1001, 0), MS);
    engine_flush(a->e);
    open_conn(b, &c, 0);
    engine_flush(b->e);

    struct pb_harness *acc = harness(1, SEC);
    stats_accumulate(&acc->stats, &a->stats);
    stats_accumulate(&acc->stats, &b->stats);
    cr_assert_eq(acc->stats.packets, 13u);
    cr_assert_eq(acc->stats.resets, 1u);
    cr_assert_eq(acc->stats.causes[CAUSE_CLIENT_ABORT], 1u);
    cr_assert_eq(acc->stats.flows_created, 2u);
    cr_assert_eq(acc->stats.flows_expired, 2u);
    cr_assert_eq(acc->stats.events_dropped, 0u);
    pb_harness_free(acc);
    pb_harness_free(a);
    pb_harness_free(b);
}
