#include "capture_file.h"

#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "flow.h" /* rs_mix64 */
#include "pkt_parse.h"

/* splitmix64 folded over the first CAPTURE_DIGEST_BYTES (8-byte words, the tail zero-padded),
 * then the size: ~1 ms. One read() of exactly that size, like every other read of a capture
 * (tests/integration/pcap_buffered.sh); a regular file gives it whole. 0 when the file cannot
 * be read (the open reports that). */
static uint64_t file_digest(const char *path)
{
    static uint64_t w[CAPTURE_DIGEST_BYTES / 8];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = read(fd, w, sizeof(w));
    uint64_t h = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    close(fd);
    size_t n = got > 0 ? (size_t)got : 0;
    memset((uint8_t *)w + n, 0, (8 - n % 8) % 8);
    for (size_t i = 0; i < (n + 7) / 8; i++)
        h = rs_mix64(h ^ w[i]) + 0x9e3779b97f4a7c15ULL;
    return rs_mix64(h ^ n);
}

static void *count_frames(void *arg)
{
    struct capture_file_info *ci = arg;
    pcap_t *pc = ci->pc;
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t frames = 0;
    double first = 0, last = 0;
    int rc;

    while ((rc = pcap_next_ex(pc, &h, &data)) == 1 && !*ci->stop) {
        double t = (double)h->ts.tv_sec + (double)h->ts.tv_usec / 1e6;
        if (frames++ == 0)
            first = t;
        last = t;
    }
    if (rc == PCAP_ERROR)
        /* A truncated last record: replay what is readable, as net_pcap will. */
        fprintf(stderr, "rstscope: warning: capture '%s' is damaged after %llu frames: %s\n",
                ci->path, (unsigned long long)frames, pcap_geterr(pc));
    pcap_close(pc);
    ci->pc = NULL;
    ci->frames = frames;
    ci->first_ts = first;
    ci->last_ts = last;
    __atomic_store_n(&ci->counted, 1, __ATOMIC_RELEASE); /* publishes the fields above */
    return NULL;
}

int capture_file_open(const char *path, struct capture_file_info *ci, const volatile int *stop)
{
    char err[PCAP_ERRBUF_SIZE];

    memset(ci, 0, sizeof(*ci));
    ci->stop = stop;
    /* Buffered and unlocked by pcap_open.c. */
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
    ci->pc = pc;
    ci->path = path;
    ci->digest = file_digest(path);
    if (pthread_create(&ci->thread, NULL, count_frames, ci) == 0) {
        ci->started = 1;
        pthread_setname_np(ci->thread, "rs-count");
        return 0;
    }
    count_frames(ci); /* no thread: count here, as before */
    return 0;
}

int capture_file_counted(const struct capture_file_info *ci)
{
    return __atomic_load_n(&ci->counted, __ATOMIC_ACQUIRE);
}

void capture_file_wait(struct capture_file_info *ci)
{
    if (ci->started) {
        pthread_join(ci->thread, NULL);
        ci->started = 0;
    }
}
