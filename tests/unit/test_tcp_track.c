/*
 * tcp_track: roles, connection states, per-direction sequence/ACK/window bookkeeping and
 * port-reuse detection, driven segment by segment on a bare struct flow; and the tuned
 * tcp_track_segment() held byte for byte to a plain reference on 800,000 random segments.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "pktbuild.h"
#include "seq.h"
#include "tcp_track.h"

#define SYN TCP_SYN
#define ACK TCP_ACK
#define FIN TCP_FIN
#define PSH TCP_PSH
#define RST TCP_RST

static void fresh(struct flow *f)
{
    memset(f, 0, sizeof(*f));
}

/* The full handshake from every angle: v4/v6, client with the lower or the higher address. */
static void check_handshake(struct pb_conv *c)
{
    struct flow f;
    int cd = pb_conv_dir(c, PB_C2S), sd = pb_conv_dir(c, PB_S2C);

    cr_assert_eq(cd, 1 - sd);
    fresh(&f);
    pb_track(&f, c, &pb_handshake[0], 1);
    cr_assert_eq(f.state, CS_SYN_SENT, "after SYN: %s", conn_state_name(f.state));
    cr_assert_eq(f.client_dir, cd);
    cr_assert_eq(f.direction_known, 1);
    cr_assert_eq(f.dir[cd].isn, c->cisn);
    cr_assert_eq(f.dir[cd].next_seq, c->cisn + 1, "a SYN takes one sequence number");
    cr_assert(f.dir[cd].seen & DIR_SYN);
    cr_assert(f.dir[cd].seen & DIR_SEQ_KNOWN);
    cr_assert_not(f.dir[cd].seen & DIR_ACK_KNOWN, "a bare SYN carries no ACK");
    cr_assert_eq(f.dir[sd].seen, 0);
    cr_assert_eq(f.first_ts, ts32(c->t0));

    pb_track(&f, c, &pb_handshake[1], 1);
    cr_assert_eq(f.state, CS_SYN_RECEIVED, "after SYN-ACK: %s", conn_state_name(f.state));
    cr_assert_eq(f.dir[sd].isn, c->sisn);
    cr_assert(f.dir[sd].seen & DIR_SYNACK);
    cr_assert_not(f.dir[sd].seen & DIR_SYN, "a SYN-ACK is not a SYN");
    cr_assert_eq(f.dir[sd].max_ack, c->cisn + 1);
    cr_assert(f.dir[sd].seen & DIR_ACK_KNOWN);

    pb_track(&f, c, &pb_handshake[2], 1);
    cr_assert_eq(f.state, CS_ESTABLISHED, "after ACK: %s", conn_state_name(f.state));
    cr_assert_eq(f.client_dir, cd);
    cr_assert_eq(f.dir[cd].max_ack, c->sisn + 1);

    const struct pb_seg data[] = {
        PB_C(ACK | PSH, 1, 1, 100),
        PB_S(ACK, 1, 101, 0),
        PB_S(ACK | PSH, 1, 101, 1400),
    };
    pb_track(&f, c, data, 3);
    cr_assert_eq(f.state, CS_ESTABLISHED);
    cr_assert_eq(f.dir[cd].next_seq, c->cisn + 101);
    cr_assert_eq(f.dir[sd].next_seq, c->sisn + 1401);
    cr_assert_eq(f.dir[sd].max_ack, c->cisn + 101);
    cr_assert(f.dir[cd].seen & DIR_DATA);
    cr_assert(f.dir[sd].seen & DIR_DATA);
}

Test(tcp_track, handshake_established)
{
    struct pb_conv c;

    pb_conv_init(&c, 4);
    check_handshake(&c);
    cr_assert_eq(pb_conv_dir(&c, PB_C2S), 0, "default client has the lower address");

    /* The client has the higher address: it is the key's hi endpoint. */
    pb_addr(c.cli, "10.0.0.200");
    cr_assert_eq(pb_conv_dir(&c, PB_C2S), 1);
    check_handshake(&c);

    pb_conv_init(&c, 6);
    check_handshake(&c);
    pb_addr(c.cli, "2001:db8::ff");
    check_handshake(&c);
}

