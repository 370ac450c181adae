#include "tcp_track.h"

#include "seq.h"

void tcp_track_init(struct flow *f, const struct pkt_info *p, int d, uint64_t ts)
{
    f->first_ts = ts;
    if ((p->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
        f->client_dir = (uint8_t)d;
        f->direction_known = 1;
        f->state = CS_SYN_SENT;
    } else if ((p->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
        f->client_dir = (uint8_t)(1 - d);
        f->direction_known = 1;
        f->state = CS_SYN_RECEIVED;
    } else {
        /* No handshake: guess that the higher (ephemeral) port is the client's. */
        f->client_dir = (uint8_t)(p->sport >= p->dport ? d : 1 - d);
        f->direction_known = 0;
        f->state = (p->flags & TCP_RST) ? CS_NONE : CS_MIDSTREAM;
    }
}

int tcp_track_is_reuse(const struct flow *f, const struct pkt_info *p, int d)
{
    if ((p->flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
        return 0;
    switch (f->state) {
    case CS_CLOSED:
    case CS_RESET:
    case CS_CLOSING:
        return 1;
    case CS_SYN_SENT: /* a retransmission keeps the ISN; a new attempt picks another */
        return d == f->client_dir && p->seq != f->dir[d].isn;
    default:
        return 0;
    }
}

uint32_t tcp_track_window(const struct flow *f, int d)
{
    const struct flow_dir *fd = &f->dir[d];
    int both_syns =
        (f->dir[0].seen & (DIR_SYN | DIR_SYNACK)) && (f->dir[1].seen & (DIR_SYN | DIR_SYNACK));
    unsigned scale = f->wscale_ok ? fd->wscale : both_syns ? 0 : 14;
    return fd->win << scale;
}

static void note_syn(struct flow *f, struct flow_dir *fd, const struct pkt_info *p)
{
    fd->isn = p->seq;
    fd->seen |= (p->flags & TCP_ACK) ? DIR_SYNACK : DIR_SYN;
    fd->wscale = p->opt.wscale;
    /* RFC 7323 §2.2: scaling is in force only when both SYNs carried the option. */
    f->wscale_ok = f->dir[0].wscale != 0xff && f->dir[1].wscale != 0xff &&
                   (f->dir[0].seen & (DIR_SYN | DIR_SYNACK)) &&
                   (f->dir[1].seen & (DIR_SYN | DIR_SYNACK));
}

static void advance_state(struct flow *f, const struct pkt_info *p, int d)
{
    int from_client = d == f->client_dir;
    int pure_ack = (p->flags & (TCP_SYN | TCP_ACK)) == TCP_ACK;

    switch (f->state) {
    case CS_SYN_SENT:
        if ((p->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) && !from_client)
            f->state = CS_SYN_RECEIVED;
        else if (pure_ack) /* the SYN-ACK was not mirrored */
            f->state = CS_ESTABLISHED;
        break;
    case CS_SYN_RECEIVED:
        if (pure_ack && (from_client || p->payload_len))
            f->state = CS_ESTABLISHED;
        break;
    case CS_NONE:
        f->state = CS_MIDSTREAM;
        break;
    default:
        break;
    }
    if (f->state == CS_RESET)
        return;
    uint8_t fins = (f->dir[0].seen & DIR_FIN ? 1 : 0) + (f->dir[1].seen & DIR_FIN ? 1 : 0);
    if (fins == 1) {
        f->state = CS_FIN_WAIT;
    } else if (fins == 2) {
        /* Closed once each FIN is acknowledged by the other side. */
        int acked0 =
            (f->dir[1].seen & DIR_ACK_KNOWN) && seq_gt(f->dir[1].max_ack, f->dir[0].fin_seq);
        int acked1 =
            (f->dir[0].seen & DIR_ACK_KNOWN) && seq_gt(f->dir[0].max_ack, f->dir[1].fin_seq);
        f->state = acked0 && acked1 ? CS_CLOSED : CS_CLOSING;
    }
}

void tcp_track_segment(struct flow *f, const struct pkt_info *p, int d, uint64_t ts)
{
    struct flow_dir *fd = &f->dir[d];
    uint8_t fl = p->flags;

    if (fl & TCP_SYN)
        note_syn(f, fd, p);

    uint32_t end = p->seq + p->payload_len + ((fl & TCP_SYN) ? 1 : 0) + ((fl & TCP_FIN) ? 1 : 0);
    if (!(fd->seen & DIR_SEQ_KNOWN) || seq_gt(end, fd->next_seq)) {
        fd->next_seq = end;
        fd->seen |= DIR_SEQ_KNOWN;
    }
    if (p->payload_len)
        fd->seen |= DIR_DATA;
    if (fl & TCP_ACK) {
        if (!(fd->seen & DIR_ACK_KNOWN) || seq_gt(p->ack, fd->max_ack))
            fd->max_ack = p->ack;
        fd->seen |= DIR_ACK_KNOWN | DIR_ACK;
        fd->win = p->win; /* raw; scaled on use: SYN windows are never scaled (RFC 7323) */
        if (fl & TCP_SYN)
            fd->win = p->win >> (f->wscale_ok ? fd->wscale : 0);
    }
    if ((fl & TCP_FIN) && !(fd->seen & DIR_FIN)) {
        fd->fin_seq = p->seq + p->payload_len;
        fd->seen |= DIR_FIN;
    }
    fd->ttl = p->ttl;
    fd->df = p->df;
    fd->ip_id = p->ip_id;
    fd->last_ts = ts;
    advance_state(f, p, d);
}
