/* The benchmarks' clock: the TSC on x86 (cycles), else nanoseconds of CLOCK_MONOTONIC. */
#ifndef RS_BENCH_TICKS_H
#define RS_BENCH_TICKS_H

#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t ticks(void)
{
    return __rdtsc();
}
#else
static inline uint64_t ticks(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}
#endif

#endif
