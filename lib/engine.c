#include "engine.h"

#include <stdlib.h>

#include "bigmem.h"
#include "rst_classify.h"
#include "seq.h"
#include "tcp_track.h"

#define EVICT_SCAN   16 /* flows examined for a victim when the table is full */
#define AGE_PREFETCH 8  /* entries the ageing scan fetches ahead of its cursor (twice that) */
/* When those EVICT_SCAN neighbours are all established, this many more entries are sampled
 * across the whole table before the new connection is dropped. Long-lived connections are
 * created together and sit next to each other in flows[], so a window of neighbours can be
 * all-established while most of the table is half-open flood: sampling spread out makes a
 * drop need an (almost) all-established table, P(drop) ~ share_established^48. Bounds the
 * work per packet at EVICT_SCAN + EVICT_SAMPLE entries. */
#define EVICT_SAMPLE 48
/* A search that finds no victim says the table is (almost) all established, and the next
 * searches would fail too, each reading EVICT_SCAN + EVICT_SAMPLE entries, 48 of them random
 * misses. Under a connection flood every packet of an untracked connection searched: ~3,400
 * cycles per packet, 3-4x the cost with room, to drop it all the same. So a futile search
 * makes the next inserts skip the search (and be dropped, as they almost surely would be):
 * 1, 2, 4, ... up to EVICT_BACKOFF_MAX while searches keep failing; a search that finds a
 * victim resets it. Searches for an IPv6 victim back off apart: their failing says nothing
 * about IPv4 entries. Meanwhile the ageing scan still frees idle entries, which inserts take
 * without a search. */
#define EVICT_BACKOFF_MAX 256

void engine_config_defaults(struct engine_config *c)
{
    c->max_flows = 1000000;
    c->hold_us = 500000;
    c->hold_min_us = 20000;
    c->dup_us = 1000;
    c->syn_unanswered_us = 3000000;
    c->host_entries = 65536;
    c->handshake_timeout_us = 30ULL * 1000000;
    c->established_timeout_us = 3600ULL * 1000000;
    c->closed_timeout_us = 10ULL * 1000000;
    c->age_budget = 64;
    c->age_sweep_us = 1000000;
    c->rst_pool = 0;
    c->ipv6_flows = 0;
    c->ttl_tolerance = 0;
    c->link = LINK_ETHERNET;
    classify_cfg_defaults(&c->classify);
}

/* The idle timeout of a connection in state st (engine.idle_us[], filled once). */
static uint64_t idle_limit_of(const struct engine_config *c, unsigned st)
{
    switch (st) {
    case CS_SYN_SENT:
    case CS_SYN_RECEIVED:
        return c->handshake_timeout_us;
    case CS_ESTABLISHED:
    case CS_MIDSTREAM:
    case CS_FIN_WAIT:
        return c->established_timeout_us;
    default: /* none, closing, closed, reset */
        return c->closed_timeout_us;
    }
}

/* Sizes of the engine's own tables: one expression each for allocation, prefault, free and
 * the memory figures. */
static size_t rst_pool_bytes(const struct engine *e)
{
    return ((size_t)e->rst_cap + 1) * sizeof(*e->rst_pool); /* + the scratch slot */
}

static size_t rst_free_bytes(const struct engine *e)
{
    return (size_t)e->rst_cap * sizeof(*e->rst_free);
}

static size_t zk_bytes(const struct engine *e)
{
    return (size_t)e->ft->capacity * sizeof(*e->zk);
}

struct engine *engine_create(const struct engine_config *cfg, struct engine_stats *stats,
                             event_sink_fn sink, void *sink_ctx, uint8_t id)
{
    struct engine *e = line_zalloc(sizeof(*e));
    if (!e)
        return NULL;
    e->cfg = *cfg;
    for (unsigned st = 0; st < CS_MAX; st++)
        e->idle_us[st] = idle_limit_of(cfg, st);
    e->ft = flow_table_create_v6(cfg->max_flows, cfg->ipv6_flows);
    if (!e->ft) {
        free(e);
        return NULL;
    }
    if (cfg->host_entries) {
        e->hosts = host_table_create(cfg->host_entries, (uint8_t)(cfg->ttl_tolerance + 1));
        if (!e->hosts) {
            flow_table_destroy(e->ft);
            free(e);
            return NULL;
        }
    }
    e->rst_cap = cfg->rst_pool; /* as set (tests fill small pools), or derived */
    if (!e->rst_cap) {
        e->rst_cap = cfg->max_flows / 16;
        if (e->rst_cap < 64)
            e->rst_cap = 64;
    }
    e->rst_pool = big_zalloc(rst_pool_bytes(e));
    e->rst_free = big_zalloc(rst_free_bytes(e));
    if (!e->rst_pool || !e->rst_free) {
        engine_destroy(e);
        return NULL;
    }
    for (uint32_t i = 0; i < e->rst_cap; i++) {
        e->rst_free[i] = e->rst_cap - 1 - i;
        e->rst_pool[i].wheel_bucket = HW_UNLINKED;
    }
    hold_wheel_init(&e->wheel, 0);
    e->rst_free_top = e->rst_cap;
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
    if (e->zk) /* before the table: its size is the table's capacity */
        big_free(e->zk, zk_bytes(e));
    flow_table_destroy(e->ft);
    host_table_destroy(e->hosts);
    big_free(e->rst_pool, rst_pool_bytes(e));
    big_free(e->rst_free, rst_free_bytes(e));
    free(e);
}

