/*
 * The held-event timer wheel: events are judged exactly once, right after their deadline
 * (never before), a restarted hold moves the verdict, holds longer than the wheel's span go
 * round, an event judged elsewhere leaves the wheel, and a jump in time catches up.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "hold_wheel.h"

#define POOL 64
#define MS   1000ull

static struct pending_rst pool[POOL];
static struct hold_wheel wheel;
static uint32_t fired[4 * POOL], nfired;
static uint32_t named[4 * POOL], nnamed; /* slots given to the prefetch callback */

static void on_expired(void *ctx, uint32_t slot)
{
    (void)ctx;
    cr_assert_lt(nfired, 4 * POOL);
    cr_assert_eq(pool[slot].wheel_bucket, HW_UNLINKED, "unlinked before the callback");
    cr_assert_lt(nfired, nnamed, "named to prefetch before it is judged");
    cr_assert_eq(named[nfired], slot, "judged in the order named");
    cr_assert_leq(nnamed - nfired, HW_BATCH, "named at most a batch ahead of its judgement");
    fired[nfired++] = slot;
}

static void on_prefetch(void *ctx, uint32_t slot)
{
    (void)ctx;
    cr_assert_lt(nnamed, 4 * POOL);
    named[nnamed++] = slot;
}

static void setup(void)
{
    memset(pool, 0, sizeof(pool));
    for (uint32_t i = 0; i < POOL; i++)
        pool[i].wheel_bucket = HW_UNLINKED;
    nfired = nnamed = 0;
    hold_wheel_init(&wheel, 0);
}

static void hold(uint32_t slot, uint64_t last_ts, uint32_t hold_us)
{
    pool[slot].last_ts = last_ts;
    pool[slot].hold_us = hold_us;
    hold_wheel_add(&wheel, pool, slot);
}

static uint32_t expire(uint64_t now)
{
    return hold_wheel_expire(&wheel, pool, now, on_expired, on_prefetch, NULL);
}

TestSuite(hold_wheel, .init = setup);

Test(hold_wheel, judged_right_after_the_deadline_not_before)
{
    uint64_t t0 = 1700000000ull * 1000000 + 123; /* a capture's epoch, not tick-aligned */
    expire(t0);
    hold(3, t0, 20000);
    cr_assert_eq(expire(t0 + 20000), 0u, "now == deadline: still held");
    cr_assert_eq(expire(t0 + 20001), 1u);
    cr_assert_eq(fired[0], 3u);
    cr_assert_eq(wheel.linked, 0u);
    cr_assert_eq(expire(t0 + 5000000), 0u, "judged once");
}

Test(hold_wheel, each_event_at_its_own_deadline)
{
    uint64_t t0 = 5000 * MS;
    expire(t0);
    for (uint32_t i = 0; i < 10; i++)
        hold(i, t0, (uint32_t)((10 - i) * 7 * MS + i)); /* 70 ms down to 7 ms, off-tick */
    for (uint64_t t = t0; t <= t0 + 80 * MS; t += 250)  /* a poll every 250 µs */
        expire(t);
    cr_assert_eq(nfired, 10u);
    for (uint32_t i = 0; i < 10; i++)
        cr_assert_eq(fired[i], 9 - i, "shortest hold first");
}

Test(hold_wheel, restarted_hold_is_refiled)
{
    uint64_t t0 = 77 * MS;
    expire(t0);
    hold(1, t0, 20 * MS);
    pool[1].last_ts = t0 + 15 * MS; /* another RST restarted the hold in place */
    cr_assert_eq(expire(t0 + 21 * MS), 0u);
    cr_assert_eq(wheel.linked, 1u, "refiled, not dropped");
    cr_assert_eq(expire(t0 + 35 * MS), 0u);
    cr_assert_eq(expire(t0 + 35 * MS + 1), 1u);
}

Test(hold_wheel, hold_longer_than_the_span_goes_round)
{
    uint64_t t0 = 10 * MS;
    uint32_t h = 3 * HW_BUCKETS * HW_TICK_US + 500; /* three spans and a half tick */
    expire(t0);
    hold(0, t0, h);
    for (uint64_t t = t0; t <= t0 + h; t += MS)
        cr_assert_eq(expire(t), 0u, "at %llu", (unsigned long long)(t - t0));
    cr_assert_eq(expire(t0 + h), 0u);
    cr_assert_eq(expire(t0 + h + 1), 1u);
}

Test(hold_wheel, deleted_event_never_fires)
{
    expire(0);
    hold(5, 0, 20 * MS);
    hold(6, 0, 20 * MS);
    hold(7, 0, 20 * MS);
    hold_wheel_del(&wheel, pool, 6); /* the middle of a bucket's list */
    hold_wheel_del(&wheel, pool, 6); /* twice: a no-op */
    hold_wheel_del(&wheel, pool, 7); /* the head */
    cr_assert_eq(wheel.linked, 1u);
    cr_assert_eq(expire(30 * MS), 1u);
    cr_assert_eq(fired[0], 5u);
}

Test(hold_wheel, jump_past_the_span_catches_up)
{
    expire(MS);
    for (uint32_t i = 0; i < POOL; i++)
        hold(i, MS, (uint32_t)(i * 37 * MS) % (2 * HW_BUCKETS * HW_TICK_US));
    uint64_t late = 10000 * MS; /* a quiet link: ten seconds without a poll */
    cr_assert_eq(expire(late), POOL);
    cr_assert_eq(wheel.linked, 0u);
}

