/*
 * libFuzzer target: the wire parser.
 *
 * The input is one frame. It is parsed as every link type pkt_parse_link() supports
 * (Ethernet through pkt_parse() and pkt_parse_link(), raw IP, BSD/OpenBSD loopback, Linux
 * cooked v1/v2) and as one it does not. libFuzzer hands the bytes over in a heap block of
 * exactly their size, so ASan catches any read outside [data, data + len). On top of memory
 * safety the target checks what the parser promises and aborts when a promise is broken:
 *   - the kind and the malformed reason are in range and agree with each other;
 *   - a TCP segment has family 4 or 6, sane VLAN and option fields, and a payload length
 *     equal to the one computed here from the IP header (IPv4 total length 0 = a TSO
 *     super-segment: the frame's length), and its ports, flags, TTL and addresses are those
 *     of the frame;
 *   - the result is deterministic, pkt_parse() == pkt_parse_link(LINK_ETHERNET) == the
 *     general layer-by-layer path (pp_ethernet(), which the fast path for common frames
 *     bypasses), and it does
 *     not depend on bytes past the end of the IP datagram (Ethernet padding, trailers):
 *     appending bytes to a frame that parsed as anything but malformed gives the very same
 *     struct pkt_info (except for a TSO segment, whose length is the frame's).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pkt_parse.h"
#include "pkt_parse_int.h" /* pp_ethernet(): the general path, to hold the fast path against */

#define PAD_MAX 64

/* The checks are not what the fuzzer should explore: keep them out of coverage feedback. */
#define NO_COV __attribute__((no_sanitize("coverage")))

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

NO_COV static void check_opts(const struct pkt_info *p)
{
    const struct tcp_opts *o = &p->opt;

    CHECK(o->wscale <= 14 || o->wscale == 0xff);
    CHECK(o->sack_ok <= 1);
    CHECK(o->has_ts <= 1);
    if (!o->has_ts)
        CHECK(o->tsval == 0 && o->tsecr == 0);
    if (p->malformed == MAL_TCP_BAD_OPTION) {
        /* A bad option voids everything that was read from the option list. */
        CHECK(o->mss == 0 && o->wscale == 0xff && !o->sack_ok && !o->has_ts);
    }
}

/* Where the IP header starts for this link type (the parser reports the VLAN depth). Inside
 * a tunnel only the parser knows: its l3_off is checked against this for bare frames. */
static size_t l3_offset(int link, const struct pkt_info *p)
{
    if (p->encap.layers)
        return p->encap.l3_off;
    switch (link) {
    case LINK_ETHERNET:
        return 14 + 4 * (size_t)p->vlan_depth;
    case LINK_LINUX_SLL:
        return 16 + 4 * (size_t)p->vlan_depth;
    case LINK_LINUX_SLL2:
        return 20;
    case LINK_NULL:
    case LINK_LOOP:
        return 4;
    default: /* LINK_RAW */
        return 0;
    }
}

/* A TCP segment in an IPv4 datagram whose total length field is 0 (TSO capture). */
static int ipv4_tso(const uint8_t *data, size_t len, int link, const struct pkt_info *p)
{
    size_t l3 = l3_offset(link, p);
    /* Inside a tunnel a total length of 0 is malformed, never a TSO segment. */
    return p->encap.layers == 0 && p->family == 4 && len >= l3 + 4 && rd16(data + l3 + 2) == 0;
}