Test(tcp_track, synack_seen_first)
{
    struct pb_conv c;
    struct flow f;

    pb_conv_init(&c, 4);
    pb_addr(c.cli, "10.0.0.99"); /* the client is not the lo endpoint */
    int cd = pb_conv_dir(&c, PB_C2S);
    fresh(&f);
    pb_track(&f, &c, &pb_handshake[1], 1);
    cr_assert_eq(f.client_dir, cd, "the SYN-ACK's receiver is the client");
    cr_assert_eq(f.direction_known, 1);
    cr_assert_eq(f.state, CS_SYN_RECEIVED);
    cr_assert(f.dir[1 - cd].seen & DIR_SYNACK);
    pb_track(&f, &c, &pb_handshake[2], 1);
    cr_assert_eq(f.state, CS_ESTABLISHED);
    cr_assert_eq(f.client_dir, cd);
}

Test(tcp_track, synack_missed_ack_establishes)
{
    struct pb_conv c;
    struct flow f;

    pb_conv_init(&c, 4);
    fresh(&f);
    pb_track(&f, &c, &pb_handshake[0], 1);
    pb_track(&f, &c, &pb_handshake[2], 1); /* the SYN-ACK was not mirrored */
    cr_assert_eq(f.state, CS_ESTABLISHED);
}

Test(tcp_track, server_data_establishes)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg s[] = {
        PB_C(SYN, 0, 0, 0), PB_S(SYN | ACK, 0, 1, 0),
        PB_S(ACK | PSH, 1, 1, 50), /* banner; the client's ACK was missed */
    };

    pb_conv_init(&c, 4);
    fresh(&f);
    pb_track(&f, &c, s, 2);
    cr_assert_eq(f.state, CS_SYN_RECEIVED);
    pb_track(&f, &c, &s[2], 1);
    cr_assert_eq(f.state, CS_ESTABLISHED);
}

Test(tcp_track, syn_retransmission_stays_syn_sent)
{
    struct pb_conv c;
    struct flow f;

    pb_conv_init(&c, 4);
    fresh(&f);
    pb_track(&f, &c, &pb_handshake[0], 1);
    pb_track(&f, &c, &pb_handshake[0], 1);
    cr_assert_eq(f.state, CS_SYN_SENT);
    cr_assert_eq(f.dir[pb_conv_dir(&c, PB_C2S)].next_seq, c.cisn + 1);
}

Test(tcp_track, midstream_guesses_higher_port_as_client)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg from_srv = PB_S(ACK | PSH, 1000, 2000, 100);
    const struct pb_seg from_cli = PB_C(ACK | PSH, 2000, 1000, 100);

    pb_conv_init(&c, 4);
    c.cport = 51000;
    c.sport = 443;
    int cd = pb_conv_dir(&c, PB_C2S);

    fresh(&f);
    pb_track(&f, &c, &from_srv, 1);
    cr_assert_eq(f.state, CS_MIDSTREAM);
    cr_assert_eq(f.direction_known, 0);
    cr_assert_eq(f.client_dir, cd, "port 51000 guessed as the client (first packet from 443)");
    cr_assert(f.dir[1 - cd].seen & DIR_SEQ_KNOWN);
    cr_assert(f.dir[1 - cd].seen & DIR_ACK_KNOWN);
    cr_assert_eq(f.dir[1 - cd].next_seq, c.sisn + 1100);
    cr_assert_eq(f.dir[cd].seen, 0);

    fresh(&f);
    pb_track(&f, &c, &from_cli, 1);
    cr_assert_eq(f.client_dir, cd, "port 51000 guessed as the client (first packet from it)");
    cr_assert_eq(f.direction_known, 0);

    /* The guess is only a guess: a server on the higher port is taken for the client. */
    c.cport = 1023;
    c.sport = 8080;
    fresh(&f);
    pb_track(&f, &c, &from_cli, 1);
    cr_assert_eq(f.client_dir, pb_conv_dir(&c, PB_S2C));
    cr_assert_eq(f.direction_known, 0);

    /* Equal ports: the first sender. */
    c.cport = c.sport = 5000;
    fresh(&f);
    pb_track(&f, &c, &from_srv, 1);
    cr_assert_eq(f.client_dir, pb_conv_dir(&c, PB_S2C));

    /* Traffic both ways keeps it mid-stream, roles unchanged. */
    c.cport = 51000;
    c.sport = 443;
    fresh(&f);
    pb_track(&f, &c, &from_srv, 1);
    pb_track(&f, &c, &from_cli, 1);
    cr_assert_eq(f.state, CS_MIDSTREAM);
    cr_assert_eq(f.client_dir, cd);
    cr_assert_eq(f.direction_known, 0);
}

