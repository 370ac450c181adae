#include "redis_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#define MAX_REDIRECTS 3

/* ---- endpoint and slot ---- */

int rs_endpoint_parse(const char *s, struct rs_endpoint *ep, char *err, size_t errlen)
{
    memset(ep, 0, sizeof(*ep));
    if (!s || !*s) {
        snprintf(err, errlen, "empty");
        return -1;
    }
    if (s[0] == '/') {
        /* sun_path holds 108 bytes with its terminator. */
        if (strlen(s) >= 108) {
            snprintf(err, errlen, "Unix socket path longer than 107 bytes");
            return -1;
        }
        ep->is_unix = 1;
        snprintf(ep->host, sizeof(ep->host), "%s", s);
        return 0;
    }
    const char *colon, *host = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "expected [IPV6]:PORT");
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        for (size_t i = 0; i < hlen; i++)
            if (!strchr("0123456789abcdefABCDEF:.", host[i])) {
                snprintf(err, errlen, "bad character in IPv6 address");
                return -1;
            }
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "expected HOST:PORT or an absolute Unix socket path");
            return -1;
        }
        hlen = (size_t)(colon - s);
        for (size_t i = 0; i < hlen; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_",
                        s[i])) {
                snprintf(err, errlen, "bad character in host name");
                return -1;
            }
    }
    if (hlen == 0 || hlen >= RS_HOST_MAX) {
        snprintf(err, errlen, "host name empty or too long");
        return -1;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || colon[1] == '-' || colon[1] == '+' || *end != '\0' || errno ||
        port < 1 || port > 65535) {
        snprintf(err, errlen, "port must be 1..65535");
        return -1;
    }
    memcpy(ep->host, host, hlen);
    ep->host[hlen] = '\0';
    ep->port = (int)port;
    return 0;
}

static uint16_t crc16_xmodem(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint8_t)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned rs_key_slot(const char *key, size_t len)
{
    /* Redis's rule: hash only what lies between the first '{' and the next '}', if non-empty. */
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16_xmodem(open + 1, (size_t)(close - open - 1)) & 16383;
    }
    return crc16_xmodem(key, len) & 16383;
}

/* ---- connections ---- */

void rs_conn_init(struct rs_conn *c, const struct rs_conn_config *cfg)
{
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
}

int rs_conn_connected(const struct rs_conn *c)
{
    return c->ctx != NULL;
}

void rs_conn_close(struct rs_conn *c)
{
    if (c->ctx)
        redisFree(c->ctx);
    c->ctx = NULL;
}

static struct timeval ms_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

static void node_name(const struct rs_node *n, int is_unix, char *buf, size_t len)
{
    if (is_unix)
        snprintf(buf, len, "%s", n->host);
    else if (strchr(n->host, ':'))
        snprintf(buf, len, "[%s]:%d", n->host, n->port);
    else
        snprintf(buf, len, "%s:%d", n->host, n->port);
}

/* Connect, set the command timeout and keepalive, authenticate, and check the server answers.
 * Returns the context or NULL with c->err set. */
static redisContext *connect_node(struct rs_conn *c, const struct rs_node *n)
{
    char name[RS_HOST_MAX + 16];
    int is_unix = c->cfg.ep.is_unix;
    node_name(n, is_unix, name, sizeof(name));
    c->auth_failed = 0;

    struct timeval ctv = ms_tv(c->cfg.connect_timeout_ms);
    redisContext *x = is_unix ? redisConnectUnixWithTimeout(n->host, ctv)
                              : redisConnectWithTimeout(n->host, n->port, ctv);
    if (!x || x->err) {
        snprintf(c->err, sizeof(c->err), "%s: %s", name, x ? x->errstr : "out of memory");
        if (x)
            redisFree(x);
        return NULL;
    }
    /* hiredis 0.14 applies no command timeout unless told, on every new socket: without it a
     * server that accepts but never answers blocks this thread until TCP gives up. */
    redisSetTimeout(x, ms_tv(c->cfg.command_timeout_ms));
    if (!is_unix)
        redisEnableKeepAlive(x);

    redisReply *r;
    if (c->cfg.password) {
        const char *argv[3] = {"AUTH", c->cfg.user ? c->cfg.user : c->cfg.password,
                               c->cfg.password};
        r = redisCommandArgv(x, c->cfg.user ? 3 : 2, argv, NULL);
    } else {
        r = redisCommand(x, "PING");
    }
    if (!r) {
        snprintf(c->err, sizeof(c->err), "%s: no answer: %s", name, x->errstr);
        redisFree(x);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* The server's message (WRONGPASS, NOAUTH) never repeats the password. */
        c->auth_failed = c->cfg.password || strncmp(r->str, "NOAUTH", 6) == 0;
        snprintf(c->err, sizeof(c->err), "%s: %s%s%s%s: %s", name,
                 c->auth_failed ? "authentication failed" : "refused",
                 c->cfg.user ? " (user '" : "", c->cfg.user ? c->cfg.user : "",
                 c->cfg.user ? "')" : "", r->str);
        freeReplyObject(r);
        redisFree(x);
        return NULL;
    }
    freeReplyObject(r);
    return x;
}

