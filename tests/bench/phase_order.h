/* The packet order of the benchmark traffic, shared by gen_bench (captures) and bench_engine
 * (the engine alone): every connection's phase k (SYN, SYN-ACK, ...) is written before any
 * phase k + 1, so all connections are open at once, and each phase visits the connections in
 * an order of its own, r -> (r * stride + off) mod n. */
#ifndef RS_PHASE_ORDER_H
#define RS_PHASE_ORDER_H

#include <stdint.h>

static inline uint64_t phase_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The stride of phase ph over n connections: coprime with n (so the order is a permutation),
 * n times the fractional part of (ph + 1) times the golden ratio, so that no phase's order is
 * related to the first one's (where the connections got their table entries) and consecutive
 * packets hit unrelated entries. A stride that is small modulo n (1000003 for n = 10^4..10^6)
 * visited the entries in creation order phase after phase, which caches and hardware
 * prefetchers reward: it flattered the benchmark. The arithmetic is in doubles on purpose:
 * the cached captures were written with it. */
static inline uint64_t phase_stride(uint64_t n, int ph)
{
    double x = (double)(ph + 1) * 0.6180339887;
    x -= (double)(uint64_t)x;
    uint64_t stride = (uint64_t)((double)n * x) | 1;
    while (phase_gcd(stride, n) != 1)
        stride++;
    return stride;
}

#endif
