/*
 * The per-worker analysis engine: parse -> flow lookup -> TCP tracking -> RST events.
 * One engine per polling core, never shared (shared-nothing). Time is the packet's capture
 * time, so a replay expires and folds exactly as the live traffic did.
 */
#ifndef RS_ENGINE_H
#define RS_ENGINE_H

#include <stdint.h>

#include "flow_table.h"
#include "hold_wheel.h"
#include "host_table.h"
#include "mirror_seq.h"
#include "rst_classify.h"
#include "zeek_conn.h"
#include "stats.h"

/* One reset event, as emitted to the event sink (fixed size: it travels through a ring). */
struct rst_event {
    uint64_t ts_us; /* capture time of the first RST */
    uint8_t client_ip[16];
    uint8_t server_ip[16];
    uint16_t client_port;
    uint16_t server_port;
    uint32_t rst_count;
    uint32_t seq; /* decisive RST's seq/ack */
    uint32_t ack;
    uint8_t family;
    uint8_t direction_known;
    uint8_t sender; /* 0 = client, 1 = server */
    uint8_t origin; /* enum rst_origin */
    uint8_t cause;  /* enum rst_cause */
    uint8_t state;  /* enum conn_state before the first RST */
    uint8_t check;  /* enum seq_check of the decisive RST */
    uint8_t rst_flags;
    uint8_t ttl;
    uint8_t worker;
    uint16_t evidence;      /* enum rst_evidence bits */
    uint16_t ip_id;         /* IPv4 ID of the decisive RST (0 for IPv6) */
    uint8_t low_confidence; /* judged with evidence missing (capture gap, mid-stream, ...) */
    uint8_t pad;
    uint32_t idle_ms; /* silence of the connection before the first RST (capped) */
    uint16_t vlan;    /* outermost VLAN id of the decisive RST, 0 when untagged */
    uint16_t pad2;
};

typedef void (*event_sink_fn)(void *ctx, const struct rst_event *ev);

/* An overload signal (enum overload_signal) seen on the connection to server_ip:server_port. */
struct overload_event {
    uint8_t server_ip[16]; /* IPv4-mapped for family 4 */
    uint16_t server_port;
    uint8_t family;
    uint8_t signal;
};
typedef void (*signal_sink_fn)(void *ctx, const struct overload_event *ov);
/* A finished Zeek-compatible connection record (--flows). */
typedef void (*flow_sink_fn)(void *ctx, const struct flow_record *r);

struct engine_config {
    uint32_t max_flows;            /* this engine's table capacity */
    uint64_t hold_us;              /* verdict delay cap: an event closes this long after its
                                      last RST (less when the RTT is known, see hold_min_us) */
    uint64_t hold_min_us;          /* floor of the RTT-based hold: 2 x RTT, at least this */
    uint64_t dup_us;               /* identical packets this close are mirrored copies */
    uint64_t syn_unanswered_us;    /* a SYN with no answer this long is "unanswered" */
    uint32_t host_entries;         /* per-host baseline cache size (0 = no host baselines) */
    uint64_t handshake_timeout_us; /* idle expiry of half-open connections */
    uint64_t established_timeout_us;
    uint64_t closed_timeout_us; /* closed or reset connections linger this long */
    /* (The three timeouts are read once, by engine_create(), into engine.idle_us[]: changing
     * them in a running engine's cfg has no effect.) */
    uint32_t age_budget;          /* most flows examined per engine_age() call */
    uint64_t age_sweep_us;        /* the ageing scan covers the table once per this much
                                     time (idle expiry, unanswered SYNs); 0 = age_budget
                                     flows every call */
    uint32_t rst_pool;            /* reset events held at once; 0 = max_flows / 16, at least
                                     64; a value set is taken as is.
                                     When all are taken, the held event nearest its
                                     verdict is judged early to make room. */
    uint32_t ipv6_flows;          /* IPv6 connections tracked at once (their addresses are out
                                     of line); 0 = flow_table_v6_default(max_flows), a quarter.
                                     Beyond it a new IPv6 flow is refused as by a full table. */
    uint8_t ttl_tolerance;        /* hops a RST's TTL may differ from its sender's on the same
                                     flow (0: mirrored copies are removed first); +1 across flows */
    int link;                     /* enum pkt_link of the frames: Ethernet unless a capture says */
    uint8_t mirror_seq_elsewhere; /* GRE sequence numbers are accounted before the engine (a
                                     distributor that sees every copy of a session) */
    struct classify_cfg classify;
};

void engine_config_defaults(struct engine_config *c);

