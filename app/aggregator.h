/*
 * The Redis aggregator: a control thread (never a polling lcore) that every interval reads the
 * workers' counters, collects their heavy-hitter sketches and the reset events they queued, and
 * hands one interval to lib/redis_sink for one pipelined round trip.
 *
 * Worker side (aggregator_on_event, aggregator_signal_sink, aggregator_worker_tick) runs on the
 * polling cores and never blocks: sketches are worker-owned double buffers, events go through a
 * bounded lock-free ring (MP/SC), and a full ring drops the record and counts it (live).
 */
#ifndef RS_AGGREGATOR_H
#define RS_AGGREGATOR_H

#include <stdint.h>

#include "engine.h"
#include "redis_sink.h"

struct pipeline;
struct aggregator;

struct aggregator_config {
    struct rs_sink_config sink;
    int replay;        /* intervals and stream IDs in capture time */
    uint64_t first_us; /* replay: capture time of the first frame (0 = unknown) */
    uint64_t last_us;  /* replay: capture time of the last frame */
    uint64_t grace_us; /* replay: an interval closes this long after capture time passed it */
};

struct aggregator *aggregator_create(struct pipeline *p, const struct aggregator_config *cfg);
/* Static meta field for :meta (call before aggregator_start). */
void aggregator_meta(struct aggregator *a, const char *name, const char *value);
int aggregator_start(struct aggregator *a);
/* After the workers finished: last interval, final flush (bounded by deadline_ms), join. */
void aggregator_stop(struct aggregator *a, unsigned deadline_ms);
void aggregator_destroy(struct aggregator *a);

/* ---- worker side: called on polling cores, never blocks (live) ---- */
void aggregator_on_event(struct aggregator *a, unsigned worker, const struct rst_event *ev);
void aggregator_worker_tick(struct aggregator *a, unsigned worker, uint64_t clock_us);
/* engine_set_signal_sink() callback; ctx from aggregator_signal_ctx(). */
void aggregator_signal_sink(void *ctx, const struct overload_event *ov);
void *aggregator_signal_ctx(struct aggregator *a, unsigned worker);

#endif
