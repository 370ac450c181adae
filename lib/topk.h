/*
 * Heavy hitters in fixed memory: the Space-Saving sketch (Metwally, Agrawal, El Abbadi 2005).
 * A worker counts the servers, clients and services that reset most without an unbounded map:
 * TOPK_CAP counters, nothing allocated, O(TOPK_CAP) per update. Guarantees, for N = total added:
 *   - every key whose true count exceeds N / TOPK_CAP is in the sketch;
 *   - an entry's count overestimates its true count by at most its err (err <= N / TOPK_CAP);
 *   - while at most TOPK_CAP distinct keys were added, every count is exact (err == 0).
 * Single writer; not thread-safe (the aggregator hands sketches over, see app/aggregator.c).
 */
#ifndef RS_TOPK_H
#define RS_TOPK_H

#include <stdint.h>

#define TOPK_CAP 128

/* A server (address + port), a client (address, port 0) or a service (port only). */
struct topk_key {
    uint8_t addr[16]; /* IPv4-mapped for family 4; zero for a service */
    uint16_t port;
    uint8_t family; /* 4, 6, or 0 for a service */
    uint8_t pad;    /* always 0: keys are compared bytewise */
};

struct topk_entry {
    struct topk_key key;
    uint32_t hash;
    uint64_t count; /* upper bound of the key's true count */
    uint64_t err;   /* count - err is a lower bound */
};

struct topk {
    uint32_t n;     /* entries in use, <= TOPK_CAP */
    uint64_t total; /* sum of everything added */
    struct topk_entry e[TOPK_CAP];
};

void topk_init(struct topk *t);
/* Count key n more times. */
void topk_add(struct topk *t, const struct topk_key *k, uint64_t n);
/* dst += src (merging workers' sketches); the guarantees hold for the union of both streams. */
void topk_merge(struct topk *dst, const struct topk *src);
/* Copy up to max entries, highest count first (ties: lower key first, so output is stable). */
unsigned topk_sorted(const struct topk *t, struct topk_entry *out, unsigned max);

#endif
