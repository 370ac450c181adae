#include "options.h"

#include "config.h"
#include "redis_conn.h"
#include "redis_sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void options_usage(FILE *out)
{
    fprintf(
        out,
        "rstscope %s - who reset that TCP connection, and why\n"
        "\n"
        "Usage:\n"
        "  rstscope --pcap FILE [options]          replay a pcap/pcapng capture\n"
        "  rstscope [EAL options] -- [options]     run live on DPDK ports until SIGINT\n"
        "\n"
        "Options:\n"
        "  --pcap FILE            replay FILE through DPDK's net_pcap device and exit at its end\n"
        "  --summary FILE         write the final counters as one JSON object\n"
        "  --events FILE          write one JSON line per reset event\n"
        "  --flows FILE           write one JSON line per TCP connection when it ends: Zeek's\n"
        "                         conn_state and history, plus rstscope's cause\n"
        "  --workers N            analysis cores (default: 1 for --pcap, else every worker lcore)\n"
        "  --reader               --pcap with one worker: read the capture on a core of its own\n"
        "                         and analyse on another (default: both on one core)\n"
        "  --max-flows N          connections tracked at once, all workers (default 1000000)\n"
        "  --ipv6-share PCT       of those, how many may be IPv6 at once (their addresses are\n"
        "                         kept apart, 32 bytes each; default 25, up to 100)\n"
        "  --rst-hold-ms MS       verdict delay cap: a reset event is judged this long after\n"
        "                         its last RST at most (2 x RTT when known; default 500)\n"
        "  --ttl-tolerance N      hops a RST's TTL may differ from its purported sender's\n"
        "                         packets on the same connection before it counts as written\n"
        "                         by a middlebox (default 0; one more across connections)\n"
        "  --idle-threshold S     a RST after this much silence is idle_timeout, 0 = off\n"
        "                         (default 240: the shortest common load-balancer timer)\n"
        "  --idle-timeout S       forget an established connection idle this long (default 3600)\n"
        "  --hash-seed N|random   key of the flow hash: random (the default live, so that nobody\n"
        "                         can craft tuples that collide in the flow table) or a fixed\n"
        "                         number, decimal or 0x-hex, for reproducible runs (a --pcap\n"
        "                         replay's default comes from the capture's bytes: a file\n"
        "                         always replays the same)\n"
        "  --status-interval S    status line on stderr every S seconds, 0 = never (default 5)\n"
        "  --quiet                no report on stdout\n"
        "\n"
        "Benchmark and sizing (live mode, docs/performance.md):\n"
        "  --bench-packets N      stop once the workers have processed N packets (for a\n"
        "                         net_pcap port with infinite_rx=1); the summary's \"perf\"\n"
        "                         object gives the workers' TSC cycles per packet\n"
        "  --mbufs N              packet buffers in the pool (default: sized for the ports;\n"
        "                         infinite_rx preloads the whole capture into this pool)\n"
        "  --mbuf-size B          data room of one buffer, 128..65535 (default 2048)\n"
        "\n"
        "Redis (docs/redis.md):\n"
        "  --redis ADDR           push counters, top offenders and events to Redis every\n"
        "                         interval; ADDR is HOST:PORT, [IPV6]:PORT or a socket path\n"
        "                         (a Redis Cluster node works: the sensor finds its slot)\n"
        "  --redis-user NAME      ACL user (needs a password)\n"
        "  --redis-password-file FILE\n"
        "                         password on the first line of FILE; or set the environment\n"
        "                         variable RSTSCOPE_REDIS_PASSWORD (never on the command line)\n"
        "  --sensor NAME          sensor name in the keys, [A-Za-z0-9._-]{1,32}\n"
        "                         (default: the host name)\n"
        "  --interval S           seconds per interval, 1..3600 (default 10)\n"
        "  --redis-retention S    age of the :ts stream's oldest entry, 60..2592000\n"
        "                         (default 86400)\n"
        "\n"
        "Operations (docs/deploy.md):\n"
        "  --config FILE          read options from an INI file (conf/rstscope.conf documents\n"
        "                         every key); the command line overrides it\n"
        "  --check-config         validate the options and the file, then exit\n"
        "  --subnet NAME=CIDR     count reset events per named subnet (repeatable)\n"
        "  --exclude NAME=CIDR    count events touching this prefix apart, e.g. scanners and\n"
        "                         health checkers (repeatable)\n"
        "  --by-vlan              count reset events per VLAN id (outermost tag of the\n"
        "                         decisive RST; 0 = untagged)\n"
        "  --prom-file PATH       node-exporter textfile with the counters, rewritten\n"
        "                         atomically every --prom-interval S (default 10)\n"
        "  --dump-resets DIR      pcap of reset connections: the last packets before each\n"
        "                         RST and the RST, in DIR/rstscope-resets.N.pcap\n"
        "  --dump-max-mb N        size cap of all dump files together (default 16)\n"
        "  --dump-files N         dump files rotated over, oldest overwritten (default 4)\n"
        "  --dump-rate N          dumped packets per second at most (default 2000)\n"
        "  -h, --help             this text\n"
        "  -V, --version          version\n"
        "\n"
        "Live example (NIC bound to vfio-pci, 3 lcores: main + 2 workers):\n"
        "  rstscope -l 0-2 -a 0000:3b:00.0 -- --summary /var/lib/rstscope/summary.json\n"
        "Test example (kernel interface, no hugepages):\n"
        "  rstscope --no-huge -m 256 --no-pci -l 0,1 --vdev net_af_packet0,iface=eth1 --\n",
        RSTSCOPE_VERSION);
}