Test(tcp_track, rst_first_is_none)
{
    struct pb_conv c;
    struct flow f;
    struct pkt_info p;
    const struct pb_seg rst = PB_C(RST | ACK, 100, 100, 0);

    pb_conv_init(&c, 6);
    fresh(&f);
    pb_conv_info(&c, &rst, &p);
    tcp_track_init(&f, &p, pb_conv_dir(&c, PB_C2S), 5);
    cr_assert_eq(f.state, CS_NONE);
    cr_assert_eq(f.direction_known, 0);
    cr_assert_eq(f.client_dir, pb_conv_dir(&c, PB_C2S), "40000 > 80: the sender is the client");
    cr_assert_eq(f.first_ts, 5u);
}

/* Established, then the FIN exchange to the end. */
Test(tcp_track, fin_exchange)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg s[] = {
        PB_C(ACK | PSH, 1, 1, 100),
        PB_C(FIN | ACK | PSH, 101, 1, 10), /* last data with the FIN: FIN at 111 */
        PB_S(ACK, 1, 112, 0),              /* acks data and FIN */
        PB_S(FIN | ACK, 1, 112, 0),        /* server FIN at 1 */
        PB_C(ACK, 112, 1, 0),              /* ack = FIN seq: does not cover the FIN */
        PB_C(ACK, 112, 2, 0),
    };

    pb_conv_init(&c, 4);
    int cd = pb_conv_dir(&c, PB_C2S), sd = 1 - cd;
    fresh(&f);
    pb_track(&f, &c, pb_handshake, 3);
    pb_track(&f, &c, &s[0], 1);
    cr_assert_eq(f.state, CS_ESTABLISHED);
    pb_track(&f, &c, &s[1], 1);
    cr_assert_eq(f.state, CS_FIN_WAIT, "%s", conn_state_name(f.state));
    cr_assert(f.dir[cd].seen & DIR_FIN);
    cr_assert_eq(f.dir[cd].fin_seq, c.cisn + 111, "FIN's own sequence number");
    cr_assert_eq(f.dir[cd].next_seq, c.cisn + 112, "the FIN takes one sequence number");
    pb_track(&f, &c, &s[2], 1);
    cr_assert_eq(f.state, CS_FIN_WAIT, "one FIN acked is still half closed");
    pb_track(&f, &c, &s[3], 1);
    cr_assert_eq(f.state, CS_CLOSING, "%s", conn_state_name(f.state));
    cr_assert_eq(f.dir[sd].fin_seq, c.sisn + 1);
    pb_track(&f, &c, &s[4], 1);
    cr_assert_eq(f.state, CS_CLOSING, "an ACK of the FIN's seq does not acknowledge it");
    pb_track(&f, &c, &s[5], 1);
    cr_assert_eq(f.state, CS_CLOSED, "%s", conn_state_name(f.state));
}

/* Server closes first; the client's FIN carries the ACK of the server's. */
Test(tcp_track, fin_exchange_server_first)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg s[] = {
        PB_S(FIN | ACK | PSH, 1, 1, 300), /* FIN at 301 */
        PB_C(FIN | ACK, 1, 302, 0),       /* acks it; own FIN at 1 */
        PB_S(ACK, 302, 2, 0),
    };

    pb_conv_init(&c, 6);
    fresh(&f);
    pb_track(&f, &c, pb_handshake, 3);
    pb_track(&f, &c, &s[0], 1);
    cr_assert_eq(f.state, CS_FIN_WAIT);
    pb_track(&f, &c, &s[1], 1);
    cr_assert_eq(f.state, CS_CLOSING, "the client's FIN is not acked yet");
    pb_track(&f, &c, &s[2], 1);
    cr_assert_eq(f.state, CS_CLOSED);
}

