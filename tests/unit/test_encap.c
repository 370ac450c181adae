/*
 * Mirror tunnels (lib/encap.c) and mirror loss (lib/mirror_seq.c).
 *
 * Every layout wraps a real frame built by pktbuild; the parse of the wrapped frame must equal
 * the parse of the bare frame in every field that describes the mirrored packet, and report
 * the tunnel in pkt_info.encap. Every truncation of every layout is parsed from an exact-size
 * heap copy (ASan catches a read past the end), and each encapsulation malformed reason has a
 * crafted frame.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cause.h"
#include "engine.h"
#include "mirror_seq.h"
#include "pkt_parse.h"
#include "pktbuild.h"

enum outer { O_V4 = 4, O_V6 = 6 };

/* A carrier Ethernet header (with n_vlans outer tags) and an outer IP header of protocol
 * proto whose payload is plen bytes; returns its length. */
static uint32_t put_outer(uint8_t *b, int family, int n_vlans, uint8_t proto, uint32_t plen)
{
    uint32_t o = 0;
    static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0xee, 0x02, 0, 0, 0, 0, 0xff};
    memcpy(b, macs, 12);
    o = 12;
    for (int i = 0; i < n_vlans; i++) {
        pb_put16(b + o, i == 0 && n_vlans > 1 ? PB_ETH_QINQ : PB_ETH_VLAN);
        pb_put16(b + o + 2, (uint16_t)(100 + i));
        o += 4;
    }
    pb_put16(b + o, family == 4 ? PB_ETH_IPV4 : PB_ETH_IPV6);
    o += 2;
    if (family == 4) {
        memset(b + o, 0, 20);
        b[o] = 0x45;
        pb_put16(b + o + 2, (uint16_t)(20 + plen));
        b[o + 8] = 255;
        b[o + 9] = proto;
        static const uint8_t src[4] = {192, 0, 2, 7}, dst[4] = {192, 0, 2, 9};
        memcpy(b + o + 12, src, 4);
        memcpy(b + o + 16, dst, 4);
        o += 20;
    } else {
        memset(b + o, 0, 40);
        b[o] = 0x60;
        pb_put16(b + o + 4, (uint16_t)plen);
        b[o + 6] = proto;
        b[o + 7] = 255;
        b[o + 8] = 0x20;
        b[o + 9] = 0x01;
        b[o + 23] = 7; /* 2001::7 */
        b[o + 24] = 0x20;
        b[o + 25] = 0x01;
        b[o + 39] = 9;
        o += 40;
    }
    return o;
}

enum layout {
    L_GRE_TEB,     /* GRE 0x6558, key and sequence */
    L_GRE_TEB_CK,  /* GRE 0x6558 with checksum, no key, no sequence */
    L_GRE_IP,      /* GRE carrying the inner IP packet (no inner Ethernet) */
    L_ERSPAN1,     /* GRE 0x88be, no sequence */
    L_ERSPAN2,     /* GRE 0x88be, sequence, 8-byte header */
    L_ERSPAN3,     /* GRE 0x22eb, sequence, 12-byte header */
    L_ERSPAN3_O,   /* ... with the 8-byte platform subheader */
    L_VXLAN,       /* UDP 4789 */
    L_MPLS_IP,     /* Ethernet, 3 labels, the inner IP packet */
    L_MPLS_PW,     /* Ethernet, 2 labels, control word, Ethernet pseudowire */
    L_MPLS_ERSPAN, /* Ethernet, 1 label, IPv4, GRE, ERSPAN II: two tunnel layers */
    L_MAX
};

static const char *const layout_names[L_MAX] = {
    "gre_teb",   "gre_teb_ck", "gre_ip",  "erspan1", "erspan2",     "erspan3",
    "erspan3_o", "vxlan",      "mpls_ip", "mpls_pw", "mpls_erspan",
};

