#include <sched.h>
#include <sys/time.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>

#include "aggregator.h"
#include "dump_keep.h"
#include "breakdown.h"
#include "pipeline.h"

#define IDLE_POLLS_BEFORE_YIELD 256
#define PREFETCH_OFFSET         3
#define HEADER_COPY             256 /* bytes of a chained mbuf made contiguous for the parser */

extern struct pipeline *g_pipe;

_Static_assert(RS_BURST <= ENGINE_BURST, "a received burst must fit one engine burst");

static uint64_t wall_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000ULL + (uint64_t)tv.tv_usec;
}

void pipeline_event_sink(void *ctx, const struct rst_event *ev)
{
    struct worker *w = ctx;
    struct pipeline *p = g_pipe;

    if (w->bd && breakdown_event(w->bd, ev))
        return; /* excluded: counted apart, neither written out nor sent to Redis */
    if (p->agg)
        aggregator_on_event(p->agg, w->index, ev);
    if (!p->events)
        return;
    struct rst_event copy = *ev; /* the ring API takes a non-const pointer */

    while (rte_ring_mp_enqueue_elem(p->events, &copy, sizeof(copy)) != 0) {
        /* Live: never stall the packet path, count the loss (the counters keep the event).
         * Replay: the capture waits for the writer, nothing is lost. */
        if (!p->replay || force_quit) {
            STAT_INC(&w->stats, events_dropped);
            return;
        }
        rte_pause();
    }
}

void pipeline_stats(const struct pipeline *p, struct engine_stats *acc)
{
    uint64_t excluded[CAUSE_MAX] = {0};
    memset(acc, 0, sizeof(*acc));
    for (unsigned i = 0; i < p->n_workers; i++) {
        stats_accumulate(acc, &p->w[i].stats);
        breakdown_excluded_causes(p->w[i].bd, excluded);
    }
    stats_accumulate(acc, &p->dist_stats); /* mirror loss, when a distributor runs */
    breakdown_subtract(excluded, acc);
}

void pipeline_flow_sink(void *ctx, const struct flow_record *r)
{
    struct worker *w = ctx;
    struct pipeline *p = g_pipe;
    struct flow_record copy = *r;

    while (rte_ring_mp_enqueue_elem(p->flows, &copy, sizeof(copy)) != 0) {
        if (!p->replay || force_quit) { /* same policy as events */
            STAT_INC(&w->stats, flow_records_dropped);
            return;
        }
        rte_pause();
    }
}

/* The frame's bytes for the parser: in place, or for a jumbo frame in chained mbufs its
 * first HEADER_COPY bytes (which hold every header) copied into buf. */
static inline const uint8_t *frame_headers(const struct rte_mbuf *m, uint8_t *buf, uint32_t *len)
{
    if (likely(m->nb_segs == 1)) {
        *len = m->data_len;
        return rte_pktmbuf_mtod(m, const uint8_t *);
    }
    *len = m->pkt_len < HEADER_COPY ? m->pkt_len : HEADER_COPY;
    return rte_pktmbuf_read(m, 0, *len, buf);
}

