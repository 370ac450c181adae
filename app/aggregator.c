#include "aggregator.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "pipeline.h"

#define EVENT_RING_SIZE 16384
#define TICK_MS         10  /* aggregator wake-up: drains the event ring, checks intervals */
#define ACK_WAIT_MS     200 /* a polling worker acks a sketch hand-over within microseconds */
#define OPEN_BUCKETS    64  /* replay: capture-time intervals open at once */
#define REPLAY_FLUSH_MS 100 /* replay: at most one round trip per this much wall time */

/*
 * Sketch hand-over without locks. The worker fills sk[ack & 1]. To collect, the aggregator
 * raises req to ack + 1 (release); the worker, at its next poll, sees it (acquire), switches to
 * sk[req & 1] and publishes ack = req (release). Once ack == req the aggregator owns
 * sk[(req + 1) & 1]: it merges and clears it, and only then may raise req again.
 */
struct agg_worker {
    struct topk sk[2][RS_TOP_DIMS];
    struct aggregator *a;
    uint32_t req __attribute__((aligned(64))); /* aggregator writes */
    uint32_t ack __attribute__((aligned(64))); /* worker writes */
    uint64_t clock_us;                         /* worker writes: time of its latest packet */
    uint64_t ring_drops;                       /* worker writes: events not queued (live) */
} __attribute__((aligned(64)));

struct aggregator {
    struct aggregator_config cfg;
    struct pipeline *p;
    struct rs_sink *sink;
    struct rte_ring *ring;
    struct agg_worker *aw;
    pthread_t th;
    int started;
    volatile int stop;
    uint64_t iv_ms;
    struct topk acc[RS_TOP_DIMS]; /* merged sketches of the current window */
    uint64_t prev[RS_FIELDS_MAX]; /* counters at the last interval close */
    uint64_t next_end_ms;         /* live: wall time of the next interval end */
    uint64_t last_end_ms;
    /* replay: capture-time buckets [b0, b0 + OPEN_BUCKETS) */
    uint64_t b0, max_b;
    int have_b0;
    uint64_t bucket[OPEN_BUCKETS][RS_FIELDS_MAX];
    uint64_t late_events, last_replay_flush_ms;
};

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct aggregator *aggregator_create(struct pipeline *p, const struct aggregator_config *cfg)
{
    struct aggregator *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cfg = *cfg;
    a->p = p;
    a->iv_ms = (uint64_t)cfg->sink.interval_s * 1000;
    a->aw = aligned_alloc(64, sizeof(*a->aw) * p->n_workers);
    a->sink = rs_sink_create(&cfg->sink);
    a->ring = rte_ring_create_elem("rs_redis_ev", sizeof(struct rst_event), EVENT_RING_SIZE,
                                   rte_socket_id(), RING_F_SC_DEQ);
    if (!a->aw || !a->sink || !a->ring) {
        fprintf(stderr, "rstscope: cannot set up the Redis aggregator: %s\n",
                !a->ring ? rte_strerror(rte_errno) : "out of memory");
        aggregator_destroy(a);
        return NULL;
    }
    memset(a->aw, 0, sizeof(*a->aw) * p->n_workers);
    for (unsigned i = 0; i < p->n_workers; i++) {
        a->aw[i].a = a;
        for (int b = 0; b < 2; b++)
            for (int d = 0; d < RS_TOP_DIMS; d++)
                topk_init(&a->aw[i].sk[b][d]);
    }
    for (int d = 0; d < RS_TOP_DIMS; d++)
        topk_init(&a->acc[d]);
    if (cfg->replay && cfg->first_us) { /* the stream starts at the capture's first interval */
        a->b0 = a->max_b = cfg->first_us / 1000 / a->iv_ms;
        a->have_b0 = 1;
    }
    return a;
}

void aggregator_meta(struct aggregator *a, const char *name, const char *value)
{
    rs_sink_meta(a->sink, name, value);
}

void aggregator_destroy(struct aggregator *a)
{
    if (!a)
        return;
    rs_sink_destroy(a->sink);
    rte_ring_free(a->ring);
    free(a->aw);
    free(a);
}

/* ---- worker side ---- */

static void key_addr(struct topk_key *k, const uint8_t ip[16], uint16_t port, uint8_t family)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->addr, ip, 16);
    k->port = port;
    k->family = family;
}

