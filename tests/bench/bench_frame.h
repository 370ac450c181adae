/* Byte writers for the frames and capture files the benchmarks build (gen_bench,
 * bench_engine, bench_hashflood): network-order fields, one Ethernet header with fixed
 * locally administered MACs, and a classic pcap file's headers. */
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