/* Returns the time of the burst's last packet (capture time in a replay). */
static uint64_t process_burst(struct worker *w, struct rte_mbuf **pkts, uint16_t n, uint64_t now)
{
    struct pipeline *p = g_pipe;
    /* Contiguous headers of chained mbufs (rare: jumbo frames); one buffer per frame because
     * the engine reads them all before it processes the first. */
    static __thread uint8_t copy[RS_BURST][HEADER_COPY];
    const uint8_t *data[RS_BURST];
    uint32_t len[RS_BURST];
    uint64_t ts[RS_BURST];
    uint32_t hash[RS_BURST];

    /* Ring-fed mbufs were last written on another lcore: their headers are fetched all at
     * once, before the loop reads the first (from a NIC queue the PMD just wrote them). */
    if (w->in)
        for (uint16_t i = 0; i < n; i++)
            rte_prefetch0(pkts[i]);
    for (uint16_t i = 0; i < n && i < PREFETCH_OFFSET; i++)
        rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        if (i + PREFETCH_OFFSET < n)
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + PREFETCH_OFFSET], void *));
        ts[i] = now;
        if (p->ts_offset >= 0 && (m->ol_flags & p->ts_flag) && p->port_pcap_ts[m->port])
            ts[i] = *RTE_MBUF_DYNFIELD(m, p->ts_offset, rte_mbuf_timestamp_t *);
        data[i] = frame_headers(m, copy[i], &len[i]);
        hash[i] = m->hash.rss;
        if (unlikely(m->pkt_len > len[i])) /* only the headers are handed over */
            STAT_ADD(&w->stats, bytes, m->pkt_len - len[i]);
    }
    /* Ring-fed by a distributor: hash.rss is its flow_key_hash() (see distributor_main()).
     * From a NIC queue it is the NIC's Toeplitz hash, which the flow table cannot use, and
     * from a replay's reader nothing. */
    const uint32_t *hashes = w->in && !p->reader ? hash : NULL;
    if (likely(w->dump == NULL)) {
        engine_input_burst(w->eng, data, len, ts, hashes, n);
    } else { /* --dump-resets: the last packets of each connection, by the engine's keys */
        struct engine_frame_key fk[RS_BURST];
        engine_input_burst_keys(w->eng, data, len, ts, hashes, n, fk);
        for (uint16_t i = 0; i < n; i++)
            if (fk[i].tcp)
                dump_keep_packet(w->dump, &fk[i], data[i], len[i], pkts[i]->pkt_len, ts[i]);
    }
    rte_pktmbuf_free_bulk(pkts, n);
    return n ? ts[n - 1] : now;
}

int worker_main(void *arg)
{
    struct worker *w = arg;
    struct pipeline *p = g_pipe;
    struct rte_mbuf *pkts[RS_BURST];
    uint64_t hz = rte_get_tsc_hz(), tsc0 = rte_rdtsc(), wall0 = wall_now_us();
    uint64_t last_ts = 0; /* time of the latest packet, for the aggregator's replay clock */
    unsigned idle = 0;

    /* Live: fault the tables in now, on this lcore (its NUMA node), so that no page fault
     * delays a packet. A replay has no packet to delay, and touches only what it uses (flows
     * are handed out from the start of the array): prefaulting a default 1M-flow table would
     * cost more than a small capture's whole analysis. */
    if (!p->replay)
        engine_prefault(w->eng);

    for (;;) {
        uint16_t got = 0;
        uint64_t t_poll = rte_rdtsc(); /* read once per poll: clock and cycle accounting */
        uint64_t now = wall0 + (t_poll - tsc0) * 1000000ULL / hz;
        /* Read before polling: the flag is raised after the last packet was handed over, so
         * an empty poll that follows it proves the source is drained. */
        int src_done = __atomic_load_n(w->in ? &p->dist_done : &input_done, __ATOMIC_ACQUIRE);

        if (w->in) {
            unsigned n = rte_ring_sc_dequeue_burst(w->in, (void **)pkts, RS_BURST, NULL);
            got = (uint16_t)n;
            if (n)
                last_ts = process_burst(w, pkts, (uint16_t)n, now);
        } else {
            for (unsigned i = 0; i < p->n_ports; i++) {
                uint16_t n = rte_eth_rx_burst(p->ports[i], w->queue, pkts, RS_BURST);
                got += n;
                if (n)
                    last_ts = process_burst(w, pkts, n, now);
            }
        }
        /* Replays keep capture time; live traffic also ages on the clock when idle. */
        engine_age(w->eng, p->replay ? 0 : now);
        if (p->agg)
            aggregator_worker_tick(p->agg, w->index, p->replay ? last_ts : now);
        /* A stop request wins over a busy port: on a link that never goes quiet, an empty
         * poll may never come, and SIGTERM must still end the run with a flush. */
        if (force_quit)
            break;
        if (got) {
            /* Like testpmd's --record-core-cycles: only polls that received packets count, so
             * cycles per packet compare with dpdk-testpmd's on the same source. */
            STAT_ADD(&w->stats, busy_cycles, rte_rdtsc() - t_poll);
            idle = 0;
            if (unlikely(force_quit))
                break; /* a benchmark stops a source that never runs dry */
            continue;
        }
        if (src_done)
            break;
        if (++idle >= IDLE_POLLS_BEFORE_YIELD) {
            idle = 0;
            sched_yield(); /* lets oversubscribed test setups make progress */
        } else {
            rte_pause();
        }
    }
    engine_flush(w->eng);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return 0;
}