void aggregator_on_event(struct aggregator *a, unsigned worker, const struct rst_event *ev)
{
    struct agg_worker *w = &a->aw[worker];
    struct topk *sk = w->sk[__atomic_load_n(&w->ack, __ATOMIC_RELAXED) & 1];
    struct topk_key k;

    key_addr(&k, ev->server_ip, ev->server_port, ev->family);
    topk_add(&sk[RS_TOP_SERVERS], &k, 1);
    key_addr(&k, ev->client_ip, 0, ev->family);
    topk_add(&sk[RS_TOP_CLIENTS], &k, 1);
    memset(&k, 0, sizeof(k));
    k.port = ev->server_port;
    topk_add(&sk[RS_TOP_PORTS], &k, 1);

    struct rst_event copy = *ev; /* the ring API takes a non-const pointer */
    while (rte_ring_mp_enqueue_elem(a->ring, &copy, sizeof(copy)) != 0) {
        /* Live: never stall the packet path; the per-cause counters still hold the event.
         * Replay: wait for the aggregator, so the stream's capture-time buckets are exact. */
        if (!a->p->replay || force_quit) {
            __atomic_store_n(&w->ring_drops, w->ring_drops + 1, __ATOMIC_RELAXED);
            return;
        }
        rte_pause();
    }
}

void *aggregator_signal_ctx(struct aggregator *a, unsigned worker)
{
    return &a->aw[worker];
}

void aggregator_signal_sink(void *ctx, const struct overload_event *ov)
{
    struct agg_worker *w = ctx;
    struct topk_key k;
    key_addr(&k, ov->server_ip, ov->server_port, ov->family);
    topk_add(&w->sk[__atomic_load_n(&w->ack, __ATOMIC_RELAXED) & 1][RS_TOP_OVERLOAD], &k, 1);
}

void aggregator_worker_tick(struct aggregator *a, unsigned worker, uint64_t clock_us)
{
    struct agg_worker *w = &a->aw[worker];
    uint32_t r = __atomic_load_n(&w->req, __ATOMIC_ACQUIRE);
    if (r != w->ack)
        __atomic_store_n(&w->ack, r, __ATOMIC_RELEASE); /* now filling sk[r & 1] */
    if (clock_us > w->clock_us)
        __atomic_store_n(&w->clock_us, clock_us, __ATOMIC_RELAXED);
}

/* ---- aggregator thread ---- */

static int worker_done(const struct aggregator *a, unsigned i)
{
    return __atomic_load_n(&a->p->w[i].done, __ATOMIC_ACQUIRE) != 0;
}

static void merge_clear(struct aggregator *a, struct topk *sk)
{
    for (int d = 0; d < RS_TOP_DIMS; d++) {
        topk_merge(&a->acc[d], &sk[d]);
        topk_init(&sk[d]);
    }
}

/* Fold every worker's finished sketch into acc (bounded wait for the hand-over). */
static void collect_sketches(struct aggregator *a)
{
    unsigned n = a->p->n_workers;
    for (unsigned i = 0; i < n; i++) {
        struct agg_worker *w = &a->aw[i];
        uint32_t ack = __atomic_load_n(&w->ack, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&w->req, __ATOMIC_RELAXED) == ack)
            __atomic_store_n(&w->req, ack + 1, __ATOMIC_RELEASE);
    }
    uint64_t t0 = wall_ms();
    for (unsigned i = 0; i < n; i++) {
        struct agg_worker *w = &a->aw[i];
        uint32_t req = __atomic_load_n(&w->req, __ATOMIC_RELAXED);
        while (__atomic_load_n(&w->ack, __ATOMIC_ACQUIRE) != req && !worker_done(a, i) &&
               wall_ms() - t0 < ACK_WAIT_MS)
            sleep_ms(1);
        if (__atomic_load_n(&w->ack, __ATOMIC_ACQUIRE) == req) {
            merge_clear(a, w->sk[(req + 1) & 1]);
        } else if (worker_done(a, i)) {
            /* Finished workers write nothing any more: both buffers are ours. */
            merge_clear(a, w->sk[0]);
            merge_clear(a, w->sk[1]);
        } /* else: still unacknowledged; collected next time */
    }
}

static void publish_tops(struct aggregator *a)
{
    struct topk_entry e[TOPK_CAP];
    for (int d = 0; d < RS_TOP_DIMS; d++) {
        unsigned n = topk_sorted(&a->acc[d], e, TOPK_CAP);
        rs_sink_top(a->sink, d, e, n);
        if (!a->cfg.replay) /* live: the window is one interval; a replay keeps the capture */
            topk_init(&a->acc[d]);
    }
}

