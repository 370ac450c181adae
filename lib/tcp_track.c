#include "tcp_track.h"

#include "seq.h"

void tcp_track_init(struct flow *f, const struct pkt_info *p, int d, uint64_t ts)
{
    f->first_ts = ts32(ts);
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
    return (uint32_t)fd->win << scale;
}

static void note_syn(struct flow *f, struct flow_dir *fd, const struct pkt_info *p)
{
    fd->isn = p->seq;
    fd->seen |= (p->flags & TCP_ACK) ? DIR_SYNACK : DIR_SYN;
    /* 0..14, or 0xff when absent: its low 4 bits are DIR_WSCALE_NONE. */
    fd->wscale = p->opt.wscale & 0xf;
    /* RFC 7323 §2.2: scaling is in force only when both SYNs carried the option. */
    f->wscale_ok = f->dir[0].wscale != DIR_WSCALE_NONE && f->dir[1].wscale != DIR_WSCALE_NONE &&
                   (f->dir[0].seen & (DIR_SYN | DIR_SYNACK)) &&
                   (f->dir[1].seen & (DIR_SYN | DIR_SYNACK));
}

/* The handshake completed at ts (a time of 0 means "not seen", as it always did). The stamp
 * goes into the server direction's fin_seq unless that FIN was seen (flow_dir.hs_ts): then no
 * accept overflow can be judged, and fin_seq must stay. */
static void note_handshake(struct flow *f, uint64_t ts)
{
    struct flow_dir *srv = &f->dir[1 - f->client_dir];
    if (!(srv->seen & DIR_FIN))
        srv->hs_ts = ts32(ts);
    if (ts)
        f->fflags |= FF_HANDSHAKE;
    else
        f->fflags &= (uint8_t)~FF_HANDSHAKE;
}