Test(tcp_track, fin_retransmission_keeps_first_fin_seq)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg s[] = {
        PB_C(FIN | ACK, 1, 1, 0),
        PB_C(FIN | ACK, 1, 1, 0),
    };

    pb_conv_init(&c, 4);
    fresh(&f);
    pb_track(&f, &c, pb_handshake, 3);
    pb_track(&f, &c, s, 2);
    int cd = pb_conv_dir(&c, PB_C2S);
    cr_assert_eq(f.dir[cd].fin_seq, c.cisn + 1);
    cr_assert_eq(f.dir[cd].next_seq, c.cisn + 2);
    cr_assert_eq(f.state, CS_FIN_WAIT);
}

Test(tcp_track, window_scaling_both_syns)
{
    struct pb_conv c;
    struct flow f;
    struct pb_seg s[] = {
        PB_C(SYN, 0, 0, 0),
        PB_S(SYN | ACK, 0, 1, 0),
        PB_C(ACK, 1, 1, 0),
        PB_S(ACK, 1, 1, 0),
    };
    s[1].win = 65535;
    s[2].win = 1000;
    s[3].win = 3;

    pb_conv_init(&c, 4);
    c.cws = 7;
    c.sws = 9;
    int cd = pb_conv_dir(&c, PB_C2S), sd = 1 - cd;
    fresh(&f);
    pb_track(&f, &c, s, 1);
    cr_assert_eq(f.wscale_ok, 0, "one SYN is not enough");
    cr_assert_eq(f.dir[cd].wscale, 7);
    pb_track(&f, &c, &s[1], 1);
    cr_assert_eq(f.wscale_ok, 1);
    cr_assert_eq(f.dir[sd].wscale, 9);
    /* The SYN-ACK's window is never scaled (RFC 7323 §2.2): about 65535 bytes, not 65535<<9. */
    uint32_t w = tcp_track_window(&f, sd);
    cr_assert(w <= 65535 && w > 65535 - 512, "SYN-ACK window %u", w);
    pb_track(&f, &c, &s[2], 1);
    cr_assert_eq(tcp_track_window(&f, cd), 1000u << 7);
    pb_track(&f, &c, &s[3], 1);
    cr_assert_eq(tcp_track_window(&f, sd), 3u << 9);
}

Test(tcp_track, window_scaling_needs_both_syns)
{
    struct pb_conv c;
    struct flow f;
    struct pb_seg s[] = {
        PB_C(SYN, 0, 0, 0),
        PB_S(SYN | ACK, 0, 1, 0),
        PB_C(ACK, 1, 1, 0),
    };
    s[2].win = 1000;

    for (int which = 0; which < 3; which++) {
        pb_conv_init(&c, 4);
        c.cws = which == 1 ? -1 : 7;
        c.sws = which == 0 ? -1 : 7;
        if (which == 2)
            c.cws = c.sws = -1;
        int cd = pb_conv_dir(&c, PB_C2S);
        fresh(&f);
        pb_track(&f, &c, s, 3);
        cr_assert_eq(f.wscale_ok, 0, "case %d", which);
        cr_assert_eq(tcp_track_window(&f, cd), 1000u, "case %d: both SYNs seen, no scaling", which);
    }
}

Test(tcp_track, window_unknown_scale_is_lenient)
{
    struct pb_conv c;
    struct flow f;
    struct pb_seg s = PB_C(ACK, 1, 1, 0);
    s.win = 1000;

    pb_conv_init(&c, 4);
    fresh(&f);
    pb_track(&f, &c, &s, 1);
    cr_assert_eq(tcp_track_window(&f, pb_conv_dir(&c, PB_C2S)), 1000u << 14);

    /* SYN-ACK first: the client's SYN (and its option) was never seen. */
    struct pb_seg t[] = {PB_S(SYN | ACK, 0, 1, 0), PB_C(ACK, 1, 1, 0)};
    t[1].win = 1000;
    fresh(&f);
    pb_track(&f, &c, t, 2);
    cr_assert_eq(f.wscale_ok, 0);
    cr_assert_eq(tcp_track_window(&f, pb_conv_dir(&c, PB_C2S)), 1000u << 14);
}

