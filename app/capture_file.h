#ifndef RS_CAPTURE_FILE_H
#define RS_CAPTURE_FILE_H

#include <pthread.h>
#include <stdint.h>

/*
 * A replay's frame count, from a libpcap pass over the pcap/pcapng file: net_pcap just returns
 * nothing at EOF, so the count is how main knows where the replay ends, and what the progress
 * output is a percentage of.
 *
 * The pass runs on its own thread, concurrently with EAL start-up and the replay itself (it
 * reads several times faster than the workers analyse), so nobody waits for it: the end of a
 * replay is known once both the count is and the port has delivered that many frames.
 */
#define CAPTURE_DIGEST_BYTES (1u << 20)

struct capture_file_info {
    /* Valid once capture_file_counted() returns 1 (or after capture_file_wait()). */
    uint64_t frames;
    double first_ts; /* capture time of the first and last frame */
    double last_ts;
    int link; /* LINKTYPE_* of the frames: valid after capture_file_open() */
    /* A digest of the file's first CAPTURE_DIGEST_BYTES and its size (capture_file_open()):
     * the replay's default flow-hash key. Equal files, equal keys: a replay is reproducible.
     * But nobody who sent traffic into the capture could know it (it covers every frame's
     * microsecond timestamp and the traffic around theirs), so tuples crafted against the
     * hash's public constants replay at normal speed. */
    uint64_t digest;

    /* private */
    void *pc;                 /* pcap_t being counted */
    const char *path;         /* the caller's string, kept until capture_file_wait() */
    const volatile int *stop; /* set: the count ends early, with what it has read */
    pthread_t thread;
    int started;
    int counted;
};

/* Open the capture, check its link type and start counting: 0, or -1 with a message.
 * path must outlive the count (capture_file_wait()). When *stop becomes non-zero (a signal
 * asked the run to end) the count stops where it is, so that no shutdown waits for a pass
 * over a multi-GB file; frames and last_ts then cover only what it read. */
int capture_file_open(const char *path, struct capture_file_info *ci, const volatile int *stop);
/* 1 once frames, first_ts and last_ts are final. */
int capture_file_counted(const struct capture_file_info *ci);
/* Wait for the count to finish and release its thread; a no-op when none was started. */
void capture_file_wait(struct capture_file_info *ci);

#endif
