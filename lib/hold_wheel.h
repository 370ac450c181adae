/*
 * Timer wheel of held reset events (issue 5: expiry by a timer wheel, never a table walk).
 *
 * A held event (struct pending_rst in the engine's pool) is judged once its hold has run:
 * now > last_ts + hold_us. Each held event sits in one bucket of HW_BUCKETS one-millisecond
 * ticks, linked through its pool slot (doubly, so that an event judged early on another path
 * leaves in O(1)). The hold restarts on every new RST or challenge ACK, but the event is not
 * moved then: when its bucket comes due, an event whose deadline has moved on is re-filed
 * at the new deadline (lazy re-check). Holds beyond the wheel's span (HW_BUCKETS ms) go
 * round once per span the same way. Bounds: each hold_wheel_expire() call visits each
 * bucket at most once (the current tick's again on every call), and an event at most twice.
 */
#ifndef RS_HOLD_WHEEL_H
#define RS_HOLD_WHEEL_H

#include <stdint.h>

#include "flow.h"

#define HW_TICK_US  1000u
#define HW_BUCKETS  1024u /* a power of two: span 1.024 s, above the default hold cap */
#define HW_UNLINKED 0xffffu

struct hold_wheel {
    uint64_t tick;             /* every tick before this one has been expired */
    uint64_t empty_to;         /* the buckets of ticks [tick, empty_to) are empty; at most
                                  tick + HW_BUCKETS: hold_wheel_earliest() starts there */
    uint32_t head[HW_BUCKETS]; /* pool slot + 1 of each bucket's first event, 0 = empty */
    uint32_t linked;           /* events on the wheel */
    /* Bit b set exactly when head[b] is not 0: the next held bucket is found a word (64
     * buckets) at a time. Without it, a reset storm with two hold lengths (2 RTTs, and the
     * cap for a connection without an RTT) read ~500 empty heads per cut. */
    uint64_t occupied[HW_BUCKETS / 64];
};

/* Called for each event whose hold ran out, already unlinked: slot is its pool index. */
typedef void (*hold_expired_fn)(void *ctx, uint32_t slot);
/* Called for the same event before it, a batch of up to HW_BATCH ahead: fetch what fn will
 * read (its connection's entry, a random line per event in a large table). */
typedef void (*hold_prefetch_fn)(void *ctx, uint32_t slot);

#define HW_BATCH 16 /* expired events named to prefetch before the first of them is judged */

void hold_wheel_init(struct hold_wheel *w, uint64_t now_us);
/* File pool[slot] (its last_ts and hold_us set) at its deadline. */
void hold_wheel_add(struct hold_wheel *w, struct pending_rst *pool, uint32_t slot);
/* Take pool[slot] off the wheel; a slot not on it is left alone. */
void hold_wheel_del(struct hold_wheel *w, struct pending_rst *pool, uint32_t slot);
/* The event filed nearest the wheel's current tick (its bucket is the first non-empty one from
 * there), still linked: pool slot + 1, 0 when none is. At most HW_BUCKETS / 64 + 1 words of
 * the occupancy bitmap read, starting from the last one named (empty_to).
 * An event whose hold restarted (re-filed lazily) or is longer than the wheel's span sits in
 * an earlier bucket than its deadline says: then it may be named before one due sooner,
 * never one that is not held. */
uint32_t hold_wheel_earliest(struct hold_wheel *w);
/* Is bucket b's bit in the occupancy bitmap set (it must be exactly when head[b] is not 0)? */
static inline int hold_wheel_marked(const struct hold_wheel *w, uint32_t b)
{
    return (w->occupied[b >> 6] >> (b & 63)) & 1;
}
/* Has now_us's tick not been walked yet (hold_wheel_expire() would judge the ticks before it)? */
static inline int hold_wheel_behind(const struct hold_wheel *w, uint64_t now_us)
{
    return now_us / HW_TICK_US > w->tick;
}
/* Judge every event whose deadline is before now_us (monotonic): returns how many. The
 * events of a bucket are judged in its order, in batches of HW_BATCH, each named to pre (when
 * not NULL) before the batch's first is judged. */
uint32_t hold_wheel_expire(struct hold_wheel *w, struct pending_rst *pool, uint64_t now_us,
                           hold_expired_fn fn, hold_prefetch_fn pre, void *ctx);

#endif