Test(tcp_track, sequence_bookkeeping)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg s[] = {
        PB_C(ACK | PSH, 1, 1, 100), PB_C(ACK | PSH, 1, 1, 100), /* retransmission */
        PB_C(ACK | PSH, 51, 1, 20),                      /* partial retransmission, still old */
        PB_S(ACK, 1, 101, 0),       PB_S(ACK, 1, 51, 0), /* reordered older ACK */
    };

    pb_conv_init(&c, 4);
    c.cisn = 0xffffffc0; /* the client's data wraps the sequence space */
    int cd = pb_conv_dir(&c, PB_C2S), sd = 1 - cd;
    fresh(&f);
    pb_track(&f, &c, pb_handshake, 3);
    pb_track(&f, &c, s, 3);
    cr_assert_eq(f.dir[cd].next_seq, 0xffffffc0u + 101, "next_seq %#x", f.dir[cd].next_seq);
    cr_assert_eq(f.dir[cd].next_seq, 0x25u);
    pb_track(&f, &c, &s[3], 2);
    cr_assert_eq(f.dir[sd].max_ack, 0x25u, "max_ack must not go back: %#x", f.dir[sd].max_ack);
}

Test(tcp_track, per_direction_ip_fields)
{
    struct pb_conv c;
    struct flow f;
    struct pb_seg s[] = {PB_C(ACK, 1, 1, 0), PB_S(ACK, 1, 1, 0)};
    s[0].t = 10;
    s[1].t = 20;
    s[1].ttl = 33;

    pb_conv_init(&c, 4);
    int cd = pb_conv_dir(&c, PB_C2S), sd = 1 - cd;
    fresh(&f);
    pb_track(&f, &c, s, 2);
    cr_assert_eq(f.dir[cd].ttl, 64);
    cr_assert_eq(f.dir[sd].ttl, 33);
    cr_assert_eq(f.dir[cd].df, 1);
    cr_assert_eq(f.dir[cd].ip_id, 0x1001);
    cr_assert_eq(f.dir[sd].ip_id, 0x2001);
    cr_assert_eq(f.dir[cd].last_ts, ts32(c.t0 + 10));
    cr_assert_eq(f.dir[sd].last_ts, ts32(c.t0 + 20));
    cr_assert_eq(f.first_ts, ts32(c.t0 + 10));
}

