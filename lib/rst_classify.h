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

/* What the classifier needs beyond the flow. */
struct classify_cfg {
    uint64_t idle_threshold_us;  /* idle gap that makes a RST idle_timeout; 0 = off */
    uint64_t overflow_window_us; /* accept_overflow: RST this soon after the handshake */
    uint8_t keepalive_probes;    /* unanswered probes before a RST means keepalive_timeout */
};
void classify_cfg_defaults(struct classify_cfg *c);

/*
 * Cause of a closed reset event. Decision order (first match wins):
 *   no flow state -> no_flow (also a client RST answering a SYN-ACK whose SYN never passed:
 *   backscatter); RST the receiver must ignore -> out_of_window; RST to a SYN -> refused or,
 *   with forgery evidence, middlebox_refused; unanswered keepalives -> keepalive_timeout;
 *   idle gap -> idle_timeout; forgery evidence -> middlebox_injected; then by the connection's
 *   phase and the RST's form: accept_overflow, stale_connection (bare RST: the sender has no
 *   socket), data_after_close, after_fin, server_abort / client_abort.
 */
enum rst_cause rst_classify(const struct flow *f, const struct pending_rst *r,
                            const struct classify_cfg *cfg);
/* host when rst_ttl is within tolerance of base_ttl, middlebox when not, unknown without one. */
enum rst_origin rst_origin(uint8_t base_ttl, uint8_t rst_ttl, uint8_t tolerance);

#endif