void engine_prefault(struct engine *e)
{
    flow_table_prefault(e->ft);
    big_prefault(e->rst_pool, rst_pool_bytes(e));
    if (e->hosts) /* 1.5 MB by default, a random line per SYN */
        host_table_prefault(e->hosts);
}

size_t engine_mem_bytes(const struct engine *e)
{
    return flow_table_mem_bytes_v6(e->ft->capacity, e->ft->v6cap) + rst_pool_bytes(e) +
           rst_free_bytes(e);
}

size_t engine_flow_record_bytes(const struct engine *e)
{
    return e->zk ? zk_bytes(e) : 0;
}

void engine_set_signal_sink(struct engine *e, signal_sink_fn fn, void *ctx)
{
    e->signal_sink = fn;
    e->signal_ctx = ctx;
}

int engine_set_flow_sink(struct engine *e, flow_sink_fn fn, void *ctx)
{
    if (fn && !e->zk) {
        e->zk = big_zalloc(zk_bytes(e));
        if (!e->zk)
            return -1;
    }
    e->flow_sink = fn;
    e->flow_ctx = ctx;
    return 0;
}

/* The Zeek record of a table entry; NULL without --flows or for a scratch entry. */
static struct zeek_conn *zk_of(const struct engine *e, const struct flow *f)
{
    if (!e->zk || f < e->ft->flows || f >= e->ft->flows + e->ft->capacity)
        return NULL;
    return &e->zk[f - e->ft->flows];
}

/* The full key of a table entry, or of the scratch entry (segment() sets scratch_key). */
static void key_of(const struct engine *e, const struct flow *f, struct flow_key *k)
{
    if (f >= e->ft->flows && f < e->ft->flows + e->ft->capacity)
        flow_table_key(e->ft, f, k);
    else
        *k = e->scratch_key;
}

static void emit_record(struct engine *e, const struct flow *f, const struct zeek_conn *z)
{
    struct flow_record r;
    struct flow_key k;
    key_of(e, f, &k);
    zeek_conn_finish(z, k.lo_addr, k.lo_port, k.hi_addr, k.hi_port, &r);
    e->flow_sink(e->flow_ctx, &r);
}

static void endpoint(const struct flow_key *k, int d, uint8_t addr[16], uint16_t *port)
{
    memcpy(addr, d == 0 ? k->lo_addr : k->hi_addr, 16);
    *port = d == 0 ? k->lo_port : k->hi_port;
}

static void emit_signal(struct engine *e, const struct flow *f, int sig)
{
    STAT_INC(e->stats, overload[sig]);
    if (!e->signal_sink)
        return;
    struct overload_event ov;
    struct flow_key k;
    key_of(e, f, &k);
    endpoint(&k, 1 - f->client_dir, ov.server_ip, &ov.server_port);
    ov.family = flow_addr_family(k.lo_addr);
    ov.signal = (uint8_t)sig;
    e->signal_sink(e->signal_ctx, &ov);
}

/*
 * Origin of the decisive RST: its TTL against the purported sender's own packets on this flow
 * (one path, mirrored copies already removed: an exact match is expected, ttl_tolerance
 * hops allowed), else against the sender host's baseline across flows (one hop more: other
 * flows may take another equal-cost path). Sets EV_TTL_MISMATCH.
 */
static uint8_t judge_origin(struct engine *e, const struct flow *f, const struct flow_key *k,
                            struct pending_rst *r)
{
    const struct flow_dir *sd = &f->dir[r->sender_dir];
    uint8_t base = sd->ttl;
    uint8_t tol = e->cfg.ttl_tolerance;
    if (!base && e->hosts) {
        uint8_t addr[16];
        uint16_t port;
        endpoint(k, r->sender_dir, addr, &port);
        base = host_table_ttl(e->hosts, addr);
        tol = e->hosts->tolerance;
    }
    enum rst_origin o = rst_origin(base, r->ttl, tol);
    if (o == ORIGIN_MIDDLEBOX)
        r->evidence |= EV_TTL_MISMATCH;
    if (r->evidence & (EV_SENDER_CONTINUED | EV_IPID_MISMATCH))
        o = ORIGIN_MIDDLEBOX;
    return (uint8_t)o;
}

