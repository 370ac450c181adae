/*
 * The full cause taxonomy end to end through the engine: one scripted conversation per cause
 * with the wire signature the Linux kernel (or a middlebox) produces, and a near miss for
 * each that must land elsewhere. Also the verdict hold, mirrored duplicates, overload signals
 * and the per-host TTL baseline.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "engine.h"
#include "host_table.h"
#include "pktbuild.h"

#define SYN TCP_SYN
#define ACK TCP_ACK
#define RST TCP_RST
#define FIN TCP_FIN
#define PSH TCP_PSH
#define MS  1000ULL
#define SEC 1000000ULL

/* Engine with the product's defaults (hold 2 x RTT within [20 ms, 500 ms], idle threshold
 * 240 s), a whole-table ageing step, and an overload-signal recorder. */
struct sigrec {
    unsigned n;
    struct overload_event last;
};

static void sig_sink(void *ctx, const struct overload_event *ov)
{
    struct sigrec *r = ctx;
    r->n++;
    r->last = *ov;
}

static struct pb_harness *harness_cfg(struct engine_config *cfg)
{
    cfg->age_budget = 1u << 20;
    cfg->age_sweep_us = 0;
    return pb_harness_new(cfg);
}

static struct pb_harness *harness(void)
{
    struct engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.max_flows = 256;
    return harness_cfg(&cfg);
}

/* One segment at t µs after t0, with an optional TTL override. */
static void at(struct pb_harness *h, const struct pb_conv *c, struct pb_seg s, uint64_t t)
{
    s.t = t;
    pb_run(h, c, &s, 1, PB_FRAMES);
}

static void at_ttl(struct pb_harness *h, const struct pb_conv *c, struct pb_seg s, uint64_t t,
                   uint8_t ttl)
{
    s.ttl = ttl;
    at(h, c, s, t);
}

/* Handshake with a 10 ms RTT (5 ms each leg) and one request/response: client next 101,
 * server next 1001. Ends at t + 30 ms. */
static void open_conn(struct pb_harness *h, const struct pb_conv *c, uint64_t t)
{
    at(h, c, (struct pb_seg)PB_C(SYN, 0, 0, 0), t);
    at(h, c, (struct pb_seg)PB_S(SYN | ACK, 0, 1, 0), t + 5 * MS);
    at(h, c, (struct pb_seg)PB_C(ACK, 1, 1, 0), t + 10 * MS);
    at(h, c, (struct pb_seg)PB_C(ACK | PSH, 1, 1, 100), t + 15 * MS);
    at(h, c, (struct pb_seg)PB_S(ACK | PSH, 1, 101, 1000), t + 20 * MS);
    at(h, c, (struct pb_seg)PB_C(ACK, 101, 1001, 0), t + 30 * MS);
}

/* Flush and return the only event. */
static const struct rst_event *only_event(struct pb_harness *h)
{
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u, "events: %u", h->nev);
    return &h->ev[0];
}

static void expect_cause(const struct rst_event *ev, enum rst_cause want, const char *what)
{
    cr_assert_eq(ev->cause, want, "%s: got %s, want %s", what, cause_name(ev->cause),
                 cause_name(want));
}

/* ---------------------------------------------------------------- handshake phase */

Test(causes, refused_by_the_host)
{
    for (int fam = 4; fam <= 6; fam += 2) {
        struct pb_harness *h = harness();
        struct pb_conv c;
        pb_conv_init(&c, fam);
        c.cport = 40001;
        open_conn(h, &c, 0); /* a first connection teaches the server's TTL (60) */
        c.cport = 40002;
        at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), SEC);
        at(h, &c, (struct pb_seg)PB_S(RST | ACK, 0, 1, 0), SEC + 1 * MS);
        engine_flush(h->e);
        cr_assert_eq(h->nev, 1u);
        expect_cause(&h->ev[0], CAUSE_REFUSED, "RST|ACK acking the SYN, server's TTL");
        cr_assert_eq(h->ev[0].origin, ORIGIN_HOST, "host baseline fits");
        cr_assert_eq(h->ev[0].sender, 1);
        pb_harness_free(h);
    }
}