/* tcp_track_is_reuse() for a SYN arriving in every state. */
Test(tcp_track, port_reuse_detection)
{
    struct pb_conv c;
    struct flow f;
    struct pkt_info syn, syn_retx, synack, syn_rst, syn_srv;
    const struct pb_seg new_syn = {.dir = PB_C2S, .flags = SYN, .seq = 123456};
    const struct pb_seg old_syn = PB_C(SYN, 0, 0, 0);
    const struct pb_seg sa = PB_S(SYN | ACK, 0, 1, 0);
    const struct pb_seg sr = PB_C(SYN | RST, 0, 0, 0);
    const struct pb_seg ss = {.dir = PB_S2C, .flags = SYN, .seq = 777};

    pb_conv_init(&c, 4);
    int cd = pb_conv_dir(&c, PB_C2S), sd = 1 - cd;
    pb_conv_info(&c, &new_syn, &syn);
    pb_conv_info(&c, &old_syn, &syn_retx);
    pb_conv_info(&c, &sa, &synack);
    pb_conv_info(&c, &sr, &syn_rst);
    pb_conv_info(&c, &ss, &syn_srv);

    static const struct {
        uint8_t state;
        int reuse;
    } by_state[] = {
        {CS_ESTABLISHED, 0}, {CS_MIDSTREAM, 0}, {CS_FIN_WAIT, 0}, {CS_SYN_RECEIVED, 0},
        {CS_CLOSING, 1},     {CS_CLOSED, 1},    {CS_RESET, 1},
    };
    for (size_t i = 0; i < sizeof(by_state) / sizeof(by_state[0]); i++) {
        fresh(&f);
        pb_track(&f, &c, pb_handshake, 3);
        f.state = by_state[i].state;
        cr_assert_eq(tcp_track_is_reuse(&f, &syn, cd), by_state[i].reuse, "SYN in %s",
                     conn_state_name(by_state[i].state));
        cr_assert_eq(tcp_track_is_reuse(&f, &syn_srv, sd), by_state[i].reuse,
                     "server-side SYN in %s", conn_state_name(by_state[i].state));
        cr_assert_eq(tcp_track_is_reuse(&f, &synack, sd), 0, "SYN-ACK in %s",
                     conn_state_name(by_state[i].state));
        cr_assert_eq(tcp_track_is_reuse(&f, &syn_rst, cd), 0, "SYN|RST");
    }

    /* SYN-SENT: a retransmission keeps the ISN, a new attempt does not. */
    fresh(&f);
    pb_track(&f, &c, pb_handshake, 1);
    cr_assert_eq(f.state, CS_SYN_SENT);
    cr_assert_eq(tcp_track_is_reuse(&f, &syn_retx, cd), 0);
    cr_assert_eq(tcp_track_is_reuse(&f, &syn, cd), 1);
    cr_assert_eq(tcp_track_is_reuse(&f, &syn_srv, sd), 0, "simultaneous open is not reuse");
    cr_assert_eq(tcp_track_is_reuse(&f, &synack, sd), 0);

    /* A real close, then a new SYN. */
    const struct pb_seg close[] = {
        PB_C(FIN | ACK, 1, 1, 0),
        PB_S(FIN | ACK, 1, 2, 0),
        PB_C(ACK, 2, 2, 0),
    };
    fresh(&f);
    pb_track(&f, &c, pb_handshake, 3);
    pb_track(&f, &c, close, 3);
    cr_assert_eq(f.state, CS_CLOSED);
    cr_assert_eq(tcp_track_is_reuse(&f, &syn, cd), 1);
}

/* ------------------------------------------------------------------------------------------
 * tcp_track_segment() against a reference: the same rules written plainly, one field at a
 * time, as they were before the fast path was tuned (09757fc, 2f816d1). The tuned code must
 * leave every byte of the flow and every signal as the reference does, for any state and
 * packet: its next tuning is checked here, not by hand.
 */

static void ref_note_handshake(struct flow *f, uint64_t ts)
{
    struct flow_dir *srv = &f->dir[1 - f->client_dir];
    srv->hs_ts = (srv->seen & DIR_FIN) ? srv->hs_ts : ts32(ts); /* a FIN's fin_seq stays */
    f->fflags = (uint8_t)(ts ? f->fflags | FF_HANDSHAKE : f->fflags & ~FF_HANDSHAKE);
}

static void ref_advance_state(struct flow *f, const struct pkt_info *p, int d, uint64_t ts)
{
    int from_client = d == f->client_dir;
    int pure_ack = (p->flags & (SYN | ACK)) == ACK;

    if (f->state == CS_SYN_SENT) {
        if ((p->flags & (SYN | ACK)) == (SYN | ACK) && !from_client) {
            f->state = CS_SYN_RECEIVED;
            f->rtt_us = ts32_since(ts, f->dir[f->client_dir].last_ts);
        } else if (pure_ack) {
            f->state = CS_ESTABLISHED;
            ref_note_handshake(f, ts);
        }
    } else if (f->state == CS_SYN_RECEIVED) {
        if (pure_ack && (from_client || p->payload_len)) {
            f->state = CS_ESTABLISHED;
            if (from_client) {
                ref_note_handshake(f, ts);
                f->rtt_us = (f->dir[d].seen & DIR_SYN)
                                ? f->rtt_us + ts32_since(ts, f->dir[1 - d].last_ts)
                                : 0;
            }
        }
    } else if (f->state == CS_NONE) {
        f->state = CS_MIDSTREAM;
    }
    if (f->state == CS_RESET)
        return;
    int fins = !!(f->dir[0].seen & DIR_FIN) + !!(f->dir[1].seen & DIR_FIN);
    if (fins == 1) {
        f->state = CS_FIN_WAIT;
    } else if (fins == 2) {
        int acked0 =
            (f->dir[1].seen & DIR_ACK_KNOWN) && seq_gt(f->dir[1].max_ack, f->dir[0].fin_seq);
        int acked1 =
            (f->dir[0].seen & DIR_ACK_KNOWN) && seq_gt(f->dir[0].max_ack, f->dir[1].fin_seq);
        f->state = acked0 && acked1 ? CS_CLOSED : CS_CLOSING;
    }
}

