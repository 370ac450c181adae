/*
 * Counters of one worker. Exactly one thread writes them (its worker); the main thread reads
 * them while the worker runs. Writers use relaxed atomic stores and readers relaxed loads, so
 * reads are never torn and no locked instruction is ever executed on the packet path.
 */
#ifndef RS_STATS_H
#define RS_STATS_H

#include <stdint.h>

#include "cause.h"
#include "pkt_parse.h"

struct engine_stats {
    uint64_t packets;
    uint64_t bytes;
    uint64_t tcp_packets;
    uint64_t non_ip;
    uint64_t non_tcp;
    uint64_t fragments;
    uint64_t malformed_total; /* packets dropped as malformed (not tcp_bad_option) */
    uint64_t ipv4;
    uint64_t ipv6;
    uint64_t rst_packets;
    uint64_t resets; /* reset events, == sum of causes[] */
    uint64_t syn;
    uint64_t synack;
    uint64_t fin;
    uint64_t causes[CAUSE_MAX];
    uint64_t overload[OVL_MAX];
    uint64_t low_confidence; /* events judged with part of the evidence missing */
    uint64_t late_rsts;      /* RSTs on a connection whose reset event was already emitted */
    uint64_t duplicates;     /* mirrored copies of a packet, dropped before analysis */
    uint64_t capture_gaps;   /* flows where an ACK covered data the sensor never saw */
    uint64_t malformed[MAL_MAX];
    uint64_t flows_created;
    uint64_t flows_expired;
    uint64_t flows_evicted; /* removed early to make room for a new connection */
    uint64_t flows_dropped; /* not tracked: table full and nothing evictable */
    uint64_t flows_active;
    uint64_t flow_records_dropped; /* --flows records lost on a full ring (live only) */
    uint64_t events_dropped;       /* event records lost on a full event ring (counts are not) */
    /* Mirror tunnels (lib/encap.c, lib/mirror_seq.c) */
    uint64_t encap[ENC_KIND_MAX]; /* frames by innermost tunnel kind ([ENC_NONE]: unused) */
    uint64_t mirror_lost;         /* copies missing from GRE/ERSPAN sequence numbers */
    uint64_t mirror_late;         /* copies older than the last one (reordered, duplicated) */
    uint64_t mirror_restarts;     /* sequence jumps too large to be loss: session restarted */
    uint64_t mirror_untracked;    /* sequenced copies of sessions beyond the tracking table */
    uint64_t rst_pool_full;       /* holds cut short: every held-event slot was taken, so the one
                                     nearest its verdict was judged early */
    uint64_t ipv6_pool_full;      /* packets of new IPv6 connections refused: every IPv6 address
                                     pair was taken (also in flows_dropped, or judged alone when a
                                     RST) */
    uint64_t busy_cycles; /* TSC cycles of the worker's polls that received packets (RX, analysis,
                             ageing, free), written by the application's worker; 0 in the library */
} __attribute__((aligned(64)));

#define STAT_ADD(s, field, n) __atomic_store_n(&(s)->field, (s)->field + (n), __ATOMIC_RELAXED)
#define STAT_INC(s, field)    STAT_ADD(s, field, 1)
#define STAT_SET(s, field, v) __atomic_store_n(&(s)->field, (v), __ATOMIC_RELAXED)

/* acc += snapshot of s (relaxed loads; safe while the writer runs). */
void stats_accumulate(struct engine_stats *acc, const struct engine_stats *s);

#endif
