/*
 * --dump-resets, worker side: the last DUMP_KEEP packets of recent connections, so that when a
 * RST arrives the packets that led to it can be written next to it.
 *
 * Bounded side pool, not part of struct flow (the flow table stays small and hot): a 2-way
 * set-associative table of DUMP_SLOTS slots per worker, keyed by the canonical flow key. A
 * connection that finds both slots of its set taken evicts the one idle longest (counted in
 * `evicted`); its history is lost, not its RST, which is always dumped. On a RST the slot's
 * packets and the RST are copied into the bounded ring to the main thread, which writes the
 * pcap (dump_writer.h); a full ring drops the copies and counts them (live) or waits for the
 * writer (replay, like the event ring). Owned by one worker: nothing here is locked.
 *
 * Cost, only with --dump-resets: one copy of at most DUMP_SNAP bytes per TCP packet. The
 * connection's key comes from the engine's own parse (engine_input_burst_keys()).
 */
#ifndef RS_DUMP_KEEP_H
#define RS_DUMP_KEEP_H

#include <stdint.h>

#include <rte_ring.h>

#include "engine.h"

#define DUMP_SNAP  192  /* bytes kept per frame: all headers, tunnels included, of a segment */
#define DUMP_KEEP  4    /* packets kept per connection before its RST */
#define DUMP_SLOTS 4096 /* connections with history kept per worker (power of two) */

/* One frame on its way to the writer (the ring's element: size a multiple of 8). */
struct dump_pkt {
    uint64_t ts_us;
    uint32_t caplen; /* bytes in data, <= DUMP_SNAP */
    uint32_t origlen;
    uint8_t data[DUMP_SNAP];
};

struct dump_slot {
    struct flow_key key;
    uint64_t last_us; /* time of the latest packet: the eviction order */
    uint8_t used;
    uint8_t n;    /* packets held, <= DUMP_KEEP */
    uint8_t head; /* index of the oldest */
    struct dump_pkt pkt[DUMP_KEEP];
};

struct dump_keep {
    struct dump_slot *slots; /* DUMP_SLOTS */
    struct rte_ring *out;    /* MP/SC ring of struct dump_pkt, shared by the workers */
    int replay;              /* wait on a full ring instead of dropping */
    volatile int *quit;      /* stop waiting when set */
    /* Written by the owning worker only (relaxed stores), read by main and telemetry. */
    uint64_t queued;  /* frames handed to the writer */
    uint64_t dropped; /* frames lost on a full ring */
    uint64_t evicted; /* connections whose kept packets were overwritten by another's */
};

/* NULL on allocation failure. socket: NUMA node of the worker. */
struct dump_keep *dump_keep_create(struct rte_ring *out, int replay, volatile int *quit,
                                   int socket);
void dump_keep_destroy(struct dump_keep *k);
/* Every TCP frame the worker analyses, with the engine's key for it (fk->tcp set): len bytes
 * at frame (origlen on the wire), at ts_us. */
void dump_keep_packet(struct dump_keep *k, const struct engine_frame_key *fk, const uint8_t *frame,
                      uint32_t len, uint32_t origlen, uint64_t ts_us);

#endif
