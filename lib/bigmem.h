/*
 * Zeroed memory for the big per-worker tables (flow array, index, held-RST pool).
 *
 * Large tables are read at random, one or two cache lines per packet: with 4 KB pages nearly
 * every access also misses the TLB (1M flows span ~50,000 pages, a TLB holds ~2,000). Blocks
 * of 2 MB or more are therefore mapped anonymously and advised as transparent huge pages
 * (MADV_HUGEPAGE: honoured when /sys/kernel/mm/transparent_hugepage/enabled is "always" or
 * "madvise"; otherwise a harmless no-op). Pages are zero and placed lazily, so the worker that
 * touches them first gets them on its NUMA node, as calloc() did.
 * Under AddressSanitizer plain calloc() is kept, so that overruns stay detected.
 */
#ifndef RS_BIGMEM_H
#define RS_BIGMEM_H

#include <stddef.h>

/* n zeroed bytes, NULL on failure. Free with big_free(p, n), same n. */
void *big_zalloc(size_t n);
void big_free(void *p, size_t n);
/* Touch every page of p[0..n) now (writing the zero it holds), so that no page fault happens
 * later on the packet path, and the pages land on the caller's NUMA node. */
void big_prefault(void *p, size_t n);

#endif
