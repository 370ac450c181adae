#include "flow.h"

/* The constants flow_key_hash() used before it took a secret (wyhash's; the last one is the
 * golden ratio): what the library hashes with until flow_hash_seed() (tests, fuzzers). */
#define BUILTIN_SECRET                                                                             \
    {                                                                                              \
        0xa0761d6478bd642fULL, 0xe7037ed1a0b428dbULL, 0x8ebc6af09c88c6e3ULL,                       \
            0x589965cc75374cc3ULL, 0x1d8e4e27c47d124fULL, 0x9e3779b97f4a7c15ULL,                   \
    }

static const uint64_t builtin[6] = BUILTIN_SECRET;
uint64_t rs_flow_secret[6] = BUILTIN_SECRET;

void flow_hash_seed(uint64_t seed)
{
    /* splitmix64's stream from seed: six words that differ in about half their bits from
     * each other and from the seed's neighbours. The last is a multiplier: forced odd, so
     * the product keeps its low bits. */
    for (unsigned i = 0; i < 6; i++)
        rs_flow_secret[i] = rs_mix64(seed + (i + 1) * 0x9e3779b97f4a7c15ULL);
    rs_flow_secret[5] |= 1;
}

void flow_hash_unseed(void)
{
    memcpy(rs_flow_secret, builtin, sizeof(builtin));
}
