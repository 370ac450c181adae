#include "redis_sink.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "report.h"

#define BACKOFF_MIN_MS       500
#define BACKOFF_MAX_MS       30000
#define RECORDS_PER_FLUSH    512 /* bounds one pipeline; a longer backlog drains over flushes */
#define META_MAX             32
#define TOP_MAX              100
#define ARGS_MAX             (2 * (RS_FIELDS_MAX + EVENT_FIELDS_MAX + META_MAX + TOP_MAX) + 16)
#define ARG_STORE            (64 * 1024)
#define LOG_ERRORS_PER_FLUSH 3
#define EVENTS_CAP_MAX       4096 /* events_cap is clamped to this */
/* Commands of the largest pipeline: meta, alive, tot and the sensors set (at most 8), three
 * per top set, every record and every event. A command that does not fit is not sent, and
 * rs_sink_flush() then keeps it queued: nothing is counted as written that was not sent. */
#define CMDS_MAX (8 + 3 * RS_TOP_DIMS + RECORDS_PER_FLUSH + EVENTS_CAP_MAX)

/* What the sensor could not see travels with what it saw, so a dashboard never reads "no
 * resets" where the truth is "blind": drops (NIC missed, no mbuf, distributor ring), event
 * records lost, new connections not tracked (table_full), connections evicted early and
 * connections with capture gaps (their resets are low_confidence). */
static const char *extra_names[RS_EXTRA] = {
    "resets", "low_confidence", "packets",    "tcp_packets", "rst_packets",  "syn",
    "drops",  "events_dropped", "table_full", "evicted",     "capture_gaps",
};

int rs_field_count(void)
{
    return RS_FIELDS_MAX;
}

const char *rs_field_name(int i)
{
    if (i < CAUSE_MAX)
        return cause_name(i);
    if (i < CAUSE_MAX + OVL_MAX)
        return overload_name(i - CAUSE_MAX);
    return extra_names[i - CAUSE_MAX - OVL_MAX];
}

void rs_fields_from_stats(const struct engine_stats *s, uint64_t drops, uint64_t *val)
{
    for (int c = 0; c < CAUSE_MAX; c++)
        val[c] = s->causes[c];
    for (int o = 0; o < OVL_MAX; o++)
        val[CAUSE_MAX + o] = s->overload[o];
    uint64_t *x = val + CAUSE_MAX + OVL_MAX;
    x[0] = s->resets;
    x[1] = s->low_confidence;
    x[2] = s->packets;
    x[3] = s->tcp_packets;
    x[4] = s->rst_packets;
    x[5] = s->syn;
    x[6] = drops;
    x[7] = s->events_dropped;
    x[8] = s->flows_dropped;
    x[9] = s->flows_evicted;
    x[10] = s->capture_gaps;
}

const char *rs_top_name(int dim)
{
    static const char *n[RS_TOP_DIMS] = {"servers", "clients", "ports", "overload"};
    return dim >= 0 && dim < RS_TOP_DIMS ? n[dim] : "?";
}

void rs_top_member(int dim, const struct topk_key *k, char *buf, size_t len)
{
    char a[64];
    if (dim == RS_TOP_PORTS) {
        snprintf(buf, len, "%u", k->port);
        return;
    }
    report_addr(k->addr, k->family, a, sizeof(a));
    if (dim == RS_TOP_CLIENTS)
        snprintf(buf, len, "%s", a);
    else
        snprintf(buf, len, k->family == 6 ? "[%s]:%u" : "%s:%u", a, k->port);
}

int rs_sensor_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > RS_SENSOR_MAX)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* ---- the sink ---- */

struct top_member {
    char member[64];
    uint64_t score;
};

struct pending_event {
    struct rst_event ev;
    uint64_t id_ms, id_seq; /* fixed when kept, so a resent XADD is rejected, not duplicated */
};

struct rs_sink {
    struct rs_sink_config cfg;
    char sensor[RS_SENSOR_MAX + 1];
    struct rs_conn conn;
    struct {
        char name[32];
        char value[160];
    } meta[META_MAX];
    unsigned n_meta;
    struct rs_interval *backlog; /* ring of backlog_cap */
    uint32_t head, count;
    uint32_t attempted; /* leading backlog records already sent once (resends are rejected) */
    uint64_t totals[RS_FIELDS_MAX];
    int have_totals;
    struct top_member top[RS_TOP_DIMS][TOP_MAX];
    unsigned top_n[RS_TOP_DIMS];
    int top_dirty[RS_TOP_DIMS];
    struct pending_event *events;
    uint32_t n_events;
    uint64_t last_ev_ms, last_ev_seq;
    struct rs_sink_stats st;
    /* connection state, for backoff and the loss/recovery log lines */
    int ever_up, down_logged;
    uint64_t down_since_ms, next_try_ms, backoff_ms;
    unsigned seed;
    /* one pipeline */
    char *cmds[CMDS_MAX];
    int lens[CMDS_MAX];
    int kind[CMDS_MAX]; /* what each command carries, to account for its outcome */
    int ncmd;
};

