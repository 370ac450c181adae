/*
 * pkt_parse(): every field of every supported encapsulation, every malformed reason, and
 * every truncation length of real frames. Frames are copied into heap buffers of exactly the
 * parsed length, so AddressSanitizer catches any read past the end.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cause.h"
#include "pkt_parse.h"
#include "pktbuild.h"

/* Parse len bytes of frame from an exact-size heap copy. */
static enum pkt_kind parse_exact(const uint8_t *frame, uint32_t len, struct pkt_info *pi)
{
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, frame, len);
    enum pkt_kind k = pkt_parse(len ? copy : NULL, len, pi);
    free(copy);
    return k;
}

static void assert_info_eq(const struct pkt_info *got, const struct pkt_info *want)
{
    cr_assert_arr_eq(got->src, want->src, 16, "src address");
    cr_assert_arr_eq(got->dst, want->dst, 16, "dst address");
    cr_assert_eq(got->sport, want->sport, "sport %u != %u", got->sport, want->sport);
    cr_assert_eq(got->dport, want->dport, "dport %u != %u", got->dport, want->dport);
    cr_assert_eq(got->family, want->family, "family");
    cr_assert_eq(got->ttl, want->ttl, "ttl %u != %u", got->ttl, want->ttl);
    cr_assert_eq(got->flags, want->flags, "flags %#x != %#x", got->flags, want->flags);
    cr_assert_eq(got->df, want->df, "df");
    cr_assert_eq(got->ip_id, want->ip_id, "ip_id %#x != %#x", got->ip_id, want->ip_id);
    cr_assert_eq(got->vlan, want->vlan, "vlan %u != %u", got->vlan, want->vlan);
    cr_assert_eq(got->vlan_depth, want->vlan_depth, "vlan_depth %u != %u", got->vlan_depth,
                 want->vlan_depth);
    cr_assert_eq(got->malformed, want->malformed, "malformed %s != %s",
                 malformed_name(got->malformed), malformed_name(want->malformed));
    cr_assert_eq(got->win, want->win, "win");
    cr_assert_eq(got->seq, want->seq, "seq %u != %u", got->seq, want->seq);
    cr_assert_eq(got->ack, want->ack, "ack %u != %u", got->ack, want->ack);
    cr_assert_eq(got->payload_len, want->payload_len, "payload_len %u != %u", got->payload_len,
                 want->payload_len);
    cr_assert_eq(got->opt.mss, want->opt.mss, "mss %u != %u", got->opt.mss, want->opt.mss);
    cr_assert_eq(got->opt.wscale, want->opt.wscale, "wscale %u != %u", got->opt.wscale,
                 want->opt.wscale);
    cr_assert_eq(got->opt.sack_ok, want->opt.sack_ok, "sack_ok");
    cr_assert_eq(got->opt.has_ts, want->opt.has_ts, "has_ts");
    cr_assert_eq(got->opt.tsval, want->opt.tsval, "tsval");
    cr_assert_eq(got->opt.tsecr, want->opt.tsecr, "tsecr");
}

/* Build p, parse it whole, expect PKT_TCP with exactly pb_to_info(p). */
static void check_roundtrip(const struct pb_pkt *p)
{
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info got, want;
    uint32_t len = pb_build(p, buf, sizeof(buf), NULL);

    enum pkt_kind k = parse_exact(buf, len, &got);
    cr_assert_eq(k, PKT_TCP, "kind %d, malformed %s", k, malformed_name(got.malformed));
    pb_to_info(p, &want);
    assert_info_eq(&got, &want);
}

/* A SYN with every option the parser decodes. */
static void full_syn(struct pb_pkt *p, int family)
{
    pb_pkt_init(p, family);
    p->sport = 51234;
    p->dport = 443;
    p->seq = 0xfedcba98;
    p->ack = 0x01234567;
    p->flags = TCP_SYN | TCP_ACK | TCP_ECE;
    p->win = 29200;
    p->ttl = 57;
    p->ip_id = 0xbeef;
    p->mss = 1460;
    p->wscale = 9;
    p->sack_ok = 1;
    p->has_ts = 1;
    p->tsval = 0xa1b2c3d4;
    p->tsecr = 0x11223344;
}

/* ---------------------------------------------------------------- fields */

Test(pkt_parse, ipv4_tcp_all_fields)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    full_syn(&p, 4);
    p.payload_len = 100;
    check_roundtrip(&p);

    /* And the raw values, independently of pb_to_info(). */
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    static const uint8_t src[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    static const uint8_t dst[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2};
    cr_assert_arr_eq(pi.src, src, 16);
    cr_assert_arr_eq(pi.dst, dst, 16);
    cr_assert_eq(pi.family, 4);
    cr_assert_eq(pi.sport, 51234);
    cr_assert_eq(pi.dport, 443);
    cr_assert_eq(pi.seq, 0xfedcba98u);
    cr_assert_eq(pi.ack, 0x01234567u);
    cr_assert_eq(pi.flags, TCP_SYN | TCP_ACK | TCP_ECE);
    cr_assert_eq(pi.win, 29200);
    cr_assert_eq(pi.ttl, 57);
    cr_assert_eq(pi.ip_id, 0xbeef);
    cr_assert_eq(pi.df, 1);
    cr_assert_eq(pi.payload_len, 100u);
    cr_assert_eq(pi.opt.mss, 1460);
    cr_assert_eq(pi.opt.wscale, 9);
    cr_assert_eq(pi.opt.sack_ok, 1);
    cr_assert_eq(pi.opt.has_ts, 1);
    cr_assert_eq(pi.opt.tsval, 0xa1b2c3d4u);
    cr_assert_eq(pi.opt.tsecr, 0x11223344u);
    cr_assert_eq(pi.vlan, 0);
    cr_assert_eq(pi.vlan_depth, 0);
    cr_assert_eq(pi.malformed, MAL_NONE);
}

Test(pkt_parse, ipv4_df_clear_and_no_options)
{
    struct pb_pkt p;
    struct pkt_info pi;
    uint8_t buf[PB_MAX_FRAME];

    pb_pkt_init(&p, 4);
    p.df = 0;
    p.flags = TCP_FIN | TCP_PSH | TCP_ACK | TCP_URG | TCP_CWR;
    check_roundtrip(&p);
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.df, 0);
    cr_assert_eq(pi.opt.mss, 0);
    cr_assert_eq(pi.opt.wscale, 0xff, "absent window scale must read 0xff");
    cr_assert_eq(pi.opt.sack_ok, 0);
    cr_assert_eq(pi.opt.has_ts, 0);
    cr_assert_eq(pi.payload_len, 0u);
}

Test(pkt_parse, ipv6_tcp_all_fields)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    full_syn(&p, 6);
    pb_addr(p.src, "2001:db8:aa::1:2");
    pb_addr(p.dst, "fe80::abcd");
    p.payload_len = 1200;
    check_roundtrip(&p);

    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    static const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2};
    cr_assert_arr_eq(pi.src, src, 16);
    cr_assert_eq(pi.dst[0], 0xfe);
    cr_assert_eq(pi.dst[15], 0xcd);
    cr_assert_eq(pi.family, 6);
    cr_assert_eq(pi.ttl, 57, "hop limit");
    cr_assert_eq(pi.df, 1, "IPv6 never fragments in flight: df reads 1");
    cr_assert_eq(pi.ip_id, 0);
    cr_assert_eq(pi.payload_len, 1200u);
}

Test(pkt_parse, ipv4_mapped_ipv6_address_is_not_ipv4)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    pb_pkt_init(&p, 6);
    pb_addr(p.src, "::ffff:10.0.0.1");
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.family, 6);
}

