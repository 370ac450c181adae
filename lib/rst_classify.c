#include "rst_classify.h"

#include "seq.h"
#include "tcp_track.h"

enum seq_check rst_seq_check(const struct flow *f, int d, const struct pkt_info *rst)
{
    const struct flow_dir *sd = &f->dir[d];
    const struct flow_dir *rd = &f->dir[1 - d];

    if (f->state == CS_NONE)
        return SEQ_UNKNOWN;
    if (f->state == CS_SYN_SENT) {
        if (d == f->client_dir)
            return SEQ_UNKNOWN;
        /* RFC 9293 §3.10.7.3: in SYN-SENT a RST counts only if it ACKs our SYN. */
        if (!(rst->flags & TCP_ACK))
            return SEQ_ACK_BAD;
        return rst->ack == rd->isn + 1 ? SEQ_ACK_OK : SEQ_ACK_BAD;
    }
    /* RCV.NXT of the receiver is what the sender has sent (sd->next_seq) or, when the
     * mirror missed some of that, what the receiver last acknowledged (rd->max_ack).
     * Linux also takes the FIN's own sequence number in the closing states. */
    if (sd->seen & DIR_SEQ_KNOWN) {
        if (rst->seq == sd->next_seq)
            return SEQ_EXACT;
        if ((sd->seen & DIR_FIN) && rst->seq == sd->next_seq - 1)
            return SEQ_EXACT;
    }
    if (!(rd->seen & DIR_ACK_KNOWN))
        return SEQ_UNKNOWN;
    if (rst->seq == rd->max_ack)
        return SEQ_EXACT;
    uint32_t wnd = tcp_track_window(f, 1 - d);
    if (wnd == 0)
        wnd = 1;
    return seq_in(rst->seq, rd->max_ack, wnd) ? SEQ_IN_WINDOW : SEQ_OUT_OF_WINDOW;
}

int rst_check_rank(enum seq_check c)
{
    switch (c) {
    case SEQ_EXACT:
    case SEQ_ACK_OK:
        return 3;
    case SEQ_UNKNOWN:
        return 2;
    case SEQ_IN_WINDOW:
        return 1;
    default:
        return 0;
    }
}

void classify_cfg_defaults(struct classify_cfg *c)
{
    c->idle_threshold_us = 240ULL * 1000000; /* the shortest common LB timer (Azure, 4 min) */
    c->overflow_window_us = 1000000;
    c->keepalive_probes = 2;
}

/* Linux's listen-overflow reset (tcp_abort_on_overflow=1): the stateless answer to the
 * handshake ACK, so a bare RST with seq = server ISN + 1, before the server sent any data. */
static int accept_overflow(const struct flow *f, const struct pending_rst *r,
                           const struct classify_cfg *cfg)
{
    const struct flow_dir *s = &f->dir[r->sender_dir];
    return r->sender_dir != f->client_dir && !(r->rst_flags & TCP_ACK) &&
           (f->fflags & FF_HANDSHAKE) && (s->seen & DIR_SYNACK) &&
           !(s->seen & (DIR_DATA | DIR_FIN)) && r->seq == s->isn + 1 &&
           ts32_since(r->first_ts, flow_hs_ts(f)) <= cfg->overflow_window_us;
}

enum rst_cause rst_classify(const struct flow *f, const struct pending_rst *r,
                            const struct classify_cfg *cfg)
{
    int from_client = r->sender_dir == f->client_dir;
    const struct flow_dir *snd = &f->dir[r->sender_dir];
    int forged = (r->evidence & (EV_TTL_MISMATCH | EV_IPID_MISMATCH | EV_SENDER_CONTINUED)) != 0;

    if (!r->had_flow)
        return CAUSE_NO_FLOW;
    /* Answer to a SYN-ACK whose SYN never passed here: backscatter of spoofed SYNs. */
    if (r->state == CS_SYN_RECEIVED && from_client && !(snd->seen & DIR_SYN))
        return CAUSE_NO_FLOW;
    if (r->check == SEQ_OUT_OF_WINDOW || r->check == SEQ_ACK_BAD)
        return CAUSE_OUT_OF_WINDOW;
    /* In window but not exact, and the receiver challenged it or carried on sending, with no
     * corrected exact RST: it ignored the RST (RFC 5961 §3.2). */
    if (r->check == SEQ_IN_WINDOW && (r->after_data || (r->evidence & EV_CHALLENGE_ACK)))
        return CAUSE_OUT_OF_WINDOW;

    if (r->state == CS_SYN_SENT) {
        if (from_client)
            return CAUSE_CLIENT_ABORT; /* it gave up before any answer */
        return forged ? CAUSE_MIDDLEBOX_REFUSED : CAUSE_REFUSED;
    }
    if (r->state == CS_RESET)
        return CAUSE_UNCLASSIFIED; /* not reached: late RSTs fold into the first event */
    if (cfg->keepalive_probes && r->ka_probes >= cfg->keepalive_probes)
        return CAUSE_KEEPALIVE_TIMEOUT;
    if (cfg->idle_threshold_us && (uint64_t)r->idle_ms * 1000 >= cfg->idle_threshold_us)
        return CAUSE_IDLE_TIMEOUT;
    /* RSTs both ways alone are not forgery: genuine aborts can cross. With a long silence
     * before them they are a middlebox's proactive expiry, handled above. */
    if (forged)
        return CAUSE_MIDDLEBOX_INJECTED;

    switch (r->state) {
    case CS_FIN_WAIT:
    case CS_CLOSING:
    case CS_CLOSED:
        /* The sender had closed, and the peer kept sending: it resets data it will never read
         * (HTTP keep-alive race). Otherwise the exchange was over: a benign abortive close. */
        if ((snd->seen & DIR_FIN) && (f->dir[1 - r->sender_dir].xflags & DX_DATA_AFTER_PEER_FIN))
            return CAUSE_DATA_AFTER_CLOSE;
        return CAUSE_AFTER_FIN;
    default: /* syn_received, established, midstream */
        if (accept_overflow(f, r, cfg))
            return CAUSE_ACCEPT_OVERFLOW;
        /* A socket's own reset always carries ACK; a bare RST is the stack's answer for a
         * segment no socket owns (RFC 9293 §3.10.7.1): the sender lost the connection. */
        if (!(r->rst_flags & TCP_ACK) && r->state != CS_SYN_RECEIVED)
            return CAUSE_STALE_CONNECTION;
        return from_client ? CAUSE_CLIENT_ABORT : CAUSE_SERVER_ABORT;
    }
}

enum rst_origin rst_origin(uint8_t base_ttl, uint8_t rst_ttl, uint8_t tolerance)
{
    if (base_ttl == 0)
        return ORIGIN_UNKNOWN;
    int diff = (int)base_ttl - (int)rst_ttl;
    if (diff < 0)
        diff = -diff;
    return diff <= tolerance ? ORIGIN_HOST : ORIGIN_MIDDLEBOX;
}
