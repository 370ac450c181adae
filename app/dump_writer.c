#include "dump_writer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <rte_errno.h>
#include <rte_lcore.h>

#include "dump_keep.h"

#define DUMP_RING_SIZE   16384 /* frames in flight to the writer (about 3.4 MB) */
#define PCAP_FILE_HEADER 24
#define PCAP_REC_HEADER  16

static int open_file(struct dump_writer *w)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/rstscope-resets.%u.pcap", w->dir, w->cur);
    w->d = pcap_dump_open(w->dead, path);
    if (!w->d) {
        fprintf(stderr, "rstscope: cannot write dump file '%s': %s\n", path, pcap_geterr(w->dead));
        return -1;
    }
    return 0;
}

int dump_writer_open(struct dump_writer *w, const char *dir, unsigned max_mb, unsigned files,
                     uint32_t rate, int link)
{
    struct stat st;
    memset(w, 0, sizeof(*w));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "rstscope: --dump-resets '%s': not a directory\n", dir);
        return -1;
    }
    w->dir = dir;
    w->files = files;
    w->file_cap = (uint64_t)max_mb * 1024 * 1024 / files;
    if (w->file_cap < PCAP_FILE_HEADER + PCAP_REC_HEADER + DUMP_SNAP)
        w->file_cap = PCAP_FILE_HEADER + PCAP_REC_HEADER + DUMP_SNAP;
    w->rate = rate;
    w->tokens = rate;
    w->link = link;
    w->dead = pcap_open_dead_with_tstamp_precision(link, DUMP_SNAP, PCAP_TSTAMP_PRECISION_MICRO);
    if (!w->dead) {
        fprintf(stderr, "rstscope: --dump-resets: libpcap cannot write link type %d\n", link);
        return -1;
    }
    w->ring = rte_ring_create_elem("rs_dump", sizeof(struct dump_pkt), DUMP_RING_SIZE,
                                   rte_socket_id(), RING_F_SC_DEQ);
    if (!w->ring) {
        fprintf(stderr, "rstscope: cannot create the dump ring: %s\n", rte_strerror(rte_errno));
        pcap_close(w->dead);
        return -1;
    }
    if (open_file(w) < 0) {
        rte_ring_free(w->ring);
        pcap_close(w->dead);
        return -1;
    }
    return 0;
}

/* Capture-time token bucket: refills with the packets' clock, so a replay is capped like the
 * live traffic it records. Copies from several workers may arrive slightly out of order: time
 * never runs backwards here. */
static int rate_ok(struct dump_writer *w, uint64_t ts_us)
{
    if (ts_us > w->last_ts_us) {
        if (w->last_ts_us)
            w->tokens += (double)(ts_us - w->last_ts_us) * w->rate / 1e6;
        if (w->tokens > w->rate)
            w->tokens = w->rate;
        w->last_ts_us = ts_us;
    }
    if (w->tokens < 1)
        return 0;
    w->tokens -= 1;
    return 1;
}

static void write_one(struct dump_writer *w, const struct dump_pkt *p)
{
    if (!w->d) {
        w->not_written++;
        return;
    }
    uint64_t need = PCAP_REC_HEADER + p->caplen;
    long at = pcap_dump_ftell(w->d);
    if (at >= 0 && (uint64_t)at + need > w->file_cap) {
        pcap_dump_close(w->d);
        w->cur = (w->cur + 1) % w->files;
        w->rotations++;
        if (open_file(w) < 0) {
            w->d = NULL; /* reported once; the rest is counted as not written */
            w->not_written++;
            return;
        }
    }
    struct pcap_pkthdr h = {
        .ts = {.tv_sec = (time_t)(p->ts_us / 1000000),
               .tv_usec = (suseconds_t)(p->ts_us % 1000000)},
        .caplen = p->caplen,
        .len = p->origlen,
    };
    pcap_dump((u_char *)w->d, &h, p->data);
    w->packets++;
    w->bytes += need;
}

unsigned dump_writer_drain(struct dump_writer *w)
{
    struct dump_pkt buf[32];
    unsigned n, total = 0;

    /* Bounded per call (the main loop also writes events): at most 64 bursts. */
    for (int round = 0; round < 64; round++) {
        n = rte_ring_sc_dequeue_burst_elem(w->ring, buf, sizeof(buf[0]), 32, NULL);
        if (!n)
            break;
        for (unsigned i = 0; i < n; i++) {
            if (rate_ok(w, buf[i].ts_us))
                write_one(w, &buf[i]);
            else
                w->not_written++;
        }
        total += n;
    }
    if (total && w->d)
        pcap_dump_flush(w->d); /* an engineer may open the file while it grows */
    return total;
}

void dump_writer_close(struct dump_writer *w)
{
    /* The workers have stopped: the ring only empties (at most DUMP_RING_SIZE frames). */
    while (dump_writer_drain(w) > 0)
        ;
    if (w->d)
        pcap_dump_close(w->d);
    w->d = NULL;
    if (w->dead)
        pcap_close(w->dead);
    w->dead = NULL;
    rte_ring_free(w->ring);
    w->ring = NULL;
}
