/*
 * One Redis connection for one sensor, with hiredis 0.14's synchronous API: connect and command
 * timeouts (re-applied after every connect: hiredis 0.14 forgets them), AUTH (password or ACL
 * user), and Redis Cluster routing for the sensor's single hash slot (CLUSTER SLOTS, MOVED, ASK,
 * failover via rediscovery). Slow path only: never called on a polling core.
 */
#ifndef RS_REDIS_CONN_H
#define RS_REDIS_CONN_H

#include <stddef.h>
#include <stdint.h>

#define RS_HOST_MAX  256
#define RS_NODES_MAX 32 /* cluster nodes remembered as seeds for rediscovery */

struct rs_endpoint {
    int is_unix;
    char host[RS_HOST_MAX]; /* host name or address; the socket path when is_unix */
    int port;
};

/*
 * Parse "HOST:PORT", "[IPV6]:PORT" or an absolute Unix socket path ("/run/redis.sock").
 * Returns 0, or -1 with a reason in err (the caller names the option).
 */
int rs_endpoint_parse(const char *s, struct rs_endpoint *ep, char *err, size_t errlen);

/* Redis Cluster hash slot of a key (CRC16/XMODEM of its {hash tag}, or of the key, mod 16384). */
unsigned rs_key_slot(const char *key, size_t len);

struct rs_conn_config {
    struct rs_endpoint ep;
    const char *user;     /* ACL user, NULL for the default user */
    const char *password; /* NULL: no AUTH. Never logged. */
    int connect_timeout_ms;
    int command_timeout_ms;
    unsigned slot; /* the sensor's slot: the node serving it is the one we talk to */
};

struct rs_node {
    char host[RS_HOST_MAX];
    int port;
};

struct rs_slot_range {
    unsigned lo, hi;
    struct rs_node master;
};

struct rs_conn {
    struct rs_conn_config cfg;
    void *ctx;           /* redisContext *, NULL when disconnected */
    int cluster;         /* the server answered CLUSTER SLOTS */
    struct rs_node node; /* where ctx points (host:port, or the socket path) */
    struct rs_node known[RS_NODES_MAX];
    unsigned n_known;
    struct rs_slot_range ranges[64]; /* last CLUSTER SLOTS answer (first 64 ranges) */
    unsigned n_ranges;
    int auth_failed; /* the last failure was a rejected AUTH: log it as such */
    char err[640];   /* last failure, for the log (never holds the password) */
};

/* Command status after rs_conn_pipeline(). */
enum rs_status {
    RS_OK = 0,
    RS_ERR_PERM,  /* the server refused this command (e.g. a stream ID too small): do not retry */
    RS_ERR_RETRY, /* transient (CLUSTERDOWN, LOADING, TRYAGAIN, READONLY, ...): retry later */
    RS_ERR_IO,    /* no reply: the connection is gone */
    RS_ERR_STALE_ID, /* XADD with an ID not above the stream's last: already written */
};

void rs_conn_init(struct rs_conn *c, const struct rs_conn_config *cfg);
/* Connect (through the cluster to the slot's owner when the server is a cluster node).
 * Returns 0, or -1 with c->err set. */
int rs_conn_open(struct rs_conn *c);
void rs_conn_close(struct rs_conn *c);
int rs_conn_connected(const struct rs_conn *c);

/*
 * Send n formatted commands (redisFormatCommandArgv) for keys of cfg.slot in one round trip;
 * follow MOVED (switch node) and ASK (ASKING on the target) for the commands that got them, at
 * most 3 redirect rounds. st[i] is each command's outcome; the first server error message goes
 * to c->err. Returns the number of commands not RS_OK; on RS_ERR_IO the connection is closed.
 */
int rs_conn_pipeline(struct rs_conn *c, char **cmds, const int *lens, int n, int *st);
/* One command for a key of any slot (e.g. rstscope:sensors): in a cluster on a temporary
 * connection to that slot's owner. Returns an enum rs_status. */
int rs_conn_command_anyslot(struct rs_conn *c, const char *key, char *cmd, int len);

#endif