static unsigned ref_segment(struct flow *f, const struct pkt_info *p, int d, uint64_t ts)
{
    struct flow_dir *fd = &f->dir[d], *peer = &f->dir[1 - d];
    unsigned sig = 0;

    if ((p->flags & SYN) && (fd->seen & (DIR_SYN | DIR_SYNACK)) && p->seq != fd->isn &&
        f->state != CS_SYN_SENT && f->state != CS_SYN_RECEIVED) { /* replaced SYN */
        f->fflags |= FF_REPLACED_SYN;
        fd->ttl = p->ttl;
        fd->last_ts = ts32(ts);
        return 0;
    }
    if (p->flags & SYN) {
        unsigned bit = (p->flags & ACK) ? DIR_SYNACK : DIR_SYN;
        if ((fd->seen & bit) && p->seq == fd->isn)
            sig |= 1u << ((p->flags & ACK) ? OVL_SYNACK_RETRANS : OVL_SYN_RETRANS);
        fd->isn = p->seq;
        fd->seen |= (uint8_t)bit;
        fd->wscale = p->opt.wscale & 0xf;
        f->wscale_ok = f->dir[0].wscale != DIR_WSCALE_NONE && f->dir[1].wscale != DIR_WSCALE_NONE &&
                       (f->dir[0].seen & (DIR_SYN | DIR_SYNACK)) &&
                       (f->dir[1].seen & (DIR_SYN | DIR_SYNACK));
    }
    int keepalive = (p->flags & (SYN | FIN | RST | ACK)) == ACK && p->payload_len <= 1 &&
                    (fd->seen & DIR_SEQ_KNOWN) && p->seq == fd->next_seq - 1;
    if (keepalive && peer->win != 0 && fd->ka_probes < DIR_KA_MAX)
        fd->ka_probes++;
    peer->ka_probes = 0;

    uint32_t end = p->seq + p->payload_len + !!(p->flags & SYN) + !!(p->flags & FIN);
    if (!(fd->seen & DIR_SEQ_KNOWN) || seq_gt(end, fd->next_seq)) {
        if (p->payload_len && (peer->seen & DIR_FIN) && (fd->seen & DIR_SEQ_KNOWN))
            fd->xflags |= DX_DATA_AFTER_PEER_FIN;
        fd->next_seq = end;
        fd->seen |= DIR_SEQ_KNOWN;
    }
    if (p->payload_len)
        fd->seen |= DIR_DATA;
    if (p->flags & ACK) {
        if ((peer->seen & DIR_SEQ_KNOWN) && seq_gt(p->ack, peer->next_seq)) {
            if (!(f->fflags & FF_GAP))
                sig |= TRACK_NEW_GAP;
            f->fflags |= FF_GAP;
        }
        if (!(fd->seen & DIR_ACK_KNOWN) || seq_gt(p->ack, fd->max_ack))
            fd->max_ack = p->ack;
        fd->seen |= DIR_ACK_KNOWN | DIR_ACK;
        fd->win = p->win;
        if (p->flags & SYN)
            fd->win = (uint16_t)(p->win >> (f->wscale_ok ? fd->wscale : 0));
        if (p->win == 0 && !(p->flags & (SYN | FIN))) {
            if (!(fd->xflags & DX_ZERO_WIN))
                sig |= 1u << OVL_ZERO_WINDOW;
            fd->xflags |= DX_ZERO_WIN;
        } else {
            fd->xflags &= (uint8_t)~DX_ZERO_WIN;
        }
    }
    if ((p->flags & FIN) && !(fd->seen & DIR_FIN)) {
        fd->fin_seq = p->seq + p->payload_len;
        fd->seen |= DIR_FIN;
    }
    ref_advance_state(f, p, d, ts);
    fd->ttl = p->ttl;
    fd->df = p->df;
    uint16_t step = (uint16_t)(p->ip_id - fd->ip_id);
    if (p->family == 4 && fd->ip_id && p->ip_id && step >= 1 && step <= 256)
        fd->xflags |= (fd->xflags & DX_IPID_STEP) ? DX_IPID_STEP | DX_IPID_SEQ : DX_IPID_STEP;
    else if (fd->ip_id || p->family != 4)
        fd->xflags &= (uint8_t) ~(DX_IPID_STEP | DX_IPID_SEQ);
    fd->ip_id = p->ip_id;
    fd->last_ts = ts32(ts);
    return sig;
}