Test(pkt_parse, vlan_8021q)
{
    struct pb_pkt p;
    const uint16_t tpid[1] = {PB_ETH_VLAN};
    const uint16_t tci[1] = {0xa123}; /* PCP 5, DEI 0, VID 0x123 */

    full_syn(&p, 4);
    pb_vlans(&p, 1, tpid, tci);
    check_roundtrip(&p);

    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.vlan, 0x123, "priority bits must be masked off");
    cr_assert_eq(pi.vlan_depth, 1);
    cr_assert_eq(pi.sport, 51234);

    full_syn(&p, 6);
    pb_vlans(&p, 1, tpid, tci);
    check_roundtrip(&p);
}

Test(pkt_parse, qinq_outer_vlan_reported)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    const uint16_t tpid[2] = {PB_ETH_QINQ, PB_ETH_VLAN};
    const uint16_t tci[2] = {0x0064, 0x10c8}; /* outer 100, inner 200 */

    full_syn(&p, 4);
    pb_vlans(&p, 2, tpid, tci);
    check_roundtrip(&p);
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.vlan, 100);
    cr_assert_eq(pi.vlan_depth, 2);

    /* The pre-standard 0x9100 TPID is also a tag. */
    const uint16_t old[2] = {0x9100, PB_ETH_VLAN};
    full_syn(&p, 6);
    pb_vlans(&p, 2, old, tci);
    check_roundtrip(&p);
}

Test(pkt_parse, vlan_depth_limit)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    uint16_t tpid[PB_MAX_VLANS], tci[PB_MAX_VLANS];

    for (int i = 0; i < PB_MAX_VLANS; i++) {
        tpid[i] = i == 0 ? PB_ETH_QINQ : PB_ETH_VLAN;
        tci[i] = (uint16_t)(10 + i);
    }
    pb_pkt_init(&p, 4);
    pb_vlans(&p, PKT_MAX_VLANS, tpid, tci);
    check_roundtrip(&p);

    pb_vlans(&p, PKT_MAX_VLANS + 1, tpid, tci);
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_MALFORMED);
    cr_assert_eq(pi.malformed, MAL_VLAN_TOO_DEEP);
}

Test(pkt_parse, ipv4_options)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    struct pb_layout lay;

    /* Router alert (4 bytes), then a 40-byte maximum: record route filling the header. */
    full_syn(&p, 4);
    p.payload_len = 77;
    p.ip_opts[0] = 0x94;
    p.ip_opts[1] = 4;
    p.ip_opts_len = 4;
    check_roundtrip(&p);
    uint32_t len = pb_build(&p, buf, sizeof(buf), &lay);
    cr_assert_eq(lay.l4 - lay.l3, 24u);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 77u);

    pb_pkt_init(&p, 4);
    p.payload_len = 5;
    p.ip_opts[0] = 7; /* record route */
    p.ip_opts[1] = 39;
    p.ip_opts[2] = 4;
    p.ip_opts_len = 40;
    check_roundtrip(&p);
    len = pb_build(&p, buf, sizeof(buf), &lay);
    cr_assert_eq(lay.l4 - lay.l3, 60u);
    cr_assert_eq(buf[lay.l3] & 0x0f, 15);

    /* Odd option length is padded to a 4-byte multiple. */
    pb_pkt_init(&p, 4);
    p.ip_opts[0] = 1;
    p.ip_opts_len = 3;
    check_roundtrip(&p);
}

Test(pkt_parse, ipv6_extension_chain)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    struct pb_layout lay;

    full_syn(&p, 6);
    p.payload_len = 33;
    p.n_ext = 5;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_HOPOPTS, .len = 0};
    p.ext[1] = (struct pb_v6ext){.type = PB_IP_DSTOPTS, .len = 2};
    p.ext[2] = (struct pb_v6ext){.type = PB_IP_ROUTING, .len = 1};
    p.ext[3] = (struct pb_v6ext){.type = PB_IP_AH, .len = 4};           /* 24 bytes */
    p.ext[4] = (struct pb_v6ext){.type = PB_IP_FRAGMENT, .frag_id = 7}; /* atomic */
    check_roundtrip(&p);
    uint32_t len = pb_build(&p, buf, sizeof(buf), &lay);
    cr_assert_eq(lay.l4 - lay.l3, 40u + 8 + 24 + 16 + 24 + 8);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 33u, "payload must exclude the extension headers");
}

Test(pkt_parse, ipv6_extension_depth_limit)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    pb_pkt_init(&p, 6);
    p.n_ext = PKT_MAX_IP6_EXT;
    for (int i = 0; i < p.n_ext; i++)
        p.ext[i] = (struct pb_v6ext){.type = i & 1 ? PB_IP_DSTOPTS : PB_IP_HOPOPTS};
    check_roundtrip(&p);

    p.n_ext = PKT_MAX_IP6_EXT + 1;
    p.ext[PKT_MAX_IP6_EXT] = (struct pb_v6ext){.type = PB_IP_DSTOPTS};
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_MALFORMED);
    cr_assert_eq(pi.malformed, MAL_IPV6_EXT_TOO_DEEP);
}

Test(pkt_parse, tcp_options_each_alone)
{
    struct pb_pkt p;

    pb_pkt_init(&p, 4);
    p.mss = 536;
    check_roundtrip(&p);

    pb_pkt_init(&p, 4);
    p.wscale = 0;
    check_roundtrip(&p);

    pb_pkt_init(&p, 4);
    p.wscale = 14;
    check_roundtrip(&p);

    pb_pkt_init(&p, 4);
    p.sack_ok = 1;
    check_roundtrip(&p);

    pb_pkt_init(&p, 6);
    p.has_ts = 1;
    p.tsval = 1;
    p.tsecr = 0xffffffff;
    check_roundtrip(&p);
}

Test(pkt_parse, tcp_window_scale_clamped_to_14)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    pb_pkt_init(&p, 4);
    p.wscale = 200;
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.opt.wscale, 14, "RFC 7323 §2.3: shift counts above 14 are taken as 14");
    cr_assert_eq(pi.malformed, MAL_NONE);
}

Test(pkt_parse, tcp_unknown_options_skipped_by_length)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    /* SACK block (kind 5, len 10), MPTCP-ish kind 30 len 4, then MSS. */
    static const uint8_t raw[] = {5, 10, 0, 0,    0,    1, 0, 0,    0,
                                  2, 30, 4, 0xaa, 0xbb, 2, 4, 0x05, 0xb4};

    pb_pkt_init(&p, 4);
    p.has_ts = 1;
    p.tsval = 5;
    p.tsecr = 6;
    memcpy(p.raw_opts, raw, sizeof(raw));
    p.raw_opts_len = sizeof(raw);
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.malformed, MAL_NONE);
    cr_assert_eq(pi.opt.mss, 1460, "MSS after unknown options must be found");
    cr_assert_eq(pi.opt.has_ts, 1);
    cr_assert_eq(pi.opt.tsval, 5u);
}

Test(pkt_parse, tcp_eol_ends_option_list)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    /* EOL, then bytes that would be a bad option if they were parsed. */
    static const uint8_t raw[] = {0, 2, 0, 9};

    pb_pkt_init(&p, 4);
    p.mss = 1400;
    memcpy(p.raw_opts, raw, sizeof(raw));
    p.raw_opts_len = sizeof(raw);
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.malformed, MAL_NONE);
    cr_assert_eq(pi.opt.mss, 1400);
}

