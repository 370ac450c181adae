#include "options.h"

#include "redis_conn.h"
#include "redis_sink.h"

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
        "  --max-flows N          connections tracked at once, all workers (default 1000000)\n"
        "  --rst-hold-ms MS       verdict delay cap: a reset event is judged this long after\n"
        "                         its last RST at most (2 x RTT when known; default 500)\n"
        "  --ttl-tolerance N      hops a RST's TTL may differ from its purported sender's\n"
        "                         packets on the same connection before it counts as written\n"
        "                         by a middlebox (default 0; one more across connections)\n"
        "  --idle-threshold S     a RST after this much silence is idle_timeout, 0 = off\n"
        "                         (default 240: the shortest common load-balancer timer)\n"
        "  --idle-timeout S       forget an established connection idle this long (default 3600)\n"
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
        "  -h, --help             this text\n"
        "  -V, --version          version\n"
        "\n"
        "Live example (NIC bound to vfio-pci, 3 lcores: main + 2 workers):\n"
        "  rstscope -l 0-2 -a 0000:3b:00.0 -- --summary /var/lib/rstscope/summary.json\n"
        "Test example (kernel interface, no hugepages):\n"
        "  rstscope --no-huge -m 256 --no-pci -l 0,1 --vdev net_af_packet0,iface=eth1 --\n",
        RSTSCOPE_VERSION);
}

/* Whole-string unsigned parse with bounds; names the option in the error. */
static int parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "rstscope: invalid value '%s' for --%s (expected an integer %u..%u)\n", s,
                opt, min, max);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* The password never comes from argv (it would show in ps): a file, or the environment. */
static int options_redis_secrets(struct options *o, const char *pwfile)
{
    static char pw[512];
    if (pwfile) {
        FILE *f = fopen(pwfile, "r");
        if (!f) {
            fprintf(stderr, "rstscope: invalid value '%s' for --redis-password-file (%s)\n", pwfile,
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
        o->redis_password = getenv("RSTSCOPE_REDIS_PASSWORD");
    }
    if (o->redis_user && !o->redis_password) {
        fprintf(stderr, "rstscope: --redis-user needs a password (--redis-password-file or "
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

int options_parse(struct options *o, int argc, char **argv)
{
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
        O_IDLE,
        O_STATUS,
        O_QUIET,
        O_REDIS,
        O_REDIS_USER,
        O_REDIS_PWFILE,
        O_SENSOR,
        O_INTERVAL,
        O_RETENTION,
        O_BENCH_PACKETS,
        O_MBUFS,
        O_MBUF_SIZE
    };
    static const struct option longopts[] = {
        {"pcap", required_argument, NULL, O_PCAP},
        {"summary", required_argument, NULL, O_SUMMARY},
        {"events", required_argument, NULL, O_EVENTS},
        {"flows", required_argument, NULL, O_FLOWS},
        {"workers", required_argument, NULL, O_WORKERS},
        {"max-flows", required_argument, NULL, O_MAXFLOWS},
        {"rst-hold-ms", required_argument, NULL, O_FOLD},
        {"rst-fold-ms", required_argument, NULL, O_FOLD}, /* its name before 0.2 */
        {"idle-threshold", required_argument, NULL, O_IDLE_THRESHOLD},
        {"ttl-tolerance", required_argument, NULL, O_TTL_TOL},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"status-interval", required_argument, NULL, O_STATUS},
        {"quiet", no_argument, NULL, O_QUIET},
        {"redis", required_argument, NULL, O_REDIS},
        {"redis-user", required_argument, NULL, O_REDIS_USER},
        {"redis-password-file", required_argument, NULL, O_REDIS_PWFILE},
        {"sensor", required_argument, NULL, O_SENSOR},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"redis-retention", required_argument, NULL, O_RETENTION},
        {"bench-packets", required_argument, NULL, O_BENCH_PACKETS},
        {"mbufs", required_argument, NULL, O_MBUFS},
        {"mbuf-size", required_argument, NULL, O_MBUF_SIZE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    uint32_t v;
    const char *pwfile = NULL;
    int redis_only = 0; /* a Redis option was given: it needs --redis */
    char err[128];

    memset(o, 0, sizeof(*o));
    o->interval_s = 10;
    o->redis_retention_s = 86400;
    o->max_flows = 1000000;
    o->fold_ms = 500;
    o->idle_threshold_s = 240;
    o->idle_timeout_s = 3600;
    o->status_interval_s = 5;

    optind = 1;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":hV", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
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
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_REDIS: {
            struct rs_endpoint ep;
            if (rs_endpoint_parse(optarg, &ep, err, sizeof(err)) < 0) {
                fprintf(stderr, "rstscope: invalid value '%s' for --redis (%s)\n", optarg, err);
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
                fprintf(stderr,
                        "rstscope: invalid value '%s' for --redis-user (1..128 printable "
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
                fprintf(stderr,
                        "rstscope: invalid value '%s' for --sensor (expected 1..32 of "
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
        case 'h':
            options_usage(stdout);
            return 1;
        case 'V':
            printf("rstscope %s\n", RSTSCOPE_VERSION);
            return 1;
        case ':':
            fprintf(stderr, "rstscope: option '%s' needs a value (see --help)\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "rstscope: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rstscope: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (o->pcap && (o->bench_packets || o->mbufs || o->mbuf_size)) {
        fprintf(stderr, "rstscope: --bench-packets, --mbufs and --mbuf-size are for live mode "
                        "(EAL options and a port before '--'), not --pcap\n");
        return -1;
    }
    if (redis_only && !o->redis) {
        fprintf(stderr, "rstscope: --redis-user, --redis-password-file, --sensor, --interval and "
                        "--redis-retention need --redis\n");
        return -1;
    }
    if (o->redis && options_redis_secrets(o, pwfile) < 0)
        return -1;
    if (o->redis && !o->sensor[0])
        options_default_sensor(o->sensor, sizeof(o->sensor));
    return 0;
}
