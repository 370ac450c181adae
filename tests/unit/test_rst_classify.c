/*
 * RST judgement: rst_seq_check() against flow state built from real segments, the cause
 * rst_classify() gives the whole event, and rst_origin() from TTLs.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "pktbuild.h"
#include "rst_classify.h"
#include "tcp_track.h"

#define SYN TCP_SYN
#define ACK TCP_ACK
#define FIN TCP_FIN
#define PSH TCP_PSH
#define RST TCP_RST

struct verdict {
    enum seq_check check;
    enum rst_cause cause;
};

/* Judge one RST as the engine does for the first RST of an event. */
static struct verdict judge(const struct flow *f, const struct pb_conv *c, const struct pb_seg *rst,
                            int after_data)
{
    struct pkt_info p;
    struct pending_rst r;
    struct verdict v;
    int d = pb_conv_dir(c, rst->dir);

    pb_conv_info(c, rst, &p);
    cr_assert(p.flags & RST);
    memset(&r, 0, sizeof(r));
    r.active = 1;
    r.rst_count = 1;
    r.state = f->state;
    r.had_flow = f->state != CS_NONE;
    r.sender_dir = (uint8_t)d;
    r.check = (uint8_t)rst_seq_check(f, d, &p);
    r.after_data = (uint8_t)after_data;
    v.check = r.check;
    r.rst_flags = p.flags;
    r.seq = p.seq;
    struct classify_cfg cc;
    classify_cfg_defaults(&cc);
    v.cause = rst_classify(f, &r, &cc);
    return v;
}

static void expect(struct verdict v, enum seq_check check, enum rst_cause cause, const char *what)
{
    cr_assert_eq(v.check, check, "%s: check %s, want %s", what, seq_check_name(v.check),
                 seq_check_name(check));
    cr_assert_eq(v.cause, cause, "%s: cause %s, want %s", what, cause_name(v.cause),
                 cause_name(cause));
}

static void established(struct flow *f, const struct pb_conv *c)
{
    memset(f, 0, sizeof(*f));
    pb_track(f, c, pb_handshake, 3);
    pb_track(f, c, pb_exchange, 3);
    cr_assert_eq(f->state, CS_ESTABLISHED);
}

Test(rst_classify, refused)
{
    struct pb_conv c;
    struct flow f;
    /* Linux answers a SYN to a closed port with RST|ACK, seq 0, ack ISN + 1. */
    struct pb_seg rst = PB_S(RST | ACK, 0, 1, 0);

    pb_conv_init(&c, 4);
    memset(&f, 0, sizeof(f));
    pb_track(&f, &c, pb_handshake, 1);
    c.sisn = 0;
    expect(judge(&f, &c, &rst, 0), SEQ_ACK_OK, CAUSE_REFUSED, "RST|ACK acking the SYN");

    pb_conv_init(&c, 6);
    c.cisn = 0xffffffff; /* ISN + 1 wraps */
    memset(&f, 0, sizeof(f));
    pb_track(&f, &c, pb_handshake, 1);
    expect(judge(&f, &c, &rst, 0), SEQ_ACK_OK, CAUSE_REFUSED, "wrapping ISN");
}

Test(rst_classify, syn_answered_with_wrong_ack)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg bad_ack = PB_S(RST | ACK, 0, 2, 0);
    const struct pb_seg isn_ack = PB_S(RST | ACK, 0, 0, 0);
    const struct pb_seg no_ack = PB_S(RST, 0, 1, 0);

    pb_conv_init(&c, 4);
    memset(&f, 0, sizeof(f));
    pb_track(&f, &c, pb_handshake, 1);
    expect(judge(&f, &c, &bad_ack, 0), SEQ_ACK_BAD, CAUSE_OUT_OF_WINDOW, "ack ISN + 2");
    expect(judge(&f, &c, &isn_ack, 0), SEQ_ACK_BAD, CAUSE_OUT_OF_WINDOW, "ack ISN");
    expect(judge(&f, &c, &no_ack, 0), SEQ_ACK_BAD, CAUSE_OUT_OF_WINDOW,
           "RST without ACK in SYN-SENT (RFC 9293 §3.10.7.3: dropped)");

    /* Even when the (meaningless) ack field holds ISN + 1, no ACK flag means no ACK. */
    struct pkt_info p;
    pb_conv_info(&c, &no_ack, &p);
    p.ack = c.cisn + 1;
    cr_assert_eq(rst_seq_check(&f, pb_conv_dir(&c, PB_S2C), &p), SEQ_ACK_BAD);
    p.flags |= ACK;
    cr_assert_eq(rst_seq_check(&f, pb_conv_dir(&c, PB_S2C), &p), SEQ_ACK_OK);
}

