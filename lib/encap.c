/*
 * Mirror tunnels: what a remote SPAN (ERSPAN, GRE, VXLAN, MPLS) wraps around the mirrored
 * frame. Each layer is removed here and the inner frame goes back to the ordinary parser, so
 * an inner TCP segment gives exactly the pkt_info a local mirror would have given; what the
 * tunnel looked like is kept in pkt_info.encap (session, outer source, GRE sequence number
 * for mirror-loss accounting).
 *
 * Layouts (network order):
 *   GRE (RFC 2784/2890): C R K S s Recur(3) Flags(5) Ver(3) | Protocol(16)
 *                        [Checksum+Reserved(32) if C] [Key(32) if K] [Seq(32) if S]
 *   ERSPAN I:   GRE 0x88be, S clear, no ERSPAN header: the Ethernet frame follows.
 *   ERSPAN II:  GRE 0x88be, S set, then Ver(4)=1 VLAN(12) | COS(3) En(2) T(1) Session(10)
 *               | Reserved(12) Index(20); Ethernet follows. (The GRE version says nothing.)
 *   ERSPAN III: GRE 0x22eb, Ver(4)=2 VLAN(12) | COS(3) BSO(2) T(1) Session(10) | Timestamp(32)
 *               | SGT(16) P FT(5) HwID(6) D Gra(2) O; O set: 8 more bytes (platform
 *               subheader); Ethernet follows.
 *   VXLAN (RFC 7348): UDP to port 4789, then Flags(8, I=0x08) Reserved(24) VNI(24) Res(8);
 *               Ethernet follows.
 *   MPLS (RFC 3032): 4-byte entries Label(20) TC(3) S(1) TTL(8) until S=1. What follows the
 *               bottom of the stack is not labelled on the wire. Decision (as Wireshark's
 *               heuristic): first nibble 4 = IPv4, 6 = IPv6, 0 = the pseudowire control word
 *               (RFC 4385) and then an Ethernet frame (RFC 4448). Anything else (an Ethernet
 *               pseudowire without control word, whose first byte is a MAC address) is
 *               counted as non-IP rather than guessed at.
 *
 * Bounds: PKT_MAX_ENCAP tunnel layers and PKT_MAX_MPLS labels; deeper is malformed. Every
 * read is checked against len, which each layer narrows to its own payload.
 */
#include <string.h>

#include "pkt_parse_int.h"

#define ETHERTYPE_TEB     0x6558 /* transparent Ethernet bridging */
#define ETHERTYPE_ERSPAN  0x88be /* type I and II */
#define ETHERTYPE_ERSPAN3 0x22eb
#define ETHERTYPE_IPV4    0x0800
#define ETHERTYPE_IPV6    0x86dd
#define ETHERTYPE_MPLS    0x8847
#define ETHERTYPE_MPLS_MC 0x8848

#define GRE_C        0x8000
#define GRE_R        0x4000
#define GRE_K        0x2000
#define GRE_S        0x1000
#define GRE_RESERVED 0x0ff8 /* strict source route, recursion, flags: must be 0 (RFC 2784) */
#define GRE_VERSION  0x0007

/*
 * Step into a tunnel: the headers parsed so far become the carrier. The fields that describe
 * the analysed frame are reset so that the inner frame fills them as if it were captured
 * locally; the carrier's IP source and outer VLAN are kept in out->encap.
 */
static int encap_enter(struct pkt_info *out, enum pkt_encap_kind kind)
{
    struct pkt_encap *e = &out->encap;

    if (e->layers >= PKT_MAX_ENCAP)
        return -1;
    if (e->layers == 0)
        e->outer_vlan = out->vlan;
    if (out->family) { /* the innermost tunnel with an IP header names the mirroring device */
        e->outer_family = out->family;
        memcpy(e->outer_src, out->src, 16);
    }
    e->layers++;
    e->kind = (uint8_t)kind;
    out->family = 0;
    out->ttl = 0;
    out->df = 0;
    out->ip_id = 0;
    out->vlan = 0;
    out->vlan_depth = 0;
    memset(out->src, 0, 16);
    memset(out->dst, 0, 16);
    return 0;
}

static enum pkt_kind erspan(const uint8_t *data, uint32_t len, uint32_t off, int type,
                            struct pkt_info *out)
{
    if (type == 2) {
        if (len < off + 8)
            return pp_malformed(out, MAL_ERSPAN_TRUNCATED);
        if (data[off] >> 4 != 1)
            return pp_malformed(out, MAL_ERSPAN_BAD_VERSION);
        out->encap.erspan_vlan = pp_rd16(data + off) & 0x0fff;
        out->encap.id = pp_rd16(data + off + 2) & 0x03ff;
        off += 8;
    } else if (type == 3) {
        if (len < off + 12)
            return pp_malformed(out, MAL_ERSPAN_TRUNCATED);
        if (data[off] >> 4 != 2)
            return pp_malformed(out, MAL_ERSPAN_BAD_VERSION);
        out->encap.erspan_vlan = pp_rd16(data + off) & 0x0fff;
        out->encap.id = pp_rd16(data + off + 2) & 0x03ff;
        int platform = data[off + 11] & 1; /* O bit */
        off += 12;
        if (platform) {
            if (len < off + 8)
                return pp_malformed(out, MAL_ERSPAN_TRUNCATED);
            off += 8;
        }
    }
    return pp_ethernet(data, len, off, out);
}

