/*
 * Per-host baselines: the TTL each address normally arrives with. A RST whose TTL does not
 * fit its purported sender's baseline was most likely written by another device (firewall,
 * IPS, load balancer) at another hop distance.
 *
 * A direct-mapped cache of fixed size, owned by one worker: a colliding address simply
 * replaces the old one (a lost baseline only costs an "unknown" origin, never a wrong one),
 * so memory is bounded whatever the number of hosts. Fed from handshake packets and the first
 * packet of each flow, not every packet, to keep the fast path to one cache line per flow.
 */
#ifndef RS_HOST_TABLE_H
#define RS_HOST_TABLE_H

#include <stdint.h>
#include <string.h>

#include "flow.h" /* rs_mix64 */

/* 32 bytes, two to a cache line: the one line host_table_prefetch() fetches holds all of it.
 * At 24, one entry in four ran into the next line, and its hits and address waited for
 * memory despite the prefetch. */
struct host_entry {
    uint8_t addr[16];
    uint8_t ttl;  /* baseline TTL / hop limit as seen by the sensor */
    uint8_t hits; /* packets that agreed with it (saturating); 0 = empty */
    uint8_t pad[14];
};
_Static_assert(sizeof(struct host_entry) == 32, "two entries to a cache line, none across two");

struct host_table {
    uint32_t mask;
    uint8_t tolerance; /* hops a packet may differ and still agree */
    struct host_entry *e;
};

/* entries is rounded up to a power of two. NULL on allocation failure. */
struct host_table *host_table_create(uint32_t entries, uint8_t tolerance);
void host_table_destroy(struct host_table *t);
/* Bytes of its entries (fixed by its size, whatever the number of hosts). */
size_t host_table_mem_bytes(const struct host_table *t);
/* Fault its pages in now, on the caller's NUMA node (engine_prefault()). */
void host_table_prefault(struct host_table *t);

/* Learn: addr (16 bytes, IPv4-mapped) sent a non-RST packet with this TTL. */
void host_table_note(struct host_table *t, const uint8_t addr[16], uint8_t ttl);
/* addr's entry: the only one it may occupy. */
static inline uint32_t host_table_slot(const struct host_table *t, const uint8_t addr[16])
{
    uint64_t a, b;
    memcpy(&a, addr, 8);
    memcpy(&b, addr + 8, 8);
    return (uint32_t)rs_mix64(a ^ rs_mix64(b)) & t->mask;
}

/* Hint: addr's entry will be read soon (engine_input_burst(), on the burst's SYNs). Always
 * inlined, on purpose: GCC 12 takes a function whose only effect is __builtin_prefetch for a
 * pure one and deletes its calls. It did here with plain inline (the SYN's host entry went
 * unprefetched, and host_table_note() tripled in a 1M-flow replay's profile); see engine.c,
 * prefetch_entry, and tests/integration/prefetch_compiled.sh. */
static inline __attribute__((always_inline)) void host_table_prefetch(const struct host_table *t,
                                                                      const uint8_t addr[16])
{
    __builtin_prefetch(&t->e[host_table_slot(t, addr)]);
}
/* Baseline TTL of addr, 0 when unknown. */
uint8_t host_table_ttl(const struct host_table *t, const uint8_t addr[16]);

#endif
