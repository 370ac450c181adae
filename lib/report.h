/*
 * Human report, --summary JSON and --events JSON Lines. Slow path only: runs on the main
 * thread, never on a polling core.
 */
#ifndef RS_REPORT_H
#define RS_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "engine.h"

/* What the application knows beyond the engines' counters. */
struct run_info {
    const char *source; /* capture file or port list */
    const char *mode;   /* "pcap" or "live" */
    unsigned workers;
    const char *hash_key; /* the flow hash's key: "random", "fixed" (--hash-seed N), "capture" */
    double wall_seconds;  /* elapsed processing time */
    double first_ts;      /* capture time of the first and last packet, 0 when none */
    double last_ts;
    uint64_t rx_missed;  /* NIC drops (imissed) */
    uint64_t rx_nombuf;  /* mbuf pool exhausted */
    uint64_t rx_errors;  /* ierrors */
    uint64_t ring_drops; /* packets lost between the distributor and the workers */
    uint64_t events_written;
    uint64_t flows_written;
    /* --dump-resets (summary "dump", only when dump_enabled) */
    int dump_enabled;
    uint64_t dump_packets; /* frames written to the dump files */
    uint64_t dump_dropped; /* frames lost: full ring, rate cap, write error */
    uint64_t dump_evicted; /* connections whose kept history was overwritten */
    uint64_t dump_bytes;
    /* Cost figures for the summary's "perf" object (docs/performance.md). */
    uint64_t tsc_hz;            /* 0: no perf object */
    uint64_t flow_capacity;     /* flows all workers' tables can hold */
    uint64_t flow_table_bytes;  /* their memory, index and held-RST pools included */
    uint64_t flow_record_bytes; /* --flows side arrays (0 without --flows), not in the above */
};

void report_text(FILE *out, const struct engine_stats *s, const struct run_info *ri);
int report_summary_json(FILE *out, const struct engine_stats *s, const struct run_info *ri);
/*
 * One reset event as named fields: the single definition of an event record, shared by the
 * --events JSON Lines and the Redis event stream. Lists are comma-joined in value.
 */
enum field_kind { FIELD_NUM, FIELD_STR, FIELD_BOOL, FIELD_LIST };
struct event_field {
    const char *name;
    int kind;
    char value[160];
};
#define EVENT_FIELDS_MAX 24
/* Fill f[0..n) and return n (<= EVENT_FIELDS_MAX). */
int report_event_fields(const struct rst_event *ev, struct event_field *f);
void report_event_json(FILE *out, const struct rst_event *ev);
/* One --flows line: a Zeek-compatible connection record plus rstscope's cause. */
void report_flow_json(FILE *out, const struct flow_record *r);
/* Text form of an address stored as 16 bytes (IPv4-mapped for family 4). */
const char *report_addr(const uint8_t addr[16], int family, char *buf, size_t len);

#endif