static enum pkt_kind gre(const uint8_t *data, uint32_t len, uint32_t off, int len_unknown,
                         struct pkt_info *out)
{
    if (len < off + 4)
        return pp_malformed(out, MAL_GRE_TRUNCATED);
    uint16_t flags = pp_rd16(data + off);
    uint16_t proto = pp_rd16(data + off + 2);
    if (flags & GRE_VERSION) /* version 1: PPTP's enhanced GRE carries PPP, not mirrors */
        return PKT_NON_TCP;
    if (flags & (GRE_R | GRE_RESERVED))
        return pp_malformed(out, MAL_GRE_BAD_HEADER);

    enum pkt_encap_kind kind;
    switch (proto) {
    case ETHERTYPE_TEB:
    case ETHERTYPE_IPV4:
    case ETHERTYPE_IPV6:
    case ETHERTYPE_MPLS:
    case ETHERTYPE_MPLS_MC:
        kind = ENC_GRE;
        break;
    case ETHERTYPE_ERSPAN: /* the S bit, not the GRE version, tells type I from II */
        kind = (flags & GRE_S) ? ENC_ERSPAN2 : ENC_ERSPAN1;
        break;
    case ETHERTYPE_ERSPAN3:
        kind = ENC_ERSPAN3;
        break;
    default: /* WCCP, keepalives, ...: IP traffic that is not a mirror */
        return PKT_NON_TCP;
    }
    if (len_unknown)
        return pp_malformed(out, MAL_ENCAP_BAD_LENGTH);

    uint32_t hl =
        4 + ((flags & GRE_C) ? 4 : 0) + ((flags & GRE_K) ? 4 : 0) + ((flags & GRE_S) ? 4 : 0);
    if (len < off + hl)
        return pp_malformed(out, MAL_GRE_TRUNCATED);
    uint32_t key = 0, seq = 0;
    uint32_t o = off + 4 + ((flags & GRE_C) ? 4 : 0);
    if (flags & GRE_K) {
        key = pp_rd32(data + o);
        o += 4;
    }
    if (flags & GRE_S)
        seq = pp_rd32(data + o);

    if (encap_enter(out, kind) < 0)
        return pp_malformed(out, MAL_ENCAP_TOO_DEEP);
    out->encap.has_seq = (flags & GRE_S) != 0;
    out->encap.seq = seq;
    out->encap.id = key; /* ERSPAN overwrites it with its session id */
    out->encap.erspan_vlan = 0;
    off += hl;

    switch (kind) {
    case ENC_ERSPAN1:
        return erspan(data, len, off, 1, out);
    case ENC_ERSPAN2:
        return erspan(data, len, off, 2, out);
    case ENC_ERSPAN3:
        return erspan(data, len, off, 3, out);
    default:
        if (proto == ETHERTYPE_TEB)
            return pp_ethernet(data, len, off, out);
        return pp_ethertype(data, len, off, proto, out);
    }
}

static enum pkt_kind vxlan(const uint8_t *data, uint32_t len, uint32_t off, int len_unknown,
                           struct pkt_info *out)
{
    if (len < off + 4 || pp_rd16(data + off + 2) != PKT_VXLAN_PORT)
        return PKT_NON_TCP; /* plain UDP (or too short to tell) */
    if (len_unknown)
        return pp_malformed(out, MAL_ENCAP_BAD_LENGTH);
    if (len < off + 16)
        return pp_malformed(out, MAL_UDP_TRUNCATED);
    uint32_t ulen = pp_rd16(data + off + 4);
    if (ulen < 16)
        return pp_malformed(out, MAL_ENCAP_BAD_LENGTH);
    if (off + ulen < len) /* the UDP length bounds the payload too (a cut capture: the frame) */
        len = off + ulen;
    if (!(data[off + 8] & 0x08)) /* I flag: the VNI is valid */
        return pp_malformed(out, MAL_VXLAN_BAD_FLAGS);
    if (encap_enter(out, ENC_VXLAN) < 0)
        return pp_malformed(out, MAL_ENCAP_TOO_DEEP);
    out->encap.has_seq = 0;
    out->encap.seq = 0;
    out->encap.erspan_vlan = 0;
    out->encap.id = pp_rd32(data + off + 12) >> 8;
    return pp_ethernet(data, len, off + 16, out);
}

enum pkt_kind encap_ip_payload(const uint8_t *data, uint32_t len, uint32_t off, uint8_t proto,
                               int len_unknown, struct pkt_info *out)
{
    if (proto == 47)
        return gre(data, len, off, len_unknown, out);
    return vxlan(data, len, off, len_unknown, out);
}

enum pkt_kind encap_mpls(const uint8_t *data, uint32_t len, uint32_t off, struct pkt_info *out)
{
    if (encap_enter(out, ENC_MPLS) < 0)
        return pp_malformed(out, MAL_ENCAP_TOO_DEEP);
    for (int n = 0;; n++) {
        if (n >= PKT_MAX_MPLS)
            return pp_malformed(out, MAL_MPLS_TOO_DEEP);
        if (len < off + 4)
            return pp_malformed(out, MAL_MPLS_TRUNCATED);
        int bottom = data[off + 2] & 1;
        off += 4;
        if (bottom)
            break;
    }
    if (len < off + 1)
        return pp_malformed(out, MAL_MPLS_TRUNCATED);
    switch (data[off] >> 4) {
    case 4:
    case 6:
        return pp_ip_any(data, len, off, out);
    case 0: /* pseudowire control word, then the customer's Ethernet frame */
        if (len < off + 4)
            return pp_malformed(out, MAL_MPLS_TRUNCATED);
        return pp_ethernet(data, len, off + 4, out);
    default:
        return PKT_NON_IP;
    }
}