/* Tunnel header of layout l (after the outer IP header); returns its length. */
static uint32_t put_tunnel(uint8_t *b, enum layout l, uint32_t seq)
{
    switch (l) {
    case L_GRE_TEB:
        pb_put16(b, 0x3000); /* K S */
        pb_put16(b + 2, 0x6558);
        pb_put32(b + 4, 0xabcdef);
        pb_put32(b + 8, seq);
        return 12;
    case L_GRE_TEB_CK:
        pb_put16(b, 0x8000);
        pb_put16(b + 2, 0x6558);
        pb_put32(b + 4, 0);
        return 8;
    case L_ERSPAN1:
        pb_put16(b, 0x0000);
        pb_put16(b + 2, 0x88be);
        return 4;
    case L_ERSPAN2:
        pb_put16(b, 0x1000);
        pb_put16(b + 2, 0x88be);
        pb_put32(b + 4, seq);
        pb_put16(b + 8, 0x1000 | 42);       /* ver 1, vlan 42 */
        pb_put16(b + 10, (3u << 11) | 321); /* En 3 (tag in frame), session 321 */
        pb_put32(b + 12, 7);                /* index */
        return 16;
    case L_ERSPAN3:
    case L_ERSPAN3_O:
        pb_put16(b, 0x1000);
        pb_put16(b + 2, 0x22eb);
        pb_put32(b + 4, seq);
        pb_put16(b + 8, 0x2000 | 43); /* ver 2, vlan 43 */
        pb_put16(b + 10, 1000);       /* session 1000 */
        pb_put32(b + 12, 0x11223344); /* timestamp */
        pb_put32(b + 16, l == L_ERSPAN3_O ? 1 : 0);
        if (l == L_ERSPAN3_O) {
            memset(b + 20, 0x5a, 8);
            return 28;
        }
        return 20;
    default:
        return 0;
    }
}

/*
 * Wrap the inner Ethernet frame in (ilen bytes) in layout l; the result goes to out.
 * family: outer IP version. n_vlans: tags on the carrier frame. Returns the length.
 */
static uint32_t wrap(const uint8_t *in, uint32_t ilen, enum layout l, int family, int n_vlans,
                     uint32_t seq, uint8_t *out)
{
    uint8_t tun[64];
    uint32_t o, tl;
    const uint8_t *inner = in;
    uint32_t inlen = ilen;
    uint32_t inner_eth_hdr = 14;
    /* the inner ethertype offset skips inner VLAN tags */
    while (pb_get16(in + inner_eth_hdr - 2) == PB_ETH_VLAN ||
           pb_get16(in + inner_eth_hdr - 2) == PB_ETH_QINQ)
        inner_eth_hdr += 4;

    switch (l) {
    case L_GRE_IP: {
        uint16_t et = pb_get16(in + inner_eth_hdr - 2);
        inner = in + inner_eth_hdr;
        inlen = ilen - inner_eth_hdr;
        o = put_outer(out, family, n_vlans, 47, 4 + inlen);
        pb_put16(out + o, 0);
        pb_put16(out + o + 2, et);
        o += 4;
        break;
    }
    case L_VXLAN:
        o = put_outer(out, family, n_vlans, 17, 16 + inlen);
        pb_put16(out + o, 54321);
        pb_put16(out + o + 2, 4789);
        pb_put16(out + o + 4, (uint16_t)(16 + inlen));
        pb_put16(out + o + 6, 0);
        memset(out + o + 8, 0, 8);
        out[o + 8] = 0x08;
        pb_put32(out + o + 12, 0x123456u << 8);
        o += 16;
        break;
    case L_MPLS_IP:
    case L_MPLS_PW:
    case L_MPLS_ERSPAN: {
        static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb};
        int labels = l == L_MPLS_IP ? 3 : l == L_MPLS_PW ? 2 : 1;
        memcpy(out, macs, 12);
        pb_put16(out + 12, 0x8847);
        o = 14;
        for (int i = 0; i < labels; i++) {
            uint32_t e = (uint32_t)(16 + i) << 12 | (i == labels - 1 ? 0x100 : 0) | 64;
            pb_put32(out + o, e);
            o += 4;
        }
        if (l == L_MPLS_IP) {
            inner = in + inner_eth_hdr;
            inlen = ilen - inner_eth_hdr;
        } else if (l == L_MPLS_PW) {
            pb_put32(out + o, 0); /* control word */
            o += 4;
        } else {
            tl = put_tunnel(tun, L_ERSPAN2, seq);
            /* outer IPv4 header right after the stack (no Ethernet) */
            uint8_t tmp[128];
            uint32_t ol = put_outer(tmp, 4, 0, 47, tl + inlen);
            memcpy(out + o, tmp + 14, ol - 14);
            o += ol - 14;
            memcpy(out + o, tun, tl);
            o += tl;
        }
        break;
    }
    default:
        tl = put_tunnel(tun, l, seq);
        o = put_outer(out, family, n_vlans, 47, tl + inlen);
        memcpy(out + o, tun, tl);
        o += tl;
        break;
    }
    memcpy(out + o, inner, inlen);
    return o + inlen;
}

