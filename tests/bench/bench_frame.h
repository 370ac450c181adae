/* Byte writers for the frames and capture files the benchmarks build (gen_bench,
 * bench_engine, bench_hashflood): network-order fields, one Ethernet header with fixed
 * locally administered MACs, a TCP segment's headers, and a classic pcap file's headers. */
#ifndef RS_BENCH_FRAME_H
#define RS_BENCH_FRAME_H

#include <stdint.h>
#include <string.h>

static inline void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v);
}

static inline void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Destination 02:00:00:00:00:02, source 02:00:00:00:00:01; returns the L3 header. */
static inline uint8_t *eth_header(uint8_t *f, uint16_t ethertype)
{
    memcpy(f, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01", 12);
    put16(f + 12, ethertype);
    return f + 14;
}

/* RFC 1071 checksum of an even-length header. */
static inline uint16_t ip_checksum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* One TCP segment of a benchmark's traffic. */
struct bench_seg {
    int v6;                   /* IPv6; else IPv4 (IHL 5, DF), from the addresses' first 4 bytes */
    const uint8_t *src, *dst; /* 16 bytes for IPv6, 4 for IPv4 */
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags, ttl;
    uint16_t win, ip_id; /* ip_id: IPv4 only */
    int ip_csum;         /* IPv4: write the header checksum (else 0) */
    const uint8_t *opts; /* TCP options, olen bytes, a multiple of 4 */
    uint32_t olen;
    uint32_t payload; /* bytes after the headers: in the IP length, never written */
};

/* The Ethernet, IP and TCP headers of s into f (every byte written, TCP checksum 0);
 * returns their length. */
static inline uint32_t bench_tcp_frame(uint8_t *f, const struct bench_seg *s)
{
    uint32_t alen = s->v6 ? 16 : 4, iphl = s->v6 ? 40 : 20, hl = 20 + s->olen;
    memset(f, 0, 14 + iphl + hl);
    uint8_t *ip = eth_header(f, s->v6 ? 0x86dd : 0x0800), *t = ip + iphl;
    if (s->v6) {
        put32(ip, 0x60000000U);
        put16(ip + 4, hl + s->payload);
        ip[6] = 6;
        ip[7] = s->ttl;
    } else {
        ip[0] = 0x45;
        put16(ip + 2, 20 + hl + s->payload);
        put16(ip + 4, s->ip_id);
        ip[6] = 0x40; /* DF */
        ip[8] = s->ttl;
        ip[9] = 6;
    }
    memcpy(ip + iphl - 2 * alen, s->src, alen);
    memcpy(ip + iphl - alen, s->dst, alen);
    if (!s->v6 && s->ip_csum)
        put16(ip + 10, ip_checksum(ip, 20));
    put16(t, s->sport);
    put16(t + 2, s->dport);
    put32(t + 4, s->seq);
    put32(t + 8, s->ack);
    t[12] = (uint8_t)((hl / 4) << 4);
    t[13] = s->flags;
    put16(t + 14, s->win);
    if (s->olen)
        memcpy(t + 20, s->opts, s->olen);
    return 14 + iphl + hl;
}

/* A little-endian, microsecond, version 2.4 pcap header for Ethernet frames. */
static inline void pcap_file_header(uint8_t h[24], uint32_t snaplen)
{
    put32le(h, 0xa1b2c3d4U);
    put32le(h + 4, 2 | 4u << 16);
    put32le(h + 8, 0);  /* thiszone */
    put32le(h + 12, 0); /* sigfigs */
    put32le(h + 16, snaplen);
    put32le(h + 20, 1); /* LINKTYPE_ETHERNET */
}

/* A pcap record header: the time in µs, the bytes captured and the frame's length on the wire. */
static inline void pcap_record_header(uint8_t r[16], uint64_t ts_us, uint32_t caplen,
                                      uint32_t origlen)
{
    put32le(r, (uint32_t)(ts_us / 1000000));
    put32le(r + 4, (uint32_t)(ts_us % 1000000));
    put32le(r + 8, caplen);
    put32le(r + 12, origlen);
}

#endif