/* Decide the held event's cause, count it and hand it to the sink. */
static void close_event(struct engine *e, struct flow *f)
{
    struct pending_rst *r = engine_rst(e, f);
    struct rst_event ev;
    struct flow_key k;

    key_of(e, f, &k);
    memset(&ev, 0, sizeof(ev));
    ev.ts_us = r->first_ts;
    endpoint(&k, f->client_dir, ev.client_ip, &ev.client_port);
    endpoint(&k, 1 - f->client_dir, ev.server_ip, &ev.server_port);
    ev.family = flow_addr_family(k.lo_addr);
    ev.direction_known = f->direction_known;
    ev.sender = r->sender_dir == f->client_dir ? 0 : 1;
    ev.origin = judge_origin(e, f, &k, r);
    if (r->had_flow && !f->direction_known)
        r->evidence |= EV_MIDSTREAM;
    if (f->fflags & FF_GAP)
        r->evidence |= EV_CAPTURE_GAP;
    if ((r->evidence & EV_CHALLENGE_ACK) && r->first_check == SEQ_IN_WINDOW &&
        r->check == SEQ_EXACT)
        r->evidence |= EV_CORRECTED;
    ev.cause = (uint8_t)rst_classify(f, r, &e->cfg.classify);
    ev.state = r->state;
    ev.check = r->check;
    ev.rst_count = r->rst_count;
    ev.seq = r->seq;
    ev.ack = r->ack;
    ev.rst_flags = r->rst_flags;
    ev.ttl = r->ttl;
    ev.ip_id = r->ip_id;
    ev.vlan = r->vlan;
    ev.idle_ms = r->idle_ms;
    ev.evidence = r->evidence;
    ev.low_confidence = (r->evidence & (EV_CAPTURE_GAP | EV_MIDSTREAM)) != 0;
    ev.worker = e->id;
    r->active = 0;
    f->fflags |= FF_EVENT_DONE;
    /* A RST the connection survived (ignored, or forged and the real peer carried on) does
     * not end it: the next genuine RST is judged as a new event. */
    if (f->state == CS_RESET &&
        (ev.cause == CAUSE_OUT_OF_WINDOW || (r->evidence & EV_SENDER_CONTINUED))) {
        f->state = r->state;
        f->fflags &= (uint8_t)~FF_EVENT_DONE;
    }

    struct zeek_conn *z = zk_of(e, f);
    if (z && z->active)
        z->cause = (uint8_t)(ev.cause + 1);
    STAT_INC(e->stats, resets);
    STAT_INC(e->stats, causes[ev.cause]);
    if (ev.low_confidence)
        STAT_INC(e->stats, low_confidence);
    if (e->sink)
        e->sink(e->sink_ctx, &ev);
    if (f->rst_slot - 1 != e->rst_cap) { /* the scratch entry is never on the wheel or stack */
        hold_wheel_del(&e->wheel, e->rst_pool, f->rst_slot - 1);
        e->rst_free[e->rst_free_top++] = f->rst_slot - 1;
    }
    f->rst_slot = 0;
}

/* A SYN nobody answered (no SYN-ACK, no RST) within syn_unanswered_us: counted once. */
static void check_unanswered(struct engine *e, struct flow *f)
{
    if (f->state == CS_SYN_SENT && !(f->fflags & FF_SYN_COUNTED) &&
        ts32_since(e->now_us, f->first_ts) >= e->cfg.syn_unanswered_us) {
        f->fflags |= FF_SYN_COUNTED;
        emit_signal(e, f, OVL_SYN_UNANSWERED);
    }
}

/* What the end of a connection emits: its held event judged, an unanswered SYN counted, its
 * --flows record. The entry stays in the table. */
static void retire_flow(struct engine *e, struct flow *f)
{
    if (f->rst_slot)
        close_event(e, f);
    check_unanswered(e, f);
    struct zeek_conn *z = zk_of(e, f);
    if (z && z->active) {
        emit_record(e, f, z);
        z->active = 0;
    }
}

static void drop_flow(struct engine *e, struct flow *f)
{
    retire_flow(e, f);
    flow_table_remove(e->ft, f);
}

/* Idle past its state's timeout, by age_due()'s table: the ageing scan drops it. */
static inline int idle_expired(const struct flow *f, const uint64_t due[CS_MAX])
{
    return f->last_ts < due[f->state < CS_MAX ? f->state : CS_NONE];
}

/* due[st]: at now, a connection in state st whose last packet is older is idle past its
 * timeout (now > last_ts + timeout); 0 while now is within the timeout: none is. */
static void age_due(const struct engine *e, uint64_t now, uint64_t due[CS_MAX])
{
    for (unsigned st = 0; st < CS_MAX; st++)
        due[st] = now > e->idle_us[st] ? now - e->idle_us[st] : 0;
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
    /* Refused for want of an IPv6 address pair: only an IPv6 victim makes room. */
    int need_v6 = !f && flow_table_v6_full(t) && !flow_key_is_v4(k);

    if (!f && may_evict && e->evict_wait[need_v6]) {
        e->evict_wait[need_v6]--;
    } else if (!f && may_evict) {
        struct flow *victim = NULL;
        int best = 0;
        for (int n = 0; n < EVICT_SCAN && best < 2; n++) {
            struct flow *c = flow_table_at(t, t->cursor);
            t->cursor = (t->cursor + 1) % t->capacity;
            if (c && (!need_v6 || c->key_v6) && evict_rank(c) > best) {
                best = evict_rank(c);
                victim = c;
            }
        }
        for (uint32_t n = 0; !victim && n < EVICT_SAMPLE; n++) {
            uint32_t r = (h ^ (n * 0x9e3779b9u)) * 0x85ebca6bu;
            r ^= r >> 15;
            struct flow *c = flow_table_at(t, (uint32_t)(((uint64_t)r * t->capacity) >> 32));
            if (c && (!need_v6 || c->key_v6) && evict_rank(c) > 0)
                victim = c;
        }
        if (victim) {
            drop_flow(e, victim);
            STAT_INC(e->stats, flows_evicted);
            f = flow_table_insert(t, k, h);
            e->evict_backoff[need_v6] = 0;
        } else {
            uint32_t b = e->evict_backoff[need_v6];
            b = b ? b * 2 : 1;
            e->evict_backoff[need_v6] = b < EVICT_BACKOFF_MAX ? b : EVICT_BACKOFF_MAX;
            e->evict_wait[need_v6] = e->evict_backoff[need_v6];
        }
    }
    if (f) {
        STAT_INC(e->stats, flows_created);
        STAT_SET(e->stats, flows_active, flow_table_used(t));
    } else if (need_v6) {
        STAT_INC(e->stats, ipv6_pool_full);
    }
    return f;
}

/* Verdict delay: two RTTs when the handshake gave one, at least hold_min_us, and never more
 * than hold_us (the cap wins when the floor is above it). */