/* Each bad option: still PKT_TCP, MAL_TCP_BAD_OPTION, options voided, other fields intact. */
Test(pkt_parse, tcp_bad_options)
{
    static const struct {
        const char *what;
        uint8_t raw[8];
        uint8_t len;
    } bad[] = {
        {"length 0", {30, 0, 0, 0}, 4},
        {"length 1", {30, 1, 0, 0}, 4},
        {"length past the header", {30, 9, 0, 0}, 4},
        {"kind in the last byte", {1, 1, 1, 30}, 4},
        {"MSS length 3", {2, 3, 0, 1}, 4},
        {"MSS length 6", {2, 6, 0, 1, 0, 0, 1, 1}, 8},
        {"window scale length 4", {3, 4, 7, 1}, 4},
        {"SACK-permitted length 3", {4, 3, 0, 1}, 4},
        {"timestamps length 8", {8, 8, 0, 0, 0, 1, 0, 0}, 8},
    };
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        full_syn(&p, i & 1 ? 6 : 4);
        p.payload_len = 10;
        memcpy(p.raw_opts, bad[i].raw, bad[i].len);
        p.raw_opts_len = bad[i].len;
        uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
        enum pkt_kind k = parse_exact(buf, len, &pi);
        cr_assert_eq(k, PKT_TCP, "%s: kind %d", bad[i].what, k);
        cr_assert_eq(pi.malformed, MAL_TCP_BAD_OPTION, "%s: malformed %s", bad[i].what,
                     malformed_name(pi.malformed));
        cr_assert_eq(pi.opt.mss, 0, "%s: options read before the bad one must be voided",
                     bad[i].what);
        cr_assert_eq(pi.opt.wscale, 0xff, "%s", bad[i].what);
        cr_assert_eq(pi.opt.sack_ok, 0, "%s", bad[i].what);
        cr_assert_eq(pi.opt.has_ts, 0, "%s", bad[i].what);
        cr_assert_eq(pi.sport, 51234, "%s", bad[i].what);
        cr_assert_eq(pi.seq, 0xfedcba98u, "%s", bad[i].what);
        cr_assert_eq(pi.flags, TCP_SYN | TCP_ACK | TCP_ECE, "%s", bad[i].what);
        cr_assert_eq(pi.payload_len, 10u, "%s", bad[i].what);
    }
}

/* The option layouts decoded without the option loop (NOP NOP TS alone; MSS, SACK-permitted,
 * TS, NOP, WS, as in a Linux SYN), with more options after them, and with a bad option after
 * them: a bad option still voids what those steps read. */
#define TS_7_9     8, 10, 0, 0, 0, 7, 0, 0, 0, 9 /* timestamps, tsval 7, tsecr 9 */
#define MSS_SACKOK 2, 4, 5, 0xb4, 4, 2           /* MSS 1460, SACK-permitted */
Test(pkt_parse, tcp_common_option_layouts)
{
    static const struct {
        const char *what;
        uint8_t len;
        uint8_t bad; /* expect MAL_TCP_BAD_OPTION, all options voided */
        struct {
            uint16_t mss;
            uint8_t sack_ok, has_ts, wscale;
        } want;
        uint8_t raw[24];
    } cases[] = {
        {"NOP NOP TS", 12, 0, {0, 0, 1, 0xff}, {1, 1, TS_7_9}},
        {"NOP NOP TS, SACK block", 24, 0, {0, 0, 1, 0xff}, {1, 1, TS_7_9, 1, 1, 5, 10}},
        {"NOP NOP TS, bad option", 16, 1, {0, 0, 0, 0xff}, {1, 1, TS_7_9, 30, 9}},
        {"NOP NOP, TS length 11", 12, 1, {0, 0, 0, 0xff}, {1, 1, 8, 11}},
        {"NOP NOP, TS length 9", 12, 1, {0, 0, 0, 0xff}, {1, 1, 8, 9}},
        {"MSS alone", 4, 0, {1460, 0, 0, 0xff}, {2, 4, 5, 0xb4}},
        {"MSS, SACK-permitted, TS", 16, 0, {1460, 1, 1, 0xff}, {MSS_SACKOK, TS_7_9}},
        {"Linux SYN", 20, 0, {1460, 1, 1, 7}, {MSS_SACKOK, TS_7_9, 1, 3, 3, 7}},
        {"Linux SYN, bad WS", 20, 1, {0, 0, 0, 0xff}, {MSS_SACKOK, TS_7_9, 1, 3, 4, 7}},
        {"Linux SYN, WS 15 clamped", 20, 0, {1460, 1, 1, 14}, {MSS_SACKOK, TS_7_9, 1, 3, 3, 15}},
        {"Linux SYN, then NOPs",
         24,
         0,
         {1460, 1, 1, 7},
         {MSS_SACKOK, TS_7_9, 1, 3, 3, 7, 1, 1, 1, 1}},
        {"Linux SYN, then a bad option",
         24,
         1,
         {0, 0, 0, 0xff},
         {MSS_SACKOK, TS_7_9, 1, 3, 3, 7, 30, 9, 0, 0}},
        {"Linux SYN, WS past the end", 20, 1, {0, 0, 0, 0xff}, {MSS_SACKOK, TS_7_9, 1, 1, 3, 3}},
        {"MSS, SACK-permitted, TS cut", 8, 1, {0, 0, 0, 0xff}, {MSS_SACKOK, 8, 10}},
        {"MSS length 5", 8, 1, {0, 0, 0, 0xff}, {2, 5, 5, 0xb4}},
    };
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *what = cases[i].what;
        for (int family = 4; family <= 6; family += 2) {
            pb_pkt_init(&p, family);
            p.payload_len = 100;
            memcpy(p.raw_opts, cases[i].raw, cases[i].len);
            p.raw_opts_len = cases[i].len;
            uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
            cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP, "%s", what);
            cr_assert_eq(pi.payload_len, 100u, "%s", what);
            cr_assert_eq(pi.sport, 40000, "%s", what);
            cr_assert_eq(pi.malformed, cases[i].bad ? MAL_TCP_BAD_OPTION : MAL_NONE, "%s", what);
            cr_assert_eq(pi.opt.mss, cases[i].want.mss, "%s", what);
            cr_assert_eq(pi.opt.sack_ok, cases[i].want.sack_ok, "%s", what);
            cr_assert_eq(pi.opt.has_ts, cases[i].want.has_ts, "%s", what);
            cr_assert_eq(pi.opt.wscale, cases[i].want.wscale, "%s", what);
            cr_assert_eq(pi.opt.tsval, cases[i].want.has_ts ? 7u : 0u, "%s", what);
            cr_assert_eq(pi.opt.tsecr, cases[i].want.has_ts ? 9u : 0u, "%s", what);
        }
    }
}
#undef TS_7_9
#undef MSS_SACKOK

/* The option rules as the loop alone applies them, with no layout taken in one step: what
 * the parser must give for any option list (bad: a silly option voids them all). */
