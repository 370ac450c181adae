/*
 * Test packet builder: real wire-format frames (Ethernet, 802.1Q/802.1ad tags, IPv4 with
 * options and fragment fields, IPv6 with extension headers, TCP with options, UDP, ICMP, ARP),
 * the same description as a struct pkt_info without parsing, and scripted conversations run
 * through an engine with the emitted reset events collected.
 *
 * Tests build malformed variants by patching bytes of a built frame (pb_layout gives the
 * offsets of each layer) or by passing a shorter length to the parser.
 */
#ifndef RS_TEST_PKTBUILD_H
#define RS_TEST_PKTBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "pkt_parse.h"

#define PB_MAX_FRAME 9216
#define PB_MAX_VLANS 8  /* more than the parser accepts, to build too-deep stacks */
#define PB_MAX_EXT   12 /* more than the parser accepts, to build too-deep chains */

#define PB_ETH_IPV4 0x0800
#define PB_ETH_IPV6 0x86dd
#define PB_ETH_ARP  0x0806
#define PB_ETH_VLAN 0x8100
#define PB_ETH_QINQ 0x88a8

#define PB_IP_HOPOPTS  0
#define PB_IP_ICMP     1
#define PB_IP_TCP      6
#define PB_IP_UDP      17
#define PB_IP_ROUTING  43
#define PB_IP_FRAGMENT 44
#define PB_IP_AH       51
#define PB_IP_ICMPV6   58
#define PB_IP_NONXT    59
#define PB_IP_DSTOPTS  60

/* One IPv6 extension header. */
struct pb_v6ext {
    uint8_t type;      /* PB_IP_HOPOPTS, _ROUTING, _DSTOPTS, _AH, _FRAGMENT */
    uint8_t len;       /* Hdr Ext Len field: (len + 1) * 8 bytes, AH (len + 2) * 4; not fragment */
    uint16_t frag_off; /* fragment header: offset in 8-byte units */
    uint8_t frag_mf;   /* fragment header: M flag */
    uint32_t frag_id;
};

/* Everything a frame is built from. pb_pkt_init() fills sane defaults. */
struct pb_pkt {
    /* L2 */
    uint8_t dst_mac[6];
    uint8_t src_mac[6];
    int n_vlans; /* tags, outermost first */
    uint16_t vlan_tpid[PB_MAX_VLANS];
    uint16_t vlan_tci[PB_MAX_VLANS]; /* PCP/DEI/VID as written */
    uint16_t ethertype;              /* 0: from family; PB_ETH_ARP: an ARP request */
    /* L3 */
    int family;      /* 4 or 6 */
    uint8_t src[16]; /* IPv4 stored ::ffff:a.b.c.d, as in pkt_info */
    uint8_t dst[16];
    uint8_t ttl; /* or hop limit */
    uint16_t ip_id;
    uint8_t df;
    uint8_t mf;
    uint16_t frag_off;   /* IPv4: in 8-byte units */
    uint8_t ip_opts[40]; /* IPv4 options, padded to 4 bytes with EOL */
    uint8_t ip_opts_len;
    uint8_t proto; /* L4 protocol: PB_IP_TCP, _UDP, _ICMP, ... */
    int n_ext;
    struct pb_v6ext ext[PB_MAX_EXT];
    /* L4 */
    uint16_t sport;
    uint16_t dport;
    uint32_t seq;
    uint32_t ack;
    uint8_t flags;
    uint16_t win;
    uint32_t payload_len;
    uint16_t mss;    /* 0: no MSS option */
    int16_t wscale;  /* < 0: no window scale option; written as is (> 14 allowed) */
    uint8_t sack_ok; /* SACK-permitted option */
    uint8_t has_ts;
    uint32_t tsval;
    uint32_t tsecr;
    uint8_t raw_opts[40]; /* appended after the options above, then padded with EOL */
    uint8_t raw_opts_len;
};

/* Where the layers of a built frame start (offsets into the buffer). */
struct pb_layout {
    uint32_t len;      /* whole frame */
    uint32_t l3;       /* IP header */
    uint32_t l4;       /* TCP/UDP/ICMP header (after any IPv6 extension headers) */
    uint32_t tcp_opts; /* TCP options */
    uint32_t tcp_end;  /* end of the TCP header (= payload) */
    uint32_t ext[PB_MAX_EXT];
};

void pb_pkt_init(struct pb_pkt *p, int family);
/* IPv4 address as stored in pkt_info (::ffff:a.b.c.d); IPv6 from text. Abort on bad text. */
void pb_addr(uint8_t out[16], const char *text);
/* Set the VLAN stack: tpids/tcis outermost first. */
void pb_vlans(struct pb_pkt *p, int n, const uint16_t *tpids, const uint16_t *tcis);

/* Build the frame into buf (cap bytes). Returns its length; aborts when it does not fit. */
uint32_t pb_build(const struct pb_pkt *p, uint8_t *buf, uint32_t cap, struct pb_layout *lay);
/* What pkt_parse() should report for p's frame (only meaningful for a clean TCP frame). */
void pb_to_info(const struct pb_pkt *p, struct pkt_info *out);