static uint64_t input_drops(struct aggregator *a)
{
    uint64_t d = __atomic_load_n(&a->p->ring_drops, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < a->p->n_ports; i++) {
        struct rte_eth_stats st;
        if (rte_eth_stats_get(a->p->ports[i], &st) == 0)
            d += st.imissed + st.rx_nombuf;
    }
    return d;
}

static void snapshot(struct aggregator *a, uint64_t *val)
{
    struct engine_stats s;
    pipeline_stats(a->p, &s); /* as the report counts */
    rs_fields_from_stats(&s, input_drops(a), val);
}

static void update_meta(struct aggregator *a)
{
    char buf[32];
    uint64_t drops = 0;
    for (unsigned i = 0; i < a->p->n_workers; i++)
        drops += __atomic_load_n(&a->aw[i].ring_drops, __ATOMIC_RELAXED);
    snprintf(buf, sizeof(buf), "%" PRIu64, drops);
    rs_sink_meta(a->sink, "redis_events_dropped", buf);
    snprintf(buf, sizeof(buf), "%" PRIu64, a->late_events);
    rs_sink_meta(a->sink, "late_events", buf);
}

/* The fields that come from events in a replay (exact capture-time buckets). */
static int from_events(int f)
{
    return f < CAUSE_MAX || f == RS_F_RESETS || f == RS_F_RESETS + 1 /* low_confidence */;
}

static void bucket_event(struct aggregator *a, const struct rst_event *ev);

static void close_bucket(struct aggregator *a)
{
    struct rs_interval iv;
    uint64_t *b = a->bucket[a->b0 % OPEN_BUCKETS];
    iv.end_ms = (a->b0 + 1) * a->iv_ms;
    memcpy(iv.val, b, sizeof(iv.val));
    rs_sink_interval(a->sink, &iv);
    a->last_end_ms = iv.end_ms;
    memset(b, 0, sizeof(a->bucket[0]));
    a->b0++;
}

static uint64_t *bucket_for(struct aggregator *a, uint64_t ts_us, int *late)
{
    uint64_t b = ts_us / 1000 / a->iv_ms;
    if (!a->have_b0) {
        a->b0 = a->max_b = b;
        a->have_b0 = 1;
    }
    *late = b < a->b0;
    if (b < a->b0) /* its interval was already written: count it in the oldest open one */
        b = a->b0;
    while (b >= a->b0 + OPEN_BUCKETS)
        close_bucket(a);
    if (b > a->max_b)
        a->max_b = b;
    return a->bucket[b % OPEN_BUCKETS];
}

static void bucket_event(struct aggregator *a, const struct rst_event *ev)
{
    int late;
    uint64_t *b = bucket_for(a, ev->ts_us, &late);
    a->late_events += late;
    if (ev->cause < CAUSE_MAX)
        b[ev->cause]++;
    b[RS_F_RESETS]++;
    b[RS_F_RESETS + 1] += ev->low_confidence != 0;
}

/* Replay: counters other than the per-event ones go to the bucket of the capture clock. */
static void bucket_counters(struct aggregator *a, uint64_t clock_us)
{
    uint64_t cur[RS_FIELDS_MAX];
    int late;
    snapshot(a, cur);
    uint64_t *b = bucket_for(a, clock_us, &late);
    for (int f = 0; f < RS_FIELDS_MAX; f++) {
        if (!from_events(f))
            b[f] += cur[f] - a->prev[f];
        a->prev[f] = cur[f];
    }
}

static unsigned drain(struct aggregator *a)
{
    struct rst_event ev[64];
    unsigned n, total = 0;
    /* Bounded per call, so a flood cannot starve the interval clock. */
    while (total < 8192 &&
           (n = rte_ring_sc_dequeue_burst_elem(a->ring, ev, sizeof(ev[0]), 64, NULL)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            if (a->cfg.replay)
                bucket_event(a, &ev[i]);
            rs_sink_event(a->sink, &ev[i]);
        }
        total += n;
    }
    return total;
}

static void live_interval(struct aggregator *a, uint64_t end_ms)
{
    struct rs_interval iv;
    uint64_t cur[RS_FIELDS_MAX];
    snapshot(a, cur);
    if (end_ms <= a->last_end_ms)
        end_ms = a->last_end_ms + 1;
    iv.end_ms = end_ms;
    for (int f = 0; f < RS_FIELDS_MAX; f++) {
        iv.val[f] = cur[f] - a->prev[f];
        a->prev[f] = cur[f];
    }
    rs_sink_interval(a->sink, &iv);
    a->last_end_ms = end_ms;
    rs_sink_totals(a->sink, cur);
}

