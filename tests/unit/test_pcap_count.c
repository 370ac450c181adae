/*
 * pcap_count_records(): the plain classic pcap files it counts, it counts as libpcap reads
 * them (the same frames, the same first and last timestamps, then end-of-file); everything
 * else it leaves to libpcap. Each case is read by libpcap too, from the same bytes.
 */
#include <criterion/criterion.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcap_count.h"

#define MAXBUF (1u << 22)

static uint8_t buf[MAXBUF];
static size_t blen;

static void put32(uint32_t v, int swap)
{
    if (swap)
        v = __builtin_bswap32(v);
    memcpy(buf + blen, &v, 4);
    blen += 4;
}

/* A file header with this byte order, timestamp unit and snapshot length. */
static void file_header(int swap, int nano, uint32_t snap)
{
    blen = 0;
    put32(nano ? 0xa1b23c4du : 0xa1b2c3d4u, swap);
    put32(2u | 4u << 16, swap); /* version 2.4 (the halves swap with the order: read as such) */
    put32(0, swap);
    put32(0, swap);
    put32(snap, swap);
    put32(1, swap); /* Ethernet */
    if (swap) {     /* the version is two 16-bit fields: swapped each, not as one word */
        uint16_t v[2] = {__builtin_bswap16(2), __builtin_bswap16(4)};
        memcpy(buf + 4, v, 4);
    }
}

static void record(int swap, uint32_t sec, uint32_t frac, uint32_t caplen, uint32_t len)
{
    put32(sec, swap);
    put32(frac, swap);
    put32(caplen, swap);
    put32(len, swap);
    for (uint32_t i = 0; i < caplen; i++)
        buf[blen++] = (uint8_t)(i * 7);
}

struct seen {
    uint64_t frames;
    double first, last;
    int error; /* libpcap stopped on an error, not at end-of-file */
};

static struct seen libpcap_reads(const uint8_t *b, size_t n)
{
    struct seen s = {0};
    char err[PCAP_ERRBUF_SIZE];
    FILE *f = fmemopen((void *)b, n, "rb");
    cr_assert_not_null(f);
    pcap_t *pc = pcap_fopen_offline(f, err);
    if (!pc) {
        fclose(f);
        s.error = 2; /* not even opened */
        return s;
    }
    struct pcap_pkthdr *h;
    const u_char *d;
    int rc;
    while ((rc = pcap_next_ex(pc, &h, &d)) == 1) {
        double t = (double)h->ts.tv_sec + (double)h->ts.tv_usec / 1e6;
        if (s.frames++ == 0)
            s.first = t;
        s.last = t;
    }
    s.error = rc != PCAP_ERROR_BREAK;
    pcap_close(pc); /* closes f */
    return s;
}

/* Counted here: then exactly as libpcap reads it. */
static void expect_counted(uint64_t frames)
{
    struct pcap_count c;
    cr_assert_eq(pcap_count_records(buf, blen, NULL, &c), PCOUNT_OK);
    struct seen s = libpcap_reads(buf, blen);
    cr_assert_eq(s.error, 0, "libpcap reads it to its end");
    cr_assert_eq(c.frames, frames);
    cr_assert_eq(c.frames, s.frames);
    cr_assert_eq(c.first_ts, s.first, "first %f against libpcap's %f", c.first_ts, s.first);
    cr_assert_eq(c.last_ts, s.last, "last %f against libpcap's %f", c.last_ts, s.last);
}

static void expect_left_to_libpcap(void)
{
    struct pcap_count c;
    cr_assert_eq(pcap_count_records(buf, blen, NULL, &c), PCOUNT_NOT_PLAIN);
}

Test(pcap_count, plain_files_in_either_order_and_unit_count_as_libpcap_reads_them)
{
    for (int swap = 0; swap < 2; swap++)
        for (int nano = 0; nano < 2; nano++) {
            file_header(swap, nano, 128);
            record(swap, 1700000000, nano ? 123456789 : 123456, 60, 60);
            record(swap, 1700000001, nano ? 999 : 1, 128, 1514); /* snapped */
            record(swap, 1700000001, nano ? 999999999 : 999999, 0, 0);
            record(swap, 1700000002, 5, 54, 54);
            expect_counted(4);
        }
}

Test(pcap_count, header_only_is_zero_frames)
{
    file_header(0, 0, 65535);
    expect_counted(0);
}

Test(pcap_count, damaged_or_odd_files_are_left_to_libpcap)
{
    file_header(0, 0, 128);
    record(0, 1, 0, 60, 60);
    size_t good = blen;
    blen = good + 7; /* a record header cut short */
    memset(buf + good, 0, 7);
    expect_left_to_libpcap();
    cr_assert(libpcap_reads(buf, blen).error);
    blen = good;
    record(0, 2, 0, 100, 100);
    blen -= 1; /* its data cut short */
    expect_left_to_libpcap();
    cr_assert(libpcap_reads(buf, blen).error);
    blen = good;
    record(0, 2, 0, 129, 129); /* larger than the snapshot length */
    expect_left_to_libpcap();
    file_header(0, 0, 0); /* no snapshot length: libpcap picks one */
    record(0, 1, 0, 60, 60);
    expect_left_to_libpcap();
    file_header(0, 0, PCAP_COUNT_MAX_SNAP + 1);
    expect_left_to_libpcap();
    file_header(0, 0, 128);
    buf[0] = 0x0a; /* pcapng's section header block: 0a 0d 0d 0a */
    buf[1] = 0x0d;
    buf[2] = 0x0d;
    buf[3] = 0x0a;
    expect_left_to_libpcap();
    file_header(0, 0, 128);
    buf[6] = 5; /* version 2.5: libpcap does not open it */
    expect_left_to_libpcap();
    buf[6] = 2; /* 2.2: libpcap swaps captured and original length */
    expect_left_to_libpcap();
    blen = 23; /* shorter than a file header */
    expect_left_to_libpcap();
}

Test(pcap_count, a_stop_request_ends_the_count_where_it_is)
{
    static volatile int stop = 1;
    file_header(0, 0, 64);
    for (uint32_t i = 0; i < 10000; i++)
        record(0, i, 0, 0, 0);
    struct pcap_count c;
    cr_assert_eq(pcap_count_records(buf, blen, &stop, &c), PCOUNT_STOPPED);
    cr_assert_lt(c.frames, 10000u);
    cr_assert_gt(c.frames, 0u);
    cr_assert_eq(c.last_ts, (double)(c.frames - 1), "last_ts is the last record counted");
    stop = 0;
    cr_assert_eq(pcap_count_records(buf, blen, &stop, &c), PCOUNT_OK);
    cr_assert_eq(c.frames, 10000u);
}
