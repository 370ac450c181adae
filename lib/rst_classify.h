/*
 * Reset classification. Two steps:
 *   1. rst_seq_check(): how a RST's sequence number fits the receiver, judged when it arrives;
 *   2. rst_classify(): the cause of a whole reset event, decided when the event closes, so
 *      that what followed the RST (the receiver carrying on, a corrected RST) can count.
 * Both are pure functions of the flow state: unit tests build the state by hand.
 */
#ifndef RS_RST_CLASSIFY_H
#define RS_RST_CLASSIFY_H

#include "flow.h"

enum seq_check rst_seq_check(const struct flow *f, int d, const struct pkt_info *rst);
/* Rank of a check: the event keeps its most decisive RST. */
int rst_check_rank(enum seq_check c);
enum rst_cause rst_classify(const struct flow *f, const struct pending_rst *r);
enum rst_origin rst_origin(const struct flow_dir *sender, uint8_t rst_ttl, uint8_t tolerance);

#endif
