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

uint32_t tcp_track_window(const struct flow *f, int d)
{
    const struct flow_dir *fd = &f->dir[d];
    int both_syns =
        (f->dir[0].seen & (DIR_SYN | DIR_SYNACK)) && (f->dir[1].seen & (DIR_SYN | DIR_SYNACK));
    unsigned scale = f->wscale_ok ? fd->wscale : both_syns ? 0 : 14;
    return (uint32_t)fd->win << scale;
}

/* Window scale of a SYN from fd (its seen bit already set), and whether scaling is in force. */
static void note_syn(struct flow *f, struct flow_dir *fd, const struct flow_dir *peer,
                     unsigned wscale, uint32_t seq)
{
    fd->isn = seq;
    fd->wscale = wscale;
    /* RFC 7323 §2.2: scaling is in force only when both SYNs carried the option. */
    f->wscale_ok = wscale != DIR_WSCALE_NONE && peer->wscale != DIR_WSCALE_NONE &&
                   (peer->seen & (DIR_SYN | DIR_SYNACK));
}

/* The handshake completed at ts (a time of 0 means "not seen", as it always did). The stamp
 * goes into the server direction's fin_seq unless that FIN was seen (flow_dir.hs_ts): then no
 * accept overflow can be judged, and fin_seq must stay. */
static void note_handshake(struct flow *f, struct flow_dir *srv, uint64_t ts)
{
    if (!(srv->seen & DIR_FIN))
        srv->hs_ts = ts32(ts);
    if (ts)
        f->fflags |= FF_HANDSHAKE;
    else
        f->fflags &= (uint8_t)~FF_HANDSHAKE;
}

/* Handshake and close progression after a segment from fd (dir d). Nothing changes for a
 * state past CS_SYN_RECEIVED unless a FIN was seen from either side: the caller tests that
 * first. */
