/*
 * Zeek-compatible connection records (conn.log's conn_state and history) for --flows.
 *
 * Users migrating from Zeek read conn_state and history directly, so both follow Zeek's own
 * rules: the per-endpoint state machine of its TCP analyzer, the history letters with their
 * repeat and logarithmic rules, the originator choice (first packet, likely server ports, the
 * second-packet flip of a lone SYN-ACK) and the record boundaries its timers draw (a closed or
 * reset connection idle 5 s, a SYN unanswered 5 s, 5 min of inactivity, a SYN with a new ISN).
 * Timers are applied lazily when the next packet of the tuple arrives, and at the end.
 *
 * Deliberate difference: none in the state machine; rstscope's own verdict about a reset is a
 * separate field (cause), since Zeek never checks RST sequence numbers. Pure C, no DPDK.
 */
#ifndef RS_ZEEK_CONN_H
#define RS_ZEEK_CONN_H

#include <stdint.h>

#include "pkt_parse.h"

#define ZEEK_HIST_MAX 24 /* history letters kept per record (Zeek's are rarely longer) */

enum zeek_ep_state {
    ZE_INACTIVE = 0,
    ZE_SYN_SENT,
    ZE_SYN_ACK_SENT,
    ZE_PARTIAL,
    ZE_ESTABLISHED,
    ZE_CLOSED,
    ZE_RESET,
};

struct zeek_ep {
    uint32_t start_seq;
    uint32_t last_seq;
    uint32_t hist_syn, hist_fin, hist_rst; /* sequence of the last S/H, F, R letter */
    uint32_t rxmt_cnt, rxmt_thresh;        /* 'T': logged at the 1st, 10th, 100th ... */
    uint32_t win0_cnt, win0_thresh;        /* 'W' */
    uint32_t gap_cnt, gap_thresh;          /* 'G': the peer acked bytes never seen */
    uint32_t gap_mark;
    uint64_t payload; /* payload bytes seen (RSTs excluded) */
    uint32_t pkts;
    uint8_t state, prev_state;
    uint8_t did_close;
    uint8_t seq_init;
};

/* One record in progress. Index 0 of ep[] is the originator. */
struct zeek_conn {
    uint8_t active;
    uint8_t orig_dir; /* flow dir index (flow_key_make) of the originator */
    uint8_t flipped;
    uint8_t cause; /* rstscope's cause + 1 when a reset event was judged, 0 = none */
    uint8_t hist_len;
    char hist[ZEEK_HIST_MAX + 1];
    uint32_t hist_seen; /* letters already logged: Zeek's once-per-direction mask */
    uint64_t ts_start;
    uint64_t ts_last;
    uint64_t close_ts; /* when the close completed (Zeek deletes the record 5 s later) */
    struct zeek_ep ep[2];
};

/* A finished record as written to --flows. */
struct flow_record {
    uint64_t ts_start;
    uint64_t ts_end;
    uint8_t orig_ip[16];
    uint8_t resp_ip[16];
    uint16_t orig_port;
    uint16_t resp_port;
    uint8_t family;
    uint8_t cause; /* rstscope cause + 1, 0 = not reset */
    char conn_state[8];
    char history[ZEEK_HIST_MAX + 1];
    uint64_t orig_bytes;
    uint64_t resp_bytes;
    uint32_t orig_pkts;
    uint32_t resp_pkts;
};

/*
 * Feed one TCP segment sent by flow dir d (0 = the key's lo endpoint). Returns 1 when the
 * segment started a new record and the previous one is complete: *done holds it (the caller
 * fills addresses with zeek_conn_finish()). Returns 0 otherwise.
 */
int zeek_conn_packet(struct zeek_conn *z, const struct pkt_info *p, int d, uint64_t ts,
                     struct zeek_conn *done);
/* Zeek's conn_state of a record ("S0", "REJ", ...). */
const char *zeek_conn_state(const struct zeek_conn *z);
/* Fill r from z; lo/hi are the flow key's endpoints (dir 0 and 1). */
void zeek_conn_finish(const struct zeek_conn *z, const uint8_t lo_addr[16], uint16_t lo_port,
                      const uint8_t hi_addr[16], uint16_t hi_port, struct flow_record *r);
/* Is this a port Zeek's likely_server_ports holds by default (decides mid-stream roles)? */
int zeek_likely_server_port(uint16_t port);

#endif
