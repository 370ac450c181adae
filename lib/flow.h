/*
 * One tracked TCP connection. Both directions share one entry: the key is canonical (the lower
 * (address, port) endpoint first), so a packet and its reply hash to the same slot and, with a
 * symmetric distributor, to the same worker.
 */
#ifndef RS_FLOW_H
#define RS_FLOW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cause.h"
#include "pkt_parse.h"

struct flow_key {
    uint8_t lo_addr[16];
    uint8_t hi_addr[16];
    uint16_t lo_port;
    uint16_t hi_port;
    uint32_t zero; /* keeps the key 40 bytes with no uninitialised padding */
};

/* Bytes 8..11 of an IPv4-mapped address (00 00 ff ff) as a native 32-bit word. */
static inline uint32_t rs_mapped_word(void)
{
    static const uint8_t b[4] = {0, 0, 0xff, 0xff};
    uint32_t w;
    memcpy(&w, b, 4);
    return w;
}

/*
 * The key as a table entry stores it (12 bytes instead of 40): struct flow_key above stays the
 * probe key built from each packet on the stack, and the hash is still taken over it.
 * - IPv4 (both addresses IPv4-mapped, which every IPv4 packet gives): a and b are the lo and
 *   hi address's last 4 bytes, in memory order; the entry alone holds the whole key.
 * - IPv6 (any other address pair): a is the index + 1 of the address pair in the table's
 *   IPv6 pool (flow_table.h), b is 0; the ports are here.
 * flow.key_v6 tells the two apart. A dead entry's key is read only after its state
 * (FLOW_STATE_DEAD) has rejected it.
 */
struct flow_ckey {
    uint32_t a;
    uint32_t b;
    uint16_t lo_port;
    uint16_t hi_port;
};

/* Both addresses IPv4-mapped (::ffff:a.b.c.d): the key fits a struct flow_ckey alone. */
static inline int flow_key_is_v4(const struct flow_key *k)
{
    uint64_t l0, h0;
    uint32_t l1, h1;
    memcpy(&l0, k->lo_addr, 8);
    memcpy(&l1, k->lo_addr + 8, 4);
    memcpy(&h0, k->hi_addr, 8);
    memcpy(&h1, k->hi_addr + 8, 4);
    const uint32_t mapped = rs_mapped_word();
    return (l0 | h0) == 0 && l1 == mapped && h1 == mapped;
}

/* c = the stored form of k, which is IPv6 when v6 (then without its pool reference: a = 0). */
static inline void flow_ckey_fill(const struct flow_key *k, int v6, struct flow_ckey *c)
{
    if (v6) {
        c->a = 0;
        c->b = 0;
    } else {
        memcpy(&c->a, k->lo_addr + 12, 4);
        memcpy(&c->b, k->hi_addr + 12, 4);
    }
    c->lo_port = k->lo_port;
    c->hi_port = k->hi_port;
}

/* The stored form of k without its IPv6 pool reference (a = 0 for IPv6); 1 when IPv6. */
static inline int flow_ckey_make(const struct flow_key *k, struct flow_ckey *c)
{
    int v6 = !flow_key_is_v4(k);
    flow_ckey_fill(k, v6, c);
    return v6;
}

/* flow_ckey_make() for a key built from a packet of this family (flow_key_make()): an IPv4
 * packet's addresses are IPv4-mapped, so its key needs no test. */
static inline int flow_ckey_of_family(const struct flow_key *k, uint8_t family, struct flow_ckey *c)
{
    if (family != 4)
        return flow_ckey_make(k, c);
    flow_ckey_fill(k, 0, c);
    return 0;
}

/* The full key of an IPv4 entry's stored key (IPv6 needs the table's pool: flow_table_key()). */
static inline void flow_ckey_expand_v4(const struct flow_ckey *c, struct flow_key *k)
{
    memset(k, 0, sizeof(*k));
    k->lo_addr[10] = k->lo_addr[11] = k->hi_addr[10] = k->hi_addr[11] = 0xff;
    memcpy(k->lo_addr + 12, &c->a, 4);
    memcpy(k->hi_addr + 12, &c->b, 4);
    k->lo_port = c->lo_port;
    k->hi_port = c->hi_port;
}