static int same_node(const struct rs_node *a, const struct rs_node *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void remember(struct rs_conn *c, const struct rs_node *n)
{
    for (unsigned i = 0; i < c->n_known; i++)
        if (same_node(&c->known[i], n))
            return;
    if (c->n_known < RS_NODES_MAX)
        c->known[c->n_known++] = *n;
}

static int node_from_reply(const redisReply *r, const struct rs_node *seed, struct rs_node *out)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    /* An empty address means "the address you reached me at". */
    const char *ip = r->element[0]->len ? r->element[0]->str : seed->host;
    if (strlen(ip) >= RS_HOST_MAX)
        return -1;
    snprintf(out->host, sizeof(out->host), "%s", ip);
    out->port = (int)r->element[1]->integer;
    return 0;
}

/*
 * Ask x (reached as seed) for the slot map. Returns 0 for a standalone server, 1 for a cluster
 * with *owner set, -1 on failure.
 */
static int discover(struct rs_conn *c, redisContext *x, const struct rs_node *seed,
                    struct rs_node *owner)
{
    redisReply *r = redisCommand(x, "CLUSTER SLOTS");
    if (!r) {
        snprintf(c->err, sizeof(c->err), "CLUSTER SLOTS: %s", x->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) { /* "cluster support disabled": a plain server */
        freeReplyObject(r);
        return 0;
    }
    int found = 0;
    c->n_ranges = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        struct rs_node m;
        if (node_from_reply(e->element[2], seed, &m) < 0)
            continue;
        unsigned lo = (unsigned)e->element[0]->integer, hi = (unsigned)e->element[1]->integer;
        for (size_t k = 2; k < e->elements; k++) { /* master, then replicas: all seeds */
            struct rs_node any;
            if (node_from_reply(e->element[k], seed, &any) == 0)
                remember(c, &any);
        }
        if (c->n_ranges < 64)
            c->ranges[c->n_ranges++] = (struct rs_slot_range){.lo = lo, .hi = hi, .master = m};
        if (c->cfg.slot >= lo && c->cfg.slot <= hi) {
            *owner = m;
            found = 1;
        }
    }
    freeReplyObject(r);
    if (!found) {
        snprintf(c->err, sizeof(c->err), "cluster has no node serving slot %u", c->cfg.slot);
        return -1;
    }
    return 1;
}

