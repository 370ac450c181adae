#include "hold_wheel.h"

void hold_wheel_init(struct hold_wheel *w, uint64_t now_us)
{
    for (uint32_t i = 0; i < HW_BUCKETS; i++)
        w->head[i] = 0;
    for (uint32_t i = 0; i < HW_BUCKETS / 64; i++)
        w->occupied[i] = 0;
    w->tick = now_us / HW_TICK_US;
    w->empty_to = w->tick;
    w->linked = 0;
}

static inline void mark_held(struct hold_wheel *w, uint32_t b)
{
    w->occupied[b >> 6] |= 1ULL << (b & 63);
}

static inline void mark_empty(struct hold_wheel *w, uint32_t b)
{
    w->occupied[b >> 6] &= ~(1ULL << (b & 63));
}

/* The tick its deadline falls in; an event due in a tick already walked goes in the current
 * one, which every call walks again. */
static uint64_t due_tick(const struct hold_wheel *w, const struct pending_rst *r)
{
    uint64_t t = pending_rst_deadline(r) / HW_TICK_US;
    return t > w->tick ? t : w->tick;
}

void hold_wheel_add(struct hold_wheel *w, struct pending_rst *pool, uint32_t slot)
{
    struct pending_rst *r = &pool[slot];
    uint32_t b = (uint32_t)(due_tick(w, r) & (HW_BUCKETS - 1));
    r->wheel_bucket = (uint16_t)b;
    /* The first tick from now that maps to bucket b: its due tick, unless that is a span or
     * more ahead. */
    uint64_t at = w->tick + ((b - w->tick) & (HW_BUCKETS - 1));
    if (at < w->empty_to)
        w->empty_to = at;
    r->wheel_prev = 0;
    r->wheel_next = w->head[b];
    if (w->head[b])
        pool[w->head[b] - 1].wheel_prev = slot + 1;
    else
        mark_held(w, b);
    w->head[b] = slot + 1;
    w->linked++;
}

void hold_wheel_del(struct hold_wheel *w, struct pending_rst *pool, uint32_t slot)
{
    struct pending_rst *r = &pool[slot];
    if (r->wheel_bucket == HW_UNLINKED)
        return;
    if (r->wheel_prev)
        pool[r->wheel_prev - 1].wheel_next = r->wheel_next;
    else {
        w->head[r->wheel_bucket] = r->wheel_next;
        if (!r->wheel_next)
            mark_empty(w, r->wheel_bucket);
    }
    if (r->wheel_next)
        pool[r->wheel_next - 1].wheel_prev = r->wheel_prev;
    r->wheel_bucket = HW_UNLINKED;
    w->linked--;
}

/* The first tick in [t, end) whose bucket holds an event, end when none does (end - t is at
 * most HW_BUCKETS): one bitmap word per 64 ticks, at most HW_BUCKETS / 64 + 1 words. */
static uint64_t next_held_tick(const struct hold_wheel *w, uint64_t t, uint64_t end)
{
    while (t < end) {
        uint32_t b = (uint32_t)(t & (HW_BUCKETS - 1));
        uint64_t bits = w->occupied[b >> 6] >> (b & 63);
        if (bits) {
            t += (uint64_t)__builtin_ctzll(bits);
            return t < end ? t : end;
        }
        t += 64 - (b & 63);
    }
    return end;
}

uint32_t hold_wheel_earliest(struct hold_wheel *w)
{
    if (!w->linked)
        return 0;
    uint64_t end = w->tick + HW_BUCKETS;
    uint64_t t = w->empty_to > w->tick ? w->empty_to : w->tick;
    if (!w->head[t & (HW_BUCKETS - 1)]) /* mostly, the bucket named last still holds more */
        t = next_held_tick(w, t + 1, end);
    if (t == end)
        return 0; /* not reached: linked counts the events in the buckets */
    w->empty_to = t;
    return w->head[t & (HW_BUCKETS - 1)];
}

/* Hand the k events of batch to fn, in order: returns k. */
static inline uint32_t judge_batch(const uint32_t *batch, uint32_t k, hold_expired_fn fn, void *ctx)
{
    for (uint32_t i = 0; i < k; i++)
        fn(ctx, batch[i]);
    return k;
}

/* Detach bucket b and walk it: expired events go to fn, the others (due later in the
 * current tick, hold restarted, or a deadline more than a span ahead) are filed again, never
 * into the detached list being walked, so the walk ends. Expired events are collected
 * HW_BATCH at a time and named to pre first, so that the misses of a batch overlap instead
 * of each stalling its own judgement. fn may return slots to the engine's free stack; it
 * never touches the detached list (its event is already unlinked, and nothing it calls
 * files or unlinks another). */
static uint32_t expire_bucket(struct hold_wheel *w, struct pending_rst *pool, uint32_t b,
                              uint64_t now_us, hold_expired_fn fn, hold_prefetch_fn pre, void *ctx)
{
    uint32_t batch[HW_BATCH];
    uint32_t n = 0, k = 0, next = w->head[b];
    if (!next)
        return 0;
    w->head[b] = 0;
    mark_empty(w, b); /* events re-filed below may mark it again */
    while (next) {
        uint32_t slot = next - 1;
        struct pending_rst *r = &pool[slot];
        next = r->wheel_next;
        r->wheel_bucket = HW_UNLINKED;
        w->linked--;
        if (now_us <= pending_rst_deadline(r)) {
            hold_wheel_add(w, pool, slot);
            continue;
        }
        if (pre)
            pre(ctx, slot);
        batch[k++] = slot;
        if (k == HW_BATCH) {
            n += judge_batch(batch, k, fn, ctx);
            k = 0;
        }
    }
    return n + judge_batch(batch, k, fn, ctx);
}

uint32_t hold_wheel_expire(struct hold_wheel *w, struct pending_rst *pool, uint64_t now_us,
                           hold_expired_fn fn, hold_prefetch_fn pre, void *ctx)
{
    uint64_t now_tick = now_us / HW_TICK_US;
    uint32_t n = 0;

    if (now_tick < w->tick)
        return 0; /* time never goes back (the engine's clock is monotonic) */
    /* From the current tick, which may hold events due later in it, on to now's. A jump of a
     * span or more (a quiet link, a capture's gap) visits every bucket once: what was due
     * in the skipped ticks is due now. */
    uint64_t from = now_tick - w->tick >= HW_BUCKETS ? now_tick - HW_BUCKETS + 1 : w->tick;
    w->tick = now_tick; /* before the walk: re-filed events go to now's tick or later */
    if (w->empty_to < now_tick)
        w->empty_to = now_tick;
    if (!w->linked)
        return 0;
    for (uint64_t t = from; t <= now_tick; t++)
        n += expire_bucket(w, pool, (uint32_t)(t & (HW_BUCKETS - 1)), now_us, fn, pre, ctx);
    return n;
}
