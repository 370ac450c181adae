#include "engine.h"

#include <stdlib.h>

#include "rst_classify.h"
#include "seq.h"
#include "tcp_track.h"

#define EVICT_SCAN 16 /* flows examined for a victim when the table is full */

void engine_config_defaults(struct engine_config *c)
{
    c->max_flows = 1000000;
    c->fold_us = 1000000;
    c->handshake_timeout_us = 30ULL * 1000000;
    c->established_timeout_us = 3600ULL * 1000000;
    c->closed_timeout_us = 10ULL * 1000000;
    c->age_budget = 64;
    c->ttl_tolerance = 2;
    c->link = LINK_ETHERNET;
}

struct engine *engine_create(const struct engine_config *cfg, struct engine_stats *stats,
                             event_sink_fn sink, void *sink_ctx, uint8_t id)
{
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->cfg = *cfg;
    e->ft = flow_table_create(cfg->max_flows);
    if (!e->ft) {
        free(e);
        return NULL;
    }
    e->stats = stats;
    e->sink = sink;
    e->sink_ctx = sink_ctx;
    e->id = id;
    return e;
}

void engine_destroy(struct engine *e)
{
    if (!e)
        return;
    flow_table_destroy(e->ft);
    free(e);
}

void engine_set_signal_sink(struct engine *e, signal_sink_fn fn, void *ctx)
{
    e->signal_sink = fn;
    e->signal_ctx = ctx;
}

static void endpoint(const struct flow *f, int d, uint8_t addr[16], uint16_t *port)
{
    memcpy(addr, d == 0 ? f->key.lo_addr : f->key.hi_addr, 16);
    *port = d == 0 ? f->key.lo_port : f->key.hi_port;
}