static uint32_t hold_for(const struct engine *e, const struct flow *f)
{
    uint64_t h = e->cfg.hold_us;
    if (f->rtt_us) {
        uint64_t r = 2ULL * f->rtt_us;
        if (r < e->cfg.hold_min_us)
            r = e->cfg.hold_min_us;
        if (r < h)
            h = r;
    }
    return h > UINT32_MAX ? UINT32_MAX : (uint32_t)h;
}

/* IPv4 ID far from the sender's own counter, seen moments ago: another stack wrote it.
 * Only a socket's own reset (RST|ACK) continues the socket's counter; a bare RST comes from
 * the stack's control socket with an ID of its own, and an ID of 0 is a stack trait (Linux
 * stateless RSTs, netfilter): neither is evidence. */
static int ipid_mismatch(const struct flow_dir *sd, const struct pkt_info *p, uint64_t ts)
{
    if (p->family != 4 || !p->ip_id || !(p->flags & TCP_ACK) || !(sd->xflags & DX_IPID_SEQ) ||
        ts32_since(ts, sd->last_ts) > 1000000)
        return 0;
    uint16_t fwd = (uint16_t)(p->ip_id - sd->ip_id);
    uint16_t back = (uint16_t)(sd->ip_id - p->ip_id);
    return fwd > 4096 && back > 64;
}

/* hold_wheel_expire() callback: the event's hold ran out (make_rst_room(): it is cut short). */
static void hold_expired(void *ctx, uint32_t slot)
{
    struct engine *e = ctx;
    close_event(e, &e->ft->flows[e->rst_pool[slot].flow_idx]);
}

/* hold_wheel_expire()'s prefetch: close_event() starts with the connection's entry, which
 * has been idle for a hold (cold in a large table: its wait was three quarters of
 * close_event()'s time at 1M flows). Always inlined where it is called directly
 * (make_rst_room()): GCC 12 took it for a pure function there, as flow.h warns, and deleted
 * the call; hold_wheel_expire() calls it through its pointer. */
static inline __attribute__((always_inline)) void hold_prefetch(void *ctx, uint32_t slot)
{
    const struct engine *e = ctx;
    flow_prefetch(&e->ft->flows[e->rst_pool[slot].flow_idx]);
}

/*
 * Every held-event slot is taken (a reset storm): the held event nearest its verdict is
 * judged now, before its hold has run out, and its slot is free for the new one. Judging the
 * new one at once instead left it none of what follows a RST (a challenge ACK, the sender
 * carrying on); this way each event of a storm is held while the pool lasts (slots over
 * resets per second), and the one cut short has waited the longest. rst_pool_full counts
 * the holds cut short.
 */
static void make_rst_room(struct engine *e)
{
    /* First what is due before now's tick, when the wheel is behind it (it moves on
     * engine_age(), between bursts): the earliest is then named from now's tick, and may
     * not be needed at all. */
    if (hold_wheel_behind(&e->wheel, e->now_us)) {
        hold_wheel_expire(&e->wheel, e->rst_pool, e->now_us, hold_expired, hold_prefetch, e);
        if (e->rst_free_top)
            return;
    }
    STAT_INC(e->stats, rst_pool_full);
    uint32_t s1 = hold_wheel_earliest(&e->wheel);
    if (s1)
        hold_expired(e, s1 - 1); /* judged as if its hold had run out */
    /* In a storm the next RST cuts the next earliest short: its entry, cold, is fetched now,
     * while the packets up to that RST are processed. */
    uint32_t s2 = hold_wheel_earliest(&e->wheel);
    if (s2)
        hold_prefetch(e, s2 - 1);
}

/* The pool slot of a new held event: a free one, made free when none is; the scratch slot
 * (rst_cap) for a scratch entry, or, not reached, when none could be made. */
static uint32_t take_rst_slot(struct engine *e, int scratch)
{
    if (scratch)
        return e->rst_cap;
    if (!e->rst_free_top)
        make_rst_room(e);
    return e->rst_free_top ? e->rst_free[--e->rst_free_top] : e->rst_cap;
}

/* A RST on f: opens its held event, or folds into the one it holds. scratch: f is the
 * caller's scratch entry (no table room), judged right after: no slot is made for it. */
static void open_or_fold_rst(struct engine *e, struct flow *f, int d, const struct pkt_info *p,
                             uint64_t ts, int scratch)
{
    enum seq_check c = rst_seq_check(f, d, p);
    struct pending_rst *r = engine_rst(e, f);
    int decisive = !r || rst_check_rank(c) > rst_check_rank(r->check);
    int opened = !r;

    if (!r) {
        /* In the scratch slot, the caller judges the event at once (rst_slot == rst_cap + 1). */
        f->rst_slot = take_rst_slot(e, scratch) + 1;
        r = engine_rst(e, f);
        uint64_t since = ts - f->last_ts;
        uint64_t idle = since;
        /* A RST answering a segment that arrived after a long silence (an expired middlebox
         * or peer state): the silence before that segment is what counts. */
        if (since <= e->cfg.hold_us && (uint64_t)f->gap_ms * 1000 > idle)
            idle = (uint64_t)f->gap_ms * 1000;
        memset(r, 0, sizeof(*r));
        r->active = 1;
        r->first_ts = ts;
        r->state = f->state;
        r->had_flow = f->state != CS_NONE;
        r->hold_us = hold_for(e, f);
        r->idle_ms = f->state == CS_NONE        ? 0
                     : idle / 1000 > UINT32_MAX ? UINT32_MAX
                                                : (uint32_t)(idle / 1000);
        r->first_check = (uint8_t)c;
        r->ka_probes = f->dir[d].ka_probes;
    }
    r->rst_count++;
    r->last_ts = ts;
    if (opened && f->rst_slot - 1 != e->rst_cap) {
        /* Scratch flows (a full table) use the scratch slot: judged at once, never filed. */
        r->flow_idx = (uint32_t)(f - e->ft->flows);
        hold_wheel_add(&e->wheel, e->rst_pool, f->rst_slot - 1);
    }
    r->senders |= (uint8_t)(1u << d);
    if (r->senders == 3)
        r->evidence |= EV_BOTH_WAYS;
    if (decisive) {
        r->sender_dir = (uint8_t)d;
        r->check = (uint8_t)c;
        r->seq = p->seq;
        r->ack = p->ack;
        r->rst_flags = p->flags;
        r->ttl = p->ttl;
        r->ip_id = p->ip_id;
        r->vlan = p->vlan;
        if (ipid_mismatch(&f->dir[d], p, ts))
            r->evidence |= EV_IPID_MISMATCH;
    }
    f->dir[d].seen |= DIR_RST;
    /* A lone RST (CS_NONE) resets nothing the sensor knows of: the entry stays CS_NONE, so
     * later traffic turns it into a mid-stream flow and a later lone RST is still no_flow. */
    if (f->state != CS_NONE && (c == SEQ_EXACT || c == SEQ_ACK_OK || c == SEQ_UNKNOWN))
        f->state = CS_RESET;
}

