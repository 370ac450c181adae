#include "pcap_count.h"

#include <string.h>

#define FILE_HDR   24
#define RECORD_HDR 16
#define STOP_EVERY 4096 /* records between two looks at the stop flag */

static uint32_t rd32(const uint8_t *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

/* 1 for a classic magic, with its byte order and timestamp unit; 0 for anything else. */
static int classic_magic(uint32_t m, int *swap, int32_t *per_usec)
{
    switch (m) {
    case 0xa1b2c3d4u:
    case 0xa1b23c4du:
        *swap = 0;
        break;
    case 0xd4c3b2a1u:
    case 0x4d3cb2a1u:
        *swap = 1;
        break;
    default:
        return 0;
    }
    uint32_t native = *swap ? __builtin_bswap32(m) : m;
    *per_usec = native == 0xa1b23c4du ? 1000 : 1; /* nanosecond files: libpcap divides */
    return 1;
}

/* A 32-bit time field as libpcap widens it: signed in the host's byte order (its record
 * header struct declares them signed), unsigned when it swaps the bytes. */
static int64_t time_field(const uint8_t *p, int swap)
{
    uint32_t v = rd32(p, swap);
    return swap ? (int64_t)v : (int64_t)(int32_t)v;
}

/* A record's time as libpcap hands it over, nanoseconds divided down (toward zero). */
static double record_time(const uint8_t *h, int swap, int32_t per_usec)
{
    int64_t sec = time_field(h, swap);
    int64_t usec = time_field(h + 4, swap) / per_usec;
    return (double)sec + (double)usec / 1e6;
}

enum pcap_count_result pcap_count_records(const uint8_t *buf, size_t len, const volatile int *stop,
                                          struct pcap_count *out)
{
    int swap;
    int32_t per_usec;
    uint32_t magic;

    memset(out, 0, sizeof(*out));
    if (len < FILE_HDR)
        return PCOUNT_NOT_PLAIN;
    memcpy(&magic, buf, 4);
    if (!classic_magic(magic, &swap, &per_usec))
        return PCOUNT_NOT_PLAIN;
    /* Version 2.4, what every writer writes: libpcap opens 2.0 to 2.3 too, but may swap
     * their records' captured and original lengths. */
    uint16_t ver[2];
    memcpy(ver, buf + 4, 4);
    if (swap) {
        ver[0] = __builtin_bswap16(ver[0]);
        ver[1] = __builtin_bswap16(ver[1]);
    }
    if (ver[0] != 2 || ver[1] != 4)
        return PCOUNT_NOT_PLAIN;
    uint32_t snap = rd32(buf + 16, swap);
    if (snap == 0 || snap > PCAP_COUNT_MAX_SNAP)
        return PCOUNT_NOT_PLAIN; /* libpcap substitutes its own limit: let it */
    /* Invariant: off <= len; every record before off was complete and plain. */
    size_t off = FILE_HDR;
    uint64_t n = 0;
    double ts = 0;
    while (off < len) {
        if (len - off < RECORD_HDR)
            return PCOUNT_NOT_PLAIN; /* a truncated record header */
        const uint8_t *h = buf + off;
        uint32_t caplen = rd32(h + 8, swap);
        if (caplen > snap || len - off - RECORD_HDR < caplen)
            return PCOUNT_NOT_PLAIN; /* oversized, or its data cut short */
        ts = record_time(h, swap, per_usec);
        if (n == 0)
            out->first_ts = ts;
        n++;
        off += RECORD_HDR + caplen;
        if (stop && n % STOP_EVERY == 0 && *stop) {
            out->frames = n;
            out->last_ts = ts;
            return PCOUNT_STOPPED;
        }
    }
    out->frames = n;
    out->last_ts = ts;
    return PCOUNT_OK;
}
