/*
 * The Redis schema of one sensor (docs/redis.md) and its delivery: closed intervals wait in a
 * bounded backlog, and one pipelined round trip per flush writes meta, heartbeat, cumulative
 * totals, the backlogged stream entries, the top-offender sets and the sampled events. Every
 * command is idempotent (HSET of absolute totals, explicit stream IDs, RENAME of a fresh set),
 * so a flush that fails half way is simply sent again. Slow path only (aggregator thread).
 */
#ifndef RS_REDIS_SINK_H
#define RS_REDIS_SINK_H

#include <stdint.h>

#include "engine.h"
#include "redis_conn.h"
#include "topk.h"

/* The counter fields of :tot and of each :ts entry: causes, overload signals, then RS_EXTRA. */
#define RS_EXTRA      11
#define RS_FIELDS_MAX (CAUSE_MAX + OVL_MAX + RS_EXTRA)
int rs_field_count(void);
const char *rs_field_name(int i);
/* Fill val[0..rs_field_count()) from counters; drops = packets lost before the engines. */
void rs_fields_from_stats(const struct engine_stats *s, uint64_t drops, uint64_t *val);
/* Index of the first cause field (== 0) and of the "resets" field. */
#define RS_F_CAUSE0 0
#define RS_F_RESETS (CAUSE_MAX + OVL_MAX)

enum rs_top_dim { RS_TOP_SERVERS, RS_TOP_CLIENTS, RS_TOP_PORTS, RS_TOP_OVERLOAD, RS_TOP_DIMS };
const char *rs_top_name(int dim);
/* Member text of a sketch key in a top set: "ip:port", "[v6]:port", "ip", or "port". */
void rs_top_member(int dim, const struct topk_key *k, char *buf, size_t len);

#define RS_SENSOR_MAX 32
/* A sensor name: [A-Za-z0-9._-]{1,32} (braces would break the {hash tag}). */
int rs_sensor_valid(const char *s);

struct rs_interval {
    uint64_t end_ms; /* stream ID of the entry: end of the interval (capture time in replays) */
    uint64_t val[RS_FIELDS_MAX];
};

struct rs_sink_config {
    struct rs_conn_config conn; /* conn.slot is set by rs_sink_create */
    const char *sensor;
    uint32_t interval_s;
    uint32_t retention_s;   /* :ts entries older than the newest by this much are trimmed */
    uint32_t backlog_cap;   /* intervals kept while Redis is away */
    uint32_t events_cap;    /* events kept between flushes */
    uint32_t events_maxlen; /* :events stream length (approximate trim) */
    uint32_t top_n;         /* members per top set (<= 100: stays a compact listpack) */
    int quiet_log;          /* unit tests: no log lines */
};

struct rs_sink_stats {
    uint64_t intervals_written;
    uint64_t intervals_dropped; /* backlog full: the oldest interval was discarded */
    uint64_t events_written;
    uint64_t events_unsampled; /* more events than events_cap between two flushes */
    uint64_t errors;           /* commands the server refused (see the log) */
    uint64_t stream_id_rejected;
    uint64_t reconnects;
    uint32_t backlog;
    int connected;
};

struct rs_sink;

struct rs_sink *rs_sink_create(const struct rs_sink_config *cfg);
void rs_sink_destroy(struct rs_sink *s);
/* Static meta field (version, start, source, ...), written with every flush. */
void rs_sink_meta(struct rs_sink *s, const char *name, const char *value);
/* Queue a closed interval; end_ms must increase. Full backlog: the oldest is dropped. */
void rs_sink_interval(struct rs_sink *s, const struct rs_interval *iv);
/* The latest cumulative counters (rs_fields_from_stats order) and extra health numbers. */
void rs_sink_totals(struct rs_sink *s, const uint64_t *val);
/* Replace one top set with entries (highest first). */
void rs_sink_top(struct rs_sink *s, int dim, const struct topk_entry *e, unsigned n);
/* Keep one reset event for the :events stream (bounded; beyond the cap it is counted). */
void rs_sink_event(struct rs_sink *s, const struct rst_event *ev);
/*
 * Write everything pending in one round trip, connecting first if needed. Without force, a
 * disconnected sink retries only when its backoff (0.5 s doubling to 30 s, with jitter) has
 * passed. Returns 0 when nothing is left pending, 1 when something is.
 */
int rs_sink_flush(struct rs_sink *s, uint64_t wall_ms, int force);
void rs_sink_get_stats(const struct rs_sink *s, struct rs_sink_stats *st);

#endif