/* Per-direction state: what one endpoint has sent. Index 0 = the key's lo endpoint. */
#define DIR_SYN       0x01
#define DIR_SYNACK    0x02
#define DIR_FIN       0x04
#define DIR_RST       0x08
#define DIR_ACK       0x10
#define DIR_DATA      0x20
#define DIR_SEQ_KNOWN 0x40 /* next_seq is valid */
#define DIR_ACK_KNOWN 0x80 /* max_ack and win are valid */

/* flow_dir.xflags */
#define DX_DATA_AFTER_PEER_FIN 0x01 /* sent new payload after the peer's FIN */
#define DX_ZERO_WIN            0x02 /* its last advertised window was zero */
#define DX_IPID_STEP           0x04 /* its last IPv4 ID stepped by a small increment */
#define DX_IPID_SEQ            0x08 /* two small steps in a row: its IDs are a counter */
/* (4 bits: flow_dir.xflags is a bit-field) */

/*
 * Per-flow timestamps other than flow.last_ts keep the low 32 bits of the µs clock (ts32()),
 * and are only ever used as "time since": ts32_since() is exact while the true difference is
 * below 2^32 µs (71.5 minutes). Every such use compares with a bound of seconds (IP-ID
 * freshness 1 s, accept overflow 1 s, unanswered SYN 3 s, handshake RTT), so a wrap could
 * only matter for a stamp exactly a multiple of 71.5 minutes old. flow.last_ts, which idle
 * expiry compares with timeouts of up to 7 days, stays 64-bit; the duplicate check takes its
 * low 32 bits (1 ms) as it took those of its former stamp.
 */
static inline uint32_t ts32(uint64_t us)
{
    return (uint32_t)us;
}

/* now - then, modulo 2^32. A stamp ahead of now (capture time stepping back) gives a huge
 * value, as the 64-bit difference did. */
static inline uint32_t ts32_since(uint64_t now, uint32_t then)
{
    return (uint32_t)now - then;
}

#define DIR_WSCALE_NONE 15  /* flow_dir.wscale: the SYN carried no window scale option */
#define DIR_KA_MAX      127 /* flow_dir.ka_probes saturates here */

/*
 * 28 bytes: two per flow. The sequence state first, the fields read only around the handshake
 * and the close (isn, fin_seq) last. The last four bytes are bit-fields: wscale fits 4 bits (a
 * shift of 0..14, RFC 7323 §2.3 clamps larger ones, or DIR_WSCALE_NONE), ka_probes 7.
 */
struct flow_dir {
    uint32_t next_seq;      /* highest seq + len (+SYN/FIN) seen from it */
    uint32_t max_ack;       /* highest ACK it sent: its RCV.NXT */
    uint32_t last_ts;       /* ts32(), last non-RST packet */
    uint16_t win;           /* last window it advertised: the raw field (a SYN's pre-divided by the
                               scale, RFC 7323), scaled on use by tcp_track_window() */
    uint16_t ip_id;         /* of its last non-RST packet */
    uint8_t seen;           /* DIR_* */
    uint8_t ttl;            /* last TTL of a non-RST packet (0 = none yet) */
    uint16_t wscale : 4;    /* from its SYN, DIR_WSCALE_NONE when absent */
    uint16_t ka_probes : 7; /* keepalive probes since the peer last sent anything (saturating
                               at DIR_KA_MAX) */
    uint16_t xflags : 4;    /* DX_* */
    uint16_t df : 1;        /* DF bit of its last non-RST packet */
    uint32_t isn;           /* sequence number of its SYN (valid with DIR_SYN|DIR_SYNACK) */
    /* With DIR_FIN: the sequence number of its FIN. Before that, in the server's direction
     * only, hs_ts: ts32() of the handshake's completion (the client's ACK of the SYN-ACK),
     * valid with FF_HANDSHAKE. Its one reader, the accept-overflow test, requires that the
     * server sent no FIN, so the two never need to coexist. */
    union {
        uint32_t fin_seq;
        uint32_t hs_ts;
    };
};
_Static_assert(sizeof(struct flow_dir) == 28, "struct flow_dir: 28 bytes");

