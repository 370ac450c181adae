/*
 * rstscope: EAL and port setup, lcore launch, and the control loop of the main lcore.
 * The main lcore never handles packets: it detects the end of a replay, writes events,
 * prints status, and reports once the workers have flushed.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include <rte_ring.h>

#include "capture_file.h"
#include "options.h"
#include "pipeline.h"
#include "port.h"
#include "report.h"

#define EVENT_RING_SIZE  65536
#define WORKER_RING_SIZE 4096
#define STALL_SECONDS    10 /* replay: no progress this long means the source is stuck */

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

static int runtime_dir_setup(void)
{
    if (getenv("RUNTIME_DIRECTORY"))
        return 0; /* systemd or the caller chose one */
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(runtime_dir, sizeof(runtime_dir), "%s/rstscope.XXXXXX", tmp);
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

static uint64_t drain_events(struct pipeline *p, FILE *out)
{
    struct rst_event ev[64];
    uint64_t total = 0;
    unsigned n;

    if (!p->events)
        return 0;
    while ((n = rte_ring_sc_dequeue_burst_elem(p->events, ev, sizeof(ev[0]), 64, NULL)) > 0) {
        for (unsigned i = 0; i < n; i++)
            report_event_json(out, &ev[i]);
        total += n;
    }
    if (total)
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

static void sum_stats(struct pipeline *p, struct engine_stats *acc)
{
    memset(acc, 0, sizeof(*acc));
    for (unsigned i = 0; i < p->n_workers; i++)
        stats_accumulate(acc, &p->w[i].stats);
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

    sum_stats(p, &s);
    port_totals(p, ri, &delivered);
    double dt = elapsed - *last_t;
    double rate = dt > 0 ? (double)(s.packets - *last_pkts) / dt : 0;
    fprintf(stderr,
            "[rstscope] %7.1fs pkts %" PRIu64 " (%.0f/s) tcp %" PRIu64 " rst %" PRIu64
            " resets %" PRIu64 " flows %" PRIu64 " drops %" PRIu64,
            elapsed, s.packets, rate, s.tcp_packets, s.rst_packets, s.resets, s.flows_active,
            ri->rx_missed + ri->rx_nombuf + ri->ring_drops + s.flows_dropped);
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
        rss &= nw == 1 || port_can_rss(p->ports[i], nw);
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
    unsigned n_mbufs =
        p->n_ports * nq * 2048 + ring_mbufs + rte_lcore_count() * (RS_BURST + 256) + 4096;
    struct rte_mempool *pool = rte_pktmbuf_pool_create("rs_mbufs", n_mbufs, 256, 0,
                                                       RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
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
    cfg.max_flows = o->max_flows / nw > 16 ? o->max_flows / nw : 16;
    cfg.hold_us = (uint64_t)o->fold_ms * 1000;
    if (cfg.hold_min_us > cfg.hold_us)
        cfg.hold_min_us = cfg.hold_us;
    cfg.classify.idle_threshold_us = (uint64_t)o->idle_threshold_s * 1000000;
    cfg.ttl_tolerance = o->ttl_tolerance;
    cfg.established_timeout_us = (uint64_t)o->idle_timeout_s * 1000000;
    cfg.link = p->link;

    unsigned lc = rte_get_next_lcore(-1, 1, 0);
    p->dist_lcore = RTE_MAX_LCORE;
    if (!rss) {
        p->dist_lcore = lc;
        lc = rte_get_next_lcore(lc, 1, 0);
    }
    for (unsigned i = 0; i < nw; i++, lc = rte_get_next_lcore(lc, 1, 0)) {
        struct worker *w = &p->w[i];
        w->lcore = lc;
        w->index = i;
        w->queue = (uint16_t)(rss ? i : 0);
        w->eng = engine_create(&cfg, &w->stats, pipeline_event_sink, w, (uint8_t)i);
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
    return 0;
}

static FILE *open_output(const char *path, const char *what)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "rstscope: cannot write %s file '%s': %s\n", what, path, strerror(errno));
    return f;
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

    struct capture_file_info cap = {.link = LINK_ETHERNET};
    if (opt.pcap && capture_file_count(opt.pcap, &cap) < 0)
        return 1;
    uint64_t total_frames = cap.frames;
    if (opt.pcap && (strchr(opt.pcap, ',') || strlen(opt.pcap) > 400)) {
        fprintf(stderr,
                "rstscope: capture path '%s' must not contain ',' (a DPDK device "
                "argument separator) nor exceed 400 characters\n",
                opt.pcap);
        return 2;
    }
    FILE *events_out = NULL, *summary_out = NULL, *flows_out = NULL;
    if (opt.events && !(events_out = open_output(opt.events, "events")))
        return 1;
    if (opt.flows && !(flows_out = open_output(opt.flows, "flows")))
        return 1;
    if (opt.summary && !(summary_out = open_output(opt.summary, "summary")))
        return 1;
    if (runtime_dir_setup() < 0)
        return 1;

    struct eal_args ea;
    int eal_argc;
    char **eal_argv;
    if (opt.pcap) {
        unsigned w = opt.workers ? opt.workers : 1;
        eal_args_for_pcap(&ea, argv[0], opt.pcap, 1 + w + (w > 1 ? 1 : 0));
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
        return 1;
    }
    static struct pipeline pipe_storage;
    struct pipeline *p = &pipe_storage;
    g_pipe = p;
    p->replay = opt.pcap != NULL;
    p->link = cap.link;
    if (setup_pipeline(p, &opt) < 0) {
        rte_eal_cleanup();
        runtime_dir_cleanup();
        return 1;
    }
    if (!opt.quiet)
        fprintf(stderr, "[rstscope] %s: %u port(s), %u worker(s)%s%s\n",
                opt.pcap ? opt.pcap : "live", p->n_ports, p->n_workers,
                p->dist_lcore != RTE_MAX_LCORE ? " behind a software distributor" : "",
                p->n_workers > 1 && p->dist_lcore == RTE_MAX_LCORE ? " on symmetric RSS" : "");

    double t0 = now_s();
    for (unsigned i = 0; i < p->n_workers; i++)
        rte_eal_remote_launch(worker_main, &p->w[i], p->w[i].lcore);
    if (p->dist_lcore != RTE_MAX_LCORE)
        rte_eal_remote_launch(distributor_main, p, p->dist_lcore);

    struct run_info ri;
    memset(&ri, 0, sizeof(ri));
    uint64_t last_pkts = 0, delivered = 0, last_delivered = 0;
    double last_status = 0, last_progress = now_s();
    for (;;) {
        ri.events_written += drain_events(p, events_out);
        ri.flows_written += drain_flows(p, flows_out);
        unsigned done = 0;
        for (unsigned i = 0; i < p->n_workers; i++)
            done += __atomic_load_n(&p->w[i].done, __ATOMIC_ACQUIRE) != 0;
        if (done == p->n_workers)
            break;
        if (p->replay && !input_done) {
            port_totals(p, &ri, &delivered);
            if (delivered >= total_frames) {
                __atomic_store_n(&input_done, 1, __ATOMIC_RELEASE);
            } else if (delivered != last_delivered) {
                last_delivered = delivered;
                last_progress = now_s();
            } else if (now_s() - last_progress > STALL_SECONDS) {
                fprintf(stderr,
                        "rstscope: warning: capture stalled at %" PRIu64 " of %" PRIu64
                        " frames; finishing\n",
                        delivered, total_frames);
                __atomic_store_n(&input_done, 1, __ATOMIC_RELEASE);
            }
        }
        double el = now_s() - t0;
        if (opt.status_interval_s && el - last_status >= opt.status_interval_s) {
            status_line(p, &ri, el, total_frames, &last_pkts, &last_status);
            last_status = el;
        }
        usleep(1000);
    }
    rte_eal_mp_wait_lcore();
    ri.events_written += drain_events(p, events_out);
    ri.flows_written += drain_flows(p, flows_out);
    ri.wall_seconds = now_s() - t0;

    struct engine_stats total;
    sum_stats(p, &total);
    port_totals(p, &ri, &delivered);
    for (unsigned i = 0; i < p->n_ports; i++)
        port_stop(p->ports[i]);
    ri.first_ts = cap.first_ts;
    ri.last_ts = cap.last_ts;
    ri.source = opt.pcap ? opt.pcap : "DPDK ports";
    ri.mode = opt.pcap ? "pcap" : "live";
    ri.workers = p->n_workers;
    if (!opt.quiet)
        report_text(stdout, &total, &ri);

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
        if (report_summary_json(summary_out, &total, &ri) < 0 || fclose(summary_out) != 0) {
            fprintf(stderr, "rstscope: writing '%s' failed: %s\n", opt.summary, strerror(errno));
            status = 1;
        }
    }
    for (unsigned i = 0; i < p->n_workers; i++)
        engine_destroy(p->w[i].eng);
    rte_eal_cleanup();
    runtime_dir_cleanup();
    return status;
}
