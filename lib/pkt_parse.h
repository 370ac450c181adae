/*
 * Wire parser: Ethernet, 802.1Q/802.1ad (QinQ) tags, IPv4 (with options), IPv6 (with
 * extension headers) and TCP (with options) into a flat struct pkt_info.
 *
 * Invariant: the parser never reads outside [data, data + len). Every header is length-checked
 * before it is touched; a frame that fails a check is reported with one malformed reason and
 * is never tracked. Pure C, no DPDK: it runs under Criterion and libFuzzer as it runs on a
 * polling core.
 */
#ifndef RS_PKT_PARSE_H
#define RS_PKT_PARSE_H

#include <stdint.h>

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

#define PKT_MAX_VLANS   4 /* deeper tag stacks are rejected as malformed */
#define PKT_MAX_IP6_EXT 8
#define PKT_MAX_ENCAP   3 /* tunnels inside tunnels, e.g. MPLS -> GRE -> ERSPAN */
#define PKT_MAX_MPLS    8 /* labels in one stack */
#define PKT_VXLAN_PORT  4789

enum pkt_kind {
    PKT_TCP = 0,   /* a TCP segment, all fields of pkt_info valid */
    PKT_NON_IP,    /* not IPv4/IPv6 (ARP, LLDP, ...) */
    PKT_NON_TCP,   /* IP but not TCP (UDP, ICMP, ESP, ...) */
    PKT_FRAGMENT,  /* IP fragment: counted, not reassembled, not tracked */
    PKT_MALFORMED, /* see pkt_info.malformed */
};

/* Stable names (summary JSON keys) live in names.c; keep the order in sync. */
enum malformed_reason {
    MAL_NONE = 0,
    MAL_L2_TRUNCATED,
    MAL_VLAN_TRUNCATED,
    MAL_VLAN_TOO_DEEP,
    MAL_IPV4_TRUNCATED,
    MAL_IPV4_BAD_VERSION,
    MAL_IPV4_BAD_HEADER_LEN,
    MAL_IPV4_BAD_TOTAL_LEN,
    MAL_IPV6_TRUNCATED,
    MAL_IPV6_BAD_VERSION,
    MAL_IPV6_BAD_PAYLOAD_LEN,
    MAL_IPV6_EXT_TRUNCATED,
    MAL_IPV6_EXT_TOO_DEEP,
    MAL_TCP_TRUNCATED,
    MAL_TCP_BAD_DATA_OFFSET,
    MAL_TCP_BAD_OPTION, /* counted, but the segment is still tracked (as Linux does) */
    /* Mirror encapsulations (lib/encap.c) */
    MAL_GRE_TRUNCATED,
    MAL_GRE_BAD_HEADER, /* version/reserved bits, routing present */
    MAL_ERSPAN_TRUNCATED,
    MAL_ERSPAN_BAD_VERSION,
    MAL_UDP_TRUNCATED, /* a VXLAN carrier */
    MAL_VXLAN_BAD_FLAGS,
    MAL_MPLS_TRUNCATED,
    MAL_MPLS_TOO_DEEP,
    MAL_ENCAP_TOO_DEEP,
    MAL_ENCAP_BAD_LENGTH, /* outer IPv4 total length 0, or a UDP length that lies */
    MAL_MAX
};

struct tcp_opts {
    uint16_t mss;    /* 0 when absent */
    uint8_t wscale;  /* 0xff when absent */
    uint8_t sack_ok; /* SACK-permitted seen */
    uint8_t has_ts;  /* timestamps option seen */
    uint32_t tsval;
    uint32_t tsecr;
};

/* What the mirror tunnel looked like (all zero for a frame mirrored locally). */
enum pkt_encap_kind {
    ENC_NONE = 0,
    ENC_GRE,     /* GRE carrying Ethernet (0x6558) or IP */
    ENC_ERSPAN1, /* GRE 0x88be without a sequence number */
    ENC_ERSPAN2, /* GRE 0x88be, sequence number, 8-byte ERSPAN header */
    ENC_ERSPAN3, /* GRE 0x22eb, 12-byte (+8 platform) ERSPAN header */
    ENC_VXLAN,   /* UDP 4789 */
    ENC_MPLS,    /* label stack, then IP or a control word and Ethernet (pseudowire) */
    ENC_KIND_MAX
};

struct pkt_encap {
    uint8_t layers;        /* tunnel layers removed, 0 = mirrored locally */
    uint8_t kind;          /* enum pkt_encap_kind of the innermost tunnel */
    uint8_t has_seq;       /* a GRE sequence number was present (mirror loss accounting) */
    uint8_t outer_family;  /* of the innermost tunnel's outer IP header (0: MPLS only) */
    uint8_t outer_src[16]; /* the mirroring device (IPv4-mapped) */
    uint32_t seq;          /* GRE sequence number */
    uint32_t id;           /* ERSPAN session id, VXLAN VNI or GRE key: a mirror session */
    uint16_t outer_vlan;   /* outermost VLAN of the carrier frame, 0 when untagged */
    uint16_t erspan_vlan;  /* ERSPAN header's VLAN field (the original frame's, if stripped) */
    uint32_t l3_off;       /* offset of the analysed (innermost) IP header in the frame */
};

/* IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d) so one key type serves both. */
struct pkt_info {
    uint8_t src[16];
    uint8_t dst[16];
    uint16_t sport;
    uint16_t dport;
    uint8_t family; /* 4 or 6 */
    uint8_t ttl;    /* IPv4 TTL or IPv6 hop limit */
    uint8_t flags;  /* TCP flags */
    uint8_t df;     /* IPv4 don't-fragment bit (IPv6: 1) */
    uint16_t ip_id; /* IPv4 identification (IPv6: 0) */
    uint16_t vlan;  /* outermost VLAN id, 0 when untagged */
    uint8_t vlan_depth;
    uint8_t malformed; /* enum malformed_reason, MAL_NONE when clean */
    uint16_t win;      /* raw window field, not scaled */
    uint32_t seq;
    uint32_t ack;
    uint32_t payload_len; /* from the IP length, so snaplen-truncated captures still count */
    struct tcp_opts opt;
    /* Tunnels the frame arrived in. vlan/vlan_depth and every field above describe the
     * innermost (mirrored) frame, exactly as if it had been captured locally. */
    struct pkt_encap encap;
};

/* Link-layer header types (tcpdump.org LINKTYPE_* numbers) a capture may carry. */
enum pkt_link {
    LINK_NULL = 0, /* BSD loopback: 4-byte address family, host order */
    LINK_ETHERNET = 1,
    LINK_RAW = 101,        /* bare IPv4/IPv6 */
    LINK_LOOP = 108,       /* OpenBSD loopback: 4-byte address family, network order */
    LINK_LINUX_SLL = 113,  /* Linux "cooked" capture v1 (tcpdump -i any) */
    LINK_LINUX_SLL2 = 276, /* Linux cooked capture v2 */
};

/* Is this link type one pkt_parse_link() understands? */
int pkt_link_supported(int link);

/*
 * Parse one frame. Returns the kind; for PKT_MALFORMED the reason is in out->malformed.
 * For PKT_TCP with a bad option, out->malformed == MAL_TCP_BAD_OPTION and options are ignored.
 */
enum pkt_kind pkt_parse(const uint8_t *data, uint32_t len, struct pkt_info *out);
/* The same for a frame of another link type (pkt_parse() is LINK_ETHERNET). */
enum pkt_kind pkt_parse_link(const uint8_t *data, uint32_t len, int link, struct pkt_info *out);

#endif