/*
 * A reset event held open for a short verdict delay (about two RTTs, capped) so that what
 * follows the RST can decide its cause: more RSTs fold in, a challenge ACK and a corrected
 * exact RST join it, the purported sender carrying on unmasks a forgery.
 */
struct pending_rst {
    uint64_t first_ts;
    uint64_t last_ts; /* last RST or challenge ACK: the hold runs from here */
    uint32_t rst_count;
    uint32_t seq; /* decisive RST */
    uint32_t ack;
    uint32_t hold_us;
    uint32_t idle_ms;  /* silence before the RST or before the segment it answers */
    uint16_t evidence; /* EV_* bits */
    uint16_t ip_id;
    uint8_t active;
    uint8_t sender_dir; /* dir index of the decisive RST's sender */
    uint8_t state;      /* connection state before the first RST */
    uint8_t check;      /* enum seq_check of the decisive RST */
    uint8_t first_check;
    uint8_t rst_flags;
    uint8_t ttl;
    uint8_t had_flow;   /* anything of the connection seen before the first RST */
    uint8_t after_data; /* receiver sent new data after the RST: it ignored it */
    uint8_t senders;    /* bit per dir index that sent a RST */
    uint8_t ka_probes;  /* the sender's unanswered keepalive probes at the first RST */
    uint8_t pad1;
    uint16_t vlan;         /* outermost VLAN id of the decisive RST (in the former padding) */
    uint16_t wheel_bucket; /* hold_wheel.h: its bucket, HW_UNLINKED when off the wheel */
    uint32_t flow_idx;     /* its connection's entry in the flow table */
    uint32_t wheel_prev;   /* neighbours in its bucket: pool index + 1, 0 = none */
    uint32_t wheel_next;
};

/* When a held event is judged: right after its hold has run since its last RST (or challenge
 * ACK), now > deadline. The timer wheel and a connection's next packet both test it. */
static inline uint64_t pending_rst_deadline(const struct pending_rst *r)
{
    return r->last_ts + r->hold_us;
}

/* flow.fflags */
#define FF_GAP          0x01 /* an ACK covered data the sensor never saw: capture loss */
#define FF_SYN_COUNTED  0x02 /* counted as an unanswered SYN */
#define FF_REPLACED_SYN 0x04 /* a SYN with a new ISN arrived on the open connection */
#define FF_EVENT_DONE   0x08 /* its reset event has been emitted */
#define FF_HANDSHAKE    0x10 /* the handshake completed at a nonzero time: see flow_hs_ts() */

/*
 * 104 bytes, with 8-byte alignment for last_ts (so 104 = 13 x 8: no tail padding):
 *   0 key (12) and hash (4): what lookup reads;
 *  16 one byte of flags, state, fflags, a spare byte, the duplicate signature;
 *  24 last_ts, 32 rtt_us, gap_ms, rst_slot, first_ts;
 *  48 dir[0], 76 dir[1] (28 each).
 * The duplicate check keeps one signature per flow, the direction that sent it in its low
 * bit; its time is last_ts (every packet that is not a copy sets both).
 */
struct flow {
    struct flow_ckey key;
    uint32_t hash;
    /* One byte, before state (the IPv6 flag belongs with the key). */
    uint8_t key_v6 : 1;          /* key.a names an IPv6 address pair in the table's pool */
    uint8_t client_dir : 1;      /* dir index of the client (SYN sender, or best guess) */
    uint8_t direction_known : 1; /* client_dir comes from a SYN or SYN-ACK */
    uint8_t wscale_ok : 1;       /* both SYNs carried window scale: windows are scaled */
    uint8_t state;               /* enum conn_state; FLOW_STATE_DEAD on the free list */
    uint8_t fflags;              /* FF_* */
    uint8_t spare;
    /* Signature of its latest packet that was not a copy (never 0 once set), taken at
     * last_ts; its low bit is the dir index of the sender. A packet equal to it, so from that
     * direction, within dup_us is a mirrored copy. */
    uint32_t sig;
    uint64_t last_ts; /* µs, its latest packet: idle expiry, duplicate check */
    uint32_t rtt_us;  /* SYN -> SYN-ACK -> ACK as seen by the sensor, 0 = unknown */
    uint32_t gap_ms;  /* silence before its latest non-RST packet */
    /* Its held reset event: index + 1 into the engine's pool of struct pending_rst, 0 = none.
     * Out of line because few connections hold one at a time. */
    uint32_t rst_slot;
    uint32_t first_ts; /* ts32() of its first packet */
    struct flow_dir dir[2];
};

