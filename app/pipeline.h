/*
 * The data path's shared state. Threads:
 *   main lcore   - control: EOF detection, status line, event writer, final report; it never
 *                  touches packets;
 *   distributor  - only when ports have fewer RX queues than there are workers: polls queue 0
 *                  of every port and spreads packets over the workers by a symmetric flow hash;
 *   workers      - each owns one engine (flow table, counters) and polls its own queue (RSS)
 *                  or ring. Nothing on a worker is shared, so nothing is locked.
 */
#ifndef RS_PIPELINE_H
#define RS_PIPELINE_H

#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_ring.h>

#include "engine.h"

struct aggregator;
struct dump_keep;

#define RS_MAX_WORKERS 64
#define RS_MAX_PORTS   16
#define RS_BURST       32

struct breakdown;

struct worker {
    unsigned lcore;
    unsigned index;
    struct engine *eng;
    struct rte_ring *in;       /* from the distributor; NULL when polling queues directly */
    uint16_t queue;            /* RX queue polled on every port when in == NULL */
    volatile int done;         /* set by the worker after its final flush */
    struct engine_stats stats; /* written by this worker only */
    struct dump_keep *dump;    /* --dump-resets history of recent connections; NULL without */
    struct breakdown *bd;      /* its events by subnet, VLAN, origin; NULL when not reported */
} __attribute__((aligned(64)));

struct pipeline {
    unsigned n_workers;
    unsigned n_ports;
    uint16_t ports[RS_MAX_PORTS];
    uint8_t port_pcap_ts[RTE_MAX_ETHPORTS]; /* by port id: RX timestamp is capture time */
    int ts_offset;                          /* timestamp dynfield offset, -1 when absent */
    uint64_t ts_flag;                       /* its RX flag */
    int replay;                             /* offline: never drop, block instead */
    int link;                               /* enum pkt_link of the frames */
    unsigned dist_lcore;                    /* distributor lcore, or RTE_MAX_LCORE when none */
    int reader;                             /* replay, one worker: dist_lcore only reads */
    struct rte_ring *events;                /* workers -> main; NULL without --events */
    struct rte_ring *flows;                 /* workers -> main; NULL without --flows */
    struct aggregator *agg;                 /* Redis aggregator; NULL without --redis */
    uint64_t ring_drops __attribute__((aligned(64))); /* distributor only writes it */
    volatile int dist_done;
    struct worker w[RS_MAX_WORKERS];
    /* Mirror loss seen by the distributor (it alone sees every copy of a GRE session). */
    struct engine_stats dist_stats;
    struct mirror_seq dist_mseq;
};

extern volatile int force_quit; /* SIGINT/SIGTERM: stop and report */
extern volatile int input_done; /* replay: the whole capture has been received */

int worker_main(void *arg);      /* arg: struct worker * */
int distributor_main(void *arg); /* arg: struct pipeline * */
void pipeline_event_sink(void *ctx, const struct rst_event *ev);
void pipeline_flow_sink(void *ctx, const struct flow_record *r);
/* The counters as every report gives them: all workers' and the distributor's, with the
 * events of --exclude'd hosts taken out of the causes. Any thread (relaxed loads). */
void pipeline_stats(const struct pipeline *p, struct engine_stats *acc);

#endif