struct engine {
    struct engine_config cfg;
    struct flow_table *ft;
    struct host_table *hosts;   /* NULL when disabled */
    struct engine_stats *stats; /* owned by the caller: cache-aligned, read by main */
    event_sink_fn sink;         /* may be NULL */
    void *sink_ctx;
    signal_sink_fn signal_sink; /* may be NULL */
    void *signal_ctx;
    flow_sink_fn flow_sink; /* may be NULL */
    void *flow_ctx;
    struct zeek_conn *zk; /* per flow index, only with a flow sink */
    /* Held reset events: rst_cap pooled entries plus one scratch entry (index rst_cap) for
     * events judged at once (no table room). rst_free[0..rst_free_top) are free. */
    struct pending_rst *rst_pool;
    uint32_t *rst_free;
    uint32_t rst_cap;
    uint32_t rst_free_top;
    uint64_t now_us;             /* latest time seen (monotonic) */
    struct flow_key scratch_key; /* key of the flow on the scratch entry (a RST judged alone) */
    struct hold_wheel wheel;     /* held events by deadline: judged without a table walk */
    uint64_t age_last_us;        /* time of the last paced ageing step, 0 = none yet */
    uint64_t age_credit;      /* entries x µs owed to the ageing scan, below one entry's worth */
    uint64_t idle_us[CS_MAX]; /* idle timeout by connection state, from cfg (engine_create) */
    /* Victim searches, [0] any entry, [1] an IPv6 one (the IPv6 pool is full): inserts
     * skipped after the last futile search, and inserts still to skip before the next. */
    uint32_t evict_backoff[2];
    uint32_t evict_wait[2];
    uint8_t id;
    struct mirror_seq mseq; /* GRE/ERSPAN sequence tracking (zeroed by calloc) */
};

/* The held reset event of f, NULL when it holds none. */
static inline struct pending_rst *engine_rst(const struct engine *e, const struct flow *f)
{
    return f->rst_slot ? &e->rst_pool[f->rst_slot - 1] : NULL;
}

/* stats must outlive the engine; sink may be NULL. Returns NULL on allocation failure. */
struct engine *engine_create(const struct engine_config *cfg, struct engine_stats *stats,
                             event_sink_fn sink, void *sink_ctx, uint8_t id);
void engine_destroy(struct engine *e);
/* Fault in the engine's tables on the calling thread before the first packet (a worker calls it
 * on its own lcore): no page faults on the packet path, memory on the worker's NUMA node. */
void engine_prefault(struct engine *e);
/* Bytes of per-flow state: the flow table (index included) and the held-RST pool. */
size_t engine_mem_bytes(const struct engine *e);
/* Bytes of the --flows side array (0 without a flow sink): outside the per-flow budget. */
size_t engine_flow_record_bytes(const struct engine *e);
/* Receive overload signals per server:port (for top-offender sketches); NULL to stop. */
void engine_set_signal_sink(struct engine *e, signal_sink_fn fn, void *ctx);
/* Keep Zeek-compatible records of every connection and hand each finished one to fn (on the
 * engine's thread). Costs sizeof(struct zeek_conn) per table entry. -1 on allocation failure. */
int engine_set_flow_sink(struct engine *e, flow_sink_fn fn, void *ctx);

/* Process one frame captured at ts_us (a burst of one). */
void engine_input(struct engine *e, const uint8_t *frame, uint32_t len, uint64_t ts_us);

#define ENGINE_BURST 32 /* most frames engine_input_burst() takes per call */
/*
 * Process n <= ENGINE_BURST frames in order: when it returns, the result is exactly that of
 * n engine_input() calls. It parses and hashes them all first and prefetches each one's index
 * slot, then each one's flow entry, so that the cache misses of a large table overlap instead
 * of adding up. The entry found then is a hint, never state: a segment uses it only when it
 * is live and holds the segment's key (keys are unique), else the lookup runs as usual. The
 * burst's frame and segment counters are added before its first segment is analysed: a sink
 * called during the burst sees them ahead of the analysis.
 * hashes is NULL, or holds for each frame that parses as TCP with the engine's link type the
 * flow_key_hash() of its canonical key (the software distributor computed it to pick the
 * worker): then it is not computed twice. Entries of other frames are ignored.
 */
void engine_input_burst(struct engine *e, const uint8_t *const frames[], const uint32_t lens[],
                        const uint64_t ts_us[], const uint32_t *hashes, unsigned n);

/* What the engine's parse found for one frame of a burst, for a caller that files frames by
 * connection (--dump-resets) without parsing them again. */
struct engine_frame_key {
    struct flow_key key; /* canonical key; valid when tcp */
    uint32_t hash;       /* flow_key_hash(&key) */
    uint8_t tcp;         /* the frame is a TCP segment the engine analysed */
    uint8_t flags;       /* its TCP flags */
};
/* engine_input_burst() that also fills out[0..n) (out may be NULL). */
void engine_input_burst_keys(struct engine *e, const uint8_t *const frames[], const uint32_t lens[],
                             const uint64_t ts_us[], const uint32_t *hashes, unsigned n,
                             struct engine_frame_key *out);
/* Process an already parsed TCP segment (the fuzzer and unit tests use this). */
void engine_segment(struct engine *e, const struct pkt_info *p, uint64_t ts_us);
/* Advance time and run a bounded ageing step (expiry, closing held RST events). */
void engine_age(struct engine *e, uint64_t now_us);
/* End of input: close every held event, expire every flow. */
void engine_flush(struct engine *e);

#endif