/* Prefetch every cache line of an entry (or of a state of its size): 104 bytes at any
 * 8-byte offset span two or three. Always inlined, on purpose: GCC 12 takes a separate
 * function whose only effect is __builtin_prefetch for a pure one and deletes its calls (it
 * did, unnoticed: the engine's entries were never prefetched, and a random-order 1M-flow run
 * cost 1.5 times as much). */
static inline __attribute__((always_inline)) void flow_prefetch(const void *f)
{
    const char *c = (const char *)f;
    __builtin_prefetch(c);
    __builtin_prefetch(c + 64);
    __builtin_prefetch(c + sizeof(struct flow) - 1);
}

/* flow.state of a dead entry (flow_table_remove()): never an enum conn_state. */
#define FLOW_STATE_DEAD 0xff
_Static_assert(CS_MAX < FLOW_STATE_DEAD, "a dead entry's state is no connection state");

_Static_assert(sizeof(struct flow) == 104, "struct flow changed: update docs/performance.md");
_Static_assert(offsetof(struct flow, state) == 17 && offsetof(struct flow, dir) == 48,
               "struct flow layout: see the comment above it");

/* ts32() of the handshake's completion; valid with FF_HANDSHAKE while the server has sent no
 * FIN (see flow_dir.hs_ts). */
static inline uint32_t flow_hs_ts(const struct flow *f)
{
    return f->dir[1 - f->client_dir].hs_ts;
}

/* A 64-bit word loaded from memory, in memory (big-endian) order for comparisons. */
static inline uint64_t rs_be64(uint64_t x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return __builtin_bswap64(x);
#else
    return x;
#endif
}

/* memcmp(a, b, 16) < 0, == 0 as two 64-bit compares (no library call on the fast path). */
static inline int addr_cmp16(const uint8_t *a, const uint8_t *b)
{
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    if (a0 != b0)
        return rs_be64(a0) < rs_be64(b0) ? -1 : 1;
    if (a1 != b1)
        return rs_be64(a1) < rs_be64(b1) ? -1 : 1;
    return 0;
}

/* Build the canonical key; *dir = index of the packet's sender (0 = lo). */
static inline void flow_key_make(const struct pkt_info *p, struct flow_key *k, int *dir)
{
    int c = addr_cmp16(p->src, p->dst);
    int src_lo = c < 0 || (c == 0 && p->sport <= p->dport);
    /* Ports and the zero word go in as one 8-byte store: flow_key_hash() reads the key back
     * in 8-byte words at once, and a load that spans several smaller stores cannot be
     * forwarded from the store buffer and stalls. */
    struct {
        uint16_t lo_port, hi_port;
        uint32_t zero;
    } tail = {src_lo ? p->sport : p->dport, src_lo ? p->dport : p->sport, 0};
    _Static_assert(sizeof(tail) == 8 && offsetof(struct flow_key, lo_port) == 32,
                   "the key ends with lo_port, hi_port, zero");
    memcpy(k->lo_addr, src_lo ? p->src : p->dst, 16);
    memcpy(k->hi_addr, src_lo ? p->dst : p->src, 16);
    memcpy(&k->lo_port, &tail, 8);
    *dir = src_lo ? 0 : 1;
}