static int ref_tcp_opts(const uint8_t *o, uint32_t n, struct tcp_opts *r)
{
    memset(r, 0, sizeof(*r));
    r->wscale = 0xff;
    for (uint32_t i = 0; i < n;) {
        uint8_t kind = o[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        uint8_t l = i + 1 < n ? o[i + 1] : 0;
        if (i + 1 >= n || l < 2 || i + l > n || (kind == 2 && l != 4) || (kind == 3 && l != 3) ||
            (kind == 4 && l != 2) || (kind == 8 && l != 10)) {
            memset(r, 0, sizeof(*r));
            r->wscale = 0xff;
            return 1;
        }
        if (kind == 2)
            r->mss = (uint16_t)(o[i + 2] << 8 | o[i + 3]);
        else if (kind == 3)
            r->wscale = o[i + 2] > 14 ? 14 : o[i + 2];
        else if (kind == 4)
            r->sack_ok = 1;
        else if (kind == 8) {
            r->has_ts = 1;
            r->tsval =
                (uint32_t)o[i + 2] << 24 | (uint32_t)o[i + 3] << 16 | o[i + 4] << 8 | o[i + 5];
            r->tsecr =
                (uint32_t)o[i + 6] << 24 | (uint32_t)o[i + 7] << 16 | o[i + 8] << 8 | o[i + 9];
        }
        i += l;
    }
    return 0;
}

/* Marsaglia's xorshift32 step: the same lists on every run. */
static void xorshift32(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
}

/* Random option lists, most of them starting like the layouts the parser takes in steps (a
 * Linux SYN's MSS, SACK-permitted, timestamps, NOP, window scale; NOP, NOP, timestamps) and
 * then cut, bent or extended: the parser gives what the plain loop gives, every time. */
Test(pkt_parse, tcp_options_equal_the_plain_loop)
{
    static const uint8_t linux_syn[20] = {2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2,
                                          3, 4, 5, 6,    7, 8, 1, 3,  3, 7};
    static const uint8_t nop_nop_ts[12] = {1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t kinds[] = {0, 1, 2, 3, 4, 5, 8, 30};
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    uint32_t x = 2463534242u;

    for (int it = 0; it < 20000; it++) {
        uint8_t o[40];
        xorshift32(&x);
        uint32_t n = 4 * (1 + x % 10); /* 4..40 bytes: the header keeps a multiple of 4 */
        for (uint32_t i = 0; i < n; i++) {
            xorshift32(&x);
            o[i] = (x & 3) ? (uint8_t)(x >> 8) : kinds[(x >> 8) % sizeof(kinds)];
        }
        xorshift32(&x);
        uint32_t pre = x % 4; /* 0: random; 1, 2: a Linux SYN's first bytes; 3: NOP NOP TS */
        uint32_t take = (x >> 4) % 21;
        if (pre == 1 || pre == 2)
            memcpy(o, linux_syn, take < n ? take : n);
        else if (pre == 3)
            memcpy(o, nop_nop_ts, (take % 13) < n ? take % 13 : n);
        if (pre == 2 && n > 18) /* a window scale byte of any value */
            o[n > 19 ? 19 : 18] = (uint8_t)(x >> 12);
        struct tcp_opts want;
        int bad = ref_tcp_opts(o, n, &want);

        pb_pkt_init(&p, it % 2 ? 6 : 4);
        memcpy(p.raw_opts, o, n);
        p.raw_opts_len = (uint8_t)n;
        uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
        cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP, "list %d", it);
        cr_assert_eq(pi.malformed, bad ? MAL_TCP_BAD_OPTION : MAL_NONE, "list %d", it);
        cr_assert_eq(pi.opt.mss, want.mss, "list %d", it);
        cr_assert_eq(pi.opt.wscale, want.wscale, "list %d", it);
        cr_assert_eq(pi.opt.sack_ok, want.sack_ok, "list %d", it);
        cr_assert_eq(pi.opt.has_ts, want.has_ts, "list %d", it);
        cr_assert_eq(pi.opt.tsval, want.tsval, "list %d", it);
        cr_assert_eq(pi.opt.tsecr, want.tsecr, "list %d", it);
    }
}

/* The lengths at which a frame of the common shape (one tag at most, IPv4 IHL 5 or IPv6
 * without extension headers) stops being parsed straight through: each one gives the result
 * of the general rules, on both sides of the boundary. */
Test(pkt_parse, common_shape_length_boundaries)
{
    const uint16_t tpid[2] = {PB_ETH_VLAN, PB_ETH_VLAN};
    const uint16_t tci[2] = {0x0123, 0x0456};
    struct pb_pkt p;
    struct pb_layout lay;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    for (int family = 4; family <= 6; family += 2) {
        for (int tags = 0; tags <= 2; tags++) {
            pb_pkt_init(&p, family);
            pb_vlans(&p, tags, tpid, tci);
            p.has_ts = 1; /* a 32-byte TCP header */
            uint32_t len = pb_build(&p, buf, sizeof(buf), &lay);
            uint8_t *iplen = buf + lay.l3 + (family == 4 ? 2 : 4);
            uint32_t hdr = family == 4 ? 20 : 0; /* counted in the IP length field */

            cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
            cr_assert_eq(pi.vlan_depth, tags);
            cr_assert_eq(pi.vlan, tags ? 0x123 : 0);
            cr_assert_eq(pi.encap.l3_off, lay.l3);
            cr_assert_eq(pi.opt.has_ts, 1);
            /* The TCP header ends exactly at the frame's end and the IP length's. */
            cr_assert_eq(len, lay.tcp_end);
            cr_assert_eq(pi.payload_len, 0u);
            /* One byte short of the frame: the options are cut. */
            cr_assert_eq(parse_exact(buf, len - 1, &pi), PKT_MALFORMED);
            cr_assert_eq(pi.malformed, MAL_TCP_TRUNCATED);
            /* The IP length one byte short of the TCP header... */
            pb_put16(iplen, (uint16_t)(hdr + 31));
            cr_assert_eq(parse_exact(buf, len, &pi), PKT_MALFORMED);
            cr_assert_eq(pi.malformed, MAL_TCP_BAD_DATA_OFFSET);
            /* ... short of its fixed 20 bytes, and just long enough for them. */
            pb_put16(iplen, (uint16_t)(hdr + 19));
            cr_assert_eq(parse_exact(buf, len, &pi), PKT_MALFORMED);
            cr_assert_eq(pi.malformed, MAL_TCP_TRUNCATED);
            pb_put16(iplen, (uint16_t)(hdr + 20));
            cr_assert_eq(parse_exact(buf, len, &pi), PKT_MALFORMED);
            cr_assert_eq(pi.malformed, MAL_TCP_BAD_DATA_OFFSET);
            /* A data offset below 20 bytes. */
            pb_put16(iplen, (uint16_t)(hdr + 32));
            buf[lay.l4 + 12] = 0x40;
            cr_assert_eq(parse_exact(buf, len, &pi), PKT_MALFORMED);
            cr_assert_eq(pi.malformed, MAL_TCP_BAD_DATA_OFFSET);
            /* The fixed TCP header cut by the frame. */
            buf[lay.l4 + 12] = 0x80;
            cr_assert_eq(parse_exact(buf, lay.l4 + 19, &pi), PKT_MALFORMED);
            cr_assert_eq(pi.malformed, MAL_TCP_TRUNCATED);
        }
    }
}

/* ---------------------------------------------------------------- kinds */

Test(pkt_parse, ipv4_fragments)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    uint32_t len;

    pb_pkt_init(&p, 4);
    p.df = 0;
    p.mf = 1; /* first fragment: offset 0, MF */
    p.payload_len = 100;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_FRAGMENT);
    cr_assert_eq(pi.family, 4);
    cr_assert_eq(pi.malformed, MAL_NONE);

    p.mf = 0;
    p.frag_off = 185; /* last fragment */
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_FRAGMENT);

    p.mf = 1;
    p.frag_off = 1;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_FRAGMENT);

    /* A UDP fragment is a fragment too (the protocol is not looked at). */
    p.proto = PB_IP_UDP;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_FRAGMENT);

    /* DF alone, or the reserved bit, is not a fragment. */
    pb_pkt_init(&p, 4);
    p.df = 1;
    check_roundtrip(&p);
    struct pb_layout lay;
    len = pb_build(&p, buf, sizeof(buf), &lay);
    buf[lay.l3 + 6] |= 0x80;
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
}

Test(pkt_parse, ipv6_fragments)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    uint32_t len;

    pb_pkt_init(&p, 6);
    p.payload_len = 100;
    p.n_ext = 1;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_FRAGMENT, .frag_mf = 1, .frag_id = 99};
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_FRAGMENT, "first fragment (M set)");
    cr_assert_eq(pi.family, 6);

    p.ext[0] = (struct pb_v6ext){.type = PB_IP_FRAGMENT, .frag_off = 100};
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_FRAGMENT, "last fragment (offset)");

    /* Behind a hop-by-hop header. */
    p.n_ext = 2;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_HOPOPTS};
    p.ext[1] = (struct pb_v6ext){.type = PB_IP_FRAGMENT, .frag_off = 3, .frag_mf = 1};
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_FRAGMENT);

    /* Atomic fragment (RFC 6946): parsed through. */
    p.n_ext = 1;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_FRAGMENT, .frag_id = 1};
    check_roundtrip(&p);

    /* Reserved bits of the fragment header do not make a fragment. */
    struct pb_layout lay;
    len = pb_build(&p, buf, sizeof(buf), &lay);
    buf[lay.ext[0] + 3] |= 0x06;
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
}