static inline void pb_put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}
static inline void pb_put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}
static inline uint16_t pb_get16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

/* ---- scripted conversations ---- */

#define PB_C2S 0 /* client -> server */
#define PB_S2C 1 /* server -> client */

#define PB_WIN_ZERO 0x10000u /* pb_seg.win: advertise a zero window (0 = the side's default) */

struct pb_conv {
    int family;
    uint8_t cli[16];
    uint8_t srv[16];
    uint16_t cport;
    uint16_t sport;
    uint32_t cisn; /* absolute ISNs; segment seq/ack are relative to them */
    uint32_t sisn;
    uint8_t cttl;
    uint8_t sttl;
    int16_t cws; /* window scale on each side's SYN, < 0: none */
    int16_t sws;
    uint16_t cwin; /* raw window field each side advertises by default */
    uint16_t swin;
    uint64_t t0; /* capture time of t = 0, µs */
    int n_vlans;
    uint16_t vlan_tpid[PB_MAX_VLANS];
    uint16_t vlan_tci[PB_MAX_VLANS];
};

struct pb_seg {
    uint8_t dir;   /* PB_C2S or PB_S2C */
    uint8_t flags; /* TCP_* */
    uint32_t seq;  /* relative to the sender's ISN: the SYN is 0, the first data byte 1 */
    uint32_t ack;  /* relative to the receiver's ISN (used with TCP_ACK) */
    uint32_t len;  /* payload bytes */
    uint64_t t;    /* µs after t0 */
    uint8_t ttl;   /* 0: the sender's default */
    uint32_t win;  /* 0: the sender's default; PB_WIN_ZERO: 0 */
};

/* Segment shorthands: flags, relative seq, relative ack, payload length (time 0). */
#define PB_C(fl, sq, ak, ln)                                                                       \
    {                                                                                              \
        .dir = PB_C2S, .flags = (fl), .seq = (sq), .ack = (ak), .len = (ln)                        \
    }
#define PB_S(fl, sq, ak, ln)                                                                       \
    {                                                                                              \
        .dir = PB_S2C, .flags = (fl), .seq = (sq), .ack = (ak), .len = (ln)                        \
    }

/* Scripted openings shared by the tests: the three-way handshake (relative ISNs 0), and one
 * request/response after it (then client next = 101, server next = 1001, all acked). */
extern const struct pb_seg pb_handshake[3];
extern const struct pb_seg pb_exchange[3];

/* Defaults: client 10.0.0.1:40000 (2001:db8::1), server 10.0.0.2:80 (2001:db8::2),
 * ISNs 1000 / 500000, TTL 64 / 60, window scale 7 on both SYNs, t0 = 1e12 µs. */
void pb_conv_init(struct pb_conv *c, int family);
void pb_conv_pkt(const struct pb_conv *c, const struct pb_seg *s, struct pb_pkt *out);
void pb_conv_info(const struct pb_conv *c, const struct pb_seg *s, struct pkt_info *out);
static inline uint64_t pb_conv_ts(const struct pb_conv *c, const struct pb_seg *s)
{
    return c->t0 + s->t;
}

/* Index of the client's (PB_C2S) or the server's (PB_S2C) direction in the flow key. */
int pb_conv_dir(const struct pb_conv *c, int who);
/* Drive a bare struct flow with tcp_track like the engine does for non-RST segments: the
 * first segment fed to a zeroed flow (first_ts == 0) sets its key and runs tcp_track_init. */
void pb_track(struct flow *f, const struct pb_conv *c, const struct pb_seg *s, size_t n);

/* ---- an engine with its counters and an event collector ---- */

struct pb_harness {
    struct engine_stats stats; /* first: the struct is allocated 64-byte aligned */
    struct engine *e;
    struct rst_event *ev; /* events in emission order */
    uint32_t nev;
    uint32_t cap;
};

/* Engine from *cfg, or from engine_config_defaults() with max_flows 1024 when cfg is NULL.
 * Aborts on failure. */
struct pb_harness *pb_harness_new(const struct engine_config *cfg);
void pb_harness_free(struct pb_harness *h);
/* The event sink: ctx is a struct pb_harness. */
void pb_event_sink(void *ctx, const struct rst_event *ev);

enum pb_mode {
    PB_FRAMES = 0, /* build each segment's frame and feed engine_input() */
    PB_INFO,       /* build each segment's pkt_info and feed engine_segment() */
};

/* Run n segments of a conversation through h's engine. */
void pb_run(struct pb_harness *h, const struct pb_conv *c, const struct pb_seg *s, size_t n,
            enum pb_mode mode);
/* Feed one pb_pkt as a frame through engine_input at ts. */
void pb_input(struct pb_harness *h, const struct pb_pkt *p, uint64_t ts);

#endif
