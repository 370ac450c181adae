/*
 * TCP connection tracking from a passive observer's seat: both directions' sequence space,
 * ACKs, windows and the handshake/close progression, without ever being a party to it.
 */
#ifndef RS_TCP_TRACK_H
#define RS_TCP_TRACK_H

#include "flow.h"

/* Set roles and state of a fresh entry from its first packet p, sent by dir d. */
void tcp_track_init(struct flow *f, const struct pkt_info *p, int d, uint64_t ts);
/*
 * Account a non-RST segment from dir d. Returns the overload signals it shows, as a bit mask
 * of (1 << enum overload_signal): SYN or SYN-ACK retransmission, zero window; and
 * TRACK_NEW_GAP when it gave the connection its first capture gap (FF_GAP). All of them
 * rare: the caller tests the mask once.
 */
unsigned tcp_track_segment(struct flow *f, const struct pkt_info *p, int d, uint64_t ts);
#define TRACK_NEW_GAP (1u << OVL_MAX)
_Static_assert(OVL_MAX < 31, "TRACK_NEW_GAP is a bit above the signals");
/* A SYN that opens a new connection on a tuple whose previous one is over (port reuse).
 * Inline: the engine asks it of every segment, and nearly every one is no SYN. */
static inline int tcp_track_is_reuse(const struct flow *f, const struct pkt_info *p, int d)
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

/* The window dir d last advertised, in bytes; lenient (scale 14) when the scale is unknown. */
uint32_t tcp_track_window(const struct flow *f, int d);

#endif