Test(pkt_parse, non_tcp_ip)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    uint32_t len;

    pb_pkt_init(&p, 4);
    p.proto = PB_IP_UDP;
    p.sport = 5353;
    p.dport = 53;
    p.payload_len = 30;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_NON_TCP);
    cr_assert_eq(pi.family, 4);
    cr_assert_eq(pi.malformed, MAL_NONE);

    p.proto = PB_IP_ICMP;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_NON_TCP);

    pb_pkt_init(&p, 6);
    p.proto = PB_IP_UDP;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_NON_TCP);
    cr_assert_eq(pi.family, 6);

    p.proto = PB_IP_ICMPV6;
    p.n_ext = 1;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_HOPOPTS};
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_NON_TCP, "ICMPv6 behind hop-by-hop");

    p.proto = PB_IP_NONXT;
    p.n_ext = 0;
    p.payload_len = 8; /* a zero payload length would read as a jumbogram */
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_NON_TCP, "no next header");
}

Test(pkt_parse, non_ip)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    uint32_t len;

    pb_pkt_init(&p, 4);
    p.ethertype = PB_ETH_ARP;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(len, 42u);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_NON_IP);
    cr_assert_eq(pi.malformed, MAL_NONE);
    cr_assert_eq(pi.family, 0);

    /* ARP on a VLAN: the tag is still read. */
    const uint16_t tpid[1] = {PB_ETH_VLAN};
    const uint16_t tci[1] = {42};
    pb_vlans(&p, 1, tpid, tci);
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_NON_IP);
    cr_assert_eq(pi.vlan, 42);
    cr_assert_eq(pi.vlan_depth, 1);

    pb_pkt_init(&p, 4);
    p.ethertype = 0x88cc; /* LLDP */
    p.payload_len = 50;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_NON_IP);

    /* A bare Ethernet header with an IP-less ethertype. */
    cr_assert_eq(parse_exact(buf, 14, &pi), PKT_NON_IP);
}

/* ---------------------------------------------------------------- lengths */

Test(pkt_parse, snaplen_cut_uses_ip_length)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;
    struct pb_layout lay;

    /* 1448 bytes of payload, captured with only the headers (like tcpdump -s 96). */
    full_syn(&p, 4);
    p.flags = TCP_ACK;
    p.payload_len = 1448;
    pb_build(&p, buf, sizeof(buf), &lay);
    cr_assert_eq(parse_exact(buf, lay.tcp_end, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 1448u);
    cr_assert_eq(pi.malformed, MAL_NONE);
    cr_assert_eq(pi.opt.mss, 1460);
    cr_assert_eq(parse_exact(buf, lay.tcp_end + 7, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 1448u);

    full_syn(&p, 6);
    p.payload_len = 4000;
    p.n_ext = 1;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_DSTOPTS, .len = 1};
    pb_build(&p, buf, sizeof(buf), &lay);
    cr_assert_eq(parse_exact(buf, lay.tcp_end, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 4000u);
}

Test(pkt_parse, ethernet_padding_ignored)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    /* A bare ACK is 54 bytes; on the wire it is padded to 60. */
    pb_pkt_init(&p, 4);
    uint32_t len = pb_build(&p, buf, sizeof(buf), NULL);
    cr_assert_eq(len, 54u);
    memset(buf + len, 0xee, 6);
    cr_assert_eq(parse_exact(buf, 60, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 0u, "padding is not payload");

    pb_pkt_init(&p, 4);
    p.payload_len = 2;
    len = pb_build(&p, buf, sizeof(buf), NULL);
    memset(buf + len, 0, 4);
    cr_assert_eq(parse_exact(buf, 60, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 2u);
}

/* Expected result at a truncated length: the first boundary not yet reached. */
struct boundary {
    uint32_t end;
    enum malformed_reason reason;
};

static void check_truncations(const struct pb_pkt *p, const struct boundary *b, int nb)
{
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi, want;
    struct pb_layout lay;
    uint32_t full = pb_build(p, buf, sizeof(buf), &lay);

    pb_to_info(p, &want);
    cr_assert_eq(b[nb - 1].end, lay.tcp_end, "boundaries must end at the TCP header");
    for (uint32_t len = 0; len <= full; len++) {
        enum pkt_kind k = parse_exact(buf, len, &pi);
        int i = 0;
        while (i < nb && len >= b[i].end)
            i++;
        if (i < nb) {
            cr_assert_eq(k, PKT_MALFORMED, "len %u of %u: kind %d", len, full, k);
            cr_assert_eq(pi.malformed, b[i].reason, "len %u of %u: %s, want %s", len, full,
                         malformed_name(pi.malformed), malformed_name(b[i].reason));
        } else {
            cr_assert_eq(k, PKT_TCP, "len %u of %u: kind %d (%s)", len, full, k,
                         malformed_name(pi.malformed));
            assert_info_eq(&pi, &want);
        }
    }
}

Test(pkt_parse, truncation_ipv4_plain)
{
    struct pb_pkt p;

    pb_pkt_init(&p, 4);
    p.payload_len = 40;
    const struct boundary b[] = {
        {14, MAL_L2_TRUNCATED},
        {34, MAL_IPV4_TRUNCATED},
        {54, MAL_TCP_TRUNCATED},
    };
    check_truncations(&p, b, 3);
}

Test(pkt_parse, truncation_ipv4_options_vlan)
{
    struct pb_pkt p;
    const uint16_t tpid[2] = {PB_ETH_QINQ, PB_ETH_VLAN};
    const uint16_t tci[2] = {7, 8};

    full_syn(&p, 4);
    p.payload_len = 25;
    pb_vlans(&p, 2, tpid, tci);
    p.ip_opts[0] = 0x94;
    p.ip_opts[1] = 4;
    p.ip_opts_len = 8;
    /* TCP options: MSS 4 + SACK/TS 12 + NOP/WS 4 = 20: doff 40. */
    const struct boundary b[] = {
        {14, MAL_L2_TRUNCATED},        {18, MAL_VLAN_TRUNCATED},     {22, MAL_VLAN_TRUNCATED},
        {22 + 28, MAL_IPV4_TRUNCATED}, {50 + 40, MAL_TCP_TRUNCATED},
    };
    check_truncations(&p, b, 5);
}

Test(pkt_parse, truncation_ipv6_ext_chain)
{
    struct pb_pkt p;

    full_syn(&p, 6);
    p.payload_len = 60;
    p.n_ext = 3;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_HOPOPTS, .len = 1}; /* 16 */
    p.ext[1] = (struct pb_v6ext){.type = PB_IP_AH, .len = 1};      /* 12 */
    p.ext[2] = (struct pb_v6ext){.type = PB_IP_FRAGMENT};          /* 8 */
    /* The AH ends at 54 + 40 + 16 + 12 = 122: not 8-aligned, which the parser must accept. */
    const struct boundary b[] = {
        {14, MAL_L2_TRUNCATED},
        {54, MAL_IPV6_TRUNCATED},
        {54 + 16, MAL_IPV6_EXT_TRUNCATED},
        {70 + 12, MAL_IPV6_EXT_TRUNCATED},
        {82 + 8, MAL_IPV6_EXT_TRUNCATED},
        {90 + 40, MAL_TCP_TRUNCATED},
    };
    check_truncations(&p, b, 6);
}

Test(pkt_parse, truncation_ipv6_plain)
{
    struct pb_pkt p;
    const uint16_t tpid[1] = {PB_ETH_VLAN};
    const uint16_t tci[1] = {300};

    pb_pkt_init(&p, 6);
    pb_vlans(&p, 1, tpid, tci);
    p.flags = TCP_RST;
    const struct boundary b[] = {
        {14, MAL_L2_TRUNCATED},
        {18, MAL_VLAN_TRUNCATED},
        {58, MAL_IPV6_TRUNCATED},
        {78, MAL_TCP_TRUNCATED},
    };
    check_truncations(&p, b, 4);
}

/* ---------------------------------------------------------------- link types */

static enum pkt_kind parse_exact_link(const uint8_t *frame, uint32_t len, int link,
                                      struct pkt_info *pi)
{
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, frame, len);
    enum pkt_kind k = pkt_parse_link(len ? copy : NULL, len, link, pi);
    free(copy);
    return k;
}

