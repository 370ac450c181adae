/*
 * NOC breakdowns of reset events (--subnet, --exclude, --by-vlan): per named subnet and per
 * cause, per VLAN id (of the decisive RST: flows are not keyed by VLAN) and per cause, and
 * events touching an exclusion list (scanners, health checkers) counted apart, and events
 * by origin (who wrote the RST) for --prom-file.
 *
 * Each worker counts its own events in its own struct breakdown, in the event sink, as it
 * counts causes[]: so the breakdowns add up to the cause counters even when the event ring
 * overflows and drops records. Counters are written by that worker only (relaxed stores)
 * and summed by the main thread (relaxed loads) for reports: no locks, no shared lines.
 */
#ifndef RS_BREAKDOWN_H
#define RS_BREAKDOWN_H

#define BREAKDOWN_VLANS 4096 /* 12-bit VLAN ids; 0 = untagged */

#include <stdint.h>
#include <stdio.h>

#include "cause.h"
#include "engine.h"
#include "options.h"
#include "prom.h"

struct breakdown {
    const struct options *o;
    uint64_t subnet[OPT_MAX_NETS][CAUSE_MAX];   /* client or server in the subnet */
    uint64_t excluded[OPT_MAX_NETS][CAUSE_MAX]; /* by the first list that matched */
    uint64_t excluded_causes[CAUSE_MAX];
    uint64_t vlan[BREAKDOWN_VLANS][CAUSE_MAX]; /* --by-vlan (about 460 KB: keep it static) */
    uint8_t vlan_seen[BREAKDOWN_VLANS];        /* only VLANs with events are reported */
    struct prom_origin origin;                 /* events not excluded, by origin and cause */
};

static inline int breakdown_active(const struct options *o)
{
    return o->n_subnets > 0 || o->n_excludes > 0 || o->by_vlan;
}

/* The exclusion list ev touches: its index + 1, or 0 (then it is counted and written). */
int breakdown_excluded(const struct options *o, const struct rst_event *ev);
/* Count ev (its worker's thread); returns 1 when it touches an exclusion list (then it is
 * not written out). */
int breakdown_event(struct breakdown *b, const struct rst_event *ev);
/* acc (main thread, b->o set) += a snapshot of b while its worker runs. */
void breakdown_add(struct breakdown *acc, const struct breakdown *b);
/* acc += b's excluded events by cause (any thread, relaxed loads); b may be NULL. */
void breakdown_excluded_causes(const struct breakdown *b, uint64_t acc[CAUSE_MAX]);
/* Take the excluded events out of the totals (they are reported apart). */
void breakdown_subtract(const uint64_t excluded_causes[CAUSE_MAX], struct engine_stats *total);
/* The summary JSON object json (ending "}\n") with a "breakdown" member added, to out. */
int breakdown_summary(FILE *out, const char *json, size_t len, const struct breakdown *b);
void breakdown_text(FILE *out, const struct breakdown *b);
/* Prometheus series of the breakdowns (per subnet, per VLAN), appended to a textfile. */
void breakdown_prom(FILE *out, const struct breakdown *b);

#endif
