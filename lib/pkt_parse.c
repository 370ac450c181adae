#include "pkt_parse.h"

#include <stddef.h>
#include <string.h>

#include "pkt_parse_int.h"

#define ETH_HLEN           14
#define ETHERTYPE_IPV4     0x0800
#define ETHERTYPE_IPV6     0x86dd
#define ETHERTYPE_VLAN     0x8100
#define ETHERTYPE_QINQ     0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100
#define ETHERTYPE_MPLS     0x8847
#define ETHERTYPE_MPLS_MC  0x8848
#define IPPROTO_TCP_       6
#define IPPROTO_UDP_       17
#define IPPROTO_GRE_       47

#define rd16 pp_rd16
#define rd32 pp_rd32

/* For the per-packet chain of the common frame: one call per packet, not one per header. */
#define PP_INLINE static inline __attribute__((always_inline))

/*
 * ::ffff:a.b.c.d into a 16-byte address, in one 16-byte store. The engine reads addresses and
 * ports back at once (flow_key_make(): 8- and 16-byte loads), and a load that spans several
 * smaller stores cannot be forwarded from the store buffer: it waits until they reach the
 * cache. Two bytes of 0xff and a 4-byte store did that on both addresses of every IPv4
 * packet.
 */
typedef uint64_t pp_u64x2 __attribute__((vector_size(16)));
PP_INLINE void v4_mapped_store(uint8_t *a, const uint8_t *v4)
{
    uint32_t v;
    memcpy(&v, v4, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    pp_u64x2 x = {0, (uint64_t)v << 32 | 0xffff0000u};
#else
    pp_u64x2 x = {0, 0xffff00000000ull | v};
#endif
    memcpy(a, &x, 16);
}

/* TCP option words of the layouts that make up nearly all segments. */
#define OPT_NOP_NOP_TS 0x0101080au /* NOP, NOP, timestamps (kind 8, length 10) */
#define OPT_MSS        0x0204u     /* MSS (kind 2, length 4), then its value */
#define OPT_SACKOK_TS  0x0402080au /* SACK-permitted (4, 2), timestamps (8, 10) */
#define OPT_NOP_WS     0x01030300u /* NOP, window scale (kind 3, length 3), then its shift */

enum pkt_kind pp_malformed(struct pkt_info *out, enum malformed_reason r)
{
    out->malformed = (uint8_t)r;
    return PKT_MALFORMED;
}

/*
 * TCP options. Bounds: opt points at doff*4-20 bytes that are inside the frame. A bad length
 * stops parsing and voids what was read, like Linux's tcp_parse_options() ignoring "silly
 * options" while still accepting the segment.
 */
PP_INLINE int parse_tcp_opts(const uint8_t *opt, uint32_t olen, struct tcp_opts *o)
{
    uint32_t i = 0;

    /* Nearly every SYN starts with MSS, and Linux's go on with SACK-permitted, timestamps,
     * NOP and window scale (20 bytes): taken in steps, the loop goes on after them (having
     * read exactly the same). */
    if (olen >= 4 && rd16(opt) == OPT_MSS) {
        o->mss = rd16(opt + 2);
        i = 4;
        if (olen >= 16 && rd32(opt + 4) == OPT_SACKOK_TS) {
            o->sack_ok = 1;
            o->has_ts = 1;
            o->tsval = rd32(opt + 8);
            o->tsecr = rd32(opt + 12);
            i = 16;
            if (olen >= 20 && (rd32(opt + 16) & 0xffffff00u) == OPT_NOP_WS) {
                o->wscale = opt[19] > 14 ? 14 : opt[19]; /* clamped as in the loop */
                i = 20;
            }
        }
    }
    while (i < olen) {
        uint8_t kind = opt[i];
        if (kind == 0) /* end of option list */
            break;
        if (kind == 1) { /* NOP */
            i++;
            continue;
        }
        if (i + 1 >= olen)
            return -1;
        uint8_t l = opt[i + 1];
        if (l < 2 || i + l > olen)
            return -1;
        switch (kind) {
        case 2:
            if (l != 4)
                return -1;
            o->mss = rd16(opt + i + 2);
            break;
        case 3:
            if (l != 3)
                return -1;
            o->wscale = opt[i + 2] > 14 ? 14 : opt[i + 2]; /* RFC 7323 §2.3 clamps to 14 */
            break;
        case 4:
            if (l != 2)
                return -1;
            o->sack_ok = 1;
            break;
        case 8:
            if (l != 10)
                return -1;
            o->has_ts = 1;
            o->tsval = rd32(opt + i + 2);
            o->tsecr = rd32(opt + i + 6);
            break;
        default: /* SACK blocks, MD5, TFO, MPTCP...: skipped by length */
            break;
        }
        i += l;
    }
    return 0;
}

/* The options of a segment that is tracked whatever they hold: returns PKT_TCP. */
static enum pkt_kind tcp_options(const uint8_t *opt, uint32_t olen, struct pkt_info *out)
{
    if (parse_tcp_opts(opt, olen, &out->opt) < 0) {
        memset(&out->opt, 0, sizeof(out->opt));
        out->opt.wscale = 0xff;
        out->malformed = MAL_TCP_BAD_OPTION;
    }
    return PKT_TCP;
}

/*
 * The fields of a TCP header whose doff (20..60) bytes are in the frame, of a segment of
 * l4len >= doff bytes; returns PKT_TCP. An established connection with timestamps carries
 * exactly NOP, NOP, TS: that layout is decoded here, without the option loop (which would
 * read the same). The loop is a tail call: nothing is live after it.
 */
PP_INLINE enum pkt_kind tcp_fill(const uint8_t *p, uint32_t doff, uint32_t l4len,
                                 struct pkt_info *out)
{
    /* Both ports in one store, for the same reason as v4_mapped_store(): flow_key_make()
     * loads them as one word. */
    _Static_assert(offsetof(struct pkt_info, dport) == offsetof(struct pkt_info, sport) + 2,
                   "dport follows sport");
    uint32_t ports;
    memcpy(&ports, p, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    ports = __builtin_bswap32(ports);  /* sport << 16 | dport: each half to host order, */
    ports = ports << 16 | ports >> 16; /* and sport back into the low half */
#endif
    memcpy(&out->sport, &ports, 4);
    out->seq = rd32(p + 4);
    out->ack = rd32(p + 8);
    out->flags = p[13];
    out->win = rd16(p + 14);
    out->payload_len = l4len - doff;
    if (doff == 20)
        return PKT_TCP;
    if (doff == 32 && rd32(p + 20) == OPT_NOP_NOP_TS) {
        out->opt.has_ts = 1;
        out->opt.tsval = rd32(p + 24);
        out->opt.tsecr = rd32(p + 28);
        return PKT_TCP;
    }
    return tcp_options(p + 20, doff - 20, out);
}

static enum pkt_kind parse_tcp(const uint8_t *p, uint32_t avail, uint32_t l4len,
                               struct pkt_info *out)
{
    if (avail < 20 || l4len < 20)
        return pp_malformed(out, MAL_TCP_TRUNCATED);
    uint32_t doff = (uint32_t)(p[12] >> 4) * 4;
    if (doff < 20 || doff > l4len)
        return pp_malformed(out, MAL_TCP_BAD_DATA_OFFSET);
    if (doff > avail)
        return pp_malformed(out, MAL_TCP_TRUNCATED);
    return tcp_fill(p, doff, l4len, out);
}

static enum pkt_kind parse_ipv4(const uint8_t *data, uint32_t len, uint32_t off,
                                struct pkt_info *out)
{
    const uint8_t *p = data + off;
    uint32_t avail = len - off;

    out->encap.l3_off = off;
    if (avail < 20)
        return pp_malformed(out, MAL_IPV4_TRUNCATED);
    if ((p[0] >> 4) != 4)
        return pp_malformed(out, MAL_IPV4_BAD_VERSION);
    uint32_t ihl = (uint32_t)(p[0] & 0x0f) * 4;
    if (ihl < 20)
        return pp_malformed(out, MAL_IPV4_BAD_HEADER_LEN);
    if (ihl > avail)
        return pp_malformed(out, MAL_IPV4_TRUNCATED);
    uint32_t total = rd16(p + 2);
    int tso = total == 0;
    /* Captures taken on a host with TCP segmentation offload hold super-segments whose
     * length field the kernel leaves 0: the frame's length is the only length there is.
     * A switch mirrors wire frames, so inside a tunnel a 0 is simply wrong. */
    if (tso && out->encap.layers)
        return pp_malformed(out, MAL_IPV4_BAD_TOTAL_LEN);
    if (tso)
        total = avail;
    if (total < ihl)
        return pp_malformed(out, MAL_IPV4_BAD_TOTAL_LEN);
    /* total > avail is a snaplen-cut capture, not an error: headers are checked below. */
    uint16_t frag = rd16(p + 6);
    out->family = 4;
    out->ttl = p[8];
    out->ip_id = rd16(p + 4);
    out->df = (frag & 0x4000) != 0;
    v4_mapped_store(out->src, p + 12);
    v4_mapped_store(out->dst, p + 16);
    if (frag & 0x3fff) /* MF or offset */
        return PKT_FRAGMENT;
    if (p[9] == IPPROTO_GRE_ || p[9] == IPPROTO_UDP_) {
        /* A tunnel's payload ends with the outer datagram, not with the frame. */
        uint32_t end = off + (total < avail ? total : avail);
        return encap_ip_payload(data, end, off + ihl, p[9], tso, out);
    }
    if (p[9] != IPPROTO_TCP_)
        return PKT_NON_TCP;
    return parse_tcp(p + ihl, avail - ihl, total - ihl, out);
}

static enum pkt_kind parse_ipv6(const uint8_t *data, uint32_t len, uint32_t l3,
                                struct pkt_info *out)
{
    const uint8_t *p = data + l3;
    uint32_t avail = len - l3;

    out->encap.l3_off = l3;
    if (avail < 40)
        return pp_malformed(out, MAL_IPV6_TRUNCATED);
    if ((p[0] >> 4) != 6)
        return pp_malformed(out, MAL_IPV6_BAD_VERSION);
    uint32_t plen = rd16(p + 4);
    if (plen == 0) /* jumbograms (RFC 2675) are not seen on Ethernet mirrors */
        return pp_malformed(out, MAL_IPV6_BAD_PAYLOAD_LEN);
    out->family = 6;
    out->ttl = p[7];
    out->df = 1;
    out->ip_id = 0;
    memcpy(out->src, p + 8, 16);
    memcpy(out->dst, p + 24, 16);

    uint8_t nh = p[6];
    uint32_t off = 40;    /* bytes of the frame consumed from p */
    uint32_t left = plen; /* bytes of IP payload left, per the header */
    for (int n = 0;; n++) {
        uint32_t hl;
        switch (nh) {
        case IPPROTO_TCP_:
            if (off > avail)
                return pp_malformed(out, MAL_IPV6_EXT_TRUNCATED);
            return parse_tcp(p + off, avail - off, left, out);
        case IPPROTO_GRE_:
        case IPPROTO_UDP_:
            if (off > avail)
                return pp_malformed(out, MAL_IPV6_EXT_TRUNCATED);
            return encap_ip_payload(data, l3 + off + (left < avail - off ? left : avail - off),
                                    l3 + off, nh, 0, out);
        case 0:  /* hop-by-hop */
        case 43: /* routing */
        case 60: /* destination options */
        case 51: /* AH */
        case 44: /* fragment */
            break;
        default:
            return PKT_NON_TCP;
        }
        if (n >= PKT_MAX_IP6_EXT)
            return pp_malformed(out, MAL_IPV6_EXT_TOO_DEEP);
        if (avail < off + 8 || left < 8)
            return pp_malformed(out, MAL_IPV6_EXT_TRUNCATED);
        const uint8_t *e = p + off;
        if (nh == 44) {
            uint16_t fo = rd16(e + 2);
            if (fo & 0xfff9) /* offset or M flag: a real fragment */
                return PKT_FRAGMENT;
            hl = 8; /* atomic fragment (RFC 6946): parse through */
        } else if (nh == 51) {
            hl = ((uint32_t)e[1] + 2) * 4;
        } else {
            hl = ((uint32_t)e[1] + 1) * 8;
        }
        if (hl > left)
            return pp_malformed(out, MAL_IPV6_BAD_PAYLOAD_LEN);
        if (avail < off + hl)
            return pp_malformed(out, MAL_IPV6_EXT_TRUNCATED);
        nh = e[0];
        off += hl;
        left -= hl;
    }
}

enum pkt_kind pp_ethertype(const uint8_t *data, uint32_t len, uint32_t off, uint16_t et,
                           struct pkt_info *out)
{
    while (et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ || et == ETHERTYPE_QINQ_OLD) {
        if (out->vlan_depth >= PKT_MAX_VLANS)
            return pp_malformed(out, MAL_VLAN_TOO_DEEP);
        if (len < off + 4)
            return pp_malformed(out, MAL_VLAN_TRUNCATED);
        if (out->vlan_depth == 0)
            out->vlan = rd16(data + off) & 0x0fff;
        out->vlan_depth++;
        et = rd16(data + off + 2);
        off += 4;
    }
    if (et == ETHERTYPE_IPV4)
        return parse_ipv4(data, len, off, out);
    if (et == ETHERTYPE_IPV6)
        return parse_ipv6(data, len, off, out);
    if (et == ETHERTYPE_MPLS || et == ETHERTYPE_MPLS_MC)
        return encap_mpls(data, len, off, out);
    return PKT_NON_IP;
}

enum pkt_kind pp_ethernet(const uint8_t *data, uint32_t len, uint32_t off, struct pkt_info *out)
{
    if (len < off + ETH_HLEN)
        return pp_malformed(out, MAL_L2_TRUNCATED);
    return pp_ethertype(data, len, off + ETH_HLEN, rd16(data + off + 12), out);
}

/* Headerless IP (raw, loopback after its family word): the version nibble decides. */
enum pkt_kind pp_ip_any(const uint8_t *data, uint32_t len, uint32_t off, struct pkt_info *out)
{
    if (len < off + 1)
        return pp_malformed(out, MAL_L2_TRUNCATED);
    if ((data[off] >> 4) == 4)
        return parse_ipv4(data, len, off, out);
    if ((data[off] >> 4) == 6)
        return parse_ipv6(data, len, off, out);
    return PKT_NON_IP;
}

/* Every frame starts from this: all zero (padding included), no window scale. Two memsets:
 * for one of 112 bytes GCC's vector_loop strategy (meson.build) emits a loop, for these
 * straight 16-byte stores. */
PP_INLINE void info_init(struct pkt_info *out)
{
    _Static_assert(sizeof(struct pkt_info) > 64, "info_init() clears 64 bytes, then the rest");
    memset(out, 0, 64);
    memset((uint8_t *)out + 64, 0, sizeof(*out) - 64);
    out->opt.wscale = 0xff;
}

/* Is 20 <= doff <= both avail (bytes of frame) and l4len (of segment, per the IP header)?
 * avail and l4len are >= 20: one unsigned compare, a doff below 20 wraps around. */
PP_INLINE int tcp_doff_fits(uint32_t doff, uint32_t avail, uint32_t l4len)
{
    uint32_t room = avail < l4len ? avail : l4len;
    return doff - 20 <= room - 20;
}

/* The link layer of a frame the fast path took: l3 is 14, or 18 after one 802.1Q tag. */
PP_INLINE void fast_l2(const uint8_t *data, uint32_t l3, struct pkt_info *out)
{
    out->encap.l3_off = l3;
    if (l3 != ETH_HLEN) {
        out->vlan = rd16(data + 14) & 0x0fff;
        out->vlan_depth = 1;
    }
}

/*
 * An Ethernet frame. Fast path for the frames that are nearly all traffic: at most one
 * 802.1Q tag, IPv4 with IHL 5 that is not a fragment and has its total length set, or IPv6
 * without extension headers, then a TCP header that fits both the IP length and the frame.
 * For these it gives what the general path gives, with one length check up front instead of
 * one per header and no call per layer. It writes nothing to out until it has taken the
 * frame: anything else -- QinQ, tunnels, IP options, TSO, every malformed frame -- goes
 * through the general path from a clean struct.
 */
PP_INLINE enum pkt_kind parse_ethernet_frame(const uint8_t *data, uint32_t len,
                                             struct pkt_info *out)
{
    uint32_t l3 = ETH_HLEN;

    info_init(out);
    /* len >= l3 + 40 (the shortest IP + TCP headers): all the length checks IPv4 needs. */
    if (len < ETH_HLEN + 40)
        goto general;
    uint16_t et = rd16(data + 12);
    if (et == ETHERTYPE_VLAN) {
        if (len < ETH_HLEN + 4 + 40)
            goto general;
        et = rd16(data + 16);
        l3 += 4;
    }
    const uint8_t *ip = data + l3;
    uint32_t l4len, doff; /* TCP segment length, per the IP header; data offset */
    if (et == ETHERTYPE_IPV4) {
        /* total < 40 (0: TSO) and flags other than DF go the general way. */
        l4len = rd16(ip + 2);
        if (ip[0] != 0x45 || ip[9] != IPPROTO_TCP_ || (rd16(ip + 6) & 0x3fff) || l4len < 40)
            goto general;
        l4len -= 20;
        doff = (uint32_t)(ip[20 + 12] >> 4) * 4;
        if (!tcp_doff_fits(doff, len - l3 - 20, l4len))
            goto general;
        fast_l2(data, l3, out);
        out->family = 4;
        out->ttl = ip[8];
        out->ip_id = rd16(ip + 4);
        out->df = (ip[6] & 0x40) != 0;
        v4_mapped_store(out->src, ip + 12);
        v4_mapped_store(out->dst, ip + 16);
        return tcp_fill(ip + 20, doff, l4len, out);
    }
    if (et == ETHERTYPE_IPV6) {
        l4len = rd16(ip + 4); /* payload length: no extension header */
        if (len < l3 + 40 + 20 || (ip[0] >> 4) != 6 || ip[6] != IPPROTO_TCP_ || l4len < 20)
            goto general;
        doff = (uint32_t)(ip[40 + 12] >> 4) * 4;
        if (!tcp_doff_fits(doff, len - l3 - 40, l4len))
            goto general;
        fast_l2(data, l3, out);
        out->family = 6;
        out->ttl = ip[7];
        out->df = 1;
        memcpy(out->src, ip + 8, 16);
        memcpy(out->dst, ip + 24, 16);
        return tcp_fill(ip + 40, doff, l4len, out);
    }
general:
    return pp_ethernet(data, len, 0, out);
}

enum pkt_kind pkt_parse(const uint8_t *data, uint32_t len, struct pkt_info *out)
{
    return parse_ethernet_frame(data, len, out);
}

/* Bytes of link-layer header before the IP header (SLL: before its protocol field's end), or
 * -1 for a link type the parser does not know. Ethernet's varies and has a path of its own. */
static int link_header_len(int link)
{
    switch (link) {
    case LINK_RAW:
        return 0;
    case LINK_NULL: /* 4-byte address family */
    case LINK_LOOP:
        return 4;
    case LINK_LINUX_SLL: /* protocol (ethertype) in the last 2 of 16 bytes */
        return 16;
    case LINK_LINUX_SLL2: /* protocol in the first 2 of 20 bytes */
        return 20;
    default:
        return -1;
    }
}

int pkt_link_supported(int link)
{
    return link == LINK_ETHERNET || link_header_len(link) >= 0;
}

enum pkt_kind pkt_parse_link(const uint8_t *data, uint32_t len, int link, struct pkt_info *out)
{
    if (link == LINK_ETHERNET) /* nearly always: first, and inline */
        return parse_ethernet_frame(data, len, out);
    info_init(out);
    int hl = link_header_len(link);
    if (hl < 0)
        return PKT_NON_IP;
    if (len < (uint32_t)hl)
        return pp_malformed(out, MAL_L2_TRUNCATED);
    if (link == LINK_LINUX_SLL) /* then as in an Ethernet frame, VLAN tags included */
        return pp_ethertype(data, len, (uint32_t)hl, rd16(data + hl - 2), out);
    if (link == LINK_LINUX_SLL2) {
        /* The ethertype leads the header, far from the payload; VLAN tags are not inline
         * in SLL2. */
        uint16_t et = rd16(data);
        if (et == ETHERTYPE_IPV4)
            return parse_ipv4(data, len, (uint32_t)hl, out);
        if (et == ETHERTYPE_IPV6)
            return parse_ipv6(data, len, (uint32_t)hl, out);
        return PKT_NON_IP;
    }
    return pp_ip_any(data, len, (uint32_t)hl, out); /* raw IP, or after a BSD family word */
}