/* Checks that need the frame: the IP length, read here without the parser's help. */
NO_COV static void check_tcp_lengths(const uint8_t *data, size_t len, int link,
                                     const struct pkt_info *p)
{
    size_t l3 = l3_offset(link, p);

    CHECK(p->encap.l3_off == l3);
    if ((link == LINK_ETHERNET || link == LINK_LINUX_SLL) && p->encap.kind != ENC_MPLS &&
        p->encap.kind != ENC_GRE) {
        /* The ethertype before the IP header names the IP version. Not after GRE: its
         * protocol field is followed by the optional checksum, key and sequence number
         * (ip[0]'s version, checked below, covers that case). */
        CHECK(len >= l3);
        CHECK(rd16(data + l3 - 2) == (p->family == 4 ? 0x0800 : 0x86dd));
    }
    if (p->family == 4) {
        /* Version, IHL, total length, TCP header: all inside the frame. */
        CHECK(len >= l3 + 20 + 20);
        const uint8_t *ip = data + l3;
        CHECK(ip[0] >> 4 == 4);
        uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
        uint32_t total = rd16(ip + 2);
        if (total == 0) /* TSO super-segment: the frame says how long it is */
            total = (uint32_t)(len - l3);
        CHECK(ihl >= 20 && len >= l3 + ihl + 20);
        CHECK(ip[9] == 6);
        CHECK((rd16(ip + 6) & 0x3fff) == 0); /* not a fragment */
        CHECK(total >= ihl + 20);
        const uint8_t *tcp = ip + ihl;
        uint32_t doff = (uint32_t)(tcp[12] >> 4) * 4;
        CHECK(doff >= 20 && len >= l3 + ihl + doff);
        CHECK(total >= ihl + doff);
        CHECK(p->payload_len == total - ihl - doff);
        CHECK(p->sport == rd16(tcp) && p->dport == rd16(tcp + 2));
        CHECK(p->flags == tcp[13]);
        CHECK(p->ttl == ip[8]);
        CHECK(p->ip_id == rd16(ip + 4));
        CHECK(memcmp(p->src + 12, ip + 12, 4) == 0 && memcmp(p->dst + 12, ip + 16, 4) == 0);
    } else {
        CHECK(len >= l3 + 40 + 20);
        const uint8_t *ip = data + l3;
        CHECK(ip[0] >> 4 == 6);
        uint32_t plen = rd16(ip + 4);
        CHECK(plen >= 20);
        /* Extension headers sit between the fixed header and TCP: only an upper bound. */
        CHECK(p->payload_len <= plen - 20);
        CHECK(p->ttl == ip[7]);
        CHECK(memcmp(p->src, ip + 8, 16) == 0 && memcmp(p->dst, ip + 24, 16) == 0);
    }
}

NO_COV static void check_info(const uint8_t *data, size_t len, int link, enum pkt_kind k,
                              const struct pkt_info *p)
{
    CHECK(k >= PKT_TCP && k <= PKT_MALFORMED);
    CHECK(p->malformed < MAL_MAX);
    CHECK(p->vlan_depth <= PKT_MAX_VLANS);
    if (link != LINK_ETHERNET && link != LINK_LINUX_SLL && p->encap.layers == 0)
        CHECK(p->vlan_depth == 0); /* no inline tags on the other link types */
    /* Tunnels: bounded, consistent, and absent unless a tunnel was removed. */
    const struct pkt_encap *e = &p->encap;
    CHECK(e->layers <= PKT_MAX_ENCAP && e->kind < ENC_KIND_MAX && e->has_seq <= 1);
    CHECK((e->layers == 0) == (e->kind == ENC_NONE));
    CHECK(e->outer_family == 0 || e->outer_family == 4 || e->outer_family == 6);
    CHECK(e->outer_vlan <= 0x0fff && e->erspan_vlan <= 0x0fff);
    if (!e->has_seq)
        CHECK(e->seq == 0);
    if (e->layers == 0)
        CHECK(e->outer_family == 0 && e->outer_vlan == 0 && e->id == 0 && !e->has_seq);
    CHECK(e->l3_off <= len);
    CHECK(p->vlan <= 0x0fff);
    if (p->vlan_depth == 0)
        CHECK(p->vlan == 0);
    CHECK(p->df <= 1);
    CHECK(p->family == 0 || p->family == 4 || p->family == 6);
    if (p->family == 4) {
        CHECK(memcmp(p->src, v4_mapped_prefix, 12) == 0);
        CHECK(memcmp(p->dst, v4_mapped_prefix, 12) == 0);
    }
    if (p->family == 6)
        CHECK(p->df == 1 && p->ip_id == 0);

    switch (k) {
    case PKT_TCP:
        CHECK(p->family == 4 || p->family == 6);
        CHECK(p->malformed == MAL_NONE || p->malformed == MAL_TCP_BAD_OPTION);
        /* payload_len comes from a 16-bit IP length minus at least 20 bytes of TCP header
         * (and 20 of IPv4 header). */
        CHECK(p->payload_len <= (p->family == 4 ? 65535u - 40 : 65535u - 20));
        check_opts(p);
        check_tcp_lengths(data, len, link, p);
        break;
    case PKT_MALFORMED:
        CHECK(p->malformed != MAL_NONE && p->malformed != MAL_TCP_BAD_OPTION);
        break;
    case PKT_NON_IP:
        CHECK(p->family == 0 && p->malformed == MAL_NONE);
        break;
    case PKT_NON_TCP:
    case PKT_FRAGMENT:
        CHECK(p->family == 4 || p->family == 6);
        CHECK(p->malformed == MAL_NONE);
        break;
    }
    if (k != PKT_TCP) {
        /* TCP fields stay zero unless the frame was a TCP segment. */
        CHECK(p->sport == 0 && p->dport == 0 && p->seq == 0 && p->ack == 0 && p->flags == 0);
        CHECK(p->payload_len == 0 && p->opt.wscale == 0xff);
    }
}

