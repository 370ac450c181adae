#ifndef RS_CAPTURE_FILE_H
#define RS_CAPTURE_FILE_H

#include <stdint.h>

/* Count the frames of a pcap/pcapng file with libpcap, so a replay knows where its end is
 * (net_pcap just returns nothing at EOF) and can show progress. 0, or -1 with a message. */
struct capture_file_info {
    uint64_t frames;
    double first_ts; /* capture time of the first and last frame */
    double last_ts;
    int link; /* LINKTYPE_* of the frames */
};

int capture_file_count(const char *path, struct capture_file_info *ci);

#endif
