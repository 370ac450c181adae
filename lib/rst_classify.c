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

enum rst_cause rst_classify(const struct flow *f, const struct pending_rst *r)
{
    if (!r->had_flow)
        return CAUSE_NO_FLOW;
    if (r->check == SEQ_OUT_OF_WINDOW || r->check == SEQ_ACK_BAD)
        return CAUSE_OUT_OF_WINDOW;
    /* In window but not exact, and the receiver carried on sending: it ignored the RST
     * (RFC 5961 §3.2 challenge-ACK behaviour). */
    if (r->check == SEQ_IN_WINDOW && r->after_data)
        return CAUSE_OUT_OF_WINDOW;

    int from_client = r->sender_dir == f->client_dir;
    switch (r->state) {
    case CS_SYN_SENT:
        return from_client ? CAUSE_UNCLASSIFIED : CAUSE_REFUSED;
    case CS_SYN_RECEIVED:
    case CS_ESTABLISHED:
    case CS_MIDSTREAM:
        return from_client ? CAUSE_CLIENT_ABORT : CAUSE_SERVER_ABORT;
    case CS_FIN_WAIT:
    case CS_CLOSING:
    case CS_CLOSED:
        return CAUSE_AFTER_FIN;
    default:
        return CAUSE_UNCLASSIFIED;
    }
}

enum rst_origin rst_origin(const struct flow_dir *sender, uint8_t rst_ttl, uint8_t tolerance)
{
    if (sender->ttl == 0)
        return ORIGIN_UNKNOWN;
    int diff = (int)sender->ttl - (int)rst_ttl;
    if (diff < 0)
        diff = -diff;
    return diff <= tolerance ? ORIGIN_HOST : ORIGIN_MIDDLEBOX;
}