static const int links[] = {LINK_ETHERNET, LINK_RAW,       LINK_NULL,
                            LINK_LOOP,     LINK_LINUX_SLL, LINK_LINUX_SLL2};

static void one_link(const uint8_t *data, size_t size, int link)
{
    struct pkt_info a, b;
    uint32_t len = (uint32_t)size;

    /* Poison the output first: the parser must set every byte it reports. */
    memset(&a, 0xa5, sizeof(a));
    enum pkt_kind k = pkt_parse_link(data, len, link, &a);
    check_info(data, size, link, k, &a);

    memset(&b, 0x5a, sizeof(b));
    CHECK(pkt_parse_link(data, len, link, &b) == k);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    if (link == LINK_ETHERNET) {
        memset(&b, 0x3c, sizeof(b));
        CHECK(pkt_parse(data, len, &b) == k);
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        /* The fast path for common frames and the general, layer-by-layer path must agree
         * on every frame: a field one of them forgets would be missing for nearly all
         * traffic, or for the unusual rest. */
        memset(&b, 0, sizeof(b));
        b.opt.wscale = 0xff;
        CHECK(pp_ethernet(data, len, 0, &b) == k);
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    }

    if (k != PKT_MALFORMED && !(k == PKT_TCP && ipv4_tso(data, size, link, &a))) {
        /* Trailing bytes past what was parsed must not change the result. The padding
         * length and value come from the input so that the fuzzer can vary them. */
        uint32_t pad = size ? 1 + data[size - 1] % PAD_MAX : 1;
        uint8_t *buf = malloc(size + pad);
        if (!buf)
            return;
        if (size)
            memcpy(buf, data, size);
        memset(buf + size, size ? data[0] : 0, pad);
        memset(&b, 0, sizeof(b));
        CHECK(pkt_parse_link(buf, len + pad, link, &b) == k);
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pkt_info p;

    if (size > UINT32_MAX - PAD_MAX)
        return 0;
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        CHECK(pkt_link_supported(links[i]));
        one_link(data, size, links[i]);
    }
    /* A link type the parser does not know: nothing is parsed. */
    CHECK(!pkt_link_supported(147));
    CHECK(pkt_parse_link(data, (uint32_t)size, 147, &p) == PKT_NON_IP);
    CHECK(p.family == 0 && p.malformed == MAL_NONE);
    return 0;
}
