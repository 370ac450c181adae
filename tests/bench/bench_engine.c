/*
 * Engine-only benchmark: TSC cycles per packet spent in engine_input_burst() alone, with no
 * DPDK, no packet copy and no capture file, so that it scales to 10M concurrent flows (the
 * preloaded captures of scripts/bench need ~5 GB of mbufs per million flows).
 *
 * usage: bench_engine FLOWS [PASSES [THREADS [EXCHANGES]]]
 *        bench_engine --mem-mb FLOWS [THREADS]
 *   --mem-mb prints the memory in MB a run of THREADS (default 1) engines of FLOWS needs, so
 *   that scripts/bench can tell whether it fits without an estimate of its own.
 *
 * THREADS > 1 runs that many engines at once, one per thread pinned to CPU 0, 1, ... (as
 * workers are to lcores), each with its own table and its own copy of the traffic: what
 * shared-nothing workers scale to when nothing but the machine is shared. The distributor's
 * share is measured apart: "dist_cycles_per_packet" is the parse, canonical key and hash
 * that distributor_main() does per packet, timed over the same frames.
 *
 * Traffic: FLOWS IPv4 connections, written phase by phase like gen_bench.c (every
 * connection's SYN, then every SYN-ACK, ...), each phase in another scattered order, so all
 * FLOWS are in the table at once and consecutive packets hit unrelated entries. Endings by
 * connection number: clean FIN close (4 in 10), client abort, server abort, refused, RST after
 * FIN, stale connection (bare RST), no flow (a lone RST). Time advances 250 ms per phase.
 * A connection that gets past its handshake makes EXCHANGES (default 1) request-response
 * exchanges before its ending: 1 gives ~6.8 packets per connection (scripts/bench's figures),
 * more shows which part of the cost is per connection and which per packet.
 * Frames are built into a 32-frame burst between two timed calls: only the engine is timed.
 * Each pass uses new client ports, so every pass creates, resets and expires FLOWS flows.
 *
 * Prints one JSON object: flows, exchanges, packets, packets_per_connection,
 * cycles_per_packet (TSC), ns_per_packet,
 * bytes_per_flow (engine_mem_bytes() / capacity), and ground_truth_ok (per-cause counts);
 * with THREADS, also threads, per-thread cycles, and mpps_total: all packets over the
 * longest thread's wall time.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_frame.h"
#include "bench_ticks.h"
#include "phase_order.h"
#include "engine.h"

enum { FIN = 1, SYN = 2, RST = 4, PSH = 8, ACK = 16 };
enum kind { K_CLEAN, K_CLIENT_ABORT, K_SERVER_ABORT, K_REFUSED, K_AFTER_FIN, K_STALE, K_NO_FLOW };

/* One step: sender (1 = client), flags, seq and ack relative to the ISNs, payload length. */
struct step {
    uint8_t from_client, flags;
    uint32_t seq, ack; /* offsets: client side from ci, server side from si */
    uint16_t len;
};
#define REQ           300
#define RESP          1448
#define MAX_EXCHANGES 30
#define MAX_STEPS     (6 + 3 * MAX_EXCHANGES)
#define NO_NUM        0xffffffff /* a seq or ack field of 0: a bare RST's ack, a refusal's seq */
#define K_MAX         (K_NO_FLOW + 1)

/* Every kind's steps for x exchanges: make_plans() writes them once, before any thread runs. */
static struct step plans[K_MAX][MAX_STEPS];
static int plan_len[K_MAX];
static int max_plan_len;

static int put_step(struct step *p, int n, uint8_t from_client, uint8_t flags, uint32_t seq,
                    uint32_t ack, uint16_t len)
{
    p[n] = (struct step){from_client, flags, seq, ack, len};
    return n + 1;
}

/* The handshake and x exchanges (a request, its response, the client's ACK of it): what
 * every kind but refused and no flow starts with. Returns the steps written. */
static int opening(struct step *p, uint32_t x)
{
    int n = put_step(p, 0, 1, SYN, 0, 0, 0);
    n = put_step(p, n, 0, SYN | ACK, 0, 1, 0);
    n = put_step(p, n, 1, ACK, 1, 1, 0);
    for (uint32_t j = 0; j < x; j++) {
        n = put_step(p, n, 1, PSH | ACK, 1 + j * REQ, 1 + j * RESP, REQ);
        n = put_step(p, n, 0, ACK, 1 + j * RESP, 1 + (j + 1) * REQ, RESP);
        n = put_step(p, n, 1, ACK, 1 + (j + 1) * REQ, 1 + (j + 1) * RESP, 0);
    }
    return n;
}