Test(rst_classify, client_rst_in_syn_sent_is_client_abort)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg rst = PB_C(RST, 1, 0, 0);

    pb_conv_init(&c, 4);
    memset(&f, 0, sizeof(f));
    pb_track(&f, &c, pb_handshake, 1);
    expect(judge(&f, &c, &rst, 0), SEQ_UNKNOWN, CAUSE_CLIENT_ABORT,
           "client RST after its SYN: it gave up before an answer");
}

Test(rst_classify, server_abort)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg ra = PB_S(RST | ACK, 1001, 101, 0);
    const struct pb_seg r = PB_S(RST, 1001, 0, 0);

    pb_conv_init(&c, 4);
    established(&f, &c);
    expect(judge(&f, &c, &ra, 0), SEQ_EXACT, CAUSE_SERVER_ABORT, "server RST|ACK at snd.nxt");
    /* Without ACK it is the stack's answer for a segment no socket owns: not an abort by the
     * application but a server that no longer knows the connection. */
    expect(judge(&f, &c, &r, 0), SEQ_EXACT, CAUSE_STALE_CONNECTION, "bare server RST at snd.nxt");

    /* Roles come from the pb_handshake, not from the addresses. */
    pb_addr(c.cli, "10.0.0.250");
    established(&f, &c);
    expect(judge(&f, &c, &ra, 0), SEQ_EXACT, CAUSE_SERVER_ABORT, "client is the hi endpoint");
}

Test(rst_classify, client_abort)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg ra = PB_C(RST | ACK, 101, 1001, 0);

    pb_conv_init(&c, 6);
    established(&f, &c);
    expect(judge(&f, &c, &ra, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "client RST|ACK at snd.nxt");
    pb_addr(c.cli, "2001:db8::ffff");
    established(&f, &c);
    expect(judge(&f, &c, &ra, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "client is the hi endpoint");
}

Test(rst_classify, abort_during_handshake)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg cli = PB_C(RST, 1, 0, 0); /* SYN scan: SYN, SYN-ACK, RST */
    const struct pb_seg srv = PB_S(RST | ACK, 1, 1, 0);

    pb_conv_init(&c, 4);
    memset(&f, 0, sizeof(f));
    pb_track(&f, &c, pb_handshake, 2);
    cr_assert_eq(f.state, CS_SYN_RECEIVED);
    expect(judge(&f, &c, &cli, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "client RST after SYN-ACK");
    expect(judge(&f, &c, &srv, 0), SEQ_EXACT, CAUSE_SERVER_ABORT, "server RST after SYN-ACK");
}

Test(rst_classify, after_fin)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg fin_s[] = {
        PB_S(FIN | ACK | PSH, 1001, 101, 3000), /* response then FIN at 4001 */
        PB_C(ACK, 101, 4002, 0),
    };
    const struct pb_seg rst_c = PB_C(RST | ACK, 101, 4002, 0);
    const struct pb_seg rst_s_fin = PB_S(RST | ACK, 4001, 101, 0); /* at the FIN's own seq */
    const struct pb_seg rst_s = PB_S(RST | ACK, 4002, 101, 0);

    pb_conv_init(&c, 4);
    established(&f, &c);
    pb_track(&f, &c, fin_s, 2);
    cr_assert_eq(f.state, CS_FIN_WAIT);
    expect(judge(&f, &c, &rst_c, 0), SEQ_EXACT, CAUSE_AFTER_FIN, "client RST after server FIN");
    expect(judge(&f, &c, &rst_s, 0), SEQ_EXACT, CAUSE_AFTER_FIN, "server RST after its FIN");
    expect(judge(&f, &c, &rst_s_fin, 0), SEQ_EXACT, CAUSE_AFTER_FIN,
           "server RST at its FIN's sequence number");

    const struct pb_seg fin_c = PB_C(FIN | ACK, 101, 4002, 0);
    pb_track(&f, &c, &fin_c, 1);
    cr_assert_eq(f.state, CS_CLOSING);
    const struct pb_seg rst_c2 = PB_C(RST | ACK, 102, 4002, 0);
    expect(judge(&f, &c, &rst_c2, 0), SEQ_EXACT, CAUSE_AFTER_FIN, "RST in CLOSING");

    const struct pb_seg last = PB_S(ACK, 4002, 102, 0);
    pb_track(&f, &c, &last, 1);
    cr_assert_eq(f.state, CS_CLOSED);
    expect(judge(&f, &c, &rst_c2, 0), SEQ_EXACT, CAUSE_AFTER_FIN, "RST in CLOSED");
}