Test(causes, refused_without_baseline_has_unknown_origin)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), 0);
    at(h, &c, (struct pb_seg)PB_S(RST | ACK, 0, 1, 0), 1 * MS);
    const struct rst_event *ev = only_event(h);
    expect_cause(ev, CAUSE_REFUSED, "no baseline: no evidence of forgery");
    cr_assert_eq(ev->origin, ORIGIN_UNKNOWN);
    pb_harness_free(h);
}

Test(causes, middlebox_refused_by_ttl)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    c.cport = 40001;
    open_conn(h, &c, 0);
    c.cport = 40002;
    at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), SEC);
    at_ttl(h, &c, (struct pb_seg)PB_S(RST | ACK, 0, 1, 0), SEC + 1 * MS, 64); /* not 60 */
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    expect_cause(&h->ev[0], CAUSE_MIDDLEBOX_REFUSED, "a firewall 4 hops nearer");
    cr_assert_eq(h->ev[0].origin, ORIGIN_MIDDLEBOX);
    cr_assert(h->ev[0].evidence & EV_TTL_MISMATCH);
    pb_harness_free(h);
}

Test(causes, middlebox_refused_when_the_server_answers_after_it)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), 0);
    at(h, &c, (struct pb_seg)PB_S(RST | ACK, 0, 1, 0), 1 * MS);
    at(h, &c, (struct pb_seg)PB_S(SYN | ACK, 0, 1, 0), 5 * MS); /* the real server */
    const struct rst_event *ev = only_event(h);
    expect_cause(ev, CAUSE_MIDDLEBOX_REFUSED, "the purported sender carried on");
    cr_assert(ev->evidence & EV_SENDER_CONTINUED);
    pb_harness_free(h);
}

Test(causes, accept_overflow_and_its_near_miss)
{
    for (int late = 0; late < 2; late++) {
        struct pb_harness *h = harness();
        struct pb_conv c;
        pb_conv_init(&c, 4);
        at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), 0);
        at(h, &c, (struct pb_seg)PB_S(SYN | ACK, 0, 1, 0), 1 * MS);
        at(h, &c, (struct pb_seg)PB_C(ACK, 1, 1, 0), 2 * MS);
        uint64_t t = late ? 5 * SEC : 2 * MS;
        at(h, &c, (struct pb_seg)PB_C(ACK | PSH, 1, 1, 100), t);
        /* Linux listen overflow with tcp_abort_on_overflow=1: bare RST, seq = ISN + 1. */
        at(h, &c, (struct pb_seg)PB_S(RST, 1, 0, 0), t + 1 * MS);
        const struct rst_event *ev = only_event(h);
        expect_cause(ev, late ? CAUSE_STALE_CONNECTION : CAUSE_ACCEPT_OVERFLOW,
                     late ? "5 s after the handshake" : "right after the handshake");
        pb_harness_free(h);
    }
}

Test(causes, client_gives_up_during_the_handshake)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), 0);
    at(h, &c, (struct pb_seg)PB_C(RST | ACK, 1, 0, 0), 3 * SEC);
    expect_cause(only_event(h), CAUSE_CLIENT_ABORT, "client RST after its own SYN");
    pb_harness_free(h);
}

Test(causes, synack_backscatter_is_no_flow)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    at(h, &c, (struct pb_seg)PB_S(SYN | ACK, 0, 1, 0), 0); /* its SYN was spoofed elsewhere */
    at(h, &c, (struct pb_seg)PB_C(RST, 1, 0, 0), 1 * MS);
    const struct rst_event *ev = only_event(h);
    expect_cause(ev, CAUSE_NO_FLOW, "RST answering a SYN-ACK without SYN");
    cr_assert_eq(ev->sender, 0);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- established */

