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
 * of (1 << enum overload_signal): SYN or SYN-ACK retransmission, zero window.
 */
unsigned tcp_track_segment(struct flow *f, const struct pkt_info *p, int d, uint64_t ts);
/* A SYN that opens a new connection on a tuple whose previous one is over (port reuse). */
int tcp_track_is_reuse(const struct flow *f, const struct pkt_info *p, int d);
/* The window dir d last advertised, in bytes; lenient (scale 14) when the scale is unknown. */
uint32_t tcp_track_window(const struct flow *f, int d);

#endif
