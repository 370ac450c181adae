/* Command line of rstscope (the part after EAL's options). */
#ifndef RS_OPTIONS_H
#define RS_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#define OPT_MAX_NETS 64

/* A named prefix; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d/96+len) like packet addresses. */
struct opt_net {
    char name[33];
    uint8_t addr[16];
    uint8_t plen; /* 0..128, in the mapped space */
};

/* Does addr (IPv4-mapped for IPv4) fall in n? */
int opt_net_match(const struct opt_net *n, const uint8_t addr[16]);

enum hash_seed_mode {
    HASH_SEED_DEFAULT = 0, /* random live, the capture's digest for --pcap */
    HASH_SEED_FIXED,       /* --hash-seed N */
    HASH_SEED_RANDOM,      /* --hash-seed random */
};

struct options {
    const char *pcap;          /* --pcap FILE: replay through net_pcap */
    const char *summary;       /* --summary FILE */
    const char *events;        /* --events FILE */
    const char *flows;         /* --flows FILE: Zeek-compatible connection records */
    unsigned workers;          /* 0 = one per available worker lcore (live) or 1 (pcap) */
    int reader;                /* --reader: a replay reads the capture on an lcore of its own */
    uint32_t max_flows;        /* total, split across workers */
    uint32_t ipv6_share;       /* --ipv6-share: % of each table whose IPv6 addresses are kept */
    uint32_t fold_ms;          /* --rst-hold-ms: verdict delay cap */
    uint32_t idle_threshold_s; /* RST after this much silence: idle_timeout; 0 = off */
    uint8_t ttl_tolerance;     /* --ttl-tolerance */
    uint32_t idle_timeout_s;
    uint32_t status_interval_s;         /* 0 = no status line */
    int quiet;                          /* no report on stdout */
    enum hash_seed_mode hash_seed_mode; /* --hash-seed */
    uint64_t hash_seed;                 /* its number, for HASH_SEED_FIXED */
    /* Benchmark and sizing (docs/performance.md) */
    uint64_t bench_packets; /* --bench-packets N: stop once the workers processed N packets */
    uint32_t mbufs;         /* --mbufs N: packet buffer pool size, 0 = sized for the ports */
    uint32_t mbuf_size;     /* --mbuf-size B: data room of one buffer, 0 = DPDK's default */
    /* Redis aggregator (docs/redis.md); off unless --redis is given */
    const char *redis;          /* --redis HOST:PORT | [IPV6]:PORT | /unix/socket/path */
    const char *redis_user;     /* --redis-user: ACL user */
    const char *redis_password; /* from --redis-password-file or RSTSCOPE_REDIS_PASSWORD */
    char sensor[33];            /* --sensor NAME, default: the host name */
    uint32_t interval_s;        /* --interval S */
    uint32_t redis_retention_s; /* --redis-retention S: age kept in the :ts stream */
    /* Operations (issue 7) */
    const char *config;    /* --config FILE (already merged into the options) */
    int check_config;      /* --check-config: validate and exit */
    const char *prom_file; /* --prom-file PATH: node-exporter textfile, rewritten each interval */
    uint32_t prom_interval_s; /* --prom-interval S */
    int n_subnets;            /* --subnet NAME=CIDR: per-subnet breakdown */
    struct opt_net subnets[OPT_MAX_NETS];
    int n_excludes; /* --exclude NAME=CIDR: scanners, health checkers counted apart */
    struct opt_net excludes[OPT_MAX_NETS];
    int by_vlan;          /* --by-vlan: reset events per VLAN of the decisive RST */
    const char *dump_dir; /* --dump-resets DIR: pcap of the packets of reset connections */
    uint32_t dump_max_mb; /* --dump-max-mb: all dump files together */
    uint32_t dump_files;  /* --dump-files: files rotated over */
    uint32_t dump_rate;   /* --dump-rate: packets per second of capture time */
};

/*
 * Parse argv (rstscope's own options only). Returns 0 on success, 1 when --help/--version was
 * handled (exit 0), -1 on error (message already printed to stderr).
 */
int options_parse(struct options *o, int argc, char **argv);
void options_usage(FILE *out);

#endif