Test(causes, stale_connection_bare_rst_answering_data)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    at(h, &c, (struct pb_seg)PB_C(ACK | PSH, 101, 1001, 50), 10 * SEC);
    at(h, &c, (struct pb_seg)PB_S(RST, 1001, 0, 0), 10 * SEC + 1 * MS);
    const struct rst_event *ev = only_event(h);
    expect_cause(ev, CAUSE_STALE_CONNECTION, "failover host without the socket");
    cr_assert_eq(ev->origin, ORIGIN_HOST);
    cr_assert_eq(ev->check, SEQ_EXACT);
    pb_harness_free(h);
}

Test(causes, port_reuse_syn_challenge_ack_rst_is_stale_connection)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    /* The client forgot the connection and reuses the port with a new ISN. */
    struct pb_seg syn = PB_C(SYN, 777777, 0, 0);
    at(h, &c, syn, 5 * SEC);
    at(h, &c, (struct pb_seg)PB_S(ACK, 1001, 101, 0), 5 * SEC + 1 * MS); /* challenge ACK */
    at(h, &c, (struct pb_seg)PB_C(RST, 101, 0, 0), 5 * SEC + 2 * MS);
    const struct rst_event *ev = only_event(h);
    expect_cause(ev, CAUSE_STALE_CONNECTION, "RFC 9293 half-open discovery");
    cr_assert_eq(ev->sender, 0);
    cr_assert_eq(ev->check, SEQ_EXACT, "judged against the old connection");
    pb_harness_free(h);
}

Test(causes, aborts_carry_ack)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 6);
    open_conn(h, &c, 0);
    at(h, &c, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), SEC);
    expect_cause(only_event(h), CAUSE_SERVER_ABORT, "socket-owned RST|ACK");
    pb_harness_free(h);
}

Test(causes, data_after_close)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    at(h, &c, (struct pb_seg)PB_S(FIN | ACK, 1001, 101, 0), 5 * SEC); /* idle keep-alive */
    at(h, &c, (struct pb_seg)PB_C(ACK, 101, 1002, 0), 5 * SEC + 1 * MS);
    at(h, &c, (struct pb_seg)PB_C(ACK | PSH, 101, 1002, 80), 6 * SEC); /* next request */
    at(h, &c, (struct pb_seg)PB_S(RST, 1002, 0, 0), 6 * SEC + 1 * MS);
    const struct rst_event *ev = only_event(h);
    expect_cause(ev, CAUSE_DATA_AFTER_CLOSE, "keep-alive race");
    cr_assert_eq(ev->state, CS_FIN_WAIT);
    pb_harness_free(h);
}

Test(causes, after_fin_without_late_data)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    at(h, &c, (struct pb_seg)PB_S(FIN | ACK, 1001, 101, 0), 1 * SEC);
    at(h, &c, (struct pb_seg)PB_C(FIN | ACK, 101, 1002, 0), 1 * SEC + 1 * MS);
    at(h, &c, (struct pb_seg)PB_C(RST | ACK, 102, 1002, 0), 1 * SEC + 2 * MS);
    expect_cause(only_event(h), CAUSE_AFTER_FIN, "RST closing a FIN exchange");
    pb_harness_free(h);
}

Test(causes, keepalive_timeout_and_answered_probes)
{
    for (int answered = 0; answered < 2; answered++) {
        struct pb_harness *h = harness();
        struct pb_conv c;
        pb_conv_init(&c, 4);
        open_conn(h, &c, 0);
        for (int i = 0; i < 3; i++) {
            at(h, &c, (struct pb_seg)PB_C(ACK, 100, 1001, 0), (uint64_t)(60 + i) * SEC);
            if (answered)
                at(h, &c, (struct pb_seg)PB_S(ACK, 1001, 101, 0), (uint64_t)(60 + i) * SEC + MS);
        }
        at(h, &c, (struct pb_seg)PB_C(RST | ACK, 101, 1001, 0), 63 * SEC);
        expect_cause(only_event(h), answered ? CAUSE_CLIENT_ABORT : CAUSE_KEEPALIVE_TIMEOUT,
                     answered ? "probes answered" : "three unanswered probes");
        pb_harness_free(h);
    }
}

