#include "capture_file.h"

#include <stdio.h>

#include <pcap/pcap.h>

int capture_file_count(const char *path, uint64_t *frames, double *first_ts, double *last_ts)
{
    char err[PCAP_ERRBUF_SIZE];
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc;

    pcap_t *pc = pcap_open_offline(path, err);
    if (!pc) {
        fprintf(stderr, "rstscope: cannot read capture '%s': %s\n", path, err);
        return -1;
    }
    if (pcap_datalink(pc) != DLT_EN10MB) {
        fprintf(stderr, "rstscope: capture '%s' has link type %s; only Ethernet is supported\n",
                path, pcap_datalink_val_to_name(pcap_datalink(pc)));
        pcap_close(pc);
        return -1;
    }
    *frames = 0;
    *first_ts = *last_ts = 0;
    while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
        double t = (double)h->ts.tv_sec + (double)h->ts.tv_usec / 1e6;
        if ((*frames)++ == 0)
            *first_ts = t;
        *last_ts = t;
    }
    if (rc == PCAP_ERROR)
        /* A truncated last record: replay what is readable, as net_pcap will. */
        fprintf(stderr, "rstscope: warning: capture '%s' is damaged after %llu frames: %s\n", path,
                (unsigned long long)*frames, pcap_geterr(pc));
    pcap_close(pc);
    return 0;
}