static void advance_state(struct flow *f, const struct pkt_info *p, int d, uint64_t ts)
{
    int from_client = d == f->client_dir;
    int pure_ack = (p->flags & (TCP_SYN | TCP_ACK)) == TCP_ACK;

    switch (f->state) {
    case CS_SYN_SENT:
        if ((p->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) && !from_client) {
            f->state = CS_SYN_RECEIVED;
            /* Server leg of the RTT: from the client's latest SYN to this SYN-ACK. */
            f->rtt_us = ts32_since(ts, f->dir[f->client_dir].last_ts);
        } else if (pure_ack) { /* the SYN-ACK was not mirrored */
            f->state = CS_ESTABLISHED;
            note_handshake(f, ts);
        }
        break;
    case CS_SYN_RECEIVED:
        if (pure_ack && (from_client || p->payload_len)) {
            f->state = CS_ESTABLISHED;
            if (from_client) {
                note_handshake(f, ts);
                if (f->dir[d].seen & DIR_SYN) /* client leg: SYN-ACK to its ACK */
                    f->rtt_us += ts32_since(ts, f->dir[1 - d].last_ts);
                else
                    f->rtt_us = 0;
            }
        }
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

/* A new SYN (other ISN) from a side whose connection is open: port reuse by a client that
 * forgot the old connection. The old sequence state stays, so the RST that usually follows
 * (after the server's challenge ACK) is judged against it. */
static int replaced_syn(const struct flow *f, const struct pkt_info *p, int d)
{
    const struct flow_dir *fd = &f->dir[d];
    return (p->flags & TCP_SYN) && (fd->seen & (DIR_SYN | DIR_SYNACK)) && p->seq != fd->isn &&
           f->state != CS_SYN_SENT && f->state != CS_SYN_RECEIVED;
}

/* Keepalive probe (RFC 9293 §3.8.4): no new data, seq one below what was already sent. */
static int is_keepalive(const struct flow_dir *fd, const struct pkt_info *p)
{
    return (p->flags & (TCP_SYN | TCP_FIN | TCP_RST | TCP_ACK)) == TCP_ACK && p->payload_len <= 1 &&
           (fd->seen & DIR_SEQ_KNOWN) && p->seq == fd->next_seq - 1;
}

unsigned tcp_track_segment(struct flow *f, const struct pkt_info *p, int d, uint64_t ts)
{
    struct flow_dir *fd = &f->dir[d];
    struct flow_dir *peer = &f->dir[1 - d];
    uint8_t fl = p->flags;
    unsigned sig = 0;

    if (replaced_syn(f, p, d)) {
        f->fflags |= FF_REPLACED_SYN;
        fd->ttl = p->ttl;
        fd->last_ts = ts32(ts);
        return 0;
    }
    if (fl & TCP_SYN) {
        if ((fd->seen & ((fl & TCP_ACK) ? DIR_SYNACK : DIR_SYN)) && p->seq == fd->isn)
            sig |= 1u << ((fl & TCP_ACK) ? OVL_SYNACK_RETRANS : OVL_SYN_RETRANS);
        note_syn(f, fd, p);
    }
    if (is_keepalive(fd, p) && peer->win != 0) {
        if (fd->ka_probes < DIR_KA_MAX)
            fd->ka_probes++;
    }
    peer->ka_probes = 0; /* anything from this side answers the peer's probes */

    uint32_t end = p->seq + p->payload_len + ((fl & TCP_SYN) ? 1 : 0) + ((fl & TCP_FIN) ? 1 : 0);
    if (!(fd->seen & DIR_SEQ_KNOWN) || seq_gt(end, fd->next_seq)) {
        if (p->payload_len && (peer->seen & DIR_FIN) && (fd->seen & DIR_SEQ_KNOWN))
            fd->xflags |= DX_DATA_AFTER_PEER_FIN;
        fd->next_seq = end;
        fd->seen |= DIR_SEQ_KNOWN;
    }
    if (p->payload_len)
        fd->seen |= DIR_DATA;
    if (fl & TCP_ACK) {
        /* Acknowledging bytes the sensor never saw from the peer: the mirror lost them. */
        if ((peer->seen & DIR_SEQ_KNOWN) && seq_gt(p->ack, peer->next_seq))
            f->fflags |= FF_GAP;
        if (!(fd->seen & DIR_ACK_KNOWN) || seq_gt(p->ack, fd->max_ack))
            fd->max_ack = p->ack;
        fd->seen |= DIR_ACK_KNOWN | DIR_ACK;
        fd->win = p->win; /* raw; scaled on use: SYN windows are never scaled (RFC 7323) */
        if (fl & TCP_SYN)
            fd->win = (uint16_t)(p->win >> (f->wscale_ok ? fd->wscale : 0));
        if (p->win == 0 && !(fl & (TCP_SYN | TCP_FIN))) {
            if (!(fd->xflags & DX_ZERO_WIN))
                sig |= 1u << OVL_ZERO_WINDOW;
            fd->xflags |= DX_ZERO_WIN;
        } else {
            fd->xflags &= (uint8_t)~DX_ZERO_WIN;
        }
    }
    if ((fl & TCP_FIN) && !(fd->seen & DIR_FIN)) {
        fd->fin_seq = p->seq + p->payload_len;
        fd->seen |= DIR_FIN;
    }
    advance_state(f, p, d, ts);
    fd->ttl = p->ttl;
    fd->df = p->df;
    /* A counter (Linux per socket, Windows per host) steps by small amounts; random IDs
     * (BSD, macOS) or zero (many stacks with DF) clear the flag: then the ID is no evidence. */
    uint16_t step = (uint16_t)(p->ip_id - fd->ip_id);
    if (p->family == 4 && fd->ip_id && p->ip_id && step >= 1 && step <= 256)
        fd->xflags |= (fd->xflags & DX_IPID_STEP) ? DX_IPID_STEP | DX_IPID_SEQ : DX_IPID_STEP;
    else if (fd->ip_id || p->family != 4)
        fd->xflags &= (uint8_t) ~(DX_IPID_STEP | DX_IPID_SEQ);
    fd->ip_id = p->ip_id;
    fd->last_ts = ts32(ts);
    return sig;
}