static inline __attribute__((always_inline)) void advance_state(struct flow *f, struct flow_dir *fd,
                                                                struct flow_dir *peer, unsigned fl,
                                                                uint32_t len, int d, uint64_t ts)
{
    int from_client = d == f->client_dir;
    int pure_ack = (fl & (TCP_SYN | TCP_ACK)) == TCP_ACK;

    switch (f->state) {
    case CS_SYN_SENT:
        if ((fl & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) && !from_client) {
            f->state = CS_SYN_RECEIVED;
            /* Server leg of the RTT: from the client's (the peer's) latest SYN to this
             * SYN-ACK. */
            f->rtt_us = ts32_since(ts, peer->last_ts);
        } else if (pure_ack) { /* the SYN-ACK was not mirrored */
            f->state = CS_ESTABLISHED;
            note_handshake(f, from_client ? peer : fd, ts);
        }
        break;
    case CS_SYN_RECEIVED:
        if (pure_ack && (from_client || len)) {
            f->state = CS_ESTABLISHED;
            if (from_client) {
                note_handshake(f, peer, ts);
                if (fd->seen & DIR_SYN) /* client leg: SYN-ACK to its ACK */
                    f->rtt_us += ts32_since(ts, peer->last_ts);
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
    if (fd->seen & peer->seen & DIR_FIN) {
        /* Closed once each FIN is acknowledged by the other side. */
        int fd_acked = (peer->seen & DIR_ACK_KNOWN) && seq_gt(peer->max_ack, fd->fin_seq);
        int peer_acked = (fd->seen & DIR_ACK_KNOWN) && seq_gt(fd->max_ack, peer->fin_seq);
        f->state = fd_acked && peer_acked ? CS_CLOSED : CS_CLOSING;
    } else if ((fd->seen | peer->seen) & DIR_FIN) {
        f->state = CS_FIN_WAIT;
    }
}

/* A new SYN (other ISN) from a side whose connection is open: port reuse by a client that
 * forgot the old connection. The old sequence state stays, so the RST that usually follows
 * (after the server's challenge ACK) is judged against it. The caller has seen TCP_SYN. */
static int replaced_syn(const struct flow *f, const struct flow_dir *fd, uint32_t seq)
{
    return (fd->seen & (DIR_SYN | DIR_SYNACK)) && seq != fd->isn && f->state != CS_SYN_SENT &&
           f->state != CS_SYN_RECEIVED;
}

/* Keepalive probe (RFC 9293 §3.8.4): no new data, seq one below what was already sent. */
static int is_keepalive(const struct flow_dir *fd, unsigned fl, uint32_t seq, uint32_t len)
{
    return (fl & (TCP_SYN | TCP_FIN | TCP_RST | TCP_ACK)) == TCP_ACK && len <= 1 &&
           (fd->seen & DIR_SEQ_KNOWN) && seq == fd->next_seq - 1;
}

/*
 * The body of tcp_track_segment(), in two copies: plain is a constant 1 in the one for a
 * segment without SYN or FIN (every one but those of the handshake and the close), so that
 * copy drops their code and has fewer values to keep in registers.
 *
 * The packet's fields are read once into locals: a store through a uint8_t field (seen,
 * ttl, state, fflags) may alias *p as far as C knows, so the compiler would load them again
 * after each. The flow's fields are updated in place, as x86 tests and sets a bit in memory
 * with one instruction, except the bit-fields (see xf).
 */
static inline __attribute__((always_inline)) unsigned
track_body(struct flow *f, const struct pkt_info *p, int d, uint64_t ts, int plain)
{
    /* Chosen, not indexed: from f + d * 28 the compiler rebuilt the address at every use. */
    struct flow_dir *fd = d ? &f->dir[1] : &f->dir[0];
    struct flow_dir *peer = d ? &f->dir[0] : &f->dir[1];
    const unsigned fl = plain ? p->flags & ~(TCP_SYN | TCP_FIN) : p->flags;
    const uint32_t seq = p->seq, len = p->payload_len;
    unsigned sig = 0;

    if (fl & TCP_SYN) {
        if (replaced_syn(f, fd, seq)) {
            f->fflags |= FF_REPLACED_SYN;
            fd->ttl = p->ttl;
            fd->last_ts = ts32(ts);
            return 0;
        }
        unsigned bit = (fl & TCP_ACK) ? DIR_SYNACK : DIR_SYN;
        if ((fd->seen & bit) && seq == fd->isn)
            sig |= 1u << ((fl & TCP_ACK) ? OVL_SYNACK_RETRANS : OVL_SYN_RETRANS);
        fd->seen |= (uint8_t)bit;
        /* 0..14, or 0xff when absent: its low 4 bits are DIR_WSCALE_NONE. */
        note_syn(f, fd, peer, p->opt.wscale & 0xf, seq);
    }
    if (is_keepalive(fd, fl, seq, len) && peer->win != 0) {
        if (fd->ka_probes < DIR_KA_MAX)
            fd->ka_probes++;
    }
    peer->ka_probes = 0; /* anything from this side answers the peer's probes */
    /* Built here and stored once with df: the compiler turns each update of a bit-field in
     * memory into a load, extract, insert and store. */
    unsigned xf = fd->xflags;

    /* SYN and FIN take one sequence number each: (fl & 3) + 1 >> 1 counts them. */
    _Static_assert(TCP_FIN == 1 && TCP_SYN == 2, "SYN and FIN are the low two flag bits");
    uint32_t end = seq + len + (((fl & (TCP_SYN | TCP_FIN)) + 1) >> 1);
    if (!(fd->seen & DIR_SEQ_KNOWN) || seq_gt(end, fd->next_seq)) {
        if (len && (peer->seen & DIR_FIN) && (fd->seen & DIR_SEQ_KNOWN))
            xf |= DX_DATA_AFTER_PEER_FIN;
        fd->next_seq = end;
        fd->seen |= DIR_SEQ_KNOWN;
    }
    if (len)
        fd->seen |= DIR_DATA;
    if (fl & TCP_ACK) {
        const uint32_t ack = p->ack;
        const unsigned win = p->win;
        /* Acknowledging bytes the sensor never saw from the peer: the mirror lost them. */
        if ((peer->seen & DIR_SEQ_KNOWN) && seq_gt(ack, peer->next_seq)) {
            if (!(f->fflags & FF_GAP))
                sig |= TRACK_NEW_GAP;
            f->fflags |= FF_GAP;
        }
        if (!(fd->seen & DIR_ACK_KNOWN) || seq_gt(ack, fd->max_ack))
            fd->max_ack = ack;
        fd->seen |= DIR_ACK_KNOWN | DIR_ACK;
        /* raw; scaled on use: SYN windows are never scaled (RFC 7323) */
        fd->win = (uint16_t)((fl & TCP_SYN) && f->wscale_ok ? win >> fd->wscale : win);
        if (win == 0 && !(fl & (TCP_SYN | TCP_FIN))) {
            if (!(xf & DX_ZERO_WIN))
                sig |= 1u << OVL_ZERO_WINDOW;
            xf |= DX_ZERO_WIN;
        } else {
            xf &= ~DX_ZERO_WIN;
        }
    }
    if ((fl & TCP_FIN) && !(fd->seen & DIR_FIN)) {
        fd->fin_seq = seq + len;
        fd->seen |= DIR_FIN;
    }
    fd->ttl = p->ttl;
    /* A counter (Linux per socket, Windows per host) steps by small amounts; random IDs
     * (BSD, macOS) or zero (many stacks with DF) clear the flag: then the ID is no evidence. */
    _Static_assert(DX_IPID_SEQ == DX_IPID_STEP << 1, "a second step shifts STEP into SEQ");
    const unsigned family = p->family, ip_id = p->ip_id, old_id = fd->ip_id;
    if (family != 4)
        xf &= ~(DX_IPID_STEP | DX_IPID_SEQ);
    else if (!old_id)
        ; /* the first ID: nothing to compare with */
    else if (ip_id && (uint16_t)(ip_id - old_id - 1) < 256) /* a step of 1..256 */
        xf |= DX_IPID_STEP | (xf & DX_IPID_STEP) << 1;      /* the second in a row: DX_IPID_SEQ */
    else
        xf &= ~(DX_IPID_STEP | DX_IPID_SEQ);
    fd->xflags = xf & 0xf;
    fd->df = p->df;
    fd->ip_id = (uint16_t)ip_id;
    fd->last_ts = ts32(ts);
    /* advance_state() changes nothing in an open connection without a FIN. */
    if (f->state <= CS_SYN_RECEIVED || ((fd->seen | peer->seen) & DIR_FIN))
        advance_state(f, fd, peer, fl, len, d, ts);
    return sig;
}

/* Out of line: the plain copy is then entered without saving the registers this one needs
 * (the call is a jump). */
static __attribute__((noinline)) unsigned segment_syn_fin(struct flow *f, const struct pkt_info *p,
                                                          int d, uint64_t ts)
{
    return track_body(f, p, d, ts, 0);
}

unsigned tcp_track_segment(struct flow *f, const struct pkt_info *p, int d, uint64_t ts)
{
    if (p->flags & (TCP_SYN | TCP_FIN))
        return segment_syn_fin(f, p, d, ts);
    return track_body(f, p, d, ts, 1);
}