/* A non-RST packet while a RST is held: what it says about the RST. */
static void observe_after_rst(struct engine *e, struct flow *f, int d, const struct pkt_info *p,
                              uint64_t ts)
{
    struct pending_rst *r = engine_rst(e, f);
    const struct flow_dir *fd = &f->dir[d];

    if (d == r->sender_dir) {
        /* The purported sender carries on: the RST was not its own (Suricata's
         * suspected_rst_inject, Weaver et al.'s RST_SEQ_DATA). */
        if (r->check != SEQ_OUT_OF_WINDOW && r->check != SEQ_ACK_BAD)
            r->evidence |= EV_SENDER_CONTINUED;
        return;
    }
    if (r->check == SEQ_IN_WINDOW && p->payload_len == 0 &&
        (p->flags & (TCP_SYN | TCP_FIN | TCP_ACK)) == TCP_ACK && (fd->seen & DIR_ACK_KNOWN) &&
        p->ack == fd->max_ack && !(r->evidence & EV_CHALLENGE_ACK)) {
        /* RFC 5961 §3.2 challenge ACK: the receiver asks the real peer to confirm. The hold
         * restarts so the corrected exact RST, if the peer is genuine, joins this event. */
        r->evidence |= EV_CHALLENGE_ACK;
        r->last_ts = ts;
        emit_signal(e, f, OVL_CHALLENGE_ACK);
        return;
    }
    /* The receiver of an in-window, inexact RST sends new data: it did not take the RST.
     * Only then: after an exact RST, data still arriving from the receiver was in flight
     * when the RST crossed it, and proves nothing. */
    if (r->check == SEQ_IN_WINDOW && p->payload_len &&
        (!(fd->seen & DIR_SEQ_KNOWN) || seq_gt(p->seq + p->payload_len, fd->next_seq)))
        r->after_data = 1;
}

/* What tcp_track_segment() reported: a first capture gap, overload signals. */
static void track_signals(struct engine *e, const struct flow *f, unsigned sigs)
{
    if (sigs & TRACK_NEW_GAP) {
        STAT_INC(e->stats, capture_gaps);
        sigs &= ~TRACK_NEW_GAP;
    }
    while (sigs) {
        int b = __builtin_ctz(sigs);
        sigs &= sigs - 1;
        emit_signal(e, f, b);
    }
}

/* Signature of a packet for the mirrored-duplicate check: copies of one packet (ingress and
 * egress mirror of the same port, TTL possibly one apart) agree on all of these, and on d, the
 * direction that sent it, which is the signature's low bit: one compare checks both. */
static inline __attribute__((always_inline)) uint32_t packet_sig(const struct pkt_info *p, int d)
{
    uint64_t x = ((uint64_t)p->seq << 32) | p->ack;
    uint64_t y = ((uint64_t)p->ip_id << 48) | ((uint64_t)p->flags << 40) |
                 ((uint64_t)p->win << 24) | (p->payload_len & 0xffffff);
    /* One multiply-fold: a copy must match and anything else should not (2^-30: 32 bits
     * folded, one forced and one the direction). Two chained splitmix64 rounds bought nothing
     * more for twice the instructions. Unkeyed, like them: the one degenerate input (seq:ack
     * equal to the first constant, product 0) is 2^-64 per packet, and a forger gains nothing
     * it lacked before. */
    uint64_t h = rs_mum(x ^ 0x2d358dccaa6c78a5ULL, y ^ 0x8bb84b93962eacc9ULL);
    return ((uint32_t)(h ^ (h >> 32)) & ~3u) | 2u | (uint32_t)d; /* never 0: "none yet" */
}

/*
 * TCP segment counters by flags, kept by the caller in one word of five 8-bit lanes: a burst
 * holds at most ENGINE_BURST (32) segments, so no lane overflows before seg_counts_flush().
 * One table load and one add per segment, in a register.
 */