static enum pkt_kind parse_exact(const uint8_t *frame, uint32_t len, struct pkt_info *pi)
{
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, frame, len);
    memset(pi, 0xa5, sizeof(*pi));
    enum pkt_kind k = pkt_parse(len ? copy : NULL, len, pi);
    free(copy);
    return k;
}

/* The inner frames the layouts wrap: IPv4 and IPv6 TCP, with and without a VLAN tag. */
static uint32_t inner_frame(uint8_t *buf, int family, int vlan, struct pb_layout *lay)
{
    struct pb_pkt p;
    pb_pkt_init(&p, family);
    p.flags = TCP_RST | TCP_ACK;
    p.seq = 77777;
    p.ack = 88888;
    p.ttl = 61;
    p.mss = 1400;
    p.payload_len = 10;
    if (vlan) {
        uint16_t tp = PB_ETH_VLAN, tci = 0x2000 | 200;
        pb_vlans(&p, 1, &tp, &tci);
    }
    return pb_build(&p, buf, PB_MAX_FRAME, lay);
}

static void assert_same_packet(const struct pkt_info *a, const struct pkt_info *b, const char *w)
{
    /* Everything but the tunnel description is the mirrored packet's. */
    struct pkt_info x = *a, y = *b;
    memset(&x.encap, 0, sizeof(x.encap));
    memset(&y.encap, 0, sizeof(y.encap));
    cr_assert(memcmp(&x, &y, sizeof(x)) == 0, "%s: inner packet differs", w);
}

static enum pkt_encap_kind expected_kind(enum layout l)
{
    switch (l) {
    case L_ERSPAN1:
        return ENC_ERSPAN1;
    case L_ERSPAN2:
    case L_MPLS_ERSPAN:
        return ENC_ERSPAN2;
    case L_ERSPAN3:
    case L_ERSPAN3_O:
        return ENC_ERSPAN3;
    case L_VXLAN:
        return ENC_VXLAN;
    case L_MPLS_IP:
    case L_MPLS_PW:
        return ENC_MPLS;
    default:
        return ENC_GRE;
    }
}

