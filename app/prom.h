/*
 * --prom-file PATH: the counters in Prometheus' text exposition format for node-exporter's
 * textfile collector. Written to PATH.tmp and renamed over PATH, so a scrape never reads a
 * half-written file (rename is atomic within one file system). Main thread only, every
 * --prom-interval seconds and at exit: never on a polling core.
 */
#ifndef RS_PROM_H
#define RS_PROM_H

#include <stdint.h>

#include "cause.h"
#include "report.h"

/* Reset events by origin and cause (not excluded), counted by each worker (breakdown.h). */
struct prom_origin {
    uint64_t n[ORIGIN_MAX][CAUSE_MAX];
};

struct breakdown;

/* Returns 0, or -1 with errno set (the old file stays as it was). b: the per-subnet and
 * per-VLAN series, NULL when no breakdown is configured. */
int prom_write(const char *path, const struct engine_stats *s, const struct run_info *ri,
               const struct prom_origin *po, const struct breakdown *b);

#endif