static uint64_t replay_clock(struct aggregator *a, int *all_done)
{
    uint64_t m = UINT64_MAX;
    *all_done = 1;
    for (unsigned i = 0; i < a->p->n_workers; i++) {
        if (worker_done(a, i))
            continue;
        *all_done = 0;
        uint64_t c = __atomic_load_n(&a->aw[i].clock_us, __ATOMIC_RELAXED);
        if (c < m)
            m = c;
    }
    return m == UINT64_MAX ? 0 : m;
}

static void *agg_main(void *arg)
{
    struct aggregator *a = arg;
    if (!a->cfg.replay)
        a->next_end_ms = (wall_ms() / a->iv_ms + 1) * a->iv_ms; /* aligned: sensors line up */
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        drain(a);
        uint64_t now = wall_ms();
        int flush = 0;
        if (!a->cfg.replay) {
            if (now >= a->next_end_ms) {
                live_interval(a, a->next_end_ms);
                collect_sketches(a);
                publish_tops(a);
                a->next_end_ms = (now / a->iv_ms + 1) * a->iv_ms;
                flush = 1;
            }
        } else if (now - a->last_replay_flush_ms >= REPLAY_FLUSH_MS) {
            int all_done;
            uint64_t clock = replay_clock(a, &all_done);
            if (clock && !all_done) {
                bucket_counters(a, clock);
                /* Held events close up to a fold window after their RST: wait that long. */
                while (a->have_b0 && (a->b0 + 1) * a->iv_ms * 1000 + a->cfg.grace_us <= clock)
                    close_bucket(a);
                uint64_t cur[RS_FIELDS_MAX];
                snapshot(a, cur);
                rs_sink_totals(a->sink, cur);
                flush = 1;
            }
            a->last_replay_flush_ms = now;
        }
        struct rs_sink_stats st;
        rs_sink_get_stats(a->sink, &st);
        if (flush || st.backlog > 0) {
            update_meta(a);
            rs_sink_flush(a->sink, now, 0); /* retries wait for the backoff inside */
        }
        sleep_ms(TICK_MS);
    }
    return NULL;
}

int aggregator_start(struct aggregator *a)
{
    int rc = rte_ctrl_thread_create(&a->th, "rs-redis", NULL, agg_main, a);
    if (rc != 0) {
        fprintf(stderr, "rstscope: cannot start the Redis aggregator thread: %s\n", strerror(-rc));
        return -1;
    }
    a->started = 1;
    return 0;
}

void aggregator_stop(struct aggregator *a, unsigned deadline_ms)
{
    if (!a->started)
        return;
    __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
    pthread_join(a->th, NULL);
    a->started = 0;

    /* The workers have flushed: every event is in the ring, every counter final. */
    while (drain(a) > 0)
        ;
    uint64_t cur[RS_FIELDS_MAX];
    if (a->cfg.replay) {
        bucket_counters(a, a->cfg.last_us ? a->cfg.last_us : a->max_b * a->iv_ms * 1000);
        while (a->have_b0 && a->b0 <= a->max_b)
            close_bucket(a);
        snapshot(a, cur);
        rs_sink_totals(a->sink, cur);
    } else {
        live_interval(a, wall_ms());
    }
    collect_sketches(a);
    publish_tops(a);
    update_meta(a);

    uint64_t t0 = wall_ms(), now;
    int left = 1, tries = 0;
    /* Bounded: retry until written or the deadline; each try is bounded by the timeouts. */
    while ((now = wall_ms()) - t0 < deadline_ms) {
        tries++;
        if ((left = rs_sink_flush(a->sink, now, 1)) == 0)
            break;
        sleep_ms(250);
    }
    struct rs_sink_stats st;
    rs_sink_get_stats(a->sink, &st);
    if (left)
        fprintf(stderr,
                "[rstscope] redis: final flush incomplete after %d tries: %u intervals not "
                "written (%" PRIu64 " written, %" PRIu64 " dropped)\n",
                tries, st.backlog, st.intervals_written, st.intervals_dropped);
    else
        fprintf(stderr,
                "[rstscope] redis: final flush done: %" PRIu64 " intervals, %" PRIu64
                " events written; %" PRIu64 " intervals dropped, %" PRIu64
                " events not sampled, %" PRIu64 " errors\n",
                st.intervals_written, st.events_written, st.intervals_dropped, st.events_unsampled,
                st.errors);
}