Test(causes, idle_timeout_follows_the_threshold)
{
    for (int off = 0; off < 2; off++) {
        struct engine_config cfg;
        engine_config_defaults(&cfg);
        cfg.max_flows = 64;
        if (off)
            cfg.classify.idle_threshold_us = 0;
        struct pb_harness *h = harness_cfg(&cfg);
        struct pb_conv c;
        pb_conv_init(&c, 4);
        open_conn(h, &c, 0);
        /* 300 s of silence; the next request draws a RST "from the server" at another TTL:
         * an expired load-balancer or firewall entry answering for it. */
        at(h, &c, (struct pb_seg)PB_C(ACK | PSH, 101, 1001, 40), 300 * SEC);
        at_ttl(h, &c, (struct pb_seg)PB_S(RST, 1001, 0, 0), 300 * SEC + 1 * MS, 64);
        const struct rst_event *ev = only_event(h);
        expect_cause(ev, off ? CAUSE_MIDDLEBOX_INJECTED : CAUSE_IDLE_TIMEOUT,
                     off ? "threshold off" : "300 s idle >= 240 s");
        cr_assert_geq(ev->idle_ms, 299000u, "idle_ms %u", ev->idle_ms);
        cr_assert_eq(ev->origin, ORIGIN_MIDDLEBOX);
        pb_harness_free(h);
    }
}

Test(causes, injected_by_ttl)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    at_ttl(h, &c, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), 1 * SEC, 250);
    const struct rst_event *ev = only_event(h);
    expect_cause(ev, CAUSE_MIDDLEBOX_INJECTED, "TTL 250 vs the server's 60");
    cr_assert(ev->evidence & EV_TTL_MISMATCH);
    cr_assert_eq(ev->origin, ORIGIN_MIDDLEBOX);
    pb_harness_free(h);
}

Test(causes, injected_when_the_sender_carries_on)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    at(h, &c, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), 1 * SEC);
    at(h, &c, (struct pb_seg)PB_S(ACK | PSH, 1001, 101, 500), 1 * SEC + 2 * MS);
    engine_age(h->e, c.t0 + 2 * SEC);
    cr_assert_eq(h->nev, 1u);
    expect_cause(&h->ev[0], CAUSE_MIDDLEBOX_INJECTED, "server data after 'its' RST");
    cr_assert(h->ev[0].evidence & EV_SENDER_CONTINUED);
    /* The connection survived: a later genuine RST is its own event. */
    at(h, &c, (struct pb_seg)PB_C(RST | ACK, 101, 1501, 0), 3 * SEC);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 2u);
    expect_cause(&h->ev[1], CAUSE_CLIENT_ABORT, "the real end");
    pb_harness_free(h);
}

/* Open a connection, let the server send three packets whose IPv4 IDs count 0x2100..0x2102,
 * then a server RST+ACK with rst_id; return the only event. */
static struct rst_event rst_after_id_counter(uint16_t rst_id)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    struct pkt_info p;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    uint64_t t = c.t0 + SEC;
    for (int i = 0; i < 3; i++) {
        struct pb_seg s = PB_S(ACK, 1001, 101, 0);
        pb_conv_info(&c, &s, &p);
        p.ip_id = (uint16_t)(0x2100 + i);
        engine_segment(h->e, &p, t + (uint64_t)i * MS);
    }
    struct pb_seg r = PB_S(RST | ACK, 1001, 101, 0);
    pb_conv_info(&c, &r, &p);
    p.ip_id = rst_id;
    engine_segment(h->e, &p, t + 10 * MS);
    struct rst_event ev = *only_event(h);
    pb_harness_free(h);
    return ev;
}