Test(rst_classify, no_flow)
{
    struct pb_conv c;
    struct flow f;
    struct pkt_info p;
    const struct pb_seg rst = PB_C(RST | ACK, 555, 777, 0);

    pb_conv_init(&c, 4);
    memset(&f, 0, sizeof(f));
    pb_conv_info(&c, &rst, &p);
    tcp_track_init(&f, &p, pb_conv_dir(&c, PB_C2S), c.t0);
    cr_assert_eq(f.state, CS_NONE);
    expect(judge(&f, &c, &rst, 0), SEQ_UNKNOWN, CAUSE_NO_FLOW, "lone RST");
}

Test(rst_classify, out_of_window)
{
    struct pb_conv c;
    struct flow f;
    /* As in tests/data/out_of_window.pcap: right ack, seq = snd.nxt + 2^30. */
    const struct pb_seg far = PB_C(RST | ACK, 101 + (1u << 30), 1001, 0);
    const struct pb_seg behind = PB_C(RST | ACK, 100, 1001, 0);
    const struct pb_seg way_behind = PB_S(RST, 1001u - 100000u, 101, 0);

    pb_conv_init(&c, 4);
    established(&f, &c);
    expect(judge(&f, &c, &far, 0), SEQ_OUT_OF_WINDOW, CAUSE_OUT_OF_WINDOW, "snd.nxt + 2^30");
    expect(judge(&f, &c, &behind, 0), SEQ_OUT_OF_WINDOW, CAUSE_OUT_OF_WINDOW, "rcv.nxt - 1");
    expect(judge(&f, &c, &way_behind, 0), SEQ_OUT_OF_WINDOW, CAUSE_OUT_OF_WINDOW,
           "server RST far behind");
    /* Out of window stays out of window whether or not the receiver carries on. */
    expect(judge(&f, &c, &far, 1), SEQ_OUT_OF_WINDOW, CAUSE_OUT_OF_WINDOW, "with after_data");
}

Test(rst_classify, in_window_not_exact)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg cli = PB_C(RST | ACK, 101 + 1000, 1001, 0);
    const struct pb_seg srv = PB_S(RST | ACK, 1001 + 5, 101, 0);

    pb_conv_init(&c, 4);
    established(&f, &c);
    /* The receiver carried on sending: it ignored the RST (challenge-ACK behaviour). */
    expect(judge(&f, &c, &cli, 1), SEQ_IN_WINDOW, CAUSE_OUT_OF_WINDOW, "receiver went on");
    expect(judge(&f, &c, &srv, 1), SEQ_IN_WINDOW, CAUSE_OUT_OF_WINDOW, "receiver went on (srv)");
    /* Nothing after it: an abort by the sender (pre-RFC 5961 stacks accept it). */
    expect(judge(&f, &c, &cli, 0), SEQ_IN_WINDOW, CAUSE_CLIENT_ABORT, "nothing after");
    expect(judge(&f, &c, &srv, 0), SEQ_IN_WINDOW, CAUSE_SERVER_ABORT, "nothing after (srv)");
}