/* Decide the held event's cause, count it and hand it to the sink. */
static void close_event(struct engine *e, struct flow *f)
{
    struct pending_rst *r = &f->rst;
    struct rst_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.ts_us = r->first_ts;
    endpoint(f, f->client_dir, ev.client_ip, &ev.client_port);
    endpoint(f, 1 - f->client_dir, ev.server_ip, &ev.server_port);
    ev.family = memcmp(f->key.lo_addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 ? 4 : 6;
    ev.direction_known = f->direction_known;
    ev.sender = r->sender_dir == f->client_dir ? 0 : 1;
    ev.cause = (uint8_t)rst_classify(f, r);
    ev.origin = r->had_flow
                    ? (uint8_t)rst_origin(&f->dir[r->sender_dir], r->ttl, e->cfg.ttl_tolerance)
                    : ORIGIN_UNKNOWN;
    ev.state = r->state;
    ev.check = r->check;
    ev.rst_count = r->rst_count;
    ev.seq = r->seq;
    ev.ack = r->ack;
    ev.rst_flags = r->rst_flags;
    ev.ttl = r->ttl;
    ev.worker = e->id;
    r->active = 0;

    STAT_INC(e->stats, resets);
    STAT_INC(e->stats, causes[ev.cause]);
    if (e->sink)
        e->sink(e->sink_ctx, &ev);
}

static void drop_flow(struct engine *e, struct flow *f)
{
    if (f->rst.active)
        close_event(e, f);
    flow_table_remove(e->ft, f);
}

static uint64_t idle_limit(const struct engine *e, const struct flow *f)
{
    switch (f->state) {
    case CS_SYN_SENT:
    case CS_SYN_RECEIVED:
        return e->cfg.handshake_timeout_us;
    case CS_ESTABLISHED:
    case CS_MIDSTREAM:
    case CS_FIN_WAIT:
        return e->cfg.established_timeout_us;
    default: /* none, closing, closed, reset */
        return e->cfg.closed_timeout_us;
    }
}

/* Closed, reset and RST-only entries go first; then half-open ones; established never. */
static int evict_rank(const struct flow *f)
{
    switch (f->state) {
    case CS_NONE:
    case CS_CLOSED:
    case CS_RESET:
    case CS_CLOSING:
        return 2;
    case CS_SYN_SENT:
    case CS_SYN_RECEIVED:
        return 1;
    default:
        return 0;
    }
}

static struct flow *insert_flow(struct engine *e, const struct flow_key *k, uint32_t h,
                                int may_evict)
{
    struct flow_table *t = e->ft;
    struct flow *f = flow_table_insert(t, k, h);

    if (!f && may_evict) {
        struct flow *victim = NULL;
        int best = 0;
        for (int n = 0; n < EVICT_SCAN && best < 2; n++) {
            struct flow *c = flow_table_at(t, t->cursor);
            t->cursor = (t->cursor + 1) % t->capacity;
            if (c && evict_rank(c) > best) {
                best = evict_rank(c);
                victim = c;
            }
        }
        if (victim) {
            drop_flow(e, victim);
            STAT_INC(e->stats, flows_evicted);
            f = flow_table_insert(t, k, h);
        }
    }
    if (f) {
        STAT_INC(e->stats, flows_created);
        STAT_SET(e->stats, flows_active, flow_table_used(t));
    }
    return f;
}

static void open_or_fold_rst(struct flow *f, int d, const struct pkt_info *p, uint64_t ts)
{
    struct pending_rst *r = &f->rst;
    enum seq_check c = rst_seq_check(f, d, p);
    int decisive = !r->active || rst_check_rank(c) > rst_check_rank(r->check);

    if (!r->active) {
        memset(r, 0, sizeof(*r));
        r->active = 1;
        r->first_ts = ts;
        r->state = f->state;
        r->had_flow = f->state != CS_NONE;
    }
    r->rst_count++;
    r->last_ts = ts;
    if (decisive) {
        r->sender_dir = (uint8_t)d;
        r->check = (uint8_t)c;
        r->seq = p->seq;
        r->ack = p->ack;
        r->rst_flags = p->flags;
        r->ttl = p->ttl;
    }
    f->dir[d].seen |= DIR_RST;
    /* A lone RST (CS_NONE) resets nothing the sensor knows of: the entry stays CS_NONE, so
     * later traffic turns it into a mid-stream flow and a later lone RST is still no_flow. */
    if (f->state != CS_NONE && (c == SEQ_EXACT || c == SEQ_ACK_OK || c == SEQ_UNKNOWN))
        f->state = CS_RESET;
}

void engine_segment(struct engine *e, const struct pkt_info *p, uint64_t ts)
{
    struct flow_key k;
    int d;
    int is_rst = (p->flags & TCP_RST) != 0;

    if (ts > e->now_us)
        e->now_us = ts;
    STAT_INC(e->stats, tcp_packets);
    if (is_rst)
        STAT_INC(e->stats, rst_packets);
    if ((p->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
        STAT_INC(e->stats, syn);
    else if ((p->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
        STAT_INC(e->stats, synack);
    if (p->flags & TCP_FIN)
        STAT_INC(e->stats, fin);

    flow_key_make(p, &k, &d);
    uint32_t h = flow_key_hash(&k);
    struct flow *f = flow_table_lookup(e->ft, &k, h);

    if (f && f->rst.active && ts > f->rst.last_ts + e->cfg.fold_us)
        close_event(e, f);
    if (f && !is_rst && tcp_track_is_reuse(f, p, d)) {
        /* A new connection on a finished tuple: the old one ends here. */
        drop_flow(e, f);
        STAT_INC(e->stats, flows_expired);
        f = NULL;
    }
    if (!f) {
        /* A RST never evicts anything: a RST flood must not flush real connections. */
        f = insert_flow(e, &k, h, !is_rst);
        if (!f) {
            if (!is_rst) {
                STAT_INC(e->stats, flows_dropped);
                return;
            }
            /* No room to hold it: judge this RST alone on a scratch entry. */
            struct flow tmp;
            memset(&tmp, 0, sizeof(tmp));
            tmp.key = k;
            tcp_track_init(&tmp, p, d, ts);
            open_or_fold_rst(&tmp, d, p, ts);
            close_event(e, &tmp);
            return;
        }
        tcp_track_init(f, p, d, ts);
    } else if (f->state == CS_NONE && !is_rst) {
        tcp_track_init(f, p, d, ts); /* traffic after a lone RST: now a mid-stream flow */
    }

    if (is_rst) {
        open_or_fold_rst(f, d, p, ts);
    } else {
        struct pending_rst *r = &f->rst;
        const struct flow_dir *fd = &f->dir[d];
        /* The receiver of an in-window, inexact RST sends new data: it did not take the RST
         * (RFC 5961). Only then: after an exact RST, data still arriving from the receiver
         * was in flight when the RST crossed it, and proves nothing. */
        if (r->active && r->check == SEQ_IN_WINDOW && d != r->sender_dir && p->payload_len &&
            (!(fd->seen & DIR_SEQ_KNOWN) || seq_gt(p->seq + p->payload_len, fd->next_seq)))
            r->after_data = 1;
        tcp_track_segment(f, p, d, ts);
    }
    f->last_ts = ts;
}

void engine_input(struct engine *e, const uint8_t *frame, uint32_t len, uint64_t ts)
{
    struct pkt_info p;
    enum pkt_kind kind = pkt_parse_link(frame, len, e->cfg.link, &p);

    STAT_INC(e->stats, packets);
    STAT_ADD(e->stats, bytes, len);
    if (p.family == 4)
        STAT_INC(e->stats, ipv4);
    else if (p.family == 6)
        STAT_INC(e->stats, ipv6);
    switch (kind) {
    case PKT_TCP:
        if (p.malformed)
            STAT_INC(e->stats, malformed[p.malformed]);
        engine_segment(e, &p, ts);
        break;
    case PKT_NON_IP:
        STAT_INC(e->stats, non_ip);
        break;
    case PKT_NON_TCP:
        STAT_INC(e->stats, non_tcp);
        break;
    case PKT_FRAGMENT:
        STAT_INC(e->stats, fragments);
        break;
    case PKT_MALFORMED:
        STAT_INC(e->stats, malformed_total);
        STAT_INC(e->stats, malformed[p.malformed]);
        break;
    }
}

void engine_age(struct engine *e, uint64_t now)
{
    struct flow_table *t = e->ft;

    if (now > e->now_us)
        e->now_us = now;
    now = e->now_us;
    for (uint32_t n = 0; n < e->cfg.age_budget && t->used; n++) {
        struct flow *f = flow_table_at(t, t->cursor);
        t->cursor = (t->cursor + 1) % t->capacity;
        if (!f)
            continue;
        if (f->rst.active && now > f->rst.last_ts + e->cfg.fold_us)
            close_event(e, f);
        if (now > f->last_ts + idle_limit(e, f)) {
            drop_flow(e, f);
            STAT_INC(e->stats, flows_expired);
        }
    }
    STAT_SET(e->stats, flows_active, flow_table_used(t));
}

void engine_flush(struct engine *e)
{
    struct flow_table *t = e->ft;

    for (uint32_t i = 0; i < t->capacity && t->used; i++) {
        struct flow *f = flow_table_at(t, i);
        if (!f)
            continue;
        drop_flow(e, f);
        STAT_INC(e->stats, flows_expired);
    }
    STAT_SET(e->stats, flows_active, 0);
}