Test(causes, injected_by_ipv4_id)
{
    struct rst_event ev = rst_after_id_counter(0x9abc); /* not from that counter */
    expect_cause(&ev, CAUSE_MIDDLEBOX_INJECTED, "IP-ID off the sender's counter");
    cr_assert(ev.evidence & EV_IPID_MISMATCH);
}

Test(causes, zero_ipid_is_a_stack_trait_not_forgery)
{
    struct rst_event ev = rst_after_id_counter(0); /* Linux stateless resets, netfilter */
    expect_cause(&ev, CAUSE_SERVER_ABORT, "IP-ID 0");
    cr_assert_eq(ev.evidence & EV_IPID_MISMATCH, 0);
}

/* ---------------------------------------------------------------- challenge ACKs */

Test(causes, in_window_rst_challenged_and_never_corrected)
{
    struct sigrec sr = {0};
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    engine_set_signal_sink(h->e, sig_sink, &sr);
    open_conn(h, &c, 0);
    at(h, &c, (struct pb_seg)PB_C(RST | ACK, 101 + 300, 1001, 0), SEC); /* in window */
    at(h, &c, (struct pb_seg)PB_S(ACK, 1001, 101, 0), SEC + 1 * MS);    /* challenge ACK */
    const struct rst_event *ev = only_event(h);
    expect_cause(ev, CAUSE_OUT_OF_WINDOW, "the receiver ignored it");
    cr_assert(ev->evidence & EV_CHALLENGE_ACK);
    cr_assert_eq(h->stats.overload[OVL_CHALLENGE_ACK], 1u);
    cr_assert_eq(sr.n, 1u);
    cr_assert_eq(sr.last.signal, OVL_CHALLENGE_ACK);
    cr_assert_eq(sr.last.server_port, 80);
    pb_harness_free(h);
}

Test(causes, rst_challenge_ack_exact_rst_is_one_event)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0);
    at(h, &c, (struct pb_seg)PB_C(RST | ACK, 101 + 300, 1001, 0), SEC);
    at(h, &c, (struct pb_seg)PB_S(ACK, 1001, 101, 0), SEC + 1 * MS);
    at(h, &c, (struct pb_seg)PB_C(RST, 101, 0, 0), SEC + 2 * MS); /* genuine, now exact */
    const struct rst_event *ev = only_event(h);
    cr_assert_eq(ev->rst_count, 2u);
    cr_assert_eq(ev->check, SEQ_EXACT);
    cr_assert(ev->evidence & EV_CHALLENGE_ACK);
    cr_assert(ev->evidence & EV_CORRECTED);
    expect_cause(ev, CAUSE_STALE_CONNECTION, "the corrected RST decides (bare: no socket)");
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- hold, duplicates */

Test(causes, hold_is_two_rtts_when_known)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    open_conn(h, &c, 0); /* RTT 10 ms -> hold 20 ms */
    at(h, &c, (struct pb_seg)PB_S(RST | ACK, 1001, 101, 0), SEC);
    engine_age(h->e, c.t0 + SEC + 20 * MS);
    cr_assert_eq(h->nev, 0u, "still held at 2 x RTT");
    engine_age(h->e, c.t0 + SEC + 20 * MS + 1);
    cr_assert_eq(h->nev, 1u, "judged right after");
    pb_harness_free(h);

    /* Unknown RTT (mid-stream): the cap, 500 ms. */
    h = harness();
    pb_conv_init(&c, 4);
    at(h, &c, (struct pb_seg)PB_C(ACK | PSH, 1, 1, 10), 0);
    at(h, &c, (struct pb_seg)PB_S(RST | ACK, 1, 11, 0), 1 * MS);
    engine_age(h->e, c.t0 + 400 * MS);
    cr_assert_eq(h->nev, 0u);
    engine_age(h->e, c.t0 + 502 * MS);
    cr_assert_eq(h->nev, 1u);
    cr_assert(h->ev[0].low_confidence, "mid-stream: roles guessed");
    cr_assert(h->ev[0].evidence & EV_MIDSTREAM);
    pb_harness_free(h);
}