Test(encap, every_layout_gives_the_bare_packet)
{
    uint8_t in[PB_MAX_FRAME], out[PB_MAX_FRAME + 256];
    struct pkt_info bare, got;

    for (int family = 4; family <= 6; family += 2)
        for (int ivlan = 0; ivlan <= 1; ivlan++)
            for (int ofam = 4; ofam <= 6; ofam += 2)
                for (int ovl = 0; ovl <= 2; ovl++)
                    for (int l = 0; l < L_MAX; l++) {
                        struct pb_layout lay;
                        uint32_t ilen = inner_frame(in, family, ivlan, &lay);
                        cr_assert_eq(parse_exact(in, ilen, &bare), PKT_TCP);
                        uint32_t len = wrap(in, ilen, (enum layout)l, ofam, ovl, 5, out);
                        char what[96];
                        snprintf(what, sizeof(what), "%s inner v%d vlan %d outer v%d tags %d",
                                 layout_names[l], family, ivlan, ofam, ovl);
                        enum pkt_kind k = parse_exact(out, len, &got);
                        cr_assert_eq(k, PKT_TCP, "%s: kind %d (%s)", what, k,
                                     malformed_name(got.malformed));
                        if (l == L_GRE_IP || l == L_MPLS_IP) {
                            /* No inner Ethernet: the inner VLAN tag is not carried. */
                            bare.vlan = got.vlan;
                            bare.vlan_depth = got.vlan_depth;
                            cr_assert_eq(got.vlan_depth, 0, "%s", what);
                        }
                        assert_same_packet(&got, &bare, what);
                        const struct pkt_encap *e = &got.encap;
                        cr_assert_eq(e->kind, expected_kind((enum layout)l), "%s: kind %s", what,
                                     encap_kind_name(e->kind));
                        cr_assert_eq(e->layers, l == L_MPLS_ERSPAN ? 2 : 1, "%s", what);
                        /* With or without inner Ethernet, the inner IP header ends up
                         * ilen - lay.l3 bytes before the end. */
                        cr_assert_eq(e->l3_off, len - ilen + lay.l3, "%s: l3_off %u", what,
                                     e->l3_off);
                        int mpls_only = l == L_MPLS_IP || l == L_MPLS_PW;
                        if (!mpls_only && l != L_MPLS_ERSPAN) {
                            cr_assert_eq(e->outer_family, ofam, "%s", what);
                            cr_assert_eq(e->outer_vlan, ovl ? 100 : 0, "%s", what);
                        }
                        if (mpls_only)
                            cr_assert_eq(e->outer_family, 0, "%s", what);
                        int seq = l == L_GRE_TEB || l == L_ERSPAN2 || l == L_ERSPAN3 ||
                                  l == L_ERSPAN3_O || l == L_MPLS_ERSPAN;
                        cr_assert_eq(e->has_seq, seq, "%s", what);
                        if (seq)
                            cr_assert_eq(e->seq, 5);
                        if (l == L_ERSPAN2 || l == L_MPLS_ERSPAN)
                            cr_assert(e->id == 321 && e->erspan_vlan == 42, "%s", what);
                        if (l == L_ERSPAN3 || l == L_ERSPAN3_O)
                            cr_assert(e->id == 1000 && e->erspan_vlan == 43, "%s", what);
                        if (l == L_VXLAN)
                            cr_assert_eq(e->id, 0x123456, "%s", what);
                        if (l == L_GRE_TEB)
                            cr_assert_eq(e->id, 0xabcdef, "%s", what);
                        /* Padding after the outer datagram never reaches the inner parser. */
                        if (l != L_MPLS_IP && l != L_MPLS_PW) {
                            memset(out + len, 0xff, 40);
                            struct pkt_info pad;
                            cr_assert_eq(parse_exact(out, len + 40, &pad), PKT_TCP, "%s", what);
                            cr_assert(memcmp(&pad, &got, sizeof(pad)) == 0, "%s: padding", what);
                        }
                    }
}

/* Every prefix of every layout: never crash (exact-size copies under ASan), never a TCP
 * segment from a cut header, and a cut inside the tunnel header has a tunnel reason. */
Test(encap, every_truncation_is_safe)
{
    uint8_t in[PB_MAX_FRAME], out[PB_MAX_FRAME + 256];
    struct pkt_info pi;

    for (int l = 0; l < L_MAX; l++) {
        struct pb_layout lay;
        uint32_t ilen = inner_frame(in, 4, 1, &lay);
        uint32_t len = wrap(in, ilen, (enum layout)l, 4, 1, 9, out);
        for (uint32_t cut = 0; cut < len; cut++) {
            enum pkt_kind k = parse_exact(out, cut, &pi);
            cr_assert(k != PKT_TCP || cut >= len - 10, "%s cut %u: TCP", layout_names[l], cut);
            /* A UDP header too short to show port 4789 is plain (non-TCP) UDP. */
            int udp_unknown = l == L_VXLAN && k == PKT_NON_TCP && cut < 14 + 4 + 20 + 4;
            cr_assert(k == PKT_MALFORMED || k == PKT_TCP || udp_unknown, "%s cut %u: kind %d",
                      layout_names[l], cut, k);
            cr_assert(pi.malformed < MAL_MAX);
        }
    }
}