/* Re-frame a built Ethernet frame for another link type; returns the length and the link
 * header length. */
static uint32_t reframe(const uint8_t *eth, uint32_t len, const struct pb_layout *lay, int link,
                        int family, uint8_t *out, uint32_t *hl)
{
    uint32_t l3len = len - lay->l3;
    uint16_t et = family == 6 ? PB_ETH_IPV6 : PB_ETH_IPV4;

    switch (link) {
    case LINK_RAW:
        *hl = 0;
        break;
    case LINK_NULL: { /* host byte order address family */
        uint32_t af = family == 6 ? 30 : 2;
        memcpy(out, &af, 4);
        *hl = 4;
        break;
    }
    case LINK_LOOP:
        pb_put32(out, family == 6 ? 24 : 2);
        *hl = 4;
        break;
    case LINK_LINUX_SLL:
        /* packet type, ARPHRD, address length, address, then the Ethernet frame from its
         * (first) ethertype on: VLAN tags stay inline. */
        memset(out, 0, 14);
        pb_put16(out + 2, 1);
        pb_put16(out + 4, 6);
        memcpy(out + 6, eth + 6, 6);
        memcpy(out + 14, eth + 12, len - 12);
        *hl = lay->l3 - 12 + 14;
        return 14 + len - 12;
    case LINK_LINUX_SLL2:
        memset(out, 0, 20);
        pb_put16(out, et);
        pb_put32(out + 4, 3); /* interface index */
        pb_put16(out + 8, 1);
        out[11] = 6;
        memcpy(out + 12, eth + 6, 6);
        *hl = 20;
        break;
    default:
        cr_assert_fail("link %d", link);
    }
    memcpy(out + *hl, eth + lay->l3, l3len);
    return *hl + l3len;
}

static const int links[] = {LINK_RAW, LINK_NULL, LINK_LOOP, LINK_LINUX_SLL, LINK_LINUX_SLL2};

Test(pkt_parse, link_types_all_fields)
{
    struct pb_pkt p;
    uint8_t eth[PB_MAX_FRAME], buf[PB_MAX_FRAME];
    struct pb_layout lay;
    struct pkt_info got, want;
    uint32_t hl;

    for (int fam = 4; fam <= 6; fam += 2) {
        full_syn(&p, fam);
        p.payload_len = 321;
        uint32_t elen = pb_build(&p, eth, sizeof(eth), &lay);
        pb_to_info(&p, &want);
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
            cr_assert(pkt_link_supported(links[i]));
            uint32_t len = reframe(eth, elen, &lay, links[i], fam, buf, &hl);
            enum pkt_kind k = parse_exact_link(buf, len, links[i], &got);
            cr_assert_eq(k, PKT_TCP, "link %d v%d: kind %d (%s)", links[i], fam, k,
                         malformed_name(got.malformed));
            assert_info_eq(&got, &want);
        }
        /* Ethernet through pkt_parse_link() is pkt_parse(). */
        cr_assert_eq(parse_exact_link(eth, elen, LINK_ETHERNET, &got), PKT_TCP);
        assert_info_eq(&got, &want);
    }
}

Test(pkt_parse, link_sll_keeps_inline_vlan_tags)
{
    struct pb_pkt p;
    uint8_t eth[PB_MAX_FRAME], buf[PB_MAX_FRAME];
    struct pb_layout lay;
    struct pkt_info got, want;
    uint32_t hl;
    const uint16_t tpid[1] = {PB_ETH_VLAN};
    const uint16_t tci[1] = {0x0777};

    full_syn(&p, 6);
    pb_vlans(&p, 1, tpid, tci);
    uint32_t elen = pb_build(&p, eth, sizeof(eth), &lay);
    uint32_t len = reframe(eth, elen, &lay, LINK_LINUX_SLL, 6, buf, &hl);
    cr_assert_eq(parse_exact_link(buf, len, LINK_LINUX_SLL, &got), PKT_TCP);
    pb_to_info(&p, &want);
    assert_info_eq(&got, &want);
    cr_assert_eq(got.vlan, 0x777);
}

Test(pkt_parse, link_types_non_ip_and_unknown)
{
    uint8_t buf[64];
    struct pkt_info pi;

    memset(buf, 0, sizeof(buf));
    buf[0] = 0x50; /* version 5 */
    cr_assert_eq(parse_exact_link(buf, 40, LINK_RAW, &pi), PKT_NON_IP);
    cr_assert_eq(parse_exact_link(buf, 44, LINK_NULL, &pi), PKT_NON_IP);
    /* SLL2 carrying ARP, SLL carrying LLDP */
    pb_put16(buf, PB_ETH_ARP);
    cr_assert_eq(parse_exact_link(buf, 48, LINK_LINUX_SLL2, &pi), PKT_NON_IP);
    memset(buf, 0, sizeof(buf));
    pb_put16(buf + 14, 0x88cc);
    cr_assert_eq(parse_exact_link(buf, 48, LINK_LINUX_SLL, &pi), PKT_NON_IP);
    /* Link types the parser does not know. */
    static const int unknown[] = {2, 105, 127, 228, 229, 0x7fffffff, -1};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        cr_assert_not(pkt_link_supported(unknown[i]), "link %d", unknown[i]);
        cr_assert_eq(parse_exact_link(buf, 48, unknown[i], &pi), PKT_NON_IP);
    }
}

/* Every truncation of every link type: the link header first, then the IP layers. */
Test(pkt_parse, link_types_truncation)
{
    struct pb_pkt p;
    uint8_t eth[PB_MAX_FRAME], buf[PB_MAX_FRAME];
    struct pb_layout lay;
    struct pkt_info got, want;
    uint32_t hl;

    for (int fam = 4; fam <= 6; fam += 2) {
        pb_pkt_init(&p, fam);
        p.mss = 1200; /* doff 24 */
        p.payload_len = 9;
        uint32_t elen = pb_build(&p, eth, sizeof(eth), &lay);
        pb_to_info(&p, &want);
        uint32_t iphl = fam == 6 ? 40 : 20;
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
            uint32_t full = reframe(eth, elen, &lay, links[i], fam, buf, &hl);
            /* Headerless IP needs its version nibble: 0 bytes of it is still an L2 cut. */
            int headerless = links[i] == LINK_RAW || links[i] == LINK_NULL || links[i] == LINK_LOOP;
            const struct boundary b[] = {
                {headerless ? hl + 1 : hl, MAL_L2_TRUNCATED},
                {hl + iphl, fam == 6 ? MAL_IPV6_TRUNCATED : MAL_IPV4_TRUNCATED},
                {hl + iphl + 24, MAL_TCP_TRUNCATED},
            };
            for (uint32_t len = 0; len <= full; len++) {
                enum pkt_kind k = parse_exact_link(buf, len, links[i], &got);
                int j = 0;
                while (j < 3 && len >= b[j].end)
                    j++;
                if (j < 3) {
                    cr_assert_eq(k, PKT_MALFORMED, "link %d v%d len %u: kind %d", links[i], fam,
                                 len, k);
                    cr_assert_eq(got.malformed, b[j].reason, "link %d v%d len %u: %s, want %s",
                                 links[i], fam, len, malformed_name(got.malformed),
                                 malformed_name(b[j].reason));
                } else {
                    cr_assert_eq(k, PKT_TCP, "link %d v%d len %u: kind %d", links[i], fam, len, k);
                    assert_info_eq(&got, &want);
                }
            }
        }
    }
}

