/*
 * libFuzzer target: the replay's record count (lib/pcap_count.c), held against libpcap.
 *
 * The input is a whole capture file. pcap_count_records() must never read outside it (the
 * bytes sit in a heap block of exactly their size: ASan), and whenever it counts the file
 * (PCOUNT_OK), libpcap reading the same bytes must return exactly as many records, with the
 * same first and last timestamps, and then end-of-file: otherwise a replay would end early
 * or wait for frames that never come. A stop request must give a prefix of that count.
 * When it declines (PCOUNT_NOT_PLAIN), libpcap counts: nothing to hold against.
 */
#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_check.h"
#include "pcap_count.h"

#define NO_COV __attribute__((no_sanitize("coverage")))

struct seen {
    uint64_t frames;
    double first, last;
    int eof; /* libpcap reached the end of the file without an error */
};

NO_COV static int libpcap_reads(const uint8_t *data, size_t size, struct seen *s)
{
    char err[PCAP_ERRBUF_SIZE];
    memset(s, 0, sizeof(*s));
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f)
        return -1;
    pcap_t *pc = pcap_fopen_offline(f, err);
    if (!pc) {
        fclose(f);
        return -1;
    }
    struct pcap_pkthdr *h;
    const u_char *d;
    int rc;
    while ((rc = pcap_next_ex(pc, &h, &d)) == 1) {
        double t = (double)h->ts.tv_sec + (double)h->ts.tv_usec / 1e6;
        if (s->frames++ == 0)
            s->first = t;
        s->last = t;
    }
    s->eof = rc == PCAP_ERROR_BREAK;
    pcap_close(pc);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pcap_count c, p;
    enum pcap_count_result r = pcap_count_records(data, size, NULL, &c);
    CHECK(r == PCOUNT_OK || r == PCOUNT_NOT_PLAIN);
    if (r != PCOUNT_OK)
        return 0;
    struct seen s;
    CHECK(libpcap_reads(data, size, &s) == 0); /* a plain file opens */
    CHECK(s.eof);
    CHECK(s.frames == c.frames);
    CHECK(s.first == c.first_ts);
    CHECK(s.last == c.last_ts);
    volatile int stop = 1;
    r = pcap_count_records(data, size, &stop, &p);
    CHECK(r == PCOUNT_OK || r == PCOUNT_STOPPED);
    CHECK(p.frames <= c.frames && (r == PCOUNT_STOPPED || p.frames == c.frames));
    return 0;
}