/* A boundary inside each tunnel header gives that tunnel's reason. */
Test(encap, truncation_reasons)
{
    uint8_t in[PB_MAX_FRAME], out[PB_MAX_FRAME + 256];
    struct pkt_info pi;
    struct pb_layout lay;
    uint32_t ilen = inner_frame(in, 4, 0, &lay);
    const uint32_t o4 = 14 + 20; /* carrier Ethernet + outer IPv4, no tags */
    struct {
        enum layout l;
        uint32_t cut;
        enum malformed_reason want;
    } c[] = {
        {L_GRE_TEB, o4 + 3, MAL_GRE_TRUNCATED},
        {L_GRE_TEB, o4 + 11, MAL_GRE_TRUNCATED},
        {L_ERSPAN2, o4 + 8 + 7, MAL_ERSPAN_TRUNCATED},
        {L_ERSPAN3, o4 + 8 + 11, MAL_ERSPAN_TRUNCATED},
        {L_ERSPAN3_O, o4 + 20 + 7, MAL_ERSPAN_TRUNCATED},
        {L_GRE_TEB, o4 + 12 + 13, MAL_L2_TRUNCATED},
        {L_VXLAN, o4 + 15, MAL_UDP_TRUNCATED},
        {L_MPLS_IP, 14 + 7, MAL_MPLS_TRUNCATED},
        {L_MPLS_IP, 14 + 12, MAL_MPLS_TRUNCATED},
        {L_MPLS_PW, 14 + 8 + 3, MAL_MPLS_TRUNCATED},
        {L_MPLS_IP, 14 + 12 + 19, MAL_IPV4_TRUNCATED},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        uint32_t len = wrap(in, ilen, c[i].l, 4, 0, 1, out);
        cr_assert(c[i].cut < len);
        /* The outer IPv4 length stays that of the whole datagram: a snaplen-cut capture. */
        cr_assert_eq(parse_exact(out, c[i].cut, &pi), PKT_MALFORMED, "%s cut %u",
                     layout_names[c[i].l], c[i].cut);
        cr_assert_eq(pi.malformed, c[i].want, "%s cut %u: %s, want %s", layout_names[c[i].l],
                     c[i].cut, malformed_name(pi.malformed), malformed_name(c[i].want));
    }
}