/* xorshift64*: the same cases on every run. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

/* A value near base most of the time (the branches compare with it), anything otherwise. */
static uint32_t near(uint64_t *s, uint32_t base)
{
    uint64_t r = rnd(s);
    switch (r & 7) {
    case 0:
        return (uint32_t)(r >> 32);
    case 1:
        return base;
    case 2:
        return base - 1; /* a keepalive's sequence number */
    default:
        return base + (uint32_t)((r >> 8) % 4001) - 2000;
    }
}

/* A packet of direction d, its numbers drawn around what the flow holds. */
static void random_packet(uint64_t *s, const struct flow *f, int d, struct pkt_info *p)
{
    static const uint32_t lens[] = {0, 0, 1, 100, 1448};
    static const uint16_t wins[] = {0, 1, 512, 65535};
    uint64_t r = rnd(s);

    memset(p, 0, sizeof(*p));
    p->flags = (uint8_t)r; /* every combination, RST and URG included */
    p->seq = near(s, (r >> 8) & 1 ? f->dir[d].next_seq : f->dir[d].isn);
    p->ack = near(s, f->dir[1 - d].next_seq);
    p->payload_len = lens[(r >> 9) % 5];
    p->win = wins[(r >> 12) & 3];
    p->family = (r >> 14) & 7 ? 4 : 6;
    p->ip_id = (uint16_t)near(s, f->dir[d].ip_id + 1);
    p->ttl = (uint8_t)(r >> 20);
    p->df = (r >> 28) & 1;
    p->opt.wscale = (r >> 29) & 1 ? 0xff : (uint8_t)((r >> 30) % 15);
}

Test(tcp_track, equals_the_reference_on_any_state_and_packet)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    struct flow a, b;
    unsigned cases = 0;

    for (unsigned flow = 0; flow < 20000; flow++) {
        /* Any bytes, then a valid state: the rest of the fields are taken as they come. */
        uint8_t raw[sizeof(struct flow)];
        for (size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (uint8_t)rnd(&s);
        memcpy(&a, raw, sizeof(a));
        a.state = (uint8_t)(rnd(&s) % CS_MAX);
        if (rnd(&s) & 1) { /* and half the time a plausible one */
            a.dir[1].next_seq = a.dir[0].max_ack + (uint32_t)(rnd(&s) % 3);
            a.dir[0].next_seq = a.dir[1].max_ack + (uint32_t)(rnd(&s) % 3);
        }
        uint64_t ts = 1700000000000000ULL + (rnd(&s) % 1000000);
        /* Forty segments in a row on the same flow: states the reference itself led to. */
        for (unsigned k = 0; k < 40; k++, cases++) {
            int d = (int)(rnd(&s) & 1);
            struct pkt_info p;
            random_packet(&s, &a, d, &p);
            ts += rnd(&s) % 300000;
            b = a;
            unsigned want = ref_segment(&a, &p, d, ts);
            unsigned got = tcp_track_segment(&b, &p, d, ts);
            if (got != want || memcmp(&a, &b, sizeof(a)) != 0) {
                size_t off = 0;
                while (off < sizeof(a) && ((uint8_t *)&a)[off] == ((uint8_t *)&b)[off])
                    off++;
                cr_assert_fail("case %u (flow %u, segment %u): flags 0x%02x dir %d state %s: "
                               "signals 0x%x want 0x%x, first differing byte %zu",
                               cases, flow, k, p.flags, d, conn_state_name(b.state), got, want,
                               off);
            }
        }
    }
    cr_assert_eq(cases, 800000u);
}