int rs_conn_open(struct rs_conn *c)
{
    struct rs_node cand[1 + RS_NODES_MAX];
    unsigned nc = 0;
    char first_err[sizeof(c->err)] = "";
    int first_auth = 0;

    rs_conn_close(c);
    snprintf(cand[nc].host, sizeof(cand[nc].host), "%s", c->cfg.ep.host);
    cand[nc++].port = c->cfg.ep.port;
    /* After a failover the configured node may be gone: any node seen before can tell us
     * who serves the slot now. */
    for (unsigned i = 0; i < c->n_known; i++)
        if (!same_node(&c->known[i], &cand[0]))
            cand[nc++] = c->known[i];

    for (unsigned i = 0; i < nc; i++) {
        redisContext *x = connect_node(c, &cand[i]);
        if (!x) {
            if (!first_err[0]) {
                memcpy(first_err, c->err, sizeof(first_err));
                first_auth = c->auth_failed;
            }
            continue;
        }
        struct rs_node owner;
        int kind = c->cfg.ep.is_unix ? 0 : discover(c, x, &cand[i], &owner);
        if (kind < 0) {
            redisFree(x);
            if (!first_err[0])
                memcpy(first_err, c->err, sizeof(first_err));
            continue;
        }
        c->cluster = kind;
        if (kind == 1 && !same_node(&owner, &cand[i])) {
            redisFree(x);
            x = connect_node(c, &owner);
            if (!x)
                return -1; /* owner down (failover in progress?): retry later */
            c->node = owner;
        } else {
            c->node = cand[i];
        }
        c->ctx = x;
        return 0;
    }
    memcpy(c->err, first_err, sizeof(c->err));
    c->auth_failed = first_auth;
    return -1;
}

/* ---- commands ---- */

