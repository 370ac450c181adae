#include "dump_keep.h"

#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>
#include <rte_pause.h>

#define RELAXED_INC(x) __atomic_store_n(&(x), (x) + 1, __ATOMIC_RELAXED)

struct dump_keep *dump_keep_create(struct rte_ring *out, int replay, volatile int *quit, int socket)
{
    struct dump_keep *k = rte_zmalloc_socket("rs_dump_keep", sizeof(*k), 64, socket);
    if (!k)
        return NULL;
    /* Plain heap, not hugepages: a --pcap replay's EAL memory is sized for the mbufs. */
    k->slots = calloc(DUMP_SLOTS, sizeof(*k->slots));
    if (!k->slots) {
        rte_free(k);
        return NULL;
    }
    k->out = out;
    k->replay = replay;
    k->quit = quit;
    return k;
}

void dump_keep_destroy(struct dump_keep *k)
{
    if (!k)
        return;
    free(k->slots);
    rte_free(k);
}

/* The key's slot in its set of two: a match, else a free one, else the one idle longest. */
static struct dump_slot *slot_for(struct dump_keep *k, const struct flow_key *key, uint32_t hash,
                                  uint64_t now)
{
    uint32_t i0 = hash & (DUMP_SLOTS - 1) & ~1u;
    struct dump_slot *a = &k->slots[i0], *b = &k->slots[i0 + 1];
    if (a->used && !memcmp(&a->key, key, sizeof(*key)))
        return a;
    if (b->used && !memcmp(&b->key, key, sizeof(*key)))
        return b;
    struct dump_slot *s = !a->used ? a : !b->used ? b : a->last_us <= b->last_us ? a : b;
    if (s->used && s->n)
        RELAXED_INC(k->evicted);
    s->key = *key;
    s->used = 1;
    s->n = s->head = 0;
    s->last_us = now;
    return s;
}

static void push(struct dump_keep *k, struct dump_pkt *p)
{
    while (rte_ring_mp_enqueue_elem(k->out, p, sizeof(*p)) != 0) {
        /* Live: the packet path never waits. Replay: the capture waits for the writer. */
        if (!k->replay || *k->quit) {
            RELAXED_INC(k->dropped);
            return;
        }
        rte_pause();
    }
    RELAXED_INC(k->queued);
}

void dump_keep_packet(struct dump_keep *k, const struct engine_frame_key *fk, const uint8_t *frame,
                      uint32_t len, uint32_t origlen, uint64_t ts_us)
{
    struct dump_slot *s = slot_for(k, &fk->key, fk->hash, ts_us);
    s->last_us = ts_us;
    /* Append, overwriting the oldest when full: the slot keeps the last DUMP_KEEP packets. */
    unsigned at = (s->head + s->n) % DUMP_KEEP;
    if (s->n == DUMP_KEEP)
        s->head = (uint8_t)((s->head + 1) % DUMP_KEEP);
    else
        s->n++;
    struct dump_pkt *p = &s->pkt[at];
    p->ts_us = ts_us;
    p->caplen = len < DUMP_SNAP ? len : DUMP_SNAP;
    p->origlen = origlen > len ? origlen : len;
    memcpy(p->data, frame, p->caplen);
    if (!(fk->flags & TCP_RST))
        return;
    /* The RST (last in the slot) and what came before it, oldest first. Emptied afterwards:
     * a later RST of the same connection brings only what is new. */
    for (unsigned i = 0; i < s->n; i++)
        push(k, &s->pkt[(s->head + i) % DUMP_KEEP]);
    s->n = s->head = 0;
}
