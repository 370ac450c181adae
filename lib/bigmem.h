/*
 * Zeroed memory for the per-worker tables (flow array, index, live bitmap, held-RST pool,
 * host table) and the headers that point to them.
 *
 * Large tables are read at random, one or two cache lines per packet: with 4 KB pages nearly
 * every access also misses the TLB (1M flows span ~50,000 pages, a TLB holds ~2,000). Blocks
 * of 2 MB or more are therefore mapped anonymously and advised as transparent huge pages
 * (MADV_HUGEPAGE: honoured when /sys/kernel/mm/transparent_hugepage/enabled is "always" or
 * "madvise"; otherwise a harmless no-op). From 64 KB on a block is a mapping of its own: its
 * pages are zero and placed lazily, so the worker that touches them first gets them on its
 * NUMA node, although main creates every worker's tables. Smaller blocks are zeroed at once.
 * Under AddressSanitizer plain calloc() is kept, so that overruns stay detected.
 */
#ifndef RS_BIGMEM_H
#define RS_BIGMEM_H

#include <stddef.h>

/* n zeroed bytes on cache lines of their own: 64-byte aligned and padded to a whole line, so
 * that no other allocation shares a line with them. Every worker's engine is created on the
 * main thread, from one malloc arena: with plain calloc() the end of one worker's state and
 * the start of the next could share a line that both write per packet (false sharing).
 * NULL on failure; free with free(). */
void *line_zalloc(size_t n);
/* n zeroed bytes, NULL on failure, on lines of their own as line_zalloc(). Free with
 * big_free(p, n), same n. */
void *big_zalloc(size_t n);
void big_free(void *p, size_t n);
/* Touch every page of p[0..n) now (writing the zero it holds), so that no page fault happens
 * later on the packet path, and the pages land on the caller's NUMA node. */
void big_prefault(void *p, size_t n);

#endif
