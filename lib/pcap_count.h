/*
 * Counting the records of a classic pcap file in memory (a mapped capture), without libpcap:
 * a replay needs its frame count to know where it ends (capture_file.h), and libpcap's pass
 * copies every byte of the file and checks every record, a third of a CPU next to a replay's
 * reader and worker on a 2-CPU machine.
 *
 * Only the plain case is counted here: one of the four classic magics (microsecond or
 * nanosecond timestamps, either byte order), version 2.4, a snapshot length
 * in 1..PCAP_COUNT_MAX_SNAP, and every record complete with a captured length no larger than it, up
 * to the exact end of the buffer. libpcap returns each such record and then end-of-file, so the
 * counts agree. Anything else (pcapng, another magic, a damaged or odd record) is reported as such,
 * and the caller counts with libpcap instead, which also words the error. Pure C: unit-tested and
 * fuzzed against libpcap.
 */
#ifndef RS_PCAP_COUNT_H
#define RS_PCAP_COUNT_H

#include <stddef.h>
#include <stdint.h>

#define PCAP_COUNT_MAX_SNAP 262144u /* libpcap's largest snapshot length for our link types */

enum pcap_count_result {
    PCOUNT_OK = 0,   /* every record counted, the buffer ends after the last one */
    PCOUNT_STOPPED,  /* *stop was set: the count covers the records before that point */
    PCOUNT_NOT_PLAIN /* not counted here: let libpcap count it */
};

struct pcap_count {
    uint64_t frames;
    double first_ts; /* seconds, as libpcap gives them: microsecond resolution */
    double last_ts;
};

/* Count the records of the pcap file in buf[0, len). stop (may be NULL) is polled every few
 * thousand records. out is filled for PCOUNT_OK and PCOUNT_STOPPED. */
enum pcap_count_result pcap_count_records(const uint8_t *buf, size_t len, const volatile int *stop,
                                          struct pcap_count *out);

#endif
