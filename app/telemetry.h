/*
 * DPDK telemetry commands (/rstscope/stats, /rstscope/causes, /rstscope/flows), read with
 * dpdk-telemetry.py on the socket $RUNTIME_DIRECTORY/dpdk/<file-prefix>/dpdk_telemetry.v2.
 *
 * The callbacks run on DPDK's telemetry control thread, never on a polling core. They read
 * the workers' counters with stats_accumulate() (relaxed atomic loads, the same snapshot the
 * status line takes) and touch nothing else a worker writes, so a query never slows or
 * blocks the data path. The counters are the workers' own: reset events that --exclude
 * takes out of the summary are still in them.
 */
#ifndef RS_TELEMETRY_H
#define RS_TELEMETRY_H

#include <stddef.h>

struct pipeline;

/* After setup_pipeline(): p and its engines must outlive the EAL (rte_eal_cleanup stops the
 * telemetry thread). mode is "pcap" or "live". Returns 0, or -1 when a command could not be
 * registered (telemetry disabled with --no-telemetry still registers: it is then unused). */
int telemetry_register(struct pipeline *p, const char *mode);
/* The socket path of this process, in buf; "" when EAL gave no runtime directory. */
void telemetry_socket_path(char *buf, size_t len);

#endif
