/*
 * rstscope: EAL and port setup, lcore launch, and the control loop of the main lcore.
 * The main lcore never handles packets: it detects the end of a replay, writes events,
 * prints status, and reports once the workers have flushed.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_random.h>
#include <rte_ring.h>
#include <rte_version.h>

#include "aggregator.h"
#include "capture_file.h"
#include "dump_keep.h"
#include "dump_writer.h"
#include "options.h"
#include "breakdown.h"
#include "prom.h"
#include "pipeline.h"
#include "port.h"
#include "report.h"
#include "telemetry.h"

#define EVENT_RING_SIZE  65536
#define WORKER_RING_SIZE 4096
#define STALL_SECONDS    10   /* replay: no progress this long means the source is stuck */
#define REDIS_FINAL_MS   5000 /* at exit, retry the last Redis flush this long at most */
#define MBUF_CACHE       256  /* per-lcore mempool cache; it may hold up to 1.5 times that */

volatile int force_quit;
volatile int input_done;
struct pipeline *g_pipe;

static void on_signal(int sig)
{
    if (force_quit)
        _exit(128 + sig); /* second signal: leave now */
    force_quit = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- runtime directory: EAL files go to a private temp dir, removed at exit ---- */

static char runtime_dir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/*
 * A run that died without cleaning up (SIGKILL, a crash, or the second signal's _exit) leaves
 * its private directory behind. The name holds the owner's PID, so at start every
 * rstscope.<pid>.* directory of ours whose process is gone is removed: crashes never pile up
 * state, and a live owner (or a reused PID) only means the directory is left alone.
 */
static void runtime_dir_clean_stale(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        if (strncmp(de->d_name, "rstscope.", 9) != 0)
            continue;
        long pid = strtol(de->d_name + 9, &end, 10);
        if (end == de->d_name + 9 || *end != '.' || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive, or not ours to judge */
        char path[512];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", tmp, de->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid())
            nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(d);
}

static int runtime_dir_setup(void)
{
    if (getenv("RUNTIME_DIRECTORY"))
        return 0; /* systemd or the caller chose one */
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    runtime_dir_clean_stale(tmp);
    snprintf(runtime_dir, sizeof(runtime_dir), "%s/rstscope.%d.XXXXXX", tmp, (int)getpid());
    if (!mkdtemp(runtime_dir)) {
        fprintf(stderr, "rstscope: cannot create a runtime directory under %s: %s\n", tmp,
                strerror(errno));
        runtime_dir[0] = '\0';
        return -1;
    }
    setenv("RUNTIME_DIRECTORY", runtime_dir, 1);
    return 0;
}

static void runtime_dir_cleanup(void)
{
    if (runtime_dir[0])
        nftw(runtime_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- EAL arguments ---- */

struct eal_args {
    int argc;
    char *argv[64];
    char store[8][512];
};

static void eal_push(struct eal_args *a, char *s)
{
    if (a->argc < 63)
        a->argv[a->argc++] = s;
}

/* Offline replay needs no hugepages, NIC or shared config: build EAL's arguments here. */
static void eal_args_for_pcap(struct eal_args *a, char *prog, const char *pcap, unsigned lcores)
{
    /* 256 MB, plus room for each worker's ring of in-flight mbufs (4096 x ~2.3 KB). */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    a->argc = 0;
    eal_push(a, prog);
    eal_push(a, "--no-huge");
    eal_push(a, "--no-pci");
    eal_push(a, "--no-shconf");
    snprintf(a->store[3], sizeof(a->store[3]), "-m%u", 256 + 16 * lcores);
    eal_push(a, a->store[3]);
    eal_push(a, "--log-level=lib.eal:error");
    eal_push(a, "--log-level=pmd.net.pcap:error");
    eal_push(a, "--log-level=lib.telemetry:error");
    snprintf(a->store[0], sizeof(a->store[0]), "--file-prefix=rstscope-%d", (int)getpid());
    eal_push(a, a->store[0]);
    /* Every lcore may float over every CPU: more workers than cores still runs (slower). */
    snprintf(a->store[1], sizeof(a->store[1]), "--lcores=(0-%u)@(0-%ld)", lcores - 1, cpus - 1);
    eal_push(a, a->store[1]);
    snprintf(a->store[2], sizeof(a->store[2]), "--vdev=net_pcap0,rx_pcap=%s", pcap);
    eal_push(a, a->store[2]);
    a->argv[a->argc] = NULL;
}

/* ---- event writer (main lcore) ---- */

static struct breakdown g_breakdown; /* the workers' breakdowns, summed for a report */
static struct dump_writer g_dump;    /* --dump-resets; g_dump.ring is NULL without */

static uint64_t drain_events(struct pipeline *p, FILE *out)
{
    struct rst_event ev[64];
    uint64_t total = 0;
    unsigned n;

    if (!p->events)
        return 0;
    while ((n = rte_ring_sc_dequeue_burst_elem(p->events, ev, sizeof(ev[0]), 64, NULL)) > 0) {
        for (unsigned i = 0; i < n; i++)
            if (out)
                report_event_json(out, &ev[i]); /* the workers kept excluded events out */
        total += n;
    }
    if (total && out)
        fflush(out); /* a live run's file is read while it grows */
    return total;
}

static uint64_t drain_flows(struct pipeline *p, FILE *out)
{
    struct flow_record r[32];
    uint64_t total = 0;
    unsigned n;

    if (!p->flows)
        return 0;
    while ((n = rte_ring_sc_dequeue_burst_elem(p->flows, r, sizeof(r[0]), 32, NULL)) > 0) {
        for (unsigned i = 0; i < n; i++)
            report_flow_json(out, &r[i]);
        total += n;
    }
    if (total)
        fflush(out);
    return total;
}

/* The workers' breakdowns summed into g_breakdown, for a report that shows them. */
static void sum_breakdowns(struct pipeline *p)
{
    const struct options *o = g_breakdown.o;
    memset(&g_breakdown, 0, sizeof(g_breakdown));
    g_breakdown.o = o;
    for (unsigned i = 0; i < p->n_workers; i++)
        if (p->w[i].bd)
            breakdown_add(&g_breakdown, p->w[i].bd);
}

static void port_totals(struct pipeline *p, struct run_info *ri, uint64_t *delivered);

/* --prom-file during the run (the final one is written with the report). */
static void write_prom(struct pipeline *p, const struct options *o, struct run_info *ri)
{
    struct engine_stats s;
    uint64_t delivered;
    pipeline_stats(p, &s);
    sum_breakdowns(p);
    port_totals(p, ri, &delivered);
    if (prom_write(o->prom_file, &s, ri, &g_breakdown.origin,
                   breakdown_active(o) ? &g_breakdown : NULL) < 0)
        fprintf(stderr, "rstscope: writing '%s' failed: %s\n", o->prom_file, strerror(errno));
}

static void port_totals(struct pipeline *p, struct run_info *ri, uint64_t *delivered)
{
    *delivered = 0;
    ri->rx_missed = ri->rx_nombuf = ri->rx_errors = 0;
    for (unsigned i = 0; i < p->n_ports; i++) {
        struct rte_eth_stats st;
        if (rte_eth_stats_get(p->ports[i], &st) != 0)
            continue;
        ri->rx_missed += st.imissed;
        ri->rx_nombuf += st.rx_nombuf;
        ri->rx_errors += st.ierrors;
        *delivered += st.ipackets + st.ierrors + st.rx_nombuf;
    }
    ri->ring_drops = __atomic_load_n(&p->ring_drops, __ATOMIC_RELAXED);
}

static void status_line(struct pipeline *p, struct run_info *ri, double elapsed,
                        uint64_t total_frames, uint64_t *last_pkts, double *last_t)
{
    struct engine_stats s;
    uint64_t delivered;

    pipeline_stats(p, &s);
    port_totals(p, ri, &delivered);
    double dt = elapsed - *last_t;
    double rate = dt > 0 ? (double)(s.packets - *last_pkts) / dt : 0;
    fprintf(stderr,
            "[rstscope] %7.1fs pkts %" PRIu64 " (%.0f/s) tcp %" PRIu64 " rst %" PRIu64
            " resets %" PRIu64 " flows %" PRIu64 " drops %" PRIu64,
            elapsed, s.packets, rate, s.tcp_packets, s.rst_packets, s.resets, s.flows_active,
            ri->rx_missed + ri->rx_nombuf + ri->ring_drops + s.flows_dropped);
    /* What could not be seen, by kind, next to what was: a quiet line must mean quiet
     * traffic, not a blind sensor. */
    fprintf(stderr,
            " (nic %" PRIu64 " nombuf %" PRIu64 " ring %" PRIu64 " table-full %" PRIu64
            ") evicted %" PRIu64 " gaps %" PRIu64 " low-conf %" PRIu64 " ev-lost %" PRIu64,
            ri->rx_missed, ri->rx_nombuf, ri->ring_drops, s.flows_dropped, s.flows_evicted,
            s.capture_gaps, s.low_confidence, s.events_dropped);
    if (total_frames) {
        double done = 100.0 * (double)delivered / (double)total_frames;
        double eta = rate > 0 ? (double)(total_frames - delivered) / rate : 0;
        fprintf(stderr, " | %.1f%% of capture, eta %.0fs", done, eta);
    }
    fputc('\n', stderr);
    *last_pkts = s.packets;
    *last_t = elapsed;
}

/* ---- setup ---- */

/* --dump-resets: the writer (main) and one history keeper per worker. */
static int setup_dump(struct pipeline *p, const struct options *o)
{
    if (!o->dump_dir)
        return 0;
    if (dump_writer_open(&g_dump, o->dump_dir, o->dump_max_mb, o->dump_files, o->dump_rate,
                         p->link) < 0)
        return -1;
    for (unsigned i = 0; i < p->n_workers; i++) {
        p->w[i].dump = dump_keep_create(g_dump.ring, p->replay, &force_quit,
                                        (int)rte_lcore_to_socket_id(p->w[i].lcore));
        if (!p->w[i].dump) {
            fprintf(stderr, "rstscope: cannot allocate the --dump-resets history (%zu KB)\n",
                    (size_t)DUMP_SLOTS * sizeof(struct dump_slot) >> 10);
            return -1;
        }
    }
    return 0;
}

/* Final dump counters into ri, after the workers stopped; frees the keepers. */
static void finish_dump(struct pipeline *p, struct run_info *ri)
{
    if (!g_dump.ring)
        return;
    dump_writer_close(&g_dump);
    ri->dump_enabled = 1;
    ri->dump_packets = g_dump.packets;
    ri->dump_bytes = g_dump.bytes;
    ri->dump_dropped = g_dump.not_written;
    for (unsigned i = 0; i < p->n_workers; i++) {
        if (!p->w[i].dump)
            continue;
        ri->dump_dropped += p->w[i].dump->dropped;
        ri->dump_evicted += p->w[i].dump->evicted;
        dump_keep_destroy(p->w[i].dump);
        p->w[i].dump = NULL;
    }
}

/*
 * A replay's pool holds only what is in flight: net_pcap keeps no mbufs in its RX queue (it
 * allocates one per frame read), so it needs the distributor's rings, one burst and a full
 * mempool cache per lcore, and a margin. Running dry must never happen (net_pcap would drop
 * the frame it has just read), and a smaller pool is faster to create: every mbuf is written
 * at creation, ~15 MB of page faults for the live sizing.
 */
static unsigned replay_mbufs(unsigned ring_mbufs)
{
    return ring_mbufs + rte_lcore_count() * (RS_BURST + MBUF_CACHE * 3 / 2) + 1024;
}

/*
 * One worker's table when max_flows connections are split over nw workers by hash. The split
 * is never exact: a worker's count is binomial, about sqrt(max_flows / nw) from its share.
 * Four of those on top (plus a floor for small tables) keep --max-flows connections inside
 * the tables, instead of evicting at 99.9 % of them on the fuller worker (0.6 % more memory
 * for 1M flows on 2 workers). Capped at the table's limit.
 */
static uint32_t worker_capacity(uint32_t max_flows, unsigned nw)
{
    double share = (double)max_flows / nw;
    double cap = nw == 1 ? share : ceil(share + 4 * sqrt(share) + 64);
    if (cap < 16)
        cap = 16;
    return cap > (double)(1u << 30) ? 1u << 30 : (uint32_t)cap;
}

/*
 * Key the flow hash (lib/flow.h) before anything hashes. Live, a random key: with the
 * built-in constants an outsider could send tuples that share home slots, and every lookup
 * would walk their cluster. A replay takes its key from the capture's own bytes
 * (capture_file_info.digest): the same file gives the same output every time (which flows
 * share a worker, a dump slot or an eviction sample depends on the hash; the per-cause counts
 * do not), and a capture of such an attack still replays at normal speed.
 */
static const char *seed_flow_hash(const struct options *o, uint64_t capture_digest)
{
    uint64_t seed;

    if (o->hash_seed_mode == HASH_SEED_FIXED) {
        flow_hash_seed(o->hash_seed);
        return "fixed";
    }
    if (o->hash_seed_mode == HASH_SEED_RANDOM || !o->pcap) {
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
            seed = rte_rand(); /* EAL seeded it from getentropy() or rdseed */
        flow_hash_seed(seed);
        return "random";
    }
    flow_hash_seed(capture_digest);
    return "capture";
}

static int setup_pipeline(struct pipeline *p, const struct options *o)
{
    unsigned avail = rte_lcore_count() - 1; /* all but main */
    uint16_t pid;

    RTE_ETH_FOREACH_DEV(pid)
    {
        if (p->n_ports == RS_MAX_PORTS)
            break;
        p->ports[p->n_ports++] = pid;
    }
    if (p->n_ports == 0) {
        fprintf(stderr, "rstscope: no DPDK port available (check the NIC binding, or the --vdev "
                        "argument: a device that fails to probe is only logged by EAL)\n");
        return -1;
    }
    if (avail == 0) {
        fprintf(stderr, "rstscope: need at least 2 lcores (main + 1 worker), e.g. -l 0,1\n");
        return -1;
    }
    unsigned nw = o->workers ? o->workers : avail;
    int rss = 1;
    for (unsigned i = 0; i < p->n_ports; i++)
        rss &= (nw == 1 && !p->reader) || port_can_rss(p->ports[i], nw);
    unsigned need = nw + (rss ? 0 : 1);
    if (nw > RS_MAX_WORKERS || need > avail) {
        if (!o->workers && !rss && avail >= 2) {
            nw = RTE_MIN(avail - 1, (unsigned)RS_MAX_WORKERS); /* one lcore distributes */
            need = nw + 1;
        } else {
            fprintf(
                stderr,
                "rstscope: %u worker(s) need %u worker lcores%s, EAL gave %u (use -l/--lcores)\n",
                nw, need, rss ? "" : " (one distributes: the port has no RSS)", avail);
            return -1;
        }
    }
    p->n_workers = nw;

    unsigned nq = rss ? nw : 1;
    unsigned ring_mbufs = rss ? 0 : nw * WORKER_RING_SIZE;
    unsigned n_mbufs = p->replay ? replay_mbufs(ring_mbufs)
                                 : p->n_ports * nq * 2048 + ring_mbufs +
                                       rte_lcore_count() * (RS_BURST + 256) + 4096;
    if (o->mbufs) /* net_pcap's infinite_rx preloads a whole capture into the pool */
        n_mbufs = o->mbufs;
    uint16_t data_room =
        o->mbuf_size ? (uint16_t)RTE_MIN(o->mbuf_size + RTE_PKTMBUF_HEADROOM, (uint32_t)UINT16_MAX)
                     : RTE_MBUF_DEFAULT_BUF_SIZE;
    struct rte_mempool *pool =
        rte_pktmbuf_pool_create("rs_mbufs", n_mbufs, MBUF_CACHE, 0, data_room, rte_socket_id());
    if (!pool) {
        fprintf(stderr, "rstscope: cannot allocate %u mbufs: %s (raise -m)\n", n_mbufs,
                rte_strerror(rte_errno));
        return -1;
    }
    for (unsigned i = 0; i < p->n_ports; i++) {
        if (port_start(p->ports[i], nq, pool) < 0)
            return -1;
        p->port_pcap_ts[p->ports[i]] = (uint8_t)port_is_pcap(p->ports[i]);
    }
    p->ts_offset = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
    int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
    p->ts_flag = bit >= 0 ? 1ULL << bit : 0;
    if (bit < 0)
        p->ts_offset = -1;

    g_breakdown.o = o;
    if (o->events) {
        p->events = rte_ring_create_elem("rs_events", sizeof(struct rst_event), EVENT_RING_SIZE,
                                         rte_socket_id(), RING_F_SC_DEQ);
        if (!p->events) {
            fprintf(stderr, "rstscope: cannot create the event ring: %s\n",
                    rte_strerror(rte_errno));
            return -1;
        }
    }

    if (o->flows) {
        p->flows = rte_ring_create_elem("rs_flows", sizeof(struct flow_record), EVENT_RING_SIZE,
                                        rte_socket_id(), RING_F_SC_DEQ);
        if (!p->flows) {
            fprintf(stderr, "rstscope: cannot create the flow record ring: %s\n",
                    rte_strerror(rte_errno));
            return -1;
        }
    }

    struct engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.max_flows = worker_capacity(o->max_flows, nw);
    cfg.hold_us = (uint64_t)o->fold_ms * 1000;
    cfg.classify.idle_threshold_us = (uint64_t)o->idle_threshold_s * 1000000;
    cfg.ttl_tolerance = o->ttl_tolerance;
    cfg.ipv6_flows = flow_table_v6_share(cfg.max_flows, o->ipv6_share);
    cfg.established_timeout_us = (uint64_t)o->idle_timeout_s * 1000000;
    cfg.link = p->link;

    unsigned lc = rte_get_next_lcore(-1, 1, 0);
    p->dist_lcore = RTE_MAX_LCORE;
    if (!rss) {
        p->dist_lcore = lc;
        lc = rte_get_next_lcore(lc, 1, 0);
    }
    /* One worker behind a reader: the reader only hands frames over, the worker does the
     * rest (mirror sequence accounting and the hash included), as if it read them itself. */
    cfg.mirror_seq_elsewhere = p->dist_lcore != RTE_MAX_LCORE && !p->reader;
    for (unsigned i = 0; i < nw; i++, lc = rte_get_next_lcore(lc, 1, 0)) {
        struct worker *w = &p->w[i];
        w->lcore = lc;
        w->index = i;
        w->queue = (uint16_t)(rss ? i : 0);
        w->eng = engine_create(&cfg, &w->stats, pipeline_event_sink, w, (uint8_t)i);
        if (breakdown_active(o) || o->prom_file) {
            w->bd = calloc(1, sizeof(*w->bd));
            if (!w->bd) {
                fprintf(stderr, "rstscope: out of memory for the breakdowns\n");
                return -1;
            }
            w->bd->o = o;
        }
        if (!w->eng || (o->flows && engine_set_flow_sink(w->eng, pipeline_flow_sink, w) < 0)) {
            fprintf(stderr, "rstscope: cannot allocate a flow table of %u flows (%zu MB)\n",
                    cfg.max_flows, flow_table_mem_bytes(cfg.max_flows) >> 20);
            return -1;
        }
        if (!rss) {
            char name[32];
            snprintf(name, sizeof(name), "rs_w%u", i);
            w->in = rte_ring_create(name, WORKER_RING_SIZE, rte_lcore_to_socket_id(lc),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (!w->in) {
                fprintf(stderr, "rstscope: cannot create ring %s: %s\n", name,
                        rte_strerror(rte_errno));
                return -1;
            }
        }
    }
    return setup_dump(p, o);
}

/* --redis: the aggregator thread, its meta fields, and the workers' overload signal sinks. */
static int start_aggregator(struct pipeline *p, const struct options *o,
                            const struct capture_file_info *cap)
{
    struct aggregator_config ac;
    char err[128], buf[256];

    memset(&ac, 0, sizeof(ac));
    rs_endpoint_parse(o->redis, &ac.sink.conn.ep, err, sizeof(err)); /* checked by options */
    ac.sink.conn.user = o->redis_user;
    ac.sink.conn.password = o->redis_password;
    ac.sink.conn.connect_timeout_ms = 1000;
    ac.sink.conn.command_timeout_ms = 1000;
    ac.sink.sensor = o->sensor;
    ac.sink.interval_s = o->interval_s;
    ac.sink.retention_s = o->redis_retention_s;
    ac.sink.backlog_cap = 8640; /* 24 h at 10 s; about 2 MB */
    ac.sink.events_cap = 256;   /* sampled events per interval */
    ac.sink.events_maxlen = 10000;
    ac.sink.top_n = 20;
    ac.replay = p->replay;
    ac.first_us = (uint64_t)(cap->first_ts * 1e6);
    ac.last_us = (uint64_t)(cap->last_ts * 1e6);
    ac.grace_us = (uint64_t)o->fold_ms * 1000 + 2000000;
    struct aggregator *a = aggregator_create(p, &ac);
    if (!a)
        return -1;

    struct timeval tv;
    gettimeofday(&tv, NULL);
    aggregator_meta(a, "version", RSTSCOPE_VERSION);
    aggregator_meta(a, "dpdk", rte_version());
    snprintf(buf, sizeof(buf), "%llu",
             (unsigned long long)tv.tv_sec * 1000 + (unsigned long long)tv.tv_usec / 1000);
    aggregator_meta(a, "start_ms", buf);
    aggregator_meta(a, "mode", p->replay ? "pcap" : "live");
    aggregator_meta(a, "source", o->pcap ? o->pcap : "DPDK ports");
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < p->n_ports && used < sizeof(buf) - 1; i++) {
        char name[RTE_ETH_NAME_MAX_LEN];
        if (rte_eth_dev_get_name_by_port(p->ports[i], name) != 0)
            snprintf(name, sizeof(name), "port%u", p->ports[i]);
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "", name);
    }
    aggregator_meta(a, "interfaces", buf);
    snprintf(buf, sizeof(buf), "%u", p->n_workers);
    aggregator_meta(a, "workers", buf);
    snprintf(buf, sizeof(buf), "%u", o->interval_s);
    aggregator_meta(a, "interval_s", buf);
    snprintf(buf, sizeof(buf), "%u", o->redis_retention_s);
    aggregator_meta(a, "retention_s", buf);
    snprintf(buf, sizeof(buf), "max_flows=%u rst_fold_ms=%u idle_timeout_s=%u", o->max_flows,
             o->fold_ms, o->idle_timeout_s);
    aggregator_meta(a, "config", buf);
    if (gethostname(buf, sizeof(buf) - 1) == 0)
        aggregator_meta(a, "host", buf);

    for (unsigned i = 0; i < p->n_workers; i++)
        engine_set_signal_sink(p->w[i].eng, aggregator_signal_sink, aggregator_signal_ctx(a, i));
    p->agg = a;
    if (aggregator_start(a) < 0) {
        for (unsigned i = 0; i < p->n_workers; i++)
            engine_set_signal_sink(p->w[i].eng, NULL, NULL);
        p->agg = NULL;
        aggregator_destroy(a);
        return -1;
    }
    return 0;
}

/* Output files this run created; a start-up failure removes them again, so a run that never
 * started leaves no empty summary or events file that looks like "nothing happened". */
static const char *created_outputs[3];
static unsigned n_created_outputs;

static FILE *open_output(const char *path, const char *what)
{
    int existed = access(path, F_OK) == 0;
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "rstscope: cannot write %s file '%s': %s\n", what, path, strerror(errno));
    else if (!existed && n_created_outputs < 3)
        created_outputs[n_created_outputs++] = path;
    return f;
}

static void discard_outputs(void)
{
    for (unsigned i = 0; i < n_created_outputs; i++)
        unlink(created_outputs[i]);
}

/* An exit before the replay ran: stop the frame count where it is (it may be a pass over a
 * multi-GB file) and release its thread and file. Nothing else runs yet to see force_quit. */
static int abandon_count(struct capture_file_info *cap, int rc)
{
    force_quit = 1;
    capture_file_wait(cap);
    return rc;
}

int main(int argc, char **argv)
{
    struct options opt;
    int split = -1;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            split = i;
            break;
        }
    /* Our options follow "--"; without it every argument is ours. */
    int our_argc = split < 0 ? argc : argc - split;
    char **our_argv = split < 0 ? argv : argv + split;
    if (split >= 0)
        our_argv[0] = argv[0];
    int rc = options_parse(&opt, our_argc, our_argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    int eal_given = split > 1;
    if (!opt.pcap && !eal_given) {
        fprintf(stderr, "rstscope: nothing to read: give --pcap FILE, or EAL options with a port "
                        "before '--' (see --help)\n");
        return 2;
    }
    if (opt.pcap && eal_given) {
        fprintf(stderr, "rstscope: --pcap builds its own EAL options; do not combine it with EAL "
                        "options before '--'\n");
        return 2;
    }

    /* A replay's frames are counted on a thread of their own, while EAL starts and the
     * workers run: see capture_file.h. */
    if (opt.pcap && (strchr(opt.pcap, ',') || strlen(opt.pcap) > 400)) {
        fprintf(stderr,
                "rstscope: capture path '%s' must not contain ',' (a DPDK device "
                "argument separator) nor exceed 400 characters\n",
                opt.pcap);
        return 2;
    }
    struct capture_file_info cap = {.link = LINK_ETHERNET, .counted = 1};
    if (opt.pcap && capture_file_open(opt.pcap, &cap, &force_quit) < 0)
        return 1;
    FILE *events_out = NULL, *summary_out = NULL, *flows_out = NULL;
    if ((opt.events && !(events_out = open_output(opt.events, "events"))) ||
        (opt.flows && !(flows_out = open_output(opt.flows, "flows"))) ||
        (opt.summary && !(summary_out = open_output(opt.summary, "summary"))) ||
        runtime_dir_setup() < 0) {
        discard_outputs();
        return abandon_count(&cap, 1);
    }

    struct eal_args ea;
    int reader = 0;
    int eal_argc;
    char **eal_argv;
    if (opt.pcap) {
        unsigned w = opt.workers ? opt.workers : 1;
        /* --reader, one worker: the capture is read on an lcore of its own. DPDK's net_pcap
         * copies every frame out of libpcap's buffer, a quarter of the worker's cycles when
         * it reads (1M-flow capture: 560-710 per packet, 420-560 with a reader), but on a
         * shared 2-vCPU VM the two-lcore pipeline was not reliably faster in wall time
         * (docs/performance.md): opt-in. Two or more workers have one: the distributor. */
        reader = w == 1 && opt.reader;
        eal_args_for_pcap(&ea, argv[0], opt.pcap, 1 + w + (w > 1 || reader ? 1 : 0));
        eal_argc = ea.argc;
        eal_argv = ea.argv;
        if (!opt.workers)
            opt.workers = 1;
    } else {
        eal_argc = split;
        eal_argv = argv;
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    if (rte_eal_init(eal_argc, eal_argv) < 0) {
        fprintf(stderr, "rstscope: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
        runtime_dir_cleanup();
        discard_outputs();
        return abandon_count(&cap, 1);
    }
    static struct pipeline pipe_storage;
    struct pipeline *p = &pipe_storage;
    g_pipe = p;
    p->replay = opt.pcap != NULL;
    p->reader = reader;
    p->link = cap.link;
    if (opt.redis)
        capture_file_wait(&cap); /* the aggregator's replay clock starts at the first frame */
    /* Before the pipeline exists: nothing may hash with another key. */
    const char *hash_key = seed_flow_hash(&opt, cap.digest);
    if (setup_pipeline(p, &opt) < 0 || (opt.redis && start_aggregator(p, &opt, &cap) < 0)) {
        rte_eal_cleanup();
        runtime_dir_cleanup();
        discard_outputs();
        return abandon_count(&cap, 1);
    }
    if (telemetry_register(p, opt.pcap ? "pcap" : "live") < 0)
        fprintf(stderr, "rstscope: warning: telemetry commands not registered: %s\n",
                rte_strerror(rte_errno));
    if (!opt.quiet) {
        char tsock[512];
        telemetry_socket_path(tsock, sizeof(tsock));
        fprintf(stderr, "[rstscope] %s: %u port(s), %u worker(s)%s%s\n",
                opt.pcap ? opt.pcap : "live", p->n_ports, p->n_workers,
                p->reader                        ? ", the capture read on an lcore of its own"
                : p->dist_lcore != RTE_MAX_LCORE ? " behind a software distributor"
                                                 : "",
                p->n_workers > 1 && p->dist_lcore == RTE_MAX_LCORE ? " on symmetric RSS" : "");
        if (tsock[0])
            fprintf(stderr, "[rstscope] telemetry: %s (dpdk-telemetry.py, /rstscope/stats)\n",
                    tsock);
    }

    double t0 = now_s();
    for (unsigned i = 0; i < p->n_workers; i++)
        rte_eal_remote_launch(worker_main, &p->w[i], p->w[i].lcore);
    if (p->dist_lcore != RTE_MAX_LCORE)
        rte_eal_remote_launch(distributor_main, p, p->dist_lcore);

    struct run_info ri;
    memset(&ri, 0, sizeof(ri));
    uint64_t last_pkts = 0, delivered = 0, last_delivered = 0;
    double last_status = 0, last_progress = now_s(), last_prom = 0;
    for (;;) {
        ri.events_written += drain_events(p, events_out);
        ri.flows_written += drain_flows(p, flows_out);
        if (g_dump.ring)
            dump_writer_drain(&g_dump);
        unsigned done = 0;
        for (unsigned i = 0; i < p->n_workers; i++)
            done += __atomic_load_n(&p->w[i].done, __ATOMIC_ACQUIRE) != 0;
        if (done == p->n_workers)
            break;
        if (p->replay && !input_done) {
            int counted = capture_file_counted(&cap);
            port_totals(p, &ri, &delivered);
            if (counted && delivered >= cap.frames) {
                __atomic_store_n(&input_done, 1, __ATOMIC_RELEASE);
            } else if (delivered != last_delivered) {
                last_delivered = delivered;
                last_progress = now_s();
            } else if (counted && now_s() - last_progress > STALL_SECONDS) {
                fprintf(stderr,
                        "rstscope: warning: capture stalled at %" PRIu64 " of %" PRIu64
                        " frames; finishing\n",
                        delivered, cap.frames);
                __atomic_store_n(&input_done, 1, __ATOMIC_RELEASE);
            }
        }
        if (opt.bench_packets && !force_quit) {
            struct engine_stats s;
            pipeline_stats(p, &s);
            if (s.packets >= opt.bench_packets)
                force_quit = 1; /* workers stop on their next poll, flush, and report */
        }
        double el = now_s() - t0;
        if (opt.prom_file && el - last_prom >= opt.prom_interval_s) {
            write_prom(p, &opt, &ri);
            last_prom = el;
        }
        if (opt.status_interval_s && el - last_status >= opt.status_interval_s) {
            status_line(p, &ri, el, capture_file_counted(&cap) ? cap.frames : 0, &last_pkts,
                        &last_status);
            last_status = el;
        }
        usleep(1000);
    }
    rte_eal_mp_wait_lcore();
    ri.events_written += drain_events(p, events_out);
    ri.flows_written += drain_flows(p, flows_out);
    finish_dump(p, &ri);
    if (p->agg)
        aggregator_stop(p->agg, REDIS_FINAL_MS); /* last interval, final flush */
    ri.wall_seconds = now_s() - t0;

    struct engine_stats total;
    pipeline_stats(p, &total);
    sum_breakdowns(p);
    port_totals(p, &ri, &delivered);
    for (unsigned i = 0; i < p->n_ports; i++)
        port_stop(p->ports[i]);
    capture_file_wait(&cap);
    ri.first_ts = cap.first_ts;
    ri.last_ts = cap.last_ts;
    ri.source = opt.pcap ? opt.pcap : "DPDK ports";
    ri.mode = opt.pcap ? "pcap" : "live";
    ri.workers = p->n_workers;
    ri.hash_key = hash_key;
    ri.tsc_hz = rte_get_tsc_hz();
    for (unsigned i = 0; i < p->n_workers; i++) {
        ri.flow_capacity += p->w[i].eng->ft->capacity;
        ri.flow_table_bytes += engine_mem_bytes(p->w[i].eng);
        ri.flow_record_bytes += engine_flow_record_bytes(p->w[i].eng);
    }
    if (opt.prom_file && prom_write(opt.prom_file, &total, &ri, &g_breakdown.origin,
                                    breakdown_active(&opt) ? &g_breakdown : NULL) < 0)
        fprintf(stderr, "rstscope: writing '%s' failed: %s\n", opt.prom_file, strerror(errno));
    if (!opt.quiet) {
        report_text(stdout, &total, &ri);
        breakdown_text(stdout, &g_breakdown);
        if (ri.dump_enabled)
            printf("\n  dump (%s)    %" PRIu64 " packets written, %" PRIu64 " dropped, %" PRIu64
                   " histories evicted\n",
                   opt.dump_dir, ri.dump_packets, ri.dump_dropped, ri.dump_evicted);
    }

    int status = 0;
    if (events_out && fclose(events_out) != 0) {
        fprintf(stderr, "rstscope: writing '%s' failed: %s\n", opt.events, strerror(errno));
        status = 1;
    }
    if (flows_out && fclose(flows_out) != 0) {
        fprintf(stderr, "rstscope: writing '%s' failed: %s\n", opt.flows, strerror(errno));
        status = 1;
    }
    if (summary_out) {
        char *js = NULL;
        size_t jl = 0;
        FILE *m = open_memstream(&js, &jl);
        int bad = !m || report_summary_json(m, &total, &ri) < 0;
        if (m)
            fclose(m);
        if (!bad && breakdown_active(&opt))
            bad = breakdown_summary(summary_out, js, jl, &g_breakdown) < 0;
        else if (!bad)
            bad = fwrite(js, 1, jl, summary_out) != jl;
        free(js);
        if (bad || fclose(summary_out) != 0) {
            fprintf(stderr, "rstscope: writing '%s' failed: %s\n", opt.summary, strerror(errno));
            status = 1;
        }
    }
    for (unsigned i = 0; i < p->n_workers; i++) {
        engine_destroy(p->w[i].eng);
        free(p->w[i].bd);
    }
    aggregator_destroy(p->agg);
    rte_eal_cleanup();
    runtime_dir_cleanup();
    return status;
}