/* Crafted frames for each encapsulation reason that is not a plain truncation. */
Test(encap, every_encap_malformed_reason)
{
    uint8_t in[PB_MAX_FRAME], out[PB_MAX_FRAME + 256], deep[PB_MAX_FRAME + 512];
    struct pkt_info pi;
    struct pb_layout lay;
    int covered[MAL_MAX] = {0};
    uint32_t ilen = inner_frame(in, 4, 0, &lay);
    const uint32_t o4 = 14 + 20;
    uint32_t len;

#define EXPECT(buf, n, reason, what)                                                               \
    do {                                                                                           \
        cr_assert_eq(parse_exact(buf, n, &pi), PKT_MALFORMED, what);                               \
        cr_assert_eq(pi.malformed, reason, "%s: %s", what, malformed_name(pi.malformed));          \
        covered[reason]++;                                                                         \
    } while (0)

    len = wrap(in, ilen, L_GRE_TEB, 4, 0, 1, out);
    EXPECT(out, o4 + 2, MAL_GRE_TRUNCATED, "gre cut in base header");
    out[o4] |= 0x40; /* routing bit */
    EXPECT(out, len, MAL_GRE_BAD_HEADER, "gre routing bit");
    len = wrap(in, ilen, L_GRE_TEB, 4, 0, 1, out);
    out[o4 + 1] |= 0x08; /* reserved flag bit */
    EXPECT(out, len, MAL_GRE_BAD_HEADER, "gre reserved bit");

    len = wrap(in, ilen, L_ERSPAN2, 4, 0, 1, out);
    EXPECT(out, o4 + 12, MAL_ERSPAN_TRUNCATED, "erspan2 header cut");
    out[o4 + 8] = 0x20; /* version 2 under 0x88be */
    EXPECT(out, len, MAL_ERSPAN_BAD_VERSION, "erspan2 bad version");
    len = wrap(in, ilen, L_ERSPAN3, 4, 0, 1, out);
    out[o4 + 8] = 0x10; /* version 1 under 0x22eb */
    EXPECT(out, len, MAL_ERSPAN_BAD_VERSION, "erspan3 bad version");

    len = wrap(in, ilen, L_VXLAN, 4, 0, 1, out);
    EXPECT(out, o4 + 12, MAL_UDP_TRUNCATED, "vxlan header cut");
    out[o4 + 8] = 0;
    EXPECT(out, len, MAL_VXLAN_BAD_FLAGS, "vxlan I flag clear");
    len = wrap(in, ilen, L_VXLAN, 4, 0, 1, out);
    pb_put16(out + o4 + 4, 12);
    EXPECT(out, len, MAL_ENCAP_BAD_LENGTH, "udp length 12");
    len = wrap(in, ilen, L_VXLAN, 4, 0, 1, out);
    pb_put16(out + 14 + 2, 0); /* outer IPv4 total length 0 */
    EXPECT(out, len, MAL_ENCAP_BAD_LENGTH, "outer ipv4 total length 0 (vxlan)");
    len = wrap(in, ilen, L_GRE_TEB, 4, 0, 1, out);
    pb_put16(out + 14 + 2, 0);
    EXPECT(out, len, MAL_ENCAP_BAD_LENGTH, "outer ipv4 total length 0 (gre)");
    /* Inside a tunnel an IPv4 total length of 0 is not a TSO capture. */
    len = wrap(in, ilen, L_GRE_TEB, 4, 0, 1, out);
    pb_put16(out + len - ilen + 14 + 2, 0);
    EXPECT(out, len, MAL_IPV4_BAD_TOTAL_LEN, "inner ipv4 total length 0");

    len = wrap(in, ilen, L_MPLS_IP, 4, 0, 1, out);
    EXPECT(out, 14 + 5, MAL_MPLS_TRUNCATED, "mpls label cut");
    /* 9 labels, none bottom of stack */
    memcpy(deep, out, 14);
    for (int i = 0; i < 9; i++)
        pb_put32(deep + 14 + 4 * i, (uint32_t)(16 + i) << 12 | 64);
    pb_put32(deep + 14 + 36, 0x45000000);
    EXPECT(deep, 14 + 40, MAL_MPLS_TOO_DEEP, "9 labels");

    /* Four tunnels: GRE in GRE in GRE in GRE. */
    {
        uint32_t n = wrap(in, ilen, L_GRE_TEB, 4, 0, 1, out);
        memcpy(deep, out, n);
        for (int i = 0; i < 3; i++) {
            n = wrap(deep, n, L_GRE_TEB, 4, 0, 1, out);
            memcpy(deep, out, n);
        }
        EXPECT(deep, n, MAL_ENCAP_TOO_DEEP, "4 tunnels");
        /* Three are fine. */
        n = wrap(in, ilen, L_GRE_TEB, 4, 0, 1, out);
        memcpy(deep, out, n);
        for (int i = 0; i < 2; i++) {
            n = wrap(deep, n, L_GRE_TEB, 4, 0, 1, out);
            memcpy(deep, out, n);
        }
        cr_assert_eq(parse_exact(deep, n, &pi), PKT_TCP);
        cr_assert_eq(pi.encap.layers, 3);
    }
    /* MPLS stack 8 deep but fine. */
    for (int r = MAL_GRE_TRUNCATED; r < MAL_MAX; r++)
        cr_assert(covered[r], "no test frame produces %s", malformed_name(r));
#undef EXPECT
}