static void make_plans(uint32_t x)
{
    const uint32_t c = 1 + x * REQ, s = 1 + x * RESP; /* each side's next seq after them */
    struct step *p;
    int n;

    p = plans[K_CLEAN];
    n = opening(p, x);
    n = put_step(p, n, 0, FIN | ACK, s, c, 0);
    n = put_step(p, n, 1, FIN | ACK, c, s + 1, 0);
    plan_len[K_CLEAN] = put_step(p, n, 0, ACK, s + 1, c + 1, 0);
    p = plans[K_CLIENT_ABORT];
    plan_len[K_CLIENT_ABORT] = put_step(p, opening(p, x), 1, RST | ACK, c, s, 0);
    p = plans[K_SERVER_ABORT];
    plan_len[K_SERVER_ABORT] = put_step(p, opening(p, x), 0, RST | ACK, s, c, 0);
    p = plans[K_REFUSED];
    n = put_step(p, 0, 1, SYN, 0, 0, 0);
    plan_len[K_REFUSED] = put_step(p, n, 0, RST | ACK, NO_NUM, 1, 0);
    p = plans[K_AFTER_FIN];
    n = put_step(p, opening(p, x), 0, FIN | ACK, s, c, 0);
    plan_len[K_AFTER_FIN] = put_step(p, n, 1, RST | ACK, c, s + 1, 0);
    p = plans[K_STALE];
    plan_len[K_STALE] = put_step(p, opening(p, x), 0, RST, s, NO_NUM, 0);
    plan_len[K_NO_FLOW] = put_step(plans[K_NO_FLOW], 0, 0, RST | ACK, 1, 1, 0);
    max_plan_len = 0;
    for (int k = 0; k < K_MAX; k++)
        if (plan_len[k] > max_plan_len)
            max_plan_len = plan_len[k];
}

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