static int classify(const redisReply *r)
{
    static const char *transient[] = {"CLUSTERDOWN", "LOADING", "TRYAGAIN", "READONLY",
                                      "MASTERDOWN",  "NOAUTH",  "BUSY"};
    if (r->type != REDIS_REPLY_ERROR)
        return RS_OK;
    if (strstr(r->str, "equal or smaller"))
        return RS_ERR_STALE_ID;
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        if (strncmp(r->str, transient[i], strlen(transient[i])) == 0)
            return RS_ERR_RETRY;
    return RS_ERR_PERM;
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": the node after the slot number. */
static int redirect_target(const char *msg, struct rs_node *n)
{
    const char *sp = strrchr(msg, ' ');
    const char *colon = sp ? strrchr(sp, ':') : NULL;
    if (!sp || !colon || (size_t)(colon - sp - 1) >= RS_HOST_MAX)
        return -1;
    memcpy(n->host, sp + 1, (size_t)(colon - sp - 1));
    n->host[colon - sp - 1] = '\0';
    n->port = atoi(colon + 1);
    return n->port > 0 ? 0 : -1;
}

enum { REDIR_NONE, REDIR_MOVED, REDIR_ASK };

/* Send the commands idx[0..n) on x, one round trip. */
static int send_batch(struct rs_conn *c, redisContext *x, char **cmds, const int *lens,
                      const int *idx, int n, int asking, int *st, int *redir, struct rs_node *to)
{
    for (int k = 0; k < n; k++) {
        if (asking)
            redisAppendCommand(x, "ASKING");
        redisAppendFormattedCommand(x, cmds[idx[k]], (size_t)lens[idx[k]]);
    }
    for (int k = 0; k < n; k++) {
        redisReply *r = NULL;
        if (asking) {
            if (redisGetReply(x, (void **)&r) != REDIS_OK)
                goto io;
            freeReplyObject(r);
            r = NULL;
        }
        if (redisGetReply(x, (void **)&r) != REDIS_OK)
            goto io;
        int i = idx[k];
        st[i] = classify(r);
        redir[i] = REDIR_NONE;
        if (st[i] != RS_OK && st[i] != RS_ERR_STALE_ID) {
            if (strncmp(r->str, "MOVED ", 6) == 0 && redirect_target(r->str, &to[0]) == 0)
                redir[i] = REDIR_MOVED;
            else if (strncmp(r->str, "ASK ", 4) == 0 && redirect_target(r->str, &to[1]) == 0)
                redir[i] = REDIR_ASK;
            else if (!c->err[0])
                snprintf(c->err, sizeof(c->err), "%s", r->str);
        }
        freeReplyObject(r); /* hiredis 0.14 leaks a reply not taken: always take and free */
    }
    return 0;
io:
    for (int k = 0; k < n; k++)
        if (st[idx[k]] == -1)
            st[idx[k]] = RS_ERR_IO;
    snprintf(c->err, sizeof(c->err), "%s", x->errstr[0] ? x->errstr : "connection lost");
    return -1;
}

int rs_conn_pipeline(struct rs_conn *c, char **cmds, const int *lens, int n, int *st)
{
    int *idx = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *redir = malloc(sizeof(int) * (size_t)(n ? n : 1));
    struct rs_node to[2];
    int left = n, bad = 0;

    c->err[0] = '\0';
    for (int i = 0; i < n; i++) {
        st[i] = -1;
        idx[i] = i;
        redir[i] = REDIR_NONE;
    }
    if (!idx || !redir || !c->ctx) {
        for (int i = 0; i < n; i++)
            st[i] = RS_ERR_IO;
        snprintf(c->err, sizeof(c->err), "%s", c->ctx ? "out of memory" : "not connected");
        free(idx);
        free(redir);
        return n;
    }
    for (int round = 0; left > 0; round++) {
        if (send_batch(c, c->ctx, cmds, lens, idx, left, 0, st, redir, to) < 0) {
            rs_conn_close(c);
            break;
        }
        /* ASK: this slot is migrating and these keys are already on the target. */
        int m = 0;
        for (int k = 0; k < left; k++)
            if (redir[idx[k]] == REDIR_ASK)
                idx[m++] = idx[k];
        if (m && round < MAX_REDIRECTS) {
            char keep[sizeof(c->err)];
            memcpy(keep, c->err, sizeof(keep));
            redisContext *t = connect_node(c, &to[1]);
            memcpy(c->err, keep, sizeof(keep));
            if (t) {
                for (int k = 0; k < m; k++)
                    st[idx[k]] = -1;
                send_batch(c, t, cmds, lens, idx, m, 1, st, redir, to);
                redisFree(t);
            }
        }
        /* MOVED: the slot has a new owner (resharding or failover): switch and resend. */
        m = 0;
        for (int i = 0; i < n; i++)
            if (redir[i] == REDIR_MOVED && st[i] != RS_OK)
                idx[m++] = i;
        left = 0;
        if (!m || round >= MAX_REDIRECTS)
            break;
        rs_conn_close(c);
        c->n_ranges = 0;
        redisContext *x = connect_node(c, &to[0]);
        if (!x)
            break;
        c->ctx = x;
        c->node = to[0];
        remember(c, &to[0]);
        for (int k = 0; k < m; k++) {
            st[idx[k]] = -1;
            redir[idx[k]] = REDIR_NONE;
        }
        left = m;
    }
    for (int i = 0; i < n; i++) {
        if (st[i] == -1)
            st[i] = RS_ERR_IO;
        if (redir[i] != REDIR_NONE && st[i] != RS_OK)
            st[i] = RS_ERR_RETRY; /* redirects not resolved in MAX_REDIRECTS rounds */
        bad += st[i] != RS_OK && st[i] != RS_ERR_STALE_ID;
        /* A transient error means we talk to the wrong node or a sick one: rediscover. */
        if (st[i] == RS_ERR_RETRY && c->ctx)
            rs_conn_close(c);
    }
    free(idx);
    free(redir);
    return bad;
}

int rs_conn_command_anyslot(struct rs_conn *c, const char *key, char *cmd, int len)
{
    int st = RS_ERR_IO;
    if (!c->ctx)
        return RS_ERR_IO;
    unsigned slot = rs_key_slot(key, strlen(key));
    const struct rs_node *owner = NULL;
    for (unsigned i = 0; c->cluster && i < c->n_ranges; i++)
        if (slot >= c->ranges[i].lo && slot <= c->ranges[i].hi)
            owner = &c->ranges[i].master;
    if (!c->cluster || !owner || same_node(owner, &c->node)) {
        rs_conn_pipeline(c, &cmd, &len, 1, &st);
        return st;
    }
    struct rs_conn tmp;
    rs_conn_init(&tmp, &c->cfg);
    tmp.ctx = connect_node(&tmp, owner);
    if (!tmp.ctx) {
        memcpy(c->err, tmp.err, sizeof(c->err));
        return RS_ERR_IO;
    }
    tmp.node = *owner;
    tmp.cfg.slot = slot;
    rs_conn_pipeline(&tmp, &cmd, &len, 1, &st);
    if (st != RS_OK)
        memcpy(c->err, tmp.err, sizeof(c->err));
    rs_conn_close(&tmp);
    return st;
}
