/*
 * Capture files are read through 1 MB stdio buffers without stdio's lock.
 *
 * libpcap reads a savefile with two fread()s per frame (record header, then data) on a FILE
 * of its own: 4 KB read()s (glibc sizes the buffer from st_blksize), and a locked atomic per
 * fread, since glibc locks every stream once a process has threads. On the replay worker the
 * lock is the expensive part: it waits for the engine's pending stores to drain.
 *
 * net_pcap opens its capture with pcap_open_offline() and gives us no handle on the FILE, so
 * the executable defines pcap_open_offline() itself and exports it (see app/meson.build):
 * the dynamic linker resolves the net_pcap plugin's call, and ours in capture_file.c, to this
 * definition before libpcap's (ELF interposition). If that ever stops happening, libpcap's
 * own function is used and replays are only slower (tests/integration/pcap_buffered.sh
 * notices). It needs a shared libpcap: a static one would define the function twice.
 *
 * Unlocked is safe: a FILE opened here is read by one thread at a time. net_pcap touches its
 * FILE only from the lcore polling that RX queue, and from main while no lcore runs (probe,
 * start, stop); the frame count reads its own from its own thread.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>

#include <pcap/pcap.h>

#define READ_BUF  (1u << 20)
#define READ_BUFS 4 /* a replay opens two: net_pcap's and the frame count's */

/* Never reused (a FILE may still be open after the open that follows), so an open past the
 * last one (more rx_pcap= files, net_pcap reopening after a stop, a failed open's) keeps
 * glibc's 4 KB buffer: still unlocked, only slower. Untouched pages of .bss cost no memory. */
static char bufs[READ_BUFS][READ_BUF];
static unsigned bufs_used;
static pthread_mutex_t bufs_lock = PTHREAD_MUTEX_INITIALIZER;

static char *take_buffer(void)
{
    char *b = NULL;
    pthread_mutex_lock(&bufs_lock);
    if (bufs_used < READ_BUFS)
        b = bufs[bufs_used++];
    pthread_mutex_unlock(&bufs_lock);
    return b;
}

typedef pcap_t *open_offline_fn(const char *, char *);

/* libpcap's definition: the next one after ours in the lookup order. */
static pcap_t *libpcap_open_offline(const char *path, char *err)
{
    open_offline_fn *next = (open_offline_fn *)dlsym(RTLD_NEXT, "pcap_open_offline");
    if (!next) {
        snprintf(err, PCAP_ERRBUF_SIZE, "pcap_open_offline: %s", dlerror());
        return NULL;
    }
    return next(path, err);
}

pcap_t *pcap_open_offline(const char *path, char *err)
{
    if (!path || strcmp(path, "-") == 0) /* stdin (or no name): libpcap's business */
        return libpcap_open_offline(path, err);
    FILE *f = fopen(path, "rb");
    if (!f) /* libpcap words the failure as its users expect */
        return libpcap_open_offline(path, err);
    char *buf = take_buffer();
    if (buf)
        setvbuf(f, buf, _IOFBF, READ_BUF); /* before any I/O, as setvbuf() requires */
    __fsetlocking(f, FSETLOCKING_BYCALLER);
    pcap_t *pc = pcap_fopen_offline(f, err);
    if (!pc)
        fclose(f);
    return pc;
}