/* Tunnels that are not mirrors stay what they were: IP but not TCP; unknown MPLS payload. */
Test(encap, non_mirror_payloads)
{
    uint8_t in[PB_MAX_FRAME], out[PB_MAX_FRAME + 256];
    struct pkt_info pi;
    struct pb_layout lay;
    uint32_t ilen = inner_frame(in, 4, 0, &lay);
    const uint32_t o4 = 14 + 20;
    uint32_t len;

    len = wrap(in, ilen, L_GRE_TEB, 4, 0, 1, out);
    out[o4 + 1] |= 1; /* GRE version 1 (PPTP) */
    cr_assert_eq(parse_exact(out, len, &pi), PKT_NON_TCP);
    cr_assert(pi.family == 4 && pi.encap.layers == 0);
    len = wrap(in, ilen, L_GRE_TEB, 4, 0, 1, out);
    pb_put16(out + o4 + 2, 0x883e); /* WCCP */
    cr_assert_eq(parse_exact(out, len, &pi), PKT_NON_TCP);
    len = wrap(in, ilen, L_VXLAN, 4, 0, 1, out);
    pb_put16(out + o4 + 2, 53); /* DNS, not VXLAN */
    cr_assert_eq(parse_exact(out, len, &pi), PKT_NON_TCP);
    cr_assert_eq(pi.encap.layers, 0);
    len = wrap(in, ilen, L_MPLS_IP, 4, 0, 1, out);
    out[14 + 12] = 0x02; /* an Ethernet pseudowire without control word */
    cr_assert_eq(parse_exact(out, len, &pi), PKT_NON_IP);
    cr_assert_eq(pi.family, 0);
    /* ARP inside VXLAN: non-IP, no outer addresses left in the packet fields. */
    {
        uint8_t arp[64];
        struct pb_pkt p;
        pb_pkt_init(&p, 4);
        p.ethertype = PB_ETH_ARP;
        uint32_t al = pb_build(&p, arp, sizeof(arp), NULL);
        len = wrap(arp, al, L_VXLAN, 4, 0, 1, out);
        cr_assert_eq(parse_exact(out, len, &pi), PKT_NON_IP);
        cr_assert(pi.family == 0 && pi.encap.layers == 1 && pi.encap.outer_family == 4);
    }
}

/* Other link types carry tunnels too (raw IP capture of an ERSPAN feed). */
Test(encap, raw_ip_link_carries_tunnels)
{
    uint8_t in[PB_MAX_FRAME], out[PB_MAX_FRAME + 256];
    struct pkt_info bare, pi;
    struct pb_layout lay;
    uint32_t ilen = inner_frame(in, 6, 1, &lay);
    uint32_t len = wrap(in, ilen, L_ERSPAN3, 4, 0, 1, out);
    cr_assert_eq(pkt_parse(in, ilen, &bare), PKT_TCP);
    cr_assert_eq(pkt_parse_link(out + 14, len - 14, LINK_RAW, &pi), PKT_TCP);
    assert_same_packet(&pi, &bare, "raw ip erspan3");
    cr_assert_eq(pi.encap.l3_off, len - ilen + lay.l3 - 14);
}

/* ---- mirror loss ---- */

static struct pkt_encap sess(uint8_t last, uint32_t id, uint32_t seq)
{
    struct pkt_encap e;
    memset(&e, 0, sizeof(e));
    e.outer_src[10] = e.outer_src[11] = 0xff;
    e.outer_src[15] = last;
    e.id = id;
    e.seq = seq;
    e.has_seq = 1;
    return e;
}

