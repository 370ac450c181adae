#include "prom.h"

#include "breakdown.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void counter(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
}

int prom_write(const char *path, const struct engine_stats *s, const struct run_info *ri,
               const struct prom_origin *po, const struct breakdown *b)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;

    counter(f, "rstscope_resets_total",
            "TCP reset events by cause and by who wrote the RST (origin)");
    for (int o = 0; o < ORIGIN_MAX; o++)
        for (int c = 0; c < CAUSE_MAX; c++)
            fprintf(f, "rstscope_resets_total{cause=\"%s\",origin=\"%s\"} %" PRIu64 "\n",
                    cause_name(c), origin_name(o), po->n[o][c]);
    counter(f, "rstscope_reset_events_total", "TCP reset events by cause (all origins)");
    for (int c = 0; c < CAUSE_MAX; c++)
        fprintf(f, "rstscope_reset_events_total{cause=\"%s\"} %" PRIu64 "\n", cause_name(c),
                s->causes[c]);
    counter(f, "rstscope_overload_signals_total", "overload signals (not resets) by kind");
    for (int o = 0; o < OVL_MAX; o++)
        fprintf(f, "rstscope_overload_signals_total{signal=\"%s\"} %" PRIu64 "\n", overload_name(o),
                s->overload[o]);
    struct {
        const char *name, *help;
        uint64_t v;
    } plain[] = {
        {"rstscope_packets_total", "frames analysed", s->packets},
        {"rstscope_tcp_packets_total", "TCP segments analysed", s->tcp_packets},
        {"rstscope_rst_packets_total", "TCP segments with RST", s->rst_packets},
        {"rstscope_tcp_connection_attempts_total", "SYNs seen", s->syn},
        {"rstscope_malformed_packets_total", "frames dropped as malformed", s->malformed_total},
        {"rstscope_mirror_lost_total", "mirror copies missing from GRE/ERSPAN sequence gaps",
         s->mirror_lost},
        {"rstscope_rx_missed_packets_total", "frames the NIC dropped (imissed)", ri->rx_missed},
        {"rstscope_rx_nombuf_total", "frames lost for want of mbufs", ri->rx_nombuf},
        {"rstscope_ring_drops_total", "frames lost between distributor and workers",
         ri->ring_drops},
        {"rstscope_events_dropped_total", "event records lost on a full ring", s->events_dropped},
        {"rstscope_flows_dropped_total", "packets of new connections not tracked: table full",
         s->flows_dropped},
        {"rstscope_ipv6_pool_full_total", "packets of new IPv6 connections refused: IPv6 pool full",
         s->ipv6_pool_full},
        {"rstscope_rst_pool_full_total",
         "reset events judged before their hold ran out: held-event pool full", s->rst_pool_full},
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        counter(f, plain[i].name, plain[i].help);
        fprintf(f, "%s %" PRIu64 "\n", plain[i].name, plain[i].v);
    }
    if (b)
        breakdown_prom(f, b);
    fprintf(f,
            "# HELP rstscope_flows_active connections tracked now\n"
            "# TYPE rstscope_flows_active gauge\nrstscope_flows_active %" PRIu64 "\n",
            s->flows_active);
    fprintf(f,
            "# HELP rstscope_build_info version\n# TYPE rstscope_build_info gauge\n"
            "rstscope_build_info{version=\"%s\"} 1\n",
            RSTSCOPE_VERSION);
    int bad = ferror(f);
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}
