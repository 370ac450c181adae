/*
 * Mirror loss from GRE sequence numbers (ERSPAN II/III, GRE with the S bit): a switch
 * numbers the copies of one mirror session 1, 2, 3, ...; a gap in what arrives is copies lost
 * between the switch and the sensor (WAN drops, a congested mirror port), which no later
 * analysis can see otherwise. Like Zeek's capture-loss report, but exact.
 *
 * One small table per engine, keyed by (outer source address, session id / GRE key). Bounded:
 * MSEQ_SLOTS sessions, MSEQ_PROBE probes; a session that finds no slot is counted as
 * untracked, never allocated. Pure C, no locks: the engine's thread only.
 *
 * With several workers, copies of one session reach one worker as long as the NIC hashes on
 * the outer header (the default for GRE); inner-header RSS would split a session and show
 * its copies as gaps and late arrivals on each worker.
 */
#ifndef RS_MIRROR_SEQ_H
#define RS_MIRROR_SEQ_H

#include <stdint.h>

#include "pkt_parse.h"
#include "stats.h"

#define MSEQ_SLOTS  64 /* power of two */
#define MSEQ_PROBE  8
#define MSEQ_WINDOW 65536u /* a forward jump of this much or more is a restart, not a loss */

struct mirror_seq_slot {
    uint8_t src[16];
    uint32_t id;
    uint32_t next; /* the sequence number expected next */
    uint8_t used;
    uint8_t pad[7];
};

struct mirror_seq {
    struct mirror_seq_slot slot[MSEQ_SLOTS];
};

struct mirror_seq_result {
    uint32_t lost;   /* copies missing before this one */
    uint8_t late;    /* a copy older than expected: reordered or duplicated */
    uint8_t restart; /* a jump of MSEQ_WINDOW or more: the session restarted */
    uint8_t untracked;
};

/* Account one tunnelled frame whose encap.has_seq is set. */
struct mirror_seq_result mirror_seq_update(struct mirror_seq *m, const struct pkt_encap *e);

/* The engine's hook for a frame that arrived in a tunnel: count it by kind and, unless m is
 * NULL, account its sequence number (if any) into s. */
void mirror_account(struct engine_stats *s, struct mirror_seq *m, const struct pkt_encap *e);
/* Only the sequence number (for a distributor that spreads one session over workers: each
 * worker alone would see its share of the copies as gaps). */
void mirror_seq_account(struct engine_stats *s, struct mirror_seq *m, const struct pkt_encap *e);

#endif