Test(causes, mirrored_duplicates_are_dropped_before_analysis)
{
    struct pb_harness *one = harness(), *two = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    const struct pb_seg s[] = {
        PB_C(SYN, 0, 0, 0),         PB_S(SYN | ACK, 0, 1, 0),      PB_C(ACK, 1, 1, 0),
        PB_C(ACK | PSH, 1, 1, 100), PB_S(ACK | PSH, 1, 101, 1000), PB_S(RST | ACK, 1001, 101, 0),
    };
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        at(one, &c, s[i], i * 10 * MS);
        at(two, &c, s[i], i * 10 * MS);
        /* The egress copy of the same packet, one hop later. */
        at_ttl(two, &c, s[i], i * 10 * MS + 50, (uint8_t)((s[i].dir ? c.sttl : c.cttl) - 1));
    }
    engine_flush(one->e);
    engine_flush(two->e);
    cr_assert_eq(two->stats.duplicates, 6u);
    cr_assert_eq(one->nev, 1u);
    cr_assert_eq(two->nev, 1u);
    cr_assert_eq(two->ev[0].cause, one->ev[0].cause);
    cr_assert_eq(two->ev[0].origin, ORIGIN_HOST, "the TTL-1 copy is no forgery");
    cr_assert_eq(two->ev[0].rst_count, 1u);
    cr_assert(two->ev[0].evidence & EV_DUPLICATE);
    pb_harness_free(one);
    pb_harness_free(two);
}

/* The signature carries the sender: the same fields from the other side are no copy, however
 * close in time, while the same packet again is one. */
Test(causes, a_packet_equal_but_from_the_other_side_is_no_duplicate)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    pb_run(h, &c, pb_handshake, 3, PB_FRAMES);
    struct pb_seg s = PB_C(ACK | PSH, 1, 1, 100);
    s.t = 20 * MS;
    struct pb_pkt fwd, back;
    pb_conv_pkt(&c, &s, &fwd);
    back = fwd; /* every field the signature covers equal, the endpoints swapped */
    memcpy(back.src, fwd.dst, 16);
    memcpy(back.dst, fwd.src, 16);
    back.sport = fwd.dport;
    back.dport = fwd.sport;
    uint64_t t = pb_conv_ts(&c, &s);
    pb_input(h, &fwd, t);
    pb_input(h, &back, t + 100);
    cr_assert_eq(h->stats.duplicates, 0u, "the other side's packet was taken for a copy");
    pb_input(h, &back, t + 200);
    cr_assert_eq(h->stats.duplicates, 1u, "the same packet again is a copy");
    pb_harness_free(h);
}

/* An ACK of bytes the sensor never saw: the mirror lost them. Counted once per connection, and
 * the connection's reset is low confidence. */