enum { K_OTHER, K_RECORD, K_EVENT };

static void slog(const struct rs_sink *s, const char *fmt, ...)
{
    if (s->cfg.quiet_log)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[rstscope] redis: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

struct rs_sink *rs_sink_create(const struct rs_sink_config *cfg)
{
    if (!rs_sensor_valid(cfg->sensor))
        return NULL;
    struct rs_sink *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    if (!s->cfg.backlog_cap)
        s->cfg.backlog_cap = 1;
    if (s->cfg.top_n > TOP_MAX)
        s->cfg.top_n = TOP_MAX;
    if (s->cfg.events_cap > EVENTS_CAP_MAX)
        s->cfg.events_cap = EVENTS_CAP_MAX;
    snprintf(s->sensor, sizeof(s->sensor), "%s", cfg->sensor);
    s->cfg.sensor = s->sensor;
    char tag[RS_SENSOR_MAX + 3];
    snprintf(tag, sizeof(tag), "{%s}", s->sensor);
    s->cfg.conn.slot = rs_key_slot(tag, strlen(tag));
    rs_conn_init(&s->conn, &s->cfg.conn);
    s->backlog = calloc(s->cfg.backlog_cap, sizeof(*s->backlog));
    s->events = calloc(s->cfg.events_cap ? s->cfg.events_cap : 1, sizeof(*s->events));
    if (!s->backlog || !s->events) {
        rs_sink_destroy(s);
        return NULL;
    }
    s->seed = (unsigned)getpid() ^ (unsigned)(uintptr_t)s;
    return s;
}

void rs_sink_destroy(struct rs_sink *s)
{
    if (!s)
        return;
    rs_conn_close(&s->conn);
    free(s->backlog);
    free(s->events);
    free(s);
}

void rs_sink_meta(struct rs_sink *s, const char *name, const char *value)
{
    unsigned i = 0;
    while (i < s->n_meta && strcmp(s->meta[i].name, name) != 0)
        i++;
    if (i == META_MAX)
        return;
    if (i == s->n_meta)
        s->n_meta++;
    snprintf(s->meta[i].name, sizeof(s->meta[i].name), "%s", name);
    snprintf(s->meta[i].value, sizeof(s->meta[i].value), "%s", value);
}

void rs_sink_interval(struct rs_sink *s, const struct rs_interval *iv)
{
    if (s->count == s->cfg.backlog_cap) {
        /* Counts stay exact in :tot; only this interval's stream entry is lost. */
        s->head = (s->head + 1) % s->cfg.backlog_cap;
        s->count--;
        if (s->attempted)
            s->attempted--;
        s->st.intervals_dropped++;
    }
    s->backlog[(s->head + s->count) % s->cfg.backlog_cap] = *iv;
    s->count++;
}

void rs_sink_totals(struct rs_sink *s, const uint64_t *val)
{
    memcpy(s->totals, val, sizeof(s->totals));
    s->have_totals = 1;
}

void rs_sink_top(struct rs_sink *s, int dim, const struct topk_entry *e, unsigned n)
{
    if (dim < 0 || dim >= RS_TOP_DIMS)
        return;
    if (n > s->cfg.top_n)
        n = s->cfg.top_n;
    for (unsigned i = 0; i < n; i++) {
        rs_top_member(dim, &e[i].key, s->top[dim][i].member, sizeof(s->top[dim][i].member));
        s->top[dim][i].score = e[i].count;
    }
    s->top_n[dim] = n;
    s->top_dirty[dim] = 1;
}

void rs_sink_event(struct rs_sink *s, const struct rst_event *ev)
{
    if (s->n_events >= s->cfg.events_cap) {
        s->st.events_unsampled++;
        return;
    }
    struct pending_event *p = &s->events[s->n_events++];
    uint64_t ms = ev->ts_us / 1000;
    /* Stream IDs must grow: an event older than the last one takes the last ms, next seq. */
    if (ms > s->last_ev_ms || (s->last_ev_ms == 0 && s->last_ev_seq == 0)) {
        s->last_ev_ms = ms;
        s->last_ev_seq = 0;
    } else {
        s->last_ev_seq++;
    }
    p->ev = *ev;
    p->id_ms = s->last_ev_ms;
    p->id_seq = s->last_ev_seq;
}

void rs_sink_get_stats(const struct rs_sink *s, struct rs_sink_stats *st)
{
    *st = s->st;
    st->backlog = s->count;
    st->connected = rs_conn_connected(&s->conn);
}

/* ---- command building ---- */

struct args {
    int argc;
    const char *argv[ARGS_MAX];
    size_t len[ARGS_MAX];
    char store[ARG_STORE];
    size_t used;
};

static void arg_str(struct args *a, const char *v)
{
    size_t n = strlen(v);
    if (a->argc >= ARGS_MAX || a->used + n + 1 > ARG_STORE)
        return; /* bounded by construction: ARGS_MAX and ARG_STORE cover the largest command */
    memcpy(a->store + a->used, v, n + 1);
    a->argv[a->argc] = a->store + a->used;
    a->len[a->argc++] = n;
    a->used += n + 1;
}

static void arg_fmt(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg_fmt(struct args *a, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    arg_str(a, buf);
}

static void arg_key(struct args *a, const struct rs_sink *s, const char *suffix)
{
    arg_fmt(a, "rstscope:{%s}:%s", s->sensor, suffix);
}

static void cmd_begin(struct args *a)
{
    a->argc = 0;
    a->used = 0;
}

static void cmd_end(struct rs_sink *s, struct args *a, int kind)
{
    char *cmd = NULL;
    if ((size_t)s->ncmd >= sizeof(s->cmds) / sizeof(s->cmds[0]))
        return;
    int len = redisFormatCommandArgv(&cmd, a->argc, a->argv, a->len);
    if (len < 0 || !cmd)
        return;
    s->cmds[s->ncmd] = cmd;
    s->lens[s->ncmd] = len;
    s->kind[s->ncmd++] = kind;
}

static void build(struct rs_sink *s, struct args *a, uint64_t wall_ms, uint32_t n_rec,
                  uint32_t n_ev)
{
    char key[96];

    cmd_begin(a);
    arg_str(a, "HSET");
    arg_key(a, s, "meta");
    for (unsigned i = 0; i < s->n_meta; i++) {
        arg_str(a, s->meta[i].name);
        arg_str(a, s->meta[i].value);
    }
    const struct {
        const char *name;
        uint64_t v;
    } health[] = {
        {"last_flush_ms", wall_ms},
        /* As they stand once this pipeline lands (meta travels in it): the final flush's
         * meta then holds the final figures, not those of the flush before. */
        {"backlog", s->count - n_rec},
        {"intervals_written", s->st.intervals_written + n_rec},
        {"intervals_dropped", s->st.intervals_dropped},
        {"events_written", s->st.events_written + n_ev},
        {"events_unsampled", s->st.events_unsampled},
        {"redis_errors", s->st.errors},
        {"redis_reconnects", s->st.reconnects},
    };
    for (size_t i = 0; i < sizeof(health) / sizeof(health[0]); i++) {
        arg_str(a, health[i].name);
        arg_fmt(a, "%" PRIu64, health[i].v);
    }
    cmd_end(s, a, K_OTHER);

    cmd_begin(a);
    arg_str(a, "SET");
    arg_key(a, s, "alive");
    arg_fmt(a, "%" PRIu64, wall_ms);
    arg_str(a, "EX");
    arg_fmt(a, "%u", 3 * s->cfg.interval_s);
    cmd_end(s, a, K_OTHER);

    if (s->have_totals) {
        cmd_begin(a);
        arg_str(a, "HSET");
        arg_key(a, s, "tot");
        for (int i = 0; i < RS_FIELDS_MAX; i++) {
            arg_str(a, rs_field_name(i));
            arg_fmt(a, "%" PRIu64, s->totals[i]);
        }
        cmd_end(s, a, K_OTHER);
    }

    for (uint32_t r = 0; r < n_rec; r++) {
        const struct rs_interval *iv = &s->backlog[(s->head + r) % s->cfg.backlog_cap];
        uint64_t keep = (uint64_t)s->cfg.retention_s * 1000;
        cmd_begin(a);
        arg_str(a, "XADD");
        arg_key(a, s, "ts");
        /* Trim by the stream's own time, not the wall clock: a replayed capture keeps its
         * past timestamps and must not be trimmed away at once. */
        arg_str(a, "MINID");
        arg_str(a, "~");
        arg_fmt(a, "%" PRIu64, iv->end_ms > keep ? iv->end_ms - keep : 0);
        arg_fmt(a, "%" PRIu64 "-0", iv->end_ms); /* explicit: a resend is rejected, not doubled */
        arg_str(a, "interval_ms");
        arg_fmt(a, "%" PRIu64, (uint64_t)s->cfg.interval_s * 1000);
        for (int i = 0; i < RS_FIELDS_MAX; i++) {
            arg_str(a, rs_field_name(i));
            arg_fmt(a, "%" PRIu64, iv->val[i]);
        }
        cmd_end(s, a, K_RECORD);
    }

    for (int d = 0; d < RS_TOP_DIMS; d++) {
        if (!s->top_dirty[d])
            continue;
        snprintf(key, sizeof(key), "top:%s", rs_top_name(d));
        if (s->top_n[d] == 0) {
            cmd_begin(a);
            arg_str(a, "DEL");
            arg_key(a, s, key);
            cmd_end(s, a, K_OTHER);
            continue;
        }
        /* Build aside, then RENAME: readers never see a half-written or empty set. */
        char tmp[96];
        snprintf(tmp, sizeof(tmp), "top:%s:next", rs_top_name(d));
        cmd_begin(a);
        arg_str(a, "DEL");
        arg_key(a, s, tmp);
        cmd_end(s, a, K_OTHER);
        cmd_begin(a);
        arg_str(a, "ZADD");
        arg_key(a, s, tmp);
        for (unsigned i = 0; i < s->top_n[d]; i++) {
            arg_fmt(a, "%" PRIu64, s->top[d][i].score);
            arg_str(a, s->top[d][i].member);
        }
        cmd_end(s, a, K_OTHER);
        cmd_begin(a);
        arg_str(a, "RENAME");
        arg_key(a, s, tmp);
        arg_key(a, s, key);
        cmd_end(s, a, K_OTHER);
    }

    for (uint32_t e = 0; e < n_ev; e++) {
        const struct pending_event *p = &s->events[e];
        struct event_field f[EVENT_FIELDS_MAX];
        int nf = report_event_fields(&p->ev, f);
        cmd_begin(a);
        arg_str(a, "XADD");
        arg_key(a, s, "events");
        arg_str(a, "MAXLEN");
        arg_str(a, "~");
        arg_fmt(a, "%u", s->cfg.events_maxlen);
        arg_fmt(a, "%" PRIu64 "-%" PRIu64, p->id_ms, p->id_seq);
        for (int i = 0; i < nf; i++) {
            arg_str(a, f[i].name);
            arg_str(a, f[i].value);
        }
        cmd_end(s, a, K_EVENT);
    }
}

static void free_cmds(struct rs_sink *s)
{
    for (int i = 0; i < s->ncmd; i++)
        redisFreeCommand(s->cmds[i]);
    s->ncmd = 0;
}

static void went_down(struct rs_sink *s, uint64_t wall_ms)
{
    if (!s->down_logged) {
        char ep[RS_HOST_MAX + 16];
        snprintf(ep, sizeof(ep), s->cfg.conn.ep.is_unix ? "%s" : "%s:%d", s->cfg.conn.ep.host,
                 s->cfg.conn.ep.port);
        if (s->ever_up)
            slog(s, "connection to %s lost (%s); keeping up to %u intervals until it is back", ep,
                 s->conn.err, s->cfg.backlog_cap);
        else
            slog(s, "cannot reach %s (%s); retrying with backoff, keeping up to %u intervals", ep,
                 s->conn.err, s->cfg.backlog_cap);
        s->down_logged = 1;
        s->down_since_ms = wall_ms;
    }
    /* Exponential backoff with "equal jitter": half fixed, half random, so many sensors
     * restarting together do not reconnect in lockstep. */
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS)
        s->backoff_ms = BACKOFF_MAX_MS;
    s->next_try_ms =
        wall_ms + s->backoff_ms / 2 + (uint64_t)rand_r(&s->seed) % (s->backoff_ms / 2 + 1);
}

static int connect_sink(struct rs_sink *s, uint64_t wall_ms)
{
    if (rs_conn_open(&s->conn) < 0) {
        went_down(s, wall_ms);
        return -1;
    }
    /* Register the sensor (a global key: in a cluster it lives in another slot). */
    struct args *a = malloc(sizeof(*a));
    char *cmd = NULL;
    int st = RS_ERR_IO;
    if (a) {
        cmd_begin(a);
        arg_str(a, "SADD");
        arg_str(a, "rstscope:sensors");
        arg_str(a, s->sensor);
        int len = redisFormatCommandArgv(&cmd, a->argc, a->argv, a->len);
        if (len > 0)
            st = rs_conn_command_anyslot(&s->conn, "rstscope:sensors", cmd, len);
        redisFreeCommand(cmd);
        free(a);
    }
    if (st == RS_ERR_IO || st == RS_ERR_RETRY) {
        rs_conn_close(&s->conn);
        went_down(s, wall_ms);
        return -1;
    }
    char node[RS_HOST_MAX + 16];
    snprintf(node, sizeof(node), s->cfg.conn.ep.is_unix ? "%s" : "%s:%d", s->conn.node.host,
             s->conn.node.port);
    if (s->down_logged)
        slog(s,
             "connected to %s%s after %.1f s away; writing %u backlogged intervals "
             "(%" PRIu64 " dropped so far)",
             node, s->conn.cluster ? " (cluster)" : "",
             (double)(wall_ms - s->down_since_ms) / 1000.0, s->count, s->st.intervals_dropped);
    else if (!s->ever_up)
        slog(s, "connected to %s%s, sensor '%s' (slot %u)", node,
             s->conn.cluster ? " (cluster)" : "", s->sensor, s->cfg.conn.slot);
    if (s->ever_up)
        s->st.reconnects++;
    s->ever_up = 1;
    s->down_logged = 0;
    s->backoff_ms = 0;
    return 0;
}

int rs_sink_flush(struct rs_sink *s, uint64_t wall_ms, int force)
{
    if (!rs_conn_connected(&s->conn)) {
        if (!force && wall_ms < s->next_try_ms)
            return 1;
        if (connect_sink(s, wall_ms) < 0)
            return 1;
    }
    uint32_t n_rec = s->count < RECORDS_PER_FLUSH ? s->count : RECORDS_PER_FLUSH;
    uint32_t n_ev = s->n_events;
    struct args *a = malloc(sizeof(*a));
    if (!a)
        return 1;
    s->ncmd = 0;
    build(s, a, wall_ms, n_rec, n_ev);
    free(a);
    /* Only what was built is accounted: a record or event left out (no room in the pipeline,
     * impossible by CMDS_MAX) stays queued or is counted unsampled, never "written". */
    uint32_t built_rec = 0, built_ev = 0;
    for (int i = 0; i < s->ncmd; i++) {
        built_rec += s->kind[i] == K_RECORD;
        built_ev += s->kind[i] == K_EVENT;
    }
    if (built_rec < n_rec)
        n_rec = built_rec;
    uint32_t n_ev_taken = n_ev;
    if (built_ev < n_ev)
        n_ev = built_ev;

    int st[CMDS_MAX];
    rs_conn_pipeline(&s->conn, s->cmds, s->lens, s->ncmd, st);
    int io = 0, retry = 0, logged = 0;
    uint32_t rec = 0;
    for (int i = 0; i < s->ncmd; i++) {
        int resent = s->kind[i] == K_RECORD && rec < s->attempted;
        rec += s->kind[i] == K_RECORD;
        io |= st[i] == RS_ERR_IO;
        retry |= st[i] == RS_ERR_RETRY;
        if (st[i] == RS_ERR_STALE_ID) {
            /* Resent after a half-failed flush: already there. Otherwise the stream holds
             * newer entries (a replay of an older capture under a used sensor name). */
            if (s->kind[i] == K_RECORD && !resent && s->st.stream_id_rejected++ == 0)
                slog(s, "stream entry refused: the :ts stream already has newer entries "
                        "(replaying an older capture? use another --sensor)");
        } else if (st[i] == RS_ERR_PERM) {
            s->st.errors++;
            if (logged++ < LOG_ERRORS_PER_FLUSH)
                slog(s, "command refused: %s", s->conn.err);
        }
    }
    free_cmds(s);
    if (io || retry) {
        /* Nothing is dequeued: every command is idempotent and the whole flush is resent. */
        rs_conn_close(&s->conn);
        s->attempted = n_rec;
        went_down(s, wall_ms);
        return 1;
    }
    s->head = (s->head + n_rec) % s->cfg.backlog_cap;
    s->count -= n_rec;
    s->attempted = 0;
    s->st.intervals_written += n_rec;
    s->st.events_written += n_ev;
    s->st.events_unsampled += n_ev_taken - n_ev;
    s->n_events = 0;
    for (int d = 0; d < RS_TOP_DIMS; d++)
        s->top_dirty[d] = 0;
    return s->count > 0;
}