/* Where the argument being parsed came from: the command line, or a --config file's line.
 * Errors start with it, so a bad value in the file names the file and the line. */
static const char *cfg_path;
static const struct config_args *cfg_args;
static int cfg_first, cfg_arg; /* file arguments are argv[cfg_first .. cfg_first + n) */

static void err_start(void)
{
    int i = cfg_arg - cfg_first;
    if (cfg_args && i >= 0 && i < cfg_args->n)
        fprintf(stderr, "rstscope: %s:%d: ", cfg_path, cfg_args->line[i]);
    else
        fprintf(stderr, "rstscope: ");
}

int opt_net_match(const struct opt_net *n, const uint8_t addr[16])
{
    unsigned full = n->plen / 8, rest = n->plen % 8;
    if (memcmp(n->addr, addr, full) != 0)
        return 0;
    return rest == 0 || ((n->addr[full] ^ addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* NAME=CIDR (IPv4 or IPv6; no /len = one host). */
static int parse_net(const char *opt, const char *s, struct opt_net *n)
{
    char buf[128];
    const char *eq = strchr(s, '=');
    snprintf(buf, sizeof(buf), "%s", eq ? eq + 1 : "");
    char *slash = strchr(buf, '/');
    unsigned long plen = 0;
    int fam = strchr(buf, ':') ? 6 : 4, ok = eq && eq > s && (size_t)(eq - s) < sizeof(n->name);
    if (slash) {
        char *end;
        *slash = '\0';
        errno = 0;
        plen = strtoul(slash + 1, &end, 10);
        ok = ok && *end == '\0' && slash[1] && plen <= (fam == 4 ? 32u : 128u);
    } else {
        plen = fam == 4 ? 32 : 128;
    }
    memset(n, 0, sizeof(*n));
    if (ok && fam == 4) {
        n->addr[10] = n->addr[11] = 0xff;
        ok = inet_pton(AF_INET, buf, n->addr + 12) == 1;
        plen += 96;
    } else if (ok) {
        ok = inet_pton(AF_INET6, buf, n->addr) == 1;
    }
    if (!ok) {
        err_start();
        fprintf(stderr, "invalid value '%s' for --%s (expected NAME=ADDRESS[/LEN])\n", s, opt);
        return -1;
    }
    memcpy(n->name, s, (size_t)(eq - s));
    n->plen = (uint8_t)plen;
    /* Host bits set below the prefix would never match: clear them. */
    for (unsigned b = n->plen; b < 128; b++)
        n->addr[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
    return 0;
}

/* Whole-string unsigned parse with bounds; names the option in the error. */
static int parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    /* Digits only: strtoull() would also take leading blanks, a sign or nothing at all. */
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
        err_start();
        fprintf(stderr, "invalid value '%s' for --%s (expected an integer %u..%u)\n", s, opt, min,
                max);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* --hash-seed: "random", or a 64-bit number in decimal or 0x-hex (no octal, no sign). */
static int parse_hash_seed(const char *s, struct options *o)
{
    if (!strcmp(s, "random")) {
        o->hash_seed_mode = HASH_SEED_RANDOM;
        return 0;
    }
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *d = hex ? s + 2 : s;
    const char *digits = hex ? "0123456789abcdefABCDEF" : "0123456789";
    errno = 0;
    unsigned long long v = strtoull(d, NULL, hex ? 16 : 10);
    /* Digits only (strtoull() would take blanks and a sign), at least one, and in range. */
    if (!*d || d[strspn(d, digits)] != '\0' || errno != 0) {
        err_start();
        fprintf(stderr,
                "invalid value '%s' for --hash-seed (expected 'random' or a 64-bit number, "
                "decimal or 0x-hex)\n",
                s);
        return -1;
    }
    o->hash_seed_mode = HASH_SEED_FIXED;
    o->hash_seed = v;
    return 0;
}

/* The password never comes from argv (it would show in ps): a file, or the environment. */
static int options_redis_secrets(struct options *o, const char *pwfile)
{
    static char pw[512];
    if (pwfile) {
        FILE *f = fopen(pwfile, "r");
        if (!f) {
            err_start();
            fprintf(stderr, "invalid value '%s' for --redis-password-file (%s)\n", pwfile,
                    strerror(errno));
            return -1;
        }
        size_t n = fread(pw, 1, sizeof(pw) - 1, f);
        fclose(f);
        pw[n] = '\0';
        pw[strcspn(pw, "\r\n")] = '\0'; /* first line */
        if (!pw[0]) {
            fprintf(stderr,
                    "rstscope: invalid value '%s' for --redis-password-file (empty first line)\n",
                    pwfile);
            return -1;
        }
        o->redis_password = pw;
    } else if (getenv("RSTSCOPE_REDIS_PASSWORD") && *getenv("RSTSCOPE_REDIS_PASSWORD")) {
        /* Keep a copy and blank the variable's bytes in place: /proc/PID/environ (and so
         * `ps e`) shows the process's initial environment block, which unsetenv() leaves. */
        char *env = getenv("RSTSCOPE_REDIS_PASSWORD");
        snprintf(pw, sizeof(pw), "%s", env);
        memset(env, '*', strlen(env));
        o->redis_password = pw;
    }
    if (o->redis_user && !o->redis_password) {
        err_start();
        fprintf(stderr, "--redis-user needs a password (--redis-password-file or "
                        "RSTSCOPE_REDIS_PASSWORD)\n");
        return -1;
    }
    return 0;
}

/* The host name, with characters a key's hash tag cannot hold replaced by '-'. */
static void options_default_sensor(char *buf, size_t len)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "rstscope");
    host[RS_SENSOR_MAX] = '\0';
    for (char *c = host; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *c))
            *c = '-';
    snprintf(buf, len, "%s", host);
}

enum {
    O_PCAP = 256,
    O_SUMMARY,
    O_EVENTS,
    O_FLOWS,
    O_WORKERS,
    O_MAXFLOWS,
    O_FOLD,
    O_IDLE_THRESHOLD,
    O_TTL_TOL,
    O_IPV6_SHARE,
    O_IDLE,
    O_STATUS,
    O_QUIET,
    O_READER,
    O_REDIS,
    O_REDIS_USER,
    O_REDIS_PWFILE,
    O_SENSOR,
    O_INTERVAL,
    O_RETENTION,
    O_CONFIG,
    O_CHECK_CONFIG,
    O_PROM_FILE,
    O_PROM_INTERVAL,
    O_SUBNET,
    O_EXCLUDE,
    O_BY_VLAN,
    O_DUMP_DIR,
    O_DUMP_MAX_MB,
    O_DUMP_FILES,
    O_DUMP_RATE,
    O_BENCH_PACKETS,
    O_MBUFS,
    O_MBUF_SIZE,
    O_HASH_SEED,
};
static const struct option longopts[] = {
    {"pcap", required_argument, NULL, O_PCAP},
    {"summary", required_argument, NULL, O_SUMMARY},
    {"events", required_argument, NULL, O_EVENTS},
    {"flows", required_argument, NULL, O_FLOWS},
    {"workers", required_argument, NULL, O_WORKERS},
    {"max-flows", required_argument, NULL, O_MAXFLOWS},
    {"ipv6-share", required_argument, NULL, O_IPV6_SHARE},
    {"rst-hold-ms", required_argument, NULL, O_FOLD},
    {"rst-fold-ms", required_argument, NULL, O_FOLD}, /* its name before 0.2 */
    {"idle-threshold", required_argument, NULL, O_IDLE_THRESHOLD},
    {"ttl-tolerance", required_argument, NULL, O_TTL_TOL},
    {"idle-timeout", required_argument, NULL, O_IDLE},
    {"status-interval", required_argument, NULL, O_STATUS},
    {"quiet", no_argument, NULL, O_QUIET},
    {"reader", no_argument, NULL, O_READER},
    {"redis", required_argument, NULL, O_REDIS},
    {"redis-user", required_argument, NULL, O_REDIS_USER},
    {"redis-password-file", required_argument, NULL, O_REDIS_PWFILE},
    {"sensor", required_argument, NULL, O_SENSOR},
    {"interval", required_argument, NULL, O_INTERVAL},
    {"redis-retention", required_argument, NULL, O_RETENTION},
    {"config", required_argument, NULL, O_CONFIG},
    {"check-config", no_argument, NULL, O_CHECK_CONFIG},
    {"prom-file", required_argument, NULL, O_PROM_FILE},
    {"prom-interval", required_argument, NULL, O_PROM_INTERVAL},
    {"subnet", required_argument, NULL, O_SUBNET},
    {"exclude", required_argument, NULL, O_EXCLUDE},
    {"by-vlan", no_argument, NULL, O_BY_VLAN},
    {"dump-resets", required_argument, NULL, O_DUMP_DIR},
    {"dump-max-mb", required_argument, NULL, O_DUMP_MAX_MB},
    {"dump-files", required_argument, NULL, O_DUMP_FILES},
    {"dump-rate", required_argument, NULL, O_DUMP_RATE},
    {"bench-packets", required_argument, NULL, O_BENCH_PACKETS},
    {"mbufs", required_argument, NULL, O_MBUFS},
    {"mbuf-size", required_argument, NULL, O_MBUF_SIZE},
    {"hash-seed", required_argument, NULL, O_HASH_SEED},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* For config.c: 1 = the option takes a value, 0 = a switch, -1 = no such option. */
static int option_lookup(const char *name)
{
    for (const struct option *lo = longopts; lo->name; lo++)
        if (!strcmp(lo->name, name))
            return lo->has_arg == required_argument;
    return -1;
}

static int parse_argv(struct options *o, int argc, char **argv)
{
    uint32_t v;
    const char *pwfile = NULL;
    int redis_only = 0; /* a Redis option was given: it needs --redis */
    char err[128];

    memset(o, 0, sizeof(*o));
    o->interval_s = 10;
    o->redis_retention_s = 86400;
    o->max_flows = 1000000;
    o->ipv6_share = 25;
    o->fold_ms = 500;
    o->idle_threshold_s = 240;
    o->idle_timeout_s = 3600;
    o->status_interval_s = 5;
    o->prom_interval_s = 10;
    o->dump_max_mb = 16;
    o->dump_files = 4;
    o->dump_rate = 2000;

    optind = 1;
    opterr = 0;
    for (;;) {
        /* '+': no permutation, so an argument's index still names its file line. */
        int c = getopt_long(argc, argv, "+:hV", longopts, NULL);
        if (c == -1)
            break;
        cfg_arg = optind - 1;
        switch (c) {
        case O_CONFIG: /* merged before parsing (options_parse) */
            o->config = optarg;
            break;
        case O_CHECK_CONFIG:
            o->check_config = 1;
            break;
        case O_PROM_FILE:
            o->prom_file = optarg;
            break;
        case O_BY_VLAN:
            o->by_vlan = 1;
            break;
        case O_DUMP_DIR:
            o->dump_dir = optarg;
            break;
        case O_DUMP_MAX_MB:
            if (parse_u32("dump-max-mb", optarg, 1, 65536, &v) < 0)
                return -1;
            o->dump_max_mb = v;
            break;
        case O_DUMP_FILES:
            if (parse_u32("dump-files", optarg, 1, 64, &v) < 0)
                return -1;
            o->dump_files = v;
            break;
        case O_DUMP_RATE:
            if (parse_u32("dump-rate", optarg, 1, 10000000, &v) < 0)
                return -1;
            o->dump_rate = v;
            break;
        case O_PROM_INTERVAL:
            if (parse_u32("prom-interval", optarg, 1, 3600, &v) < 0)
                return -1;
            o->prom_interval_s = v;
            break;
        case O_SUBNET:
        case O_EXCLUDE: {
            int sn = c == O_SUBNET;
            int *n = sn ? &o->n_subnets : &o->n_excludes;
            if (*n >= OPT_MAX_NETS) {
                err_start();
                fprintf(stderr, "more than %d --%s entries\n", OPT_MAX_NETS,
                        sn ? "subnet" : "exclude");
                return -1;
            }
            if (parse_net(sn ? "subnet" : "exclude", optarg,
                          sn ? &o->subnets[*n] : &o->excludes[*n]) < 0)
                return -1;
            (*n)++;
            break;
        }
        case O_PCAP:
            o->pcap = optarg;
            break;
        case O_SUMMARY:
            o->summary = optarg;
            break;
        case O_EVENTS:
            o->events = optarg;
            break;
        case O_FLOWS:
            o->flows = optarg;
            break;
        case O_WORKERS:
            if (parse_u32("workers", optarg, 1, 64, &v) < 0)
                return -1;
            o->workers = v;
            break;
        case O_MAXFLOWS:
            if (parse_u32("max-flows", optarg, 16, 1u << 30, &v) < 0)
                return -1;
            o->max_flows = v;
            break;
        case O_FOLD:
            if (parse_u32("rst-hold-ms", optarg, 0, 60000, &v) < 0)
                return -1;
            o->fold_ms = v;
            break;
        case O_IPV6_SHARE:
            if (parse_u32("ipv6-share", optarg, 1, 100, &v) < 0)
                return -1;
            o->ipv6_share = v;
            break;
        case O_TTL_TOL:
            if (parse_u32("ttl-tolerance", optarg, 0, 64, &v) < 0)
                return -1;
            o->ttl_tolerance = (uint8_t)v;
            break;
        case O_IDLE_THRESHOLD:
            if (parse_u32("idle-threshold", optarg, 0, 7 * 86400, &v) < 0)
                return -1;
            o->idle_threshold_s = v;
            break;
        case O_IDLE:
            if (parse_u32("idle-timeout", optarg, 1, 7 * 86400, &v) < 0)
                return -1;
            o->idle_timeout_s = v;
            break;
        case O_STATUS:
            if (parse_u32("status-interval", optarg, 0, 86400, &v) < 0)
                return -1;
            o->status_interval_s = v;
            break;
        case O_READER:
            o->reader = 1;
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_REDIS: {
            struct rs_endpoint ep;
            if (rs_endpoint_parse(optarg, &ep, err, sizeof(err)) < 0) {
                err_start();
                fprintf(stderr, "invalid value '%s' for --redis (%s)\n", optarg, err);
                return -1;
            }
            o->redis = optarg;
            break;
        }
        case O_REDIS_USER: {
            size_t n = strlen(optarg), ok = 0;
            while (ok < n && optarg[ok] > ' ' && optarg[ok] < 127)
                ok++;
            if (n < 1 || n > 128 || ok != n) {
                err_start();
                fprintf(stderr,
                        "invalid value '%s' for --redis-user (1..128 printable "
                        "characters, no spaces)\n",
                        optarg);
                return -1;
            }
            o->redis_user = optarg;
            redis_only = 1;
            break;
        }
        case O_REDIS_PWFILE:
            pwfile = optarg;
            redis_only = 1;
            break;
        case O_SENSOR:
            if (!rs_sensor_valid(optarg)) {
                err_start();
                fprintf(stderr,
                        "invalid value '%s' for --sensor (expected 1..32 of "
                        "A-Z a-z 0-9 . _ -)\n",
                        optarg);
                return -1;
            }
            snprintf(o->sensor, sizeof(o->sensor), "%s", optarg);
            redis_only = 1;
            break;
        case O_INTERVAL:
            if (parse_u32("interval", optarg, 1, 3600, &v) < 0)
                return -1;
            o->interval_s = v;
            redis_only = 1;
            break;
        case O_RETENTION:
            if (parse_u32("redis-retention", optarg, 60, 30 * 86400, &v) < 0)
                return -1;
            o->redis_retention_s = v;
            redis_only = 1;
            break;
        case O_BENCH_PACKETS:
            if (parse_u32("bench-packets", optarg, 1, UINT32_MAX, &v) < 0)
                return -1;
            o->bench_packets = v;
            break;
        case O_MBUFS:
            if (parse_u32("mbufs", optarg, 1024, 1u << 30, &v) < 0)
                return -1;
            o->mbufs = v;
            break;
        case O_MBUF_SIZE:
            if (parse_u32("mbuf-size", optarg, 128, 65535, &v) < 0)
                return -1;
            o->mbuf_size = v;
            break;
        case O_HASH_SEED:
            if (parse_hash_seed(optarg, o) < 0)
                return -1;
            break;
        case 'h':
            options_usage(stdout);
            return 1;
        case 'V':
            printf("rstscope %s\n", RSTSCOPE_VERSION);
            return 1;
        case ':':
            err_start();
            fprintf(stderr, "option '%s' needs a value (see --help)\n", argv[optind - 1]);
            return -1;
        default:
            err_start();
            fprintf(stderr, "unknown option '%s' (see --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        err_start();
        fprintf(stderr, "unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (o->reader && !o->pcap) {
        fprintf(stderr, "rstscope: --reader is for --pcap replays (live, each worker polls its "
                        "own RSS queue or is fed by the distributor)\n");
        return -1;
    }
    if (o->pcap && (o->bench_packets || o->mbufs || o->mbuf_size)) {
        fprintf(stderr, "rstscope: --bench-packets, --mbufs and --mbuf-size are for live mode "
                        "(EAL options and a port before '--'), not --pcap\n");
        return -1;
    }
    if (redis_only && !o->redis) {
        err_start();
        fprintf(stderr, "--redis-user, --redis-password-file, --sensor, --interval and "
                        "--redis-retention need --redis\n");
        return -1;
    }
    if (o->redis && options_redis_secrets(o, pwfile) < 0)
        return -1;
    if (o->redis && !o->sensor[0])
        options_default_sensor(o->sensor, sizeof(o->sensor));
    if (o->check_config) {
        printf("rstscope: configuration OK%s%s\n", o->config ? ": " : "",
               o->config ? o->config : "");
        return 1;
    }
    return 0;
}

int options_parse(struct options *o, int argc, char **argv)
{
    static struct config_args fa; /* the options point into it: lives as long as they do */
    static char *merged[CONFIG_MAX_ARGS + 1024];
    const char *path = NULL;

    cfg_args = NULL;
    cfg_path = NULL;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
    }
    if (!path)
        return parse_argv(o, argc, argv);
    config_free(&fa);
    if (config_load(path, option_lookup, &fa) < 0)
        return -1;
    if ((size_t)argc + (size_t)fa.n >= sizeof(merged) / sizeof(merged[0])) {
        fprintf(stderr, "rstscope: too many arguments\n");
        return -1;
    }
    /* The file first, then the command line: for an option given in both, the command
     * line's value is parsed last and wins. */
    int n = 0;
    merged[n++] = argv[0];
    for (int i = 0; i < fa.n; i++)
        merged[n++] = fa.argv[i];
    for (int i = 1; i < argc; i++)
        merged[n++] = argv[i];
    merged[n] = NULL;
    cfg_path = path;
    cfg_args = &fa;
    cfg_first = 1;
    return parse_argv(o, n, merged);
}