Test(mirror_seq, gaps_late_restarts_per_session)
{
    struct mirror_seq *m = calloc(1, sizeof(*m));
    struct mirror_seq_result r;
    struct pkt_encap e;

    e = sess(1, 7, 100);
    r = mirror_seq_update(m, &e);
    cr_assert(r.lost == 0 && !r.late && !r.restart && !r.untracked);
    e = sess(1, 7, 101);
    cr_assert_eq(mirror_seq_update(m, &e).lost, 0);
    e = sess(1, 7, 105); /* 102..104 missing */
    cr_assert_eq(mirror_seq_update(m, &e).lost, 3);
    e = sess(1, 7, 103); /* one of them, late */
    r = mirror_seq_update(m, &e);
    cr_assert(r.late && r.lost == 0);
    e = sess(1, 7, 106);
    cr_assert_eq(mirror_seq_update(m, &e).lost, 0);
    /* Another session of the same device and another device: counted apart. */
    e = sess(1, 8, 5000);
    cr_assert_eq(mirror_seq_update(m, &e).lost, 0);
    e = sess(2, 7, 1);
    cr_assert_eq(mirror_seq_update(m, &e).lost, 0);
    e = sess(1, 7, 108);
    cr_assert_eq(mirror_seq_update(m, &e).lost, 1);
    /* Wrap-around of the 32-bit counter is not a gap. */
    e = sess(3, 1, 0xffffffffu);
    mirror_seq_update(m, &e);
    e = sess(3, 1, 0);
    r = mirror_seq_update(m, &e);
    cr_assert(r.lost == 0 && !r.late && !r.restart);
    /* A huge jump is a restart, not millions of lost copies. */
    e = sess(3, 1, 5000000);
    r = mirror_seq_update(m, &e);
    cr_assert(r.restart && r.lost == 0);
    free(m);
}

Test(mirror_seq, table_is_bounded)
{
    struct mirror_seq *m = calloc(1, sizeof(*m));
    unsigned untracked = 0;
    for (uint32_t id = 0; id < 10 * MSEQ_SLOTS; id++) {
        struct pkt_encap e = sess(9, id, 1);
        untracked += mirror_seq_update(m, &e).untracked;
    }
    cr_assert_gt(untracked, 0);
    cr_assert_leq(10 * MSEQ_SLOTS - untracked, MSEQ_SLOTS);
    free(m);
}

/* Through the engine: a wrapped conversation gives the same events and counters as the bare
 * one, plus the tunnel counters; lost copies are counted. */
Test(encap, engine_counts_wrapped_like_bare)
{
    struct pb_harness *bare = pb_harness_new(NULL), *wrapped = pb_harness_new(NULL);
    struct pb_conv c;
    pb_conv_init(&c, 4);
    const struct pb_seg segs[] = {
        PB_C(TCP_SYN, 0, 0, 0),
        PB_S(TCP_SYN | TCP_ACK, 0, 1, 0),
        PB_C(TCP_ACK, 1, 1, 0),
        PB_C(TCP_ACK | TCP_PSH, 1, 1, 100),
        PB_S(TCP_RST | TCP_ACK, 1, 101, 0),
    };
    uint8_t in[PB_MAX_FRAME], out[PB_MAX_FRAME + 256];
    uint32_t seq = 10;
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        struct pb_pkt p;
        struct pb_seg s = segs[i];
        s.t = 1000 * i;
        pb_conv_pkt(&c, &s, &p);
        uint32_t ilen = pb_build(&p, in, sizeof(in), NULL);
        engine_input(bare->e, in, ilen, pb_conv_ts(&c, &s));
        if (i == 2)
            seq += 2; /* two copies lost on the way: the analysed frames are all there */
        uint32_t len = wrap(in, ilen, L_ERSPAN2, 4, 1, seq++, out);
        engine_input(wrapped->e, out, len, pb_conv_ts(&c, &s));
    }
    engine_flush(bare->e);
    engine_flush(wrapped->e);
    cr_assert_eq(bare->nev, 1);
    cr_assert_eq(wrapped->nev, bare->nev);
    cr_assert(memcmp(wrapped->ev, bare->ev, sizeof(*bare->ev)) == 0);
    cr_assert(memcmp(wrapped->stats.causes, bare->stats.causes, sizeof(bare->stats.causes)) == 0);
    cr_assert_eq(wrapped->stats.tcp_packets, bare->stats.tcp_packets);
    cr_assert_eq(wrapped->stats.encap[ENC_ERSPAN2], 5);
    cr_assert_eq(wrapped->stats.mirror_lost, 2);
    cr_assert_eq(bare->stats.encap[ENC_ERSPAN2], 0);
    pb_harness_free(bare);
    pb_harness_free(wrapped);
}