/* 64-bit mix (splitmix64 finaliser): every input bit reaches every output bit. */
static inline uint64_t rs_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Multiply-fold: the 128-bit product's halves XORed, so every bit of either operand reaches
 * every output bit (a plain 64-bit multiply only carries upward: the top bytes of a word,
 * where an IPv4-mapped address's last octets sit, would barely reach the result). */
static inline uint64_t rs_mum(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
    return rs_mix64(a ^ rs_mix64(b));
#endif
}

/*
 * The flow hash's key: six secret words, one XORed into each 64-bit word of the key and one
 * as the last fold's other operand. Until flow_hash_seed() they are fixed public constants,
 * and anyone who knows them can compute tuples whose hashes share a range of home slots: one
 * probe cluster that every lookup walks (hash flooding; the same crawl the distributor's
 * old worker choice caused from inside). The live sensor seeds them from getrandom().
 * Written once, before any thread hashes; read-only afterwards, so workers share the line.
 */
extern uint64_t rs_flow_secret[6];

/* Derive the secret from seed. Equal seeds give equal hashes (reproducible replays);
 * call it before the first flow_key_hash() and never again while flows are in a table. */
void flow_hash_seed(uint64_t seed);

/* Back to the built-in constants (unit tests, fuzzers, benchmarks). */
void flow_hash_unseed(void);

/* The last fold, shared by both key families. */
static inline uint32_t flow_hash_finish(uint64_t h)
{
    h = rs_mum(h, 0xca9e9c1ce2d7e4aaULL);
    return (uint32_t)(h ^ (h >> 32));
}

/* flow_key_hash() of a key whose addresses are both IPv4-mapped (flow_key_is_v4()): words 0
 * and 2 are zero and words 1 and 3 carry the same prefix in every such key, so two folds
 * cover it, the addresses in one and the ports in the other. */
static inline uint32_t flow_key_hash_v4(const struct flow_key *k)
{
    const uint64_t *s = rs_flow_secret;
    uint64_t lo, hi, ports;
    memcpy(&lo, k->lo_addr + 8, 8);
    memcpy(&hi, k->hi_addr + 8, 8);
    memcpy(&ports, &k->lo_port, 8);
    return flow_hash_finish(rs_mum(lo ^ s[1], hi ^ s[3]) ^ rs_mum(ports ^ s[4], s[5]));
}

/*
 * The key's five 64-bit words in three independent multiply-folds (wyhash's construction,
 * each word XORed with its own secret word), combined and folded once more: a chain of two
 * multiplies where five chained splitmix64 rounds were ten. Symmetric because the key is
 * canonical. A sum of plain products per word was tried and dropped: on the benchmark's keys
 * (addresses differing in their last octets) it collided 4x more. The secret enters before
 * the first multiply: a collision of the unseeded part would survive any later mixing. An
 * IPv4 key (flow_key_is_v4()) takes flow_key_hash_v4(), so its three constant words cost
 * nothing; callers that know the key is IPv4 may call that directly.
 */
static inline uint32_t flow_key_hash(const struct flow_key *k)
{
    if (flow_key_is_v4(k))
        return flow_key_hash_v4(k);
    const uint64_t *s = rs_flow_secret;
    uint64_t w[5];
    memcpy(w, k, sizeof(w));
    return flow_hash_finish(rs_mum(w[0] ^ s[0], w[1] ^ s[1]) ^ rs_mum(w[2] ^ s[2], w[3] ^ s[3]) ^
                            rs_mum(w[4] ^ s[4], s[5]));
}

/*
 * Which of n workers a software distributor hands a flow of this hash to. It must not pick
 * by the bits the flow table's home slot uses: the table reduces the hash by multiply-shift,
 * which is the high bits, so choosing workers by them would leave each worker's flows in 1/n
 * of its table's home slots, in one long probe cluster (a 2-worker replay of 1M flows fell to
 * ~1,500 packets/s). Nor by the low bits, which the slots keep as a tag. A remix of the whole
 * hash is independent of both. Both directions of a flow share the hash, so the worker.
 */
static inline unsigned flow_worker_of(uint32_t hash, unsigned n)
{
    return (unsigned)(((rs_mix64(hash) >> 32) * n) >> 32);
}

/* 4 when the key's addresses are IPv4 (stored IPv4-mapped), else 6. */
static inline uint8_t flow_addr_family(const uint8_t addr[16])
{
    return memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 ? 4 : 6;
}

static inline int flow_key_eq(const struct flow_key *a, const struct flow_key *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

#endif