/* The mirror missed data the client sent; the server's ACK shows where its RCV.NXT is. */
Test(rst_classify, exact_via_receiver_max_ack)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg missed = PB_S(ACK, 1001, 301, 0); /* acks 200 unseen bytes */
    const struct pb_seg rst = PB_C(RST | ACK, 301, 1001, 0);
    const struct pb_seg rst_seen = PB_C(RST | ACK, 101, 1001, 0);

    pb_conv_init(&c, 4);
    established(&f, &c);
    pb_track(&f, &c, &missed, 1);
    int cd = pb_conv_dir(&c, PB_C2S);
    cr_assert_eq(f.dir[cd].next_seq, c.cisn + 101, "the sensor saw only 100 bytes");
    expect(judge(&f, &c, &rst, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "seq == receiver's max_ack");
    /* And the sender's own next_seq still counts when the receiver is ahead of it. */
    expect(judge(&f, &c, &rst_seen, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "seq == sender next_seq");
}

Test(rst_classify, exact_via_next_seq_without_receiver_ack)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg one = PB_C(ACK | PSH, 1, 1, 100); /* mid-stream, one direction */
    const struct pb_seg exact = PB_C(RST | ACK, 101, 1, 0);
    const struct pb_seg other = PB_C(RST | ACK, 5000, 1, 0);

    pb_conv_init(&c, 4);
    memset(&f, 0, sizeof(f));
    pb_track(&f, &c, &one, 1);
    cr_assert_eq(f.state, CS_MIDSTREAM);
    expect(judge(&f, &c, &exact, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "next_seq, receiver silent");
    /* The receiver never acked anything: the window is unknown, so the RST is accepted. */
    expect(judge(&f, &c, &other, 0), SEQ_UNKNOWN, CAUSE_CLIENT_ABORT, "receiver silent");
}

Test(rst_classify, window_edges_scaled)
{
    struct pb_conv c;
    struct flow f;

    pb_conv_init(&c, 4);
    c.swin = 100;
    c.sws = 7; /* the server's receive window: 100 << 7 = 12800 bytes from client seq 101 */
    established(&f, &c);
    int sd = pb_conv_dir(&c, PB_S2C);
    cr_assert_eq(tcp_track_window(&f, sd), 12800u);

    struct pb_seg r = PB_C(RST | ACK, 0, 1001, 0);
    r.seq = 101 + 12800 - 1;
    expect(judge(&f, &c, &r, 0), SEQ_IN_WINDOW, CAUSE_CLIENT_ABORT, "last byte of the window");
    r.seq = 101 + 12800;
    expect(judge(&f, &c, &r, 0), SEQ_OUT_OF_WINDOW, CAUSE_OUT_OF_WINDOW, "one past the window");
    r.seq = 102;
    expect(judge(&f, &c, &r, 0), SEQ_IN_WINDOW, CAUSE_CLIENT_ABORT, "rcv.nxt + 1");
    r.seq = 101;
    expect(judge(&f, &c, &r, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "rcv.nxt");
}

Test(rst_classify, zero_window)
{
    struct pb_conv c;
    struct flow f;
    struct pb_seg zw = PB_S(ACK, 1001, 101, 0);
    zw.win = PB_WIN_ZERO;

    pb_conv_init(&c, 4);
    established(&f, &c);
    pb_track(&f, &c, &zw, 1);
    struct pb_seg r = PB_C(RST | ACK, 102, 1001, 0);
    expect(judge(&f, &c, &r, 0), SEQ_OUT_OF_WINDOW, CAUSE_OUT_OF_WINDOW,
           "zero window: only rcv.nxt is acceptable");
    r.seq = 101;
    expect(judge(&f, &c, &r, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "zero window, exact");
}

Test(rst_classify, midstream_roles_are_guessed)
{
    struct pb_conv c;
    struct flow f;
    const struct pb_seg s[] = {
        PB_S(ACK | PSH, 1, 1, 500),
        PB_C(ACK, 1, 501, 0),
    };
    const struct pb_seg srv = PB_S(RST | ACK, 501, 1, 0);
    const struct pb_seg cli = PB_C(RST | ACK, 1, 501, 0);

    pb_conv_init(&c, 4);
    c.cport = 55555;
    c.sport = 443;
    memset(&f, 0, sizeof(f));
    pb_track(&f, &c, s, 2);
    cr_assert_eq(f.direction_known, 0);
    expect(judge(&f, &c, &srv, 0), SEQ_EXACT, CAUSE_SERVER_ABORT, "guessed server");
    expect(judge(&f, &c, &cli, 0), SEQ_EXACT, CAUSE_CLIENT_ABORT, "guessed client");
}

/* rst_classify() over hand-built events: every state, both senders, every check. */
Test(rst_classify, cause_matrix)
{
    struct flow f;
    struct pending_rst r;

    memset(&f, 0, sizeof(f));
    f.client_dir = 1;
    for (int st = 0; st < CS_MAX; st++) {
        for (int sender = 0; sender < 2; sender++) {
            for (int chk = 0; chk < SEQ_MAX; chk++) {
                for (int ad = 0; ad < 2; ad++) {
                    memset(&r, 0, sizeof(r));
                    r.active = 1;
                    r.had_flow = st != CS_NONE;
                    r.state = (uint8_t)st;
                    r.sender_dir = (uint8_t)sender;
                    r.check = (uint8_t)chk;
                    r.after_data = (uint8_t)ad;
                    r.rst_flags = TCP_RST | TCP_ACK; /* a socket's own reset */
                    int from_client = sender == 1;
                    enum rst_cause want;
                    if (st == CS_NONE)
                        want = CAUSE_NO_FLOW;
                    else if (st == CS_SYN_RECEIVED && from_client) /* its SYN never seen */
                        want = CAUSE_NO_FLOW;
                    else if (chk == SEQ_OUT_OF_WINDOW || chk == SEQ_ACK_BAD ||
                             (chk == SEQ_IN_WINDOW && ad))
                        want = CAUSE_OUT_OF_WINDOW;
                    else if (st == CS_SYN_SENT)
                        want = from_client ? CAUSE_CLIENT_ABORT : CAUSE_REFUSED;
                    else if (st == CS_SYN_RECEIVED || st == CS_ESTABLISHED || st == CS_MIDSTREAM)
                        want = from_client ? CAUSE_CLIENT_ABORT : CAUSE_SERVER_ABORT;
                    else if (st == CS_FIN_WAIT || st == CS_CLOSING || st == CS_CLOSED)
                        want = CAUSE_AFTER_FIN;
                    else
                        want = CAUSE_UNCLASSIFIED;
                    struct classify_cfg cc;
                    classify_cfg_defaults(&cc);
                    enum rst_cause got = rst_classify(&f, &r, &cc);
                    cr_assert_eq(got, want, "state %s sender %d check %s after_data %d: %s",
                                 conn_state_name(st), sender, seq_check_name(chk), ad,
                                 cause_name(got));
                }
            }
        }
    }
}

Test(rst_classify, check_rank)
{
    cr_assert_eq(rst_check_rank(SEQ_EXACT), rst_check_rank(SEQ_ACK_OK));
    cr_assert_gt(rst_check_rank(SEQ_EXACT), rst_check_rank(SEQ_UNKNOWN));
    cr_assert_gt(rst_check_rank(SEQ_UNKNOWN), rst_check_rank(SEQ_IN_WINDOW));
    cr_assert_gt(rst_check_rank(SEQ_IN_WINDOW), rst_check_rank(SEQ_OUT_OF_WINDOW));
    cr_assert_eq(rst_check_rank(SEQ_OUT_OF_WINDOW), rst_check_rank(SEQ_ACK_BAD));
}

Test(rst_classify, origin_from_ttl)
{
    cr_assert_eq(rst_origin(0, 64, 2), ORIGIN_UNKNOWN, "no TTL of the sender known");
    cr_assert_eq(rst_origin(64, 64, 2), ORIGIN_HOST);
    cr_assert_eq(rst_origin(64, 62, 2), ORIGIN_HOST, "within tolerance");
    cr_assert_eq(rst_origin(64, 66, 2), ORIGIN_HOST, "within tolerance, above");
    cr_assert_eq(rst_origin(64, 61, 2), ORIGIN_MIDDLEBOX);
    cr_assert_eq(rst_origin(64, 67, 2), ORIGIN_MIDDLEBOX);
    cr_assert_eq(rst_origin(64, 255, 2), ORIGIN_MIDDLEBOX, "a device one hop away, TTL 255");
    cr_assert_eq(rst_origin(64, 63, 0), ORIGIN_MIDDLEBOX, "zero tolerance");
    cr_assert_eq(rst_origin(1, 255, 255), ORIGIN_HOST);
    cr_assert_eq(rst_origin(1, 0, 0), ORIGIN_MIDDLEBOX);
}

Test(rst_classify, names)
{
    for (int c = 0; c < CAUSE_MAX; c++) {
        cr_assert_str_neq(cause_name(c), "?");
        cr_assert_str_neq(cause_meaning(c), "?");
    }
    cr_assert_str_eq(cause_name(CAUSE_REFUSED), "refused");
    cr_assert_str_eq(cause_name(CAUSE_SERVER_ABORT), "server_abort");
    cr_assert_str_eq(cause_name(CAUSE_CLIENT_ABORT), "client_abort");
    cr_assert_str_eq(cause_name(CAUSE_AFTER_FIN), "after_fin");
    cr_assert_str_eq(cause_name(CAUSE_NO_FLOW), "no_flow");
    cr_assert_str_eq(cause_name(CAUSE_OUT_OF_WINDOW), "out_of_window");
    cr_assert_str_eq(cause_name(CAUSE_UNCLASSIFIED), "unclassified");
    cr_assert_str_eq(cause_name(CAUSE_MAX), "?");
    for (int s = 0; s < CS_MAX; s++)
        cr_assert_str_neq(conn_state_name(s), "?");
    for (int s = 0; s < SEQ_MAX; s++)
        cr_assert_str_neq(seq_check_name(s), "?");
    for (int o = 0; o < ORIGIN_MAX; o++)
        cr_assert_str_neq(origin_name(o), "?");
    cr_assert_str_eq(origin_name(ORIGIN_MIDDLEBOX), "middlebox");
    cr_assert_str_eq(conn_state_name(CS_FIN_WAIT), "fin_wait");
}
