/* TCP sequence-space arithmetic (RFC 9293 §3.4): comparisons modulo 2^32. */
#ifndef RS_SEQ_H
#define RS_SEQ_H

#include <stdint.h>

static inline int seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}
static inline int seq_leq(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}
static inline int seq_gt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}
static inline int seq_geq(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) >= 0;
}
/* a in [lo, lo + len) modulo 2^32 */
static inline int seq_in(uint32_t a, uint32_t lo, uint32_t len)
{
    return (uint32_t)(a - lo) < len;
}

#endif