/* TSO captures: IPv4 total length 0, the frame is the only length. */
Test(pkt_parse, ipv4_zero_total_length_uses_frame)
{
    struct pb_pkt p;
    uint8_t buf[PB_MAX_FRAME];
    struct pb_layout lay;
    struct pkt_info pi;

    pb_pkt_init(&p, 4);
    p.mss = 1460;
    p.payload_len = 7240; /* five segments' worth */
    uint32_t len = pb_build(&p, buf, sizeof(buf), &lay);
    pb_put16(buf + lay.l3 + 2, 0);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.malformed, MAL_NONE);
    cr_assert_eq(pi.payload_len, 7240u);
    /* Cut by the snaplen as well: only what was captured can be counted. */
    cr_assert_eq(parse_exact(buf, lay.tcp_end + 100, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 100u);
    /* Header-only: no payload, still a segment. */
    cr_assert_eq(parse_exact(buf, lay.tcp_end, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 0u);
    /* With IP options the header length still comes off. */
    pb_pkt_init(&p, 4);
    p.ip_opts_len = 8;
    p.payload_len = 50;
    len = pb_build(&p, buf, sizeof(buf), &lay);
    pb_put16(buf + lay.l3 + 2, 0);
    cr_assert_eq(parse_exact(buf, len, &pi), PKT_TCP);
    cr_assert_eq(pi.payload_len, 50u);
}

/* ---------------------------------------------------------------- malformed reasons */

struct mal_case {
    const char *what;
    enum malformed_reason want;
    uint32_t (*make)(uint8_t *buf); /* returns the length to parse */
};

static uint32_t v4(uint8_t *buf, struct pb_layout *lay)
{
    struct pb_pkt p;
    pb_pkt_init(&p, 4);
    p.payload_len = 20;
    return pb_build(&p, buf, PB_MAX_FRAME, lay);
}

static uint32_t v6(uint8_t *buf, struct pb_layout *lay, int n_ext)
{
    struct pb_pkt p;
    pb_pkt_init(&p, 6);
    p.payload_len = 20;
    p.n_ext = n_ext;
    for (int i = 0; i < n_ext; i++)
        p.ext[i] = (struct pb_v6ext){.type = PB_IP_DSTOPTS, .len = 1};
    return pb_build(&p, buf, PB_MAX_FRAME, lay);
}

static uint32_t mk_l2_trunc(uint8_t *buf)
{
    v4(buf, NULL);
    return 13;
}
static uint32_t mk_vlan_trunc(uint8_t *buf)
{
    struct pb_pkt p;
    const uint16_t tpid[1] = {PB_ETH_VLAN};
    const uint16_t tci[1] = {1};
    pb_pkt_init(&p, 4);
    pb_vlans(&p, 1, tpid, tci);
    pb_build(&p, buf, PB_MAX_FRAME, NULL);
    return 17;
}
static uint32_t mk_vlan_deep(uint8_t *buf)
{
    struct pb_pkt p;
    const uint16_t tpid[5] = {PB_ETH_QINQ, PB_ETH_VLAN, PB_ETH_VLAN, PB_ETH_VLAN, PB_ETH_VLAN};
    const uint16_t tci[5] = {1, 2, 3, 4, 5};
    pb_pkt_init(&p, 4);
    pb_vlans(&p, 5, tpid, tci);
    return pb_build(&p, buf, PB_MAX_FRAME, NULL);
}
static uint32_t mk_v4_trunc(uint8_t *buf)
{
    v4(buf, NULL);
    return 14 + 19;
}
static uint32_t mk_v4_ihl_past_frame(uint8_t *buf)
{
    struct pb_layout lay;
    v4(buf, &lay);
    buf[lay.l3] = 0x4f; /* a 60-byte header in a frame cut 40 bytes after the IP start */
    return lay.l3 + 40;
}
static uint32_t mk_v4_version(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v4(buf, &lay);
    buf[lay.l3] = 0x65;
    return len;
}
static uint32_t mk_v4_ihl(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v4(buf, &lay);
    buf[lay.l3] = 0x44;
    return len;
}
static uint32_t mk_v4_ihl0(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v4(buf, &lay);
    buf[lay.l3] = 0x40;
    return len;
}
static uint32_t mk_v4_total(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v4(buf, &lay);
    pb_put16(buf + lay.l3 + 2, 19);
    return len;
}
static uint32_t mk_v4_total_in_options(uint8_t *buf)
{
    struct pb_pkt p;
    struct pb_layout lay;
    pb_pkt_init(&p, 4);
    p.ip_opts[0] = 0x94; /* router alert: IHL 24 */
    p.ip_opts[1] = 4;
    p.ip_opts_len = 4;
    uint32_t len = pb_build(&p, buf, PB_MAX_FRAME, &lay);
    pb_put16(buf + lay.l3 + 2, 22); /* ends inside the options */
    return len;
}
static uint32_t mk_v6_trunc(uint8_t *buf)
{
    v6(buf, NULL, 0);
    return 14 + 39;
}
static uint32_t mk_v6_version(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v6(buf, &lay, 0);
    buf[lay.l3] = 0x40;
    return len;
}
static uint32_t mk_v6_plen0(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v6(buf, &lay, 0);
    pb_put16(buf + lay.l3 + 4, 0);
    return len;
}
static uint32_t mk_v6_ext_past_plen(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v6(buf, &lay, 1);
    pb_put16(buf + lay.l3 + 4, 8); /* a 16-byte extension header in an 8-byte payload */
    return len;
}
static uint32_t mk_v6_ext_trunc(uint8_t *buf)
{
    struct pb_layout lay;
    v6(buf, &lay, 2);
    return lay.ext[1] + 12;
}
static uint32_t mk_v6_ext_hdr_trunc(uint8_t *buf)
{
    struct pb_layout lay;
    v6(buf, &lay, 1);
    return lay.ext[0] + 5; /* not even the 8 fixed bytes */
}
static uint32_t mk_v6_deep(uint8_t *buf)
{
    return v6(buf, NULL, PKT_MAX_IP6_EXT + 1);
}
static uint32_t mk_tcp_trunc(uint8_t *buf)
{
    struct pb_layout lay;
    v4(buf, &lay);
    return lay.l4 + 19;
}
static uint32_t mk_tcp_trunc_by_ip_len(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v4(buf, &lay);
    pb_put16(buf + lay.l3 + 2, 20 + 10); /* IP says the segment is 10 bytes */
    return len;
}
static uint32_t mk_tcp_opts_trunc(uint8_t *buf)
{
    struct pb_pkt p;
    struct pb_layout lay;
    pb_pkt_init(&p, 6);
    p.has_ts = 1;
    pb_build(&p, buf, PB_MAX_FRAME, &lay);
    return lay.tcp_end - 1; /* header complete, options cut: the IP length is larger */
}
static uint32_t mk_tcp_doff_small(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v4(buf, &lay);
    buf[lay.l4 + 12] = 0x40;
    return len;
}
static uint32_t mk_tcp_doff_zero(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v6(buf, &lay, 0);
    buf[lay.l4 + 12] = 0x00;
    return len;
}
static uint32_t mk_tcp_doff_past_ip(uint8_t *buf)
{
    struct pb_layout lay;
    uint32_t len = v4(buf, &lay);
    buf[lay.l4 + 12] = 0xf0; /* 60-byte header in a 40-byte segment */
    return len;
}
static uint32_t mk_tcp_bad_opt(uint8_t *buf)
{
    struct pb_pkt p;
    pb_pkt_init(&p, 4);
    p.raw_opts[0] = 2;
    p.raw_opts[1] = 0;
    p.raw_opts_len = 2;
    return pb_build(&p, buf, PB_MAX_FRAME, NULL);
}

static const struct mal_case mal_cases[] = {
    {"13-byte frame", MAL_L2_TRUNCATED, mk_l2_trunc},
    {"cut inside the VLAN tag", MAL_VLAN_TRUNCATED, mk_vlan_trunc},
    {"5 VLAN tags", MAL_VLAN_TOO_DEEP, mk_vlan_deep},
    {"19 bytes of IPv4 header", MAL_IPV4_TRUNCATED, mk_v4_trunc},
    {"IPv4 IHL past the frame", MAL_IPV4_TRUNCATED, mk_v4_ihl_past_frame},
    {"IPv4 version 6 under 0x0800", MAL_IPV4_BAD_VERSION, mk_v4_version},
    {"IPv4 IHL 4 (16 bytes)", MAL_IPV4_BAD_HEADER_LEN, mk_v4_ihl},
    {"IPv4 IHL 0", MAL_IPV4_BAD_HEADER_LEN, mk_v4_ihl0},
    {"IPv4 total length < IHL", MAL_IPV4_BAD_TOTAL_LEN, mk_v4_total},
    {"IPv4 total length inside the options", MAL_IPV4_BAD_TOTAL_LEN, mk_v4_total_in_options},
    {"39 bytes of IPv6 header", MAL_IPV6_TRUNCATED, mk_v6_trunc},
    {"IPv6 version 4 under 0x86dd", MAL_IPV6_BAD_VERSION, mk_v6_version},
    {"IPv6 payload length 0", MAL_IPV6_BAD_PAYLOAD_LEN, mk_v6_plen0},
    {"IPv6 extension longer than the payload", MAL_IPV6_BAD_PAYLOAD_LEN, mk_v6_ext_past_plen},
    {"cut inside the second extension header", MAL_IPV6_EXT_TRUNCATED, mk_v6_ext_trunc},
    {"cut inside an extension header's fixed part", MAL_IPV6_EXT_TRUNCATED, mk_v6_ext_hdr_trunc},
    {"9 extension headers", MAL_IPV6_EXT_TOO_DEEP, mk_v6_deep},
    {"19 bytes of TCP header", MAL_TCP_TRUNCATED, mk_tcp_trunc},
    {"IP length leaves 10 bytes of TCP", MAL_TCP_TRUNCATED, mk_tcp_trunc_by_ip_len},
    {"cut inside the TCP options", MAL_TCP_TRUNCATED, mk_tcp_opts_trunc},
    {"TCP data offset 4 (16 bytes)", MAL_TCP_BAD_DATA_OFFSET, mk_tcp_doff_small},
    {"TCP data offset 0", MAL_TCP_BAD_DATA_OFFSET, mk_tcp_doff_zero},
    {"TCP data offset past the IP payload", MAL_TCP_BAD_DATA_OFFSET, mk_tcp_doff_past_ip},
    {"MSS option length 0", MAL_TCP_BAD_OPTION, mk_tcp_bad_opt},
};

Test(pkt_parse, every_malformed_reason)
{
    int covered[MAL_MAX] = {0};
    uint8_t buf[PB_MAX_FRAME];
    struct pkt_info pi;

    for (size_t i = 0; i < sizeof(mal_cases) / sizeof(mal_cases[0]); i++) {
        const struct mal_case *c = &mal_cases[i];
        memset(buf, 0, sizeof(buf));
        uint32_t len = c->make(buf);
        enum pkt_kind k = parse_exact(buf, len, &pi);
        enum pkt_kind want = c->want == MAL_TCP_BAD_OPTION ? PKT_TCP : PKT_MALFORMED;
        cr_assert_eq(k, want, "%s: kind %d, want %d", c->what, k, want);
        cr_assert_eq(pi.malformed, c->want, "%s: %s, want %s", c->what,
                     malformed_name(pi.malformed), malformed_name(c->want));
        covered[c->want]++;
    }
    /* A reason appended to the enum without a crafted frame here fails this test. The
     * mirror-tunnel reasons (MAL_GRE_TRUNCATED onwards) have theirs in test_encap.c. */
    for (int r = MAL_NONE + 1; r < MAL_GRE_TRUNCATED; r++)
        cr_assert(covered[r], "no test frame produces %s", malformed_name(r));
}

Test(pkt_parse, malformed_names_distinct)
{
    for (int r = 0; r < MAL_MAX; r++) {
        cr_assert_str_neq(malformed_name(r), "?", "reason %d has no name", r);
        for (int s = 0; s < r; s++)
            cr_assert_str_neq(malformed_name(r), malformed_name(s), "%d and %d share a name", r, s);
    }
    cr_assert_str_eq(malformed_name(MAL_MAX), "?");
    cr_assert_str_eq(malformed_name(-1), "?");
}

/* Random byte corruption of valid frames: never crash, never read past the end, and every
 * result is self-consistent. */
Test(pkt_parse, random_corruption_is_safe)
{
    uint8_t base[4][PB_MAX_FRAME], buf[PB_MAX_FRAME];
    uint32_t blen[4];
    struct pb_pkt p;
    struct pkt_info pi;
    const uint16_t tpid[2] = {PB_ETH_QINQ, PB_ETH_VLAN};
    const uint16_t tci[2] = {1, 2};

    full_syn(&p, 4);
    p.payload_len = 16;
    blen[0] = pb_build(&p, base[0], PB_MAX_FRAME, NULL);
    full_syn(&p, 6);
    p.n_ext = 2;
    p.ext[0] = (struct pb_v6ext){.type = PB_IP_HOPOPTS};
    p.ext[1] = (struct pb_v6ext){.type = PB_IP_AH, .len = 1};
    blen[1] = pb_build(&p, base[1], PB_MAX_FRAME, NULL);
    full_syn(&p, 4);
    pb_vlans(&p, 2, tpid, tci);
    p.ip_opts_len = 4;
    blen[2] = pb_build(&p, base[2], PB_MAX_FRAME, NULL);
    full_syn(&p, 6);
    blen[3] = pb_build(&p, base[3], PB_MAX_FRAME, NULL);

    uint32_t x = 12345;
    for (int iter = 0; iter < 200000; iter++) {
        int b = iter & 3;
        memcpy(buf, base[b], blen[b]);
        int flips = 1 + iter % 4;
        for (int i = 0; i < flips; i++) {
            x = x * 1103515245u + 12345u;
            uint32_t pos = (x >> 8) % blen[b];
            x = x * 1103515245u + 12345u;
            buf[pos] = (uint8_t)(x >> 16);
        }
        x = x * 1103515245u + 12345u;
        uint32_t len = (x >> 4) % 8 ? blen[b] : (x >> 12) % (blen[b] + 1);
        enum pkt_kind k = parse_exact(buf, len, &pi);
        cr_assert(k <= PKT_MALFORMED, "kind %d", k);
        cr_assert(pi.malformed < MAL_MAX);
        if (k == PKT_MALFORMED)
            cr_assert_neq(pi.malformed, MAL_NONE);
        else if (k == PKT_TCP)
            cr_assert(pi.malformed == MAL_NONE || pi.malformed == MAL_TCP_BAD_OPTION);
        else
            cr_assert_eq(pi.malformed, MAL_NONE);
        if (k == PKT_TCP)
            cr_assert(pi.family == 4 || pi.family == 6);
        cr_assert(pi.vlan_depth <= PKT_MAX_VLANS);
    }
}