Test(hold_wheel, deadline_in_the_past_fires_next_call)
{
    expire(900 * MS);
    hold(2, 100 * MS, 20 * MS); /* filed late: its tick was walked long ago */
    cr_assert_eq(expire(900 * MS), 1u, "the current tick is walked again");
}

/* The engine makes room in a full pool by judging the event hold_wheel_earliest() names. */
Test(hold_wheel, earliest_is_the_first_due)
{
    uint64_t t0 = 3 * 1024 * MS + 1000 * MS; /* the current tick near the end of the span */
    expire(t0);
    cr_assert_eq(hold_wheel_earliest(&wheel), 0u, "nothing held");
    hold(5, t0, 300 * MS); /* its bucket wraps past the end of the array */
    hold(6, t0, 40 * MS);
    hold(7, t0, 90 * MS);
    cr_assert_eq(hold_wheel_earliest(&wheel), 6u + 1);
    hold_wheel_del(&wheel, pool, 6);
    cr_assert_eq(hold_wheel_earliest(&wheel), 7u + 1);
    cr_assert_eq(expire(t0 + 100 * MS), 1u);
    cr_assert_eq(fired[0], 7u);
    cr_assert_eq(hold_wheel_earliest(&wheel), 5u + 1, "found across the wrap");
    hold(8, t0, 50 * MS); /* already due: filed in the current tick */
    cr_assert_eq(hold_wheel_earliest(&wheel), 8u + 1, "filed before the last one named");
    cr_assert_eq(wheel.linked, 2u, "naming an event leaves it on the wheel");
    hold_wheel_del(&wheel, pool, 8);
    cr_assert_eq(hold_wheel_earliest(&wheel), 5u + 1);
    /* Holds beyond the span sit in the bucket their deadline maps to, 1.024 s earlier. */
    hold(9, t0 + 100 * MS, 1500 * MS); /* its bucket comes 476 ms from now: after 5's */
    cr_assert_eq(hold_wheel_earliest(&wheel), 5u + 1);
    hold(10, t0 + 100 * MS, 1150 * MS); /* 126 ms from now: before 5's */
    cr_assert_eq(hold_wheel_earliest(&wheel), 10u + 1);
}

Test(hold_wheel, a_full_bucket_is_judged_in_batches_each_named_first)
{
    uint64_t t0 = 5000 * MS;
    expire(t0);
    /* More events in one bucket than a batch holds, one of them refiled mid-list. */
    for (uint32_t s = 0; s < 40; s++)
        hold(s, t0, 10 * MS);
    pool[17].last_ts = t0 + 50 * MS; /* its hold restarted: due later */
    cr_assert_eq(expire(t0 + 10 * MS + 1), 39u);
    cr_assert_eq(nfired, 39u);
    cr_assert_eq(nnamed, 39u, "every judged event was named to prefetch, none other");
    cr_assert_eq(wheel.linked, 1u);
    cr_assert_eq(expire(t0 + 60 * MS + 1), 1u);
    cr_assert_eq(fired[39], 17u);
}

/* The bucket hold_wheel_earliest() must name, found the plain way: every head from the
 * current tick on. */
static uint32_t earliest_by_scan(void)
{
    for (uint64_t t = wheel.tick; t < wheel.tick + HW_BUCKETS; t++)
        if (wheel.head[t & (HW_BUCKETS - 1)])
            return wheel.head[t & (HW_BUCKETS - 1)];
    return 0;
}

static void check_occupancy(void)
{
    for (uint32_t b = 0; b < HW_BUCKETS; b++)
        cr_assert_eq(hold_wheel_marked(&wheel, b), !!wheel.head[b],
                     "bucket %u: bit and head disagree", b);
}

static uint32_t xorshift32(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* A storm's mix: short holds (2 RTTs) and the cap, judged early, deleted, re-filed, with
 * time moving on; the bitmap must follow every head, and the earliest must be the scan's. */
Test(hold_wheel, earliest_equals_a_plain_scan)
{
    uint32_t x = 2463534242u;
    uint64_t now = 7 * HW_BUCKETS * MS + 321;
    expire(now);
    for (uint32_t step = 0; step < 20000; step++) {
        uint32_t r = xorshift32(&x), slot = r % POOL;
        if (pool[slot].wheel_bucket == HW_UNLINKED) {
            static const uint32_t holds[] = {2 * MS, 3 * MS + 7, 500 * MS, 1300 * MS};
            hold(slot, now - (r >> 20) % (5 * MS), holds[(r >> 8) & 3]);
        } else if (r & 0x100) {
            hold_wheel_del(&wheel, pool, slot);
        } else {
            now += (r >> 12) % (3 * MS);
            nfired = nnamed = 0;
            expire(now);
        }
        check_occupancy();
        uint32_t want = earliest_by_scan();
        cr_assert_eq(hold_wheel_earliest(&wheel), want, "step %u", step);
        if (want && (r & 0x200)) { /* a storm cut: the named event judged early */
            hold_wheel_del(&wheel, pool, want - 1);
            check_occupancy();
        }
    }
}