/* Ethernet + IPv4 + TCP (SYNs with MSS and window scale) of step s of connection i. */
static uint32_t build(uint8_t *f, uint32_t i, uint32_t pass, const struct step *s, uint16_t *ipid)
{
    uint32_t ci = mix32(i * 2 + 1), si = mix32(i * 2 + 2);
    uint8_t cip[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    uint8_t sip[4] = {172, 16, (uint8_t)(i % 64), (uint8_t)(1 + i % 200)};
    uint16_t cport = (uint16_t)(1024 + pass * 7 % 60000), sport = 443;
    uint32_t own = s->from_client ? ci : si, peer = s->from_client ? si : ci;
    int syn = (s->flags & SYN) != 0;
    struct bench_seg g = {
        .src = s->from_client ? cip : sip,
        .dst = s->from_client ? sip : cip,
        .sport = s->from_client ? cport : sport,
        .dport = s->from_client ? sport : cport,
        .seq = s->seq == NO_NUM ? 0 : own + s->seq,
        .ack = s->ack == NO_NUM ? 0 : peer + s->ack,
        .flags = s->flags,
        .ttl = s->from_client ? 64 : 57,
        .win = syn ? 64240 : 502,
        .ip_id = (*ipid)++,
        .opts = (const uint8_t *)"\x02\x04\x05\xb4\x03\x03\x07\x00", /* MSS 1460, WS 7, EOL */
        .olen = syn ? 8 : 0,
        /* The payload is not in the frame: a header-only capture (the IP length says how much). */
        .payload = s->len,
    };
    return bench_tcp_frame(f, &g);
}

struct job {
    uint32_t n, passes;
    int cpu; /* -1: not pinned */
    /* results */
    uint64_t busy, packets, dist_busy, rst_pool_full;
    double wall_ns, ticks_per_ns, bytes_per_flow;
    int ok, alloc_failed;
};

static volatile uint32_t dist_sink;

/* Time the distributor's per-packet work (parse, canonical key, hash, worker) on a built
 * burst. */
static uint64_t time_dist(const uint8_t *const fp[], const uint32_t len[], unsigned nb,
                          uint32_t *sink)
{
    uint64_t t0 = ticks();
    for (unsigned b = 0; b < nb; b++) {
        struct pkt_info pi;
        if (pkt_parse_link(fp[b], len[b], LINK_ETHERNET, &pi) == PKT_TCP) {
            struct flow_key key;
            int d;
            flow_key_make(&pi, &key, &d);
            *sink += flow_worker_of(flow_key_hash(&key), 2);
        }
    }
    return ticks() - t0;
}

/* The engine every run creates: room for 2 x FLOWS, as scripts/bench sizes rstscope's table. */
static void bench_config(struct engine_config *cfg, uint32_t n)
{
    engine_config_defaults(cfg);
    cfg->max_flows = 2 * n;
}

/* --mem-mb: what one run() allocates, from an engine created as run() creates it (its tables
 * are mapped, not touched), plus the per-connection IP-ID array and 1 MB for the rest. */
static int print_mem_mb(uint32_t n, uint32_t nthr)
{
    struct engine_config cfg;
    struct engine_stats stats;
    bench_config(&cfg, n);
    struct engine *e = engine_create(&cfg, memset(&stats, 0, sizeof(stats)), NULL, NULL, 0);
    if (!e) {
        fprintf(stderr, "bench_engine: cannot create an engine of %u flows\n", 2 * n);
        return 1;
    }
    uint64_t bytes = engine_mem_bytes(e) + (uint64_t)n * sizeof(uint16_t) + (1u << 20);
    if (e->hosts)
        bytes += host_table_mem_bytes(e->hosts);
    engine_destroy(e);
    printf("%" PRIu64 "\n", (bytes * nthr + (1u << 20) - 1) >> 20);
    return 0;
}

static void *run(void *arg)
{
    struct job *j = arg;
    uint32_t n = j->n;
    if (j->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(j->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    struct engine_stats *stats = aligned_alloc(64, (sizeof(*stats) + 63) / 64 * 64);
    struct engine_config cfg;
    bench_config(&cfg, n);
    struct engine *e =
        stats ? engine_create(&cfg, memset(stats, 0, sizeof(*stats)), NULL, NULL, 0) : NULL;
    uint16_t *ipid = calloc(n, sizeof(*ipid));
    if (!e || !ipid) {
        j->alloc_failed = 1;
        engine_destroy(e);
        free(stats);
        free(ipid);
        return NULL;
    }
    engine_prefault(e);
    uint8_t(*frames)[128] = malloc(ENGINE_BURST * 128);
    const uint8_t *fp[ENGINE_BURST];
    uint32_t len[ENGINE_BURST];
    uint64_t ts[ENGINE_BURST];
    uint64_t busy = 0, packets = 0, dist = 0, expect[CAUSE_MAX + 1] = {0};
    uint32_t sink = 0;
    unsigned nb = 0;
    struct timespec w0, w1;

    for (unsigned b = 0; b < ENGINE_BURST; b++)
        fp[b] = frames[b];
    clock_gettime(CLOCK_MONOTONIC, &w0);
    uint64_t t_start = ticks();
    /* 20 s from the start of one pass to the next, or more when its phases take longer:
     * passes never overlap in time. */
    uint64_t pass_us = (uint64_t)(max_plan_len + 11) * 250000;
    if (pass_us < 20 * 1000000)
        pass_us = 20 * 1000000;
    for (uint32_t pass = 0; pass < j->passes; pass++) {
        uint64_t base = 1700000000000000ULL + (uint64_t)pass * pass_us;
        for (uint32_t i = 0; i < n; i++)
            expect[cause_of[kind_of(i)]]++;
        for (int ph = 0; ph < max_plan_len; ph++) {
            uint64_t off = (uint64_t)ph * 7919;
            uint64_t stride = phase_stride(n, ph);
            for (uint32_t r = 0; r < n; r++) {
                uint32_t i = (uint32_t)(((uint64_t)r * stride + off) % n);
                enum kind k = kind_of(i);
                if (ph >= plan_len[k])
                    continue;
                len[nb] = build(frames[nb], i, pass, &plans[k][ph], &ipid[i]);
                ts[nb] = base + (uint64_t)ph * 250000 + (uint64_t)r * 250000 / n;
                if (++nb == ENGINE_BURST) {
                    if (pass == 0)
                        dist += time_dist(fp, len, nb, &sink);
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
    j->wall_ns = (double)(w1.tv_sec - w0.tv_sec) * 1e9 + (double)(w1.tv_nsec - w0.tv_nsec);
    j->ticks_per_ns = (double)t_total / j->wall_ns;
    j->ok = 1;
    for (int c = 0; c < CAUSE_MAX; c++)
        if (stats->causes[c] != expect[c]) {
            fprintf(stderr, "bench_engine: %s %" PRIu64 " != expected %" PRIu64 "\n", cause_name(c),
                    stats->causes[c], expect[c]);
            j->ok = 0;
        }
    j->busy = busy;
    j->packets = packets;
    j->dist_busy = dist;
    dist_sink = sink; /* the timed loop's results are used: the compiler keeps its work */
    j->rst_pool_full = stats->rst_pool_full;
    j->bytes_per_flow = (double)engine_mem_bytes(e) / (double)e->ft->capacity;
    engine_destroy(e);
    free(stats);
    free(ipid);
    free(frames);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && argc <= 4 && strcmp(argv[1], "--mem-mb") == 0) {
        uint32_t n = (uint32_t)strtoul(argv[2], NULL, 10);
        uint32_t nthr = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 1;
        if (n < 10 || n > 16000000 || nthr < 1 || nthr > 64) {
            fprintf(stderr, "bench_engine: --mem-mb FLOWS 10..16000000 [THREADS 1..64]\n");
            return 2;
        }
        return print_mem_mb(n, nthr);
    }
    if (argc < 2) {
        fprintf(stderr, "usage: bench_engine FLOWS [PASSES [THREADS [EXCHANGES]]]\n"
                        "       bench_engine --mem-mb FLOWS [THREADS]\n");
        return 2;
    }
    uint32_t n = (uint32_t)strtoul(argv[1], NULL, 10);
    uint32_t passes = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 2;
    uint32_t nthr = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 1;
    uint32_t x = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 1;
    if (n < 10 || n > 16000000 || passes < 1 || passes > 100 || nthr < 1 || nthr > 64 || x < 1 ||
        x > MAX_EXCHANGES) {
        fprintf(stderr,
                "bench_engine: FLOWS 10..16000000, PASSES 1..100, THREADS 1..64, "
                "EXCHANGES 1..%d\n",
                MAX_EXCHANGES);
        return 2;
    }
    make_plans(x);
    struct job jobs[64];
    pthread_t tid[64];
    for (uint32_t t = 0; t < nthr; t++) {
        jobs[t] = (struct job){.n = n, .passes = passes, .cpu = nthr > 1 ? (int)t : -1};
        if (nthr == 1)
            run(&jobs[0]);
        else if (pthread_create(&tid[t], NULL, run, &jobs[t]) != 0) {
            fprintf(stderr, "bench_engine: cannot start thread %u\n", t);
            return 1;
        }
    }
    uint64_t busy = 0, packets = 0, dist = 0, dist_pkts = 0;
    double wall = 0;
    int ok = 1;
    for (uint32_t t = 0; t < nthr; t++) {
        if (nthr > 1)
            pthread_join(tid[t], NULL);
        if (jobs[t].alloc_failed) {
            fprintf(stderr, "bench_engine: cannot allocate the engine for %u flows\n", n);
            return 1;
        }
        busy += jobs[t].busy;
        packets += jobs[t].packets;
        dist += jobs[t].dist_busy;
        dist_pkts += jobs[t].packets / passes;
        ok &= jobs[t].ok;
        if (jobs[t].wall_ns > wall)
            wall = jobs[t].wall_ns;
    }
    double cpp = (double)busy / (double)packets;
    printf("{\"flows\":%u,\"exchanges\":%u,\"passes\":%u,\"packets\":%" PRIu64
           ",\"packets_per_connection\":%.2f,\"cycles_per_packet\":%.1f,"
           "\"ns_per_packet\":%.1f,\"tsc_ghz\":%.3f,\"bytes_per_flow\":%.2f,"
           "\"rst_pool_full\":%" PRIu64 ",\"dist_cycles_per_packet\":%.1f",
           n, x, passes, jobs[0].packets, (double)jobs[0].packets / ((double)n * passes), cpp,
           cpp / jobs[0].ticks_per_ns, jobs[0].ticks_per_ns, jobs[0].bytes_per_flow,
           jobs[0].rst_pool_full, (double)dist / (double)dist_pkts);
    if (nthr > 1) {
        printf(",\"threads\":%u,\"thread_cycles_per_packet\":[", nthr);
        for (uint32_t t = 0; t < nthr; t++)
            printf("%s%.1f", t ? "," : "", (double)jobs[t].busy / (double)jobs[t].packets);
        /* Engine time only would flatter: frame building is in the wall time, as it is in
         * every thread, so the ratio to one thread's mpps_total is the scaling. */
        printf("],\"mpps_total\":%.3f", (double)packets / wall * 1e3);
    } else {
        printf(",\"mpps_total\":%.3f", (double)packets / wall * 1e3);
    }
    printf(",\"ground_truth_ok\":%s}\n", ok ? "true" : "false");
    return ok ? 0 : 1;
}
