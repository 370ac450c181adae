#include "capture_file.h"

#include <stdio.h>

#include <pcap/pcap.h>

#include "pkt_parse.h"

int capture_file_count(const char *path, struct capture_file_info *ci)
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
    /* DLT_ values equal LINKTYPE_ ones except where libpcap maps them (DLT_RAW = 12/14). */
    int dlt = pcap_datalink(pc);
    ci->link = dlt == DLT_RAW || dlt == 14 ? LINK_RAW : dlt;
    if (!pkt_link_supported(ci->link)) {
        fprintf(stderr,
                "rstscope: capture '%s' has link type %s; supported: Ethernet, Linux cooked "
                "(v1, v2), raw IP, BSD/OpenBSD loopback\n",
                path, pcap_datalink_val_to_name(dlt));
        pcap_close(pc);
        return -1;
    }
    ci->frames = 0;
    ci->first_ts = ci->last_ts = 0;
    while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
        double t = (double)h->ts.tv_sec + (double)h->ts.tv_usec / 1e6;
        if (ci->frames++ == 0)
            ci->first_ts = t;
        ci->last_ts = t;
    }
    if (rc == PCAP_ERROR)
        /* A truncated last record: replay what is readable, as net_pcap will. */
        fprintf(stderr, "rstscope: warning: capture '%s' is damaged after %llu frames: %s\n", path,
                (unsigned long long)ci->frames, pcap_geterr(pc));
    pcap_close(pc);
    return 0;
}
