/* Command line of rstscope (the part after EAL's options). */
#ifndef RS_OPTIONS_H
#define RS_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

struct options {
    const char *pcap;          /* --pcap FILE: replay through net_pcap */
    const char *summary;       /* --summary FILE */
    const char *events;        /* --events FILE */
    const char *flows;         /* --flows FILE: Zeek-compatible connection records */
    unsigned workers;          /* 0 = one per available worker lcore (live) or 1 (pcap) */
    uint32_t max_flows;        /* total, split across workers */
    uint32_t fold_ms;          /* --rst-hold-ms: verdict delay cap */
    uint32_t idle_threshold_s; /* RST after this much silence: idle_timeout; 0 = off */
    uint8_t ttl_tolerance;     /* --ttl-tolerance */
    uint32_t idle_timeout_s;
    uint32_t status_interval_s; /* 0 = no status line */
    int quiet;                  /* no report on stdout */
};

/*
 * Parse argv (rstscope's own options only). Returns 0 on success, 1 when --help/--version was
 * handled (exit 0), -1 on error (message already printed to stderr).
 */
int options_parse(struct options *o, int argc, char **argv);
void options_usage(FILE *out);

#endif