#define SEG_LANE_TCP    0
#define SEG_LANE_RST    8
#define SEG_LANE_FIN    16
#define SEG_LANE_SYN    24
#define SEG_LANE_SYNACK 32
#define SEG_LANES(b)                                                                               \
    (1ull << SEG_LANE_TCP | (uint64_t)(((b)&TCP_RST) != 0) << SEG_LANE_RST |                       \
     (uint64_t)(((b)&TCP_FIN) != 0) << SEG_LANE_FIN |                                              \
     (uint64_t)(((b) & (TCP_SYN | TCP_ACK)) == TCP_SYN) << SEG_LANE_SYN |                          \
     (uint64_t)(((b) & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) << SEG_LANE_SYNACK)
#define SEG_LANES4(b)  SEG_LANES(b), SEG_LANES((b) + 1), SEG_LANES((b) + 2), SEG_LANES((b) + 3)
#define SEG_CLASS_BITS (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) /* 0x17 */

static const uint64_t seg_lanes[SEG_CLASS_BITS + 1] = {
    SEG_LANES4(0), SEG_LANES4(4), SEG_LANES4(8), SEG_LANES4(12), SEG_LANES4(16), SEG_LANES4(20),
};
_Static_assert(ENGINE_BURST < 256, "a lane counts up to ENGINE_BURST segments");

static inline uint64_t seg_count(uint64_t acc, uint8_t fl)
{
    return acc + seg_lanes[fl & SEG_CLASS_BITS];
}

static void seg_counts_flush(struct engine_stats *s, uint64_t acc)
{
    STAT_ADD(s, tcp_packets, (acc >> SEG_LANE_TCP) & 0xff);
    STAT_ADD(s, rst_packets, (acc >> SEG_LANE_RST) & 0xff);
    STAT_ADD(s, fin, (acc >> SEG_LANE_FIN) & 0xff);
    STAT_ADD(s, syn, (acc >> SEG_LANE_SYN) & 0xff);
    STAT_ADD(s, synack, (acc >> SEG_LANE_SYNACK) & 0xff);
}

/* One TCP segment whose canonical key k, sender direction d and hash h are computed; the
 * caller counts it (seg_count()). hint: its likely entry, or NULL (flow_table_lookup_hint()). */
static inline __attribute__((always_inline)) void segment(struct engine *e,
                                                          const struct pkt_info *p, uint64_t ts,
                                                          const struct flow_key *k, int d,
                                                          uint32_t h, const struct flow *hint)
{
    int is_rst = (p->flags & TCP_RST) != 0;

    if (ts > e->now_us)
        e->now_us = ts;

    struct flow_ckey c;
    int v6 = flow_ckey_of_family(k, p->family, &c);
    struct flow *f = flow_table_lookup_hint(e->ft, k, &c, v6, h, hint);
    uint32_t sig = packet_sig(p, d);

    if (f) {
        /* The same packet from the same direction within dup_us: a mirrored copy. f->last_ts
         * is when sig was taken (the signature's stamp), in the 32 bits the check needs. */
        if (f->sig == sig && ts32_since(ts, ts32(f->last_ts)) <= e->cfg.dup_us) {
            STAT_INC(e->stats, duplicates);
            if (is_rst && f->rst_slot)
                engine_rst(e, f)->evidence |= EV_DUPLICATE;
            return;
        }
        f->sig = sig;
    }
    if (f && f->rst_slot && ts > pending_rst_deadline(engine_rst(e, f)))
        close_event(e, f);
    /* Before this packet can answer it: the paced ageing scan may not have come by yet. */
    if (f)
        check_unanswered(e, f);
    if (f && !is_rst && tcp_track_is_reuse(f, p, d)) {
        /* A new connection on a finished tuple: the old one ends here. */
        drop_flow(e, f);
        STAT_INC(e->stats, flows_expired);
        f = NULL;
    }
    if (!f) {
        /* A RST never evicts anything: a RST flood must not flush real connections. */
        f = insert_flow(e, k, h, !is_rst);
        if (!f) {
            if (!is_rst) {
                STAT_INC(e->stats, flows_dropped);
                return;
            }
            /* No room to hold it: judge this RST alone on a scratch entry. */
            struct flow tmp;
            memset(&tmp, 0, sizeof(tmp));
            e->scratch_key = *k; /* key_of() of the scratch entry */
            tcp_track_init(&tmp, p, d, ts);
            open_or_fold_rst(e, &tmp, d, p, ts, 1);
            close_event(e, &tmp);
            return;
        }
        tcp_track_init(f, p, d, ts);
        f->sig = sig;
        f->last_ts = ts;
    } else if (f->state == CS_NONE && !is_rst) {
        tcp_track_init(f, p, d, ts); /* traffic after a lone RST: now a mid-stream flow */
    }

    struct zeek_conn *z = zk_of(e, f);
    if (z) {
        struct zeek_conn done;
        if (zeek_conn_packet(z, p, d, ts, &done))
            emit_record(e, f, &done);
    }
    if (is_rst) {
        if (f->state == CS_RESET && (f->fflags & FF_EVENT_DONE) && !f->rst_slot) {
            /* The connection's reset was already judged: a late RST (answering stragglers)
             * is counted, not a second event. */
            STAT_INC(e->stats, late_rsts);
        } else {
            open_or_fold_rst(e, f, d, p, ts, 0);
            if (f->rst_slot == e->rst_cap + 1) /* no slot to hold it (not reached): judge now */
                close_event(e, f);
        }
    } else {
        if (f->rst_slot)
            observe_after_rst(e, f, d, p, ts);
        uint64_t gap = ts - f->last_ts;
        f->gap_ms = gap / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(gap / 1000);
        if (e->hosts && ((p->flags & TCP_SYN) || f->first_ts == ts32(ts)))
            host_table_note(e->hosts, p->src, p->ttl);
        unsigned sigs = tcp_track_segment(f, p, d, ts);
        if (sigs)
            track_signals(e, f, sigs);
    }
    f->last_ts = ts;
}

void engine_segment(struct engine *e, const struct pkt_info *p, uint64_t ts)
{
    struct flow_key k;
    int d;
    flow_key_make(p, &k, &d);
    seg_counts_flush(e->stats, seg_count(0, p->flags));
    segment(e, p, ts, &k, d, flow_key_hash(&k), NULL);
}

/* Counters of a frame beyond packets, bytes and family: tunnels, non-TCP kinds, malformed
 * reasons. Rare on a mirror port; engine_input_burst() calls it only when one applies. */
static void count_frame_kind(struct engine *e, const struct pkt_info *p, enum pkt_kind kind)
{
    if (p->encap.layers)
        mirror_account(e->stats, e->cfg.mirror_seq_elsewhere ? NULL : &e->mseq, &p->encap);
    switch (kind) {
    case PKT_TCP:
        if (p->malformed)
            STAT_INC(e->stats, malformed[p->malformed]);
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
        STAT_INC(e->stats, malformed[p->malformed]);
        break;
    }
}

/* Does count_frame_kind() have anything to count for this frame? */
static inline int frame_kind_counted(const struct pkt_info *p, enum pkt_kind kind)
{
    return kind != PKT_TCP || p->malformed || p->encap.layers;
}

#define PIPE_AHEAD 8 /* packets between a slot's prefetch and its read (stage 1 -> 2) */

#define V6_AHEAD 4 /* packets between an IPv6 pair's prefetch and its read (stage 3) */

/* Prefetch every cache line of the likely entry (flow_prefetch()). Always inlined, for the
 * reason flow_prefetch() is. */
static inline __attribute__((always_inline)) const struct flow *
prefetch_entry(const struct flow_table *t, uint8_t tcp, uint32_t h)
{
    /* Stage 2 of engine_input_burst(): the likely entry is a hint only. Stage 3 uses it when
     * it is live and holds the segment's key, and looks up again otherwise, as an earlier
     * packet of the burst may have removed or reused it. The slots are in the line stage 1
     * prefetched (or the next one). NULL for a new flow. */
    const struct flow *f = tcp ? flow_table_likely_entry(t, h) : NULL;
    if (!f)
        return NULL;
    flow_prefetch(f);
    return f;
}

/* Stage 3 ahead: an IPv6 flow's key compare reads its address pair in the pool, one more
 * random line (it was half of the lookups' cost in a replay with a quarter IPv6), named by
 * the entry prefetched in stage 2. The entry is a hint that an earlier packet may have
 * changed: the index is bounds-checked, and a wrong pair is only a wasted prefetch. */
static inline __attribute__((always_inline)) void prefetch_v6pair(const struct flow_table *t,
                                                                  const struct flow *f)
{
    if (f && f->key_v6 && f->key.a - 1 < t->v6cap)
        __builtin_prefetch(&t->v6[f->key.a - 1]);
}

void engine_input_burst(struct engine *e, const uint8_t *const frames[], const uint32_t lens[],
                        const uint64_t ts[], const uint32_t *hashes, unsigned n)
{
    engine_input_burst_keys(e, frames, lens, ts, hashes, n, NULL);
}

void engine_input_burst_keys(struct engine *e, const uint8_t *const frames[], const uint32_t lens[],
                             const uint64_t ts[], const uint32_t *hashes, unsigned n,
                             struct engine_frame_key *out)
{
    struct pkt_info p[ENGINE_BURST];
    struct flow_key k[ENGINE_BURST];
    uint32_t h[ENGINE_BURST];
    int d[ENGINE_BURST];
    uint8_t tcp[ENGINE_BURST];
    const struct flow *ent[ENGINE_BURST]; /* stage 2's likely entry, NULL for a new flow */
    const struct flow_table *t = e->ft;

    if (n > ENGINE_BURST)
        n = ENGINE_BURST;
    /* Stage 1: parse, key, hash; prefetch the home slot of each TCP segment. Counting here
     * is safe: counters are commutative and only this thread writes them (a sink called in
     * stage 3 sees the whole burst counted, as engine.h says). Stage 2 of the
     * packet PIPE_AHEAD places back runs in the same loop, so that its slot prefetch had the
     * time of that many packets to arrive. */
    uint64_t bytes = 0, v4 = 0, v6 = 0;
    uint64_t segs = 0; /* seg_count() lanes */
    for (unsigned i = 0; i < n; i++) {
        if (i >= PIPE_AHEAD)
            ent[i - PIPE_AHEAD] = prefetch_entry(t, tcp[i - PIPE_AHEAD], h[i - PIPE_AHEAD]);
        enum pkt_kind kind = pkt_parse_link(frames[i], lens[i], e->cfg.link, &p[i]);
        /* Frame counters, summed per burst (stored after the loop): the common ones in
         * registers, the rare ones per frame. */
        bytes += lens[i];
        v4 += p[i].family == 4;
        v6 += p[i].family == 6;
        if (frame_kind_counted(&p[i], kind))
            count_frame_kind(e, &p[i], kind);
        tcp[i] = kind == PKT_TCP;
        if (tcp[i]) {
            segs = seg_count(segs, p[i].flags);
            flow_key_make(&p[i], &k[i], &d[i]);
            h[i] = hashes             ? hashes[i]
                   : p[i].family == 4 ? flow_key_hash_v4(&k[i])
                                      : flow_key_hash(&k[i]);
            __builtin_prefetch(&t->slots[flow_table_home(t, h[i])]);
            /* SYNs teach the host-TTL cache: its entry is another random access. */
            if (e->hosts && (p[i].flags & TCP_SYN))
                host_table_prefetch(e->hosts, p[i].src);
        }
    }
    STAT_ADD(e->stats, packets, n);
    STAT_ADD(e->stats, bytes, bytes);
    STAT_ADD(e->stats, ipv4, v4);
    STAT_ADD(e->stats, ipv6, v6);
    seg_counts_flush(e->stats, segs);
    /* Stage 2 of the last PIPE_AHEAD packets. */
    for (unsigned i = n > PIPE_AHEAD ? n - PIPE_AHEAD : 0; i < n; i++)
        ent[i] = prefetch_entry(t, tcp[i], h[i]);
    /* Stage 3: process in arrival order, as engine_input() would; V6_AHEAD packets on, the
     * IPv6 address pair is fetched. */
    for (unsigned i = 0; i < n && i < V6_AHEAD; i++)
        prefetch_v6pair(t, ent[i]);
    for (unsigned i = 0; i < n; i++) {
        if (i + V6_AHEAD < n)
            prefetch_v6pair(t, ent[i + V6_AHEAD]);
        if (tcp[i])
            segment(e, &p[i], ts[i], &k[i], d[i], h[i], ent[i]);
    }
    if (out)
        for (unsigned i = 0; i < n; i++) {
            out[i].tcp = tcp[i];
            if (tcp[i]) {
                out[i].key = k[i];
                out[i].hash = h[i];
                out[i].flags = p[i].flags;
            }
        }
}

void engine_input(struct engine *e, const uint8_t *frame, uint32_t len, uint64_t ts)
{
    /* A burst of one: one copy of the counting and the stages, whose equivalence across
     * burst sizes the fuzzer checks (fuzz_engine's burst twin). */
    engine_input_burst(e, &frame, &len, &ts, NULL, 1);
}

/* Entries the ageing scan examines now: hwm per age_sweep_us of elapsed time (carrying the
 * remainder), at most age_budget. Timeouts are seconds, so a sweep a second is precise
 * enough, and a busy worker examines far fewer entries than it receives packets. */
static uint32_t age_quota(struct engine *e, uint64_t now)
{
    uint64_t sweep = e->cfg.age_sweep_us;
    if (!sweep)
        return e->cfg.age_budget;
    uint64_t last = e->age_last_us;
    if (now <= last)
        return 0;
    e->age_last_us = now;
    if (!last)
        return 0; /* the first call only starts the clock */
    uint64_t dt = now - last;
    if (dt > sweep) /* a pause owes one sweep at most; hwm <= 2^30 keeps the product in 64 bits */
        dt = sweep;
    e->age_credit += (uint64_t)e->ft->hwm * dt;
    uint64_t n = e->age_credit / sweep;
    e->age_credit -= n * sweep;
    if (n > e->cfg.age_budget) {
        n = e->cfg.age_budget;
        e->age_credit = 0; /* behind: degrade to the budget, do not build a debt */
    }
    return (uint32_t)n;
}

void engine_age(struct engine *e, uint64_t now)
{
    struct flow_table *t = e->ft;

    if (now > e->now_us)
        e->now_us = now;
    now = e->now_us;
    hold_wheel_expire(&e->wheel, e->rst_pool, now, hold_expired, hold_prefetch, e);
    uint32_t quota = age_quota(e, now);
    uint64_t due[CS_MAX];
    age_due(e, now, due);
    /* Entries at or above hwm were never handed out: the scan wraps at hwm. A removal changes
     * neither hwm nor the cursor (eviction, which reads the cursor, is an insert's), so both
     * stay in registers, and the cursor (< hwm <= capacity) is stored once, at the end. */
    const uint32_t hwm = t->hwm;
    uint32_t cur = t->cursor;
    for (uint32_t n = 0; n < quota && t->used; n++) {
        /* The scan walks the array in order, in two stages ahead of the cursor: the entry
         * 2 * AGE_PREFETCH ahead is fetched; the one AGE_PREFETCH ahead, cached by now, is
         * checked and, when it is about to expire, its home slot is fetched, where
         * flow_table_remove() starts (a random line, otherwise read cold). */
        uint32_t ahead = cur + AGE_PREFETCH;
        if (ahead + AGE_PREFETCH < hwm)
            __builtin_prefetch(&t->flows[ahead + AGE_PREFETCH]);
        if (ahead < hwm && flow_table_live(t, ahead)) {
            const struct flow *g = &t->flows[ahead];
            if (idle_expired(g, due))
                __builtin_prefetch(&t->slots[flow_table_home(t, g->hash)]);
        }
        struct flow *f = flow_table_at(t, cur);
        cur = cur + 1 < hwm ? cur + 1 : 0;
        if (!f)
            continue;
        check_unanswered(e, f);
        if (idle_expired(f, due)) {
            drop_flow(e, f);
            STAT_INC(e->stats, flows_expired);
        }
    }
    t->cursor = cur;
    STAT_SET(e->stats, flows_active, flow_table_used(t));
}

void engine_flush(struct engine *e)
{
    struct flow_table *t = e->ft;

    /* Every connection is retired in table order, as drop_flow() would, and the table is
     * emptied at once afterwards: removing entries one by one shifted each one's cluster
     * back, a random miss per connection (0.1 s for 1M flows, ~5 % of a replay's time). */
    for (uint32_t i = 0; i < t->hwm; i++) {
        struct flow *f = flow_table_at(t, i);
        if (!f)
            continue;
        retire_flow(e, f);
        STAT_INC(e->stats, flows_expired);
    }
    flow_table_clear(t);
    STAT_SET(e->stats, flows_active, 0);
}
