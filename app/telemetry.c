#include "telemetry.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_telemetry.h>

#include "cause.h"
#include "pipeline.h"

/* Set once before the commands are registered, read-only afterwards. */
static struct pipeline *tp;
static const char *t_mode;
static struct timespec t_start;
static uint64_t t_capacity; /* flow table entries over all workers, fixed at creation */

static uint64_t uptime_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - t_start.tv_sec);
}

static int cmd_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
    struct engine_stats s;
    (void)cmd;
    (void)params;
    pipeline_stats(tp, &s); /* as the report counts */
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "version", RSTSCOPE_VERSION);
    rte_tel_data_add_dict_string(d, "mode", t_mode);
    rte_tel_data_add_dict_u64(d, "uptime_s", uptime_s());
    rte_tel_data_add_dict_u64(d, "workers", tp->n_workers);
    const struct {
        const char *name;
        uint64_t v;
    } f[] = {
        {"packets", s.packets},
        {"bytes", s.bytes},
        {"tcp_packets", s.tcp_packets},
        {"rst_packets", s.rst_packets},
        {"resets", s.resets},
        {"syn", s.syn},
        {"synack", s.synack},
        {"fin", s.fin},
        {"non_ip", s.non_ip},
        {"non_tcp", s.non_tcp},
        {"fragments", s.fragments},
        {"malformed", s.malformed_total},
        {"duplicates", s.duplicates},
        {"low_confidence", s.low_confidence},
        {"late_rsts", s.late_rsts},
        {"capture_gaps", s.capture_gaps},
        {"events_dropped", s.events_dropped},
        {"flow_records_dropped", s.flow_records_dropped},
        {"ring_drops", __atomic_load_n(&tp->ring_drops, __ATOMIC_RELAXED)},
        {"mirror_lost", s.mirror_lost},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        rte_tel_data_add_dict_u64(d, f[i].name, f[i].v);
    return 0;
}

static int cmd_causes(const char *cmd, const char *params, struct rte_tel_data *d)
{
    struct engine_stats s;
    (void)cmd;
    (void)params;
    pipeline_stats(tp, &s); /* as the report counts */
    rte_tel_data_start_dict(d);
    for (int c = 0; c < CAUSE_MAX; c++)
        rte_tel_data_add_dict_u64(d, cause_name(c), s.causes[c]);
    rte_tel_data_add_dict_u64(d, "total", s.resets);
    return 0;
}

static int cmd_flows(const char *cmd, const char *params, struct rte_tel_data *d)
{
    struct engine_stats s;
    (void)cmd;
    (void)params;
    pipeline_stats(tp, &s); /* as the report counts */
    /* Per-worker occupancy shows an RSS imbalance that the total hides. */
    struct rte_tel_data *per = rte_tel_data_alloc();
    if (per) {
        rte_tel_data_start_array(per, RTE_TEL_U64_VAL);
        for (unsigned i = 0; i < tp->n_workers; i++)
            rte_tel_data_add_array_u64(
                per, __atomic_load_n(&tp->w[i].stats.flows_active, __ATOMIC_RELAXED));
    }
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "active", s.flows_active);
    rte_tel_data_add_dict_u64(d, "capacity", t_capacity);
    rte_tel_data_add_dict_u64(d, "created", s.flows_created);
    rte_tel_data_add_dict_u64(d, "expired", s.flows_expired);
    rte_tel_data_add_dict_u64(d, "evicted", s.flows_evicted);
    rte_tel_data_add_dict_u64(d, "dropped", s.flows_dropped);
    rte_tel_data_add_dict_u64(d, "ipv6_pool_full", s.ipv6_pool_full);
    rte_tel_data_add_dict_u64(d, "rst_pool_full", s.rst_pool_full);
    if (per && rte_tel_data_add_dict_container(d, "active_per_worker", per, 0) != 0)
        rte_tel_data_free(per);
    return 0;
}

int telemetry_register(struct pipeline *p, const char *mode)
{
    tp = p;
    t_mode = mode;
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    /* Copied now: the engines are destroyed before EAL stops the telemetry thread. */
    for (unsigned i = 0; i < p->n_workers; i++)
        t_capacity += p->w[i].eng->cfg.max_flows;
    int rc = 0;
    rc |= rte_telemetry_register_cmd("/rstscope/stats", cmd_stats,
                                     "rstscope packet and reset counters. No parameters");
    rc |= rte_telemetry_register_cmd("/rstscope/causes", cmd_causes,
                                     "rstscope reset events by cause. No parameters");
    rc |= rte_telemetry_register_cmd("/rstscope/flows", cmd_flows,
                                     "rstscope flow table occupancy. No parameters");
    return rc ? -1 : 0;
}

void telemetry_socket_path(char *buf, size_t len)
{
    const char *dir = rte_eal_get_runtime_dir();
    if (dir && dir[0])
        snprintf(buf, len, "%s/dpdk_telemetry.v2", dir);
    else if (len)
        buf[0] = '\0';
}