/* Each frame of a burst to the worker its flow hashes to (out[wi], cnt[wi] of them), the
 * hash in its hash.rss; GRE mirror sequence numbers are accounted here. */
static void split_burst(struct pipeline *p, struct rte_mbuf **pkts, uint16_t n,
                        struct rte_mbuf *out[][RS_BURST], unsigned *cnt)
{
    for (uint16_t k = 0; k < n; k++) {
        struct pkt_info pi;
        struct rte_mbuf *m = pkts[k];
        uint8_t copy[HEADER_COPY];
        uint32_t len, h = 0;
        const uint8_t *data = frame_headers(m, copy, &len);
        /* Same canonical key as the flow table: both directions meet on one worker. */
        enum pkt_kind kind = pkt_parse_link(data, len, p->link, &pi);
        if (pi.encap.has_seq)
            mirror_seq_account(&p->dist_stats, &p->dist_mseq, &pi.encap);
        if (kind == PKT_TCP) {
            struct flow_key key;
            int d;
            flow_key_make(&pi, &key, &d);
            h = flow_key_hash(&key);
        }
        unsigned wi = flow_worker_of(h, p->n_workers);
        /* The worker's flow table needs the same hash: hand it over instead of recomputing it
         * (it is 0 for frames the engine will not track). */
        m->hash.rss = h;
        out[wi][cnt[wi]++] = m;
    }
}

int distributor_main(void *arg)
{
    struct pipeline *p = arg;
    struct rte_mbuf *pkts[RS_BURST];
    struct rte_mbuf *out[RS_MAX_WORKERS][RS_BURST];
    unsigned cnt[RS_MAX_WORKERS];
    unsigned idle = 0;

    for (;;) {
        uint16_t got = 0;
        int src_done = __atomic_load_n(&input_done, __ATOMIC_ACQUIRE);
        for (unsigned i = 0; i < p->n_ports; i++) {
            uint16_t n = rte_eth_rx_burst(p->ports[i], 0, pkts, RS_BURST);
            if (!n)
                continue;
            got += n;
            memset(cnt, 0, sizeof(unsigned) * p->n_workers);
            if (p->reader) { /* one worker: it parses and hashes, as if it read the port */
                memcpy(out[0], pkts, n * sizeof(pkts[0]));
                cnt[0] = n;
            } else {
                split_burst(p, pkts, n, out, cnt);
            }
            for (unsigned wi = 0; wi < p->n_workers; wi++) {
                unsigned sent = 0;
                while (sent < cnt[wi]) {
                    sent += rte_ring_sp_enqueue_burst(p->w[wi].in, (void **)out[wi] + sent,
                                                      cnt[wi] - sent, NULL);
                    if (sent < cnt[wi] && (!p->replay || force_quit)) {
                        STAT_SET(p, ring_drops, p->ring_drops + (cnt[wi] - sent));
                        rte_pktmbuf_free_bulk(out[wi] + sent, cnt[wi] - sent);
                        break;
                    }
                }
            }
        }
        if (force_quit) /* as in worker_main: even while packets keep coming */
            break;
        if (got) {
            idle = 0;
            if (unlikely(force_quit))
                break;
            continue;
        }
        if (src_done)
            break;
        if (++idle >= IDLE_POLLS_BEFORE_YIELD) {
            idle = 0;
            sched_yield();
        } else {
            rte_pause();
        }
    }
    __atomic_store_n(&p->dist_done, 1, __ATOMIC_RELEASE);
    return 0;
}
