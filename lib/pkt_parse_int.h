/*
 * Internal interface between the wire parser (pkt_parse.c) and the mirror-tunnel layers
 * (encap.c). Not for other users: pkt_parse()/pkt_parse_link() are the API.
 *
 * Convention: every function gets the whole frame (data, len) and the offset off where its
 * layer starts, never a bare pointer, so that the offset of the analysed IP header
 * (pkt_info.encap.l3_off) is known and every bound is "off + n <= len". len may be less than
 * the capture's length: a tunnel bounds its payload by the outer header's length, so
 * trailing bytes (Ethernet padding) never reach an inner parser.
 */
#ifndef RS_PKT_PARSE_INT_H
#define RS_PKT_PARSE_INT_H

#include <stdint.h>

#include "pkt_parse.h"

static inline uint16_t pp_rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t pp_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

enum pkt_kind pp_malformed(struct pkt_info *out, enum malformed_reason r);
/* From ethertype et, whose payload starts at off: VLAN tags, MPLS, IPv4/IPv6. */
enum pkt_kind pp_ethertype(const uint8_t *data, uint32_t len, uint32_t off, uint16_t et,
                           struct pkt_info *out);
/* An Ethernet header at off. */
enum pkt_kind pp_ethernet(const uint8_t *data, uint32_t len, uint32_t off, struct pkt_info *out);
/* Bare IP at off: the version nibble decides. */
enum pkt_kind pp_ip_any(const uint8_t *data, uint32_t len, uint32_t off, struct pkt_info *out);

/* encap.c. The IP payload of protocol proto (GRE or UDP) at off, up to len (the end of the
 * outer datagram). len_unknown: the outer IPv4 total length was 0 (a TSO capture artefact,
 * never a tunnel). Returns PKT_NON_TCP for a payload that is not a mirror tunnel. */
enum pkt_kind encap_ip_payload(const uint8_t *data, uint32_t len, uint32_t off, uint8_t proto,
                               int len_unknown, struct pkt_info *out);
/* An MPLS label stack at off (after ethertype 0x8847/0x8848). */
enum pkt_kind encap_mpls(const uint8_t *data, uint32_t len, uint32_t off, struct pkt_info *out);

#endif