Test(causes, a_capture_gap_is_counted_once_and_marks_the_reset)
{
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    pb_run(h, &c, pb_handshake, 3, PB_FRAMES);
    at(h, &c, (struct pb_seg)PB_S(ACK, 1, 201, 0), 20 * MS); /* client bytes 1..200 unseen */
    cr_assert_eq(h->stats.capture_gaps, 1u);
    at(h, &c, (struct pb_seg)PB_S(ACK, 1, 301, 0), 30 * MS);
    cr_assert_eq(h->stats.capture_gaps, 1u, "one gap per connection");
    at(h, &c, (struct pb_seg)PB_C(RST | ACK, 301, 1, 0), 40 * MS);
    engine_flush(h->e);
    cr_assert_eq(h->nev, 1u);
    cr_assert(h->ev[0].evidence & EV_CAPTURE_GAP);
    cr_assert(h->ev[0].low_confidence);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- overload signals */

Test(causes, overload_signals)
{
    struct sigrec sr = {0};
    struct pb_harness *h = harness();
    struct pb_conv c;
    pb_conv_init(&c, 4);
    engine_set_signal_sink(h->e, sig_sink, &sr);
    at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), 0);
    at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), 1 * SEC); /* same ISN: retransmission */
    at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), 3 * SEC);
    engine_age(h->e, c.t0 + 3 * SEC);
    cr_assert_eq(h->stats.overload[OVL_SYN_RETRANS], 2u);
    cr_assert_eq(h->stats.overload[OVL_SYN_UNANSWERED], 1u, "3 s without an answer");
    engine_age(h->e, c.t0 + 4 * SEC);
    cr_assert_eq(h->stats.overload[OVL_SYN_UNANSWERED], 1u, "counted once per connection");

    c.cport = 40010;
    at(h, &c, (struct pb_seg)PB_C(SYN, 0, 0, 0), 5 * SEC);
    at(h, &c, (struct pb_seg)PB_S(SYN | ACK, 0, 1, 0), 5 * SEC + MS);
    at(h, &c, (struct pb_seg)PB_S(SYN | ACK, 0, 1, 0), 6 * SEC);
    at(h, &c, (struct pb_seg)PB_C(ACK, 1, 1, 0), 6 * SEC + MS);
    struct pb_seg zw = PB_S(ACK, 1, 1, 0);
    zw.win = PB_WIN_ZERO;
    at(h, &c, zw, 7 * SEC);
    zw.ack = 1;
    at(h, &c, zw, 7 * SEC + 10 * MS); /* still zero: the same episode */
    at(h, &c, (struct pb_seg)PB_S(ACK, 1, 1, 0), 8 * SEC);
    at(h, &c, zw, 9 * SEC); /* a second episode */
    engine_flush(h->e);
    cr_assert_eq(h->stats.overload[OVL_SYNACK_RETRANS], 1u);
    cr_assert_eq(h->stats.overload[OVL_ZERO_WINDOW], 2u);
    cr_assert_eq(h->stats.overload[OVL_SYN_UNANSWERED], 1u, "an answered SYN is not counted");
    cr_assert_eq(sr.n, 2u + 1u + 1u + 2u);
    cr_assert_eq(sr.last.server_port, 80);
    cr_assert_eq(sr.last.family, 4);
    cr_assert_eq(memcmp(sr.last.server_ip, c.srv, 16), 0);
    pb_harness_free(h);
}

/* ---------------------------------------------------------------- host baselines */

Test(host_table, learns_forgets_and_follows_route_changes)
{
    struct host_table *t = host_table_create(1000, 2);
    uint8_t a[16] = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 1};
    uint8_t b[16] = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 2};

    cr_assert_not_null(t);
    cr_assert_eq(t->mask, 1023u, "rounded up to a power of two");
    cr_assert_eq(host_table_ttl(t, a), 0, "unknown");
    host_table_note(t, a, 60);
    host_table_note(t, a, 59); /* within tolerance: agrees */
    cr_assert_eq(host_table_ttl(t, a), 60);
    cr_assert_eq(host_table_ttl(t, b), 0);
    host_table_note(t, a, 50); /* one outlier does not move a baseline seen twice */
    cr_assert_eq(host_table_ttl(t, a), 60);
    host_table_note(t, a, 50); /* outvoted: the route changed */
    cr_assert_eq(host_table_ttl(t, a), 50);
    host_table_destroy(t);

    /* A one-slot table: a colliding host replaces the baseline, never mixes with it. */
    t = host_table_create(1, 2);
    host_table_note(t, a, 60);
    host_table_note(t, b, 120);
    cr_assert_eq(host_table_ttl(t, a), 0);
    cr_assert_eq(host_table_ttl(t, b), 120);
    host_table_destroy(t);
}
