/*
 * --dump-resets, main-thread side: drains the workers' ring of packet copies (dump_keep.h)
 * into DIR/rstscope-resets.N.pcap, N = 0 .. files-1, readable by Wireshark and tshark.
 *
 * Bounds: all files together stay under max_mb (each file is max_mb/files; when the current
 * one is full the next is truncated and written, so the oldest evidence goes first), and at
 * most `rate` packets per second of capture time are written (token bucket, one second of
 * burst); the rest is counted in `not_written`. Main thread only: file I/O never runs on a
 * polling core.
 */
#ifndef RS_DUMP_WRITER_H
#define RS_DUMP_WRITER_H

#include <stdint.h>

#include <pcap/pcap.h>
#include <rte_ring.h>

struct dump_writer {
    const char *dir;
    uint64_t file_cap; /* bytes per file */
    unsigned files, cur;
    uint32_t rate;
    int link;
    double tokens;
    uint64_t last_ts_us;
    pcap_t *dead;
    pcap_dumper_t *d;
    struct rte_ring *ring; /* workers -> main, struct dump_pkt */
    uint64_t packets;      /* frames written */
    uint64_t bytes;        /* bytes written, pcap headers included */
    uint64_t not_written;  /* frames over the rate cap, or after a write error */
    uint64_t rotations;
};

/* Creates the ring and the first file. -1 with a message on stderr. */
int dump_writer_open(struct dump_writer *w, const char *dir, unsigned max_mb, unsigned files,
                     uint32_t rate, int link);
/* Write what the workers queued; returns the number of frames taken off the ring. */
unsigned dump_writer_drain(struct dump_writer *w);
void dump_writer_close(struct dump_writer *w);

#endif
