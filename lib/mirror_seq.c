#include "mirror_seq.h"

#include <string.h>

static uint32_t slot_hash(const uint8_t src[16], uint32_t id)
{
    uint32_t h = 2166136261u ^ id; /* FNV-1a over the address and the session */
    for (int i = 0; i < 16; i++)
        h = (h ^ src[i]) * 16777619u;
    return h;
}

struct mirror_seq_result mirror_seq_update(struct mirror_seq *m, const struct pkt_encap *e)
{
    struct mirror_seq_result r = {0};
    uint32_t h = slot_hash(e->outer_src, e->id);

    for (uint32_t i = 0; i < MSEQ_PROBE; i++) {
        struct mirror_seq_slot *s = &m->slot[(h + i) & (MSEQ_SLOTS - 1)];
        if (!s->used) {
            memcpy(s->src, e->outer_src, 16);
            s->id = e->id;
            s->next = e->seq + 1;
            s->used = 1;
            return r;
        }
        if (s->id != e->id || memcmp(s->src, e->outer_src, 16) != 0)
            continue;
        uint32_t d = e->seq - s->next; /* modulo 2^32: the counter wraps */
        if (d == 0) {
            s->next++;
        } else if (d < MSEQ_WINDOW) {
            r.lost = d;
            s->next = e->seq + 1;
        } else if (d >= 0x80000000u) {
            r.late = 1; /* behind what was expected: keep waiting for the newer ones */
        } else {
            r.restart = 1;
            s->next = e->seq + 1;
        }
        return r;
    }
    r.untracked = 1;
    return r;
}

void mirror_account(struct engine_stats *s, struct mirror_seq *m, const struct pkt_encap *e)
{
    if (e->kind < ENC_KIND_MAX)
        STAT_INC(s, encap[e->kind]);
    if (m)
        mirror_seq_account(s, m, e);
}

void mirror_seq_account(struct engine_stats *s, struct mirror_seq *m, const struct pkt_encap *e)
{
    if (!e->has_seq)
        return;
    struct mirror_seq_result r = mirror_seq_update(m, e);
    if (r.lost)
        STAT_ADD(s, mirror_lost, r.lost);
    if (r.late)
        STAT_INC(s, mirror_late);
    if (r.restart)
        STAT_INC(s, mirror_restarts);
    if (r.untracked)
        STAT_INC(s, mirror_untracked);
}
