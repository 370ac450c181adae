#include "cause.h"
#include "pkt_parse.h"

#define NAME_OF(tab, i) ((i) >= 0 && (unsigned)(i) < sizeof(tab) / sizeof(tab[0]) ? tab[i] : "?")

static const char *const cause_names[CAUSE_MAX] = {
    [CAUSE_REFUSED] = "refused",
    [CAUSE_MIDDLEBOX_REFUSED] = "middlebox_refused",
    [CAUSE_ACCEPT_OVERFLOW] = "accept_overflow",
    [CAUSE_SERVER_ABORT] = "server_abort",
    [CAUSE_CLIENT_ABORT] = "client_abort",
    [CAUSE_DATA_AFTER_CLOSE] = "data_after_close",
    [CAUSE_AFTER_FIN] = "after_fin",
    [CAUSE_STALE_CONNECTION] = "stale_connection",
    [CAUSE_MIDDLEBOX_INJECTED] = "middlebox_injected",
    [CAUSE_OUT_OF_WINDOW] = "out_of_window",
    [CAUSE_IDLE_TIMEOUT] = "idle_timeout",
    [CAUSE_KEEPALIVE_TIMEOUT] = "keepalive_timeout",
    [CAUSE_NO_FLOW] = "no_flow",
    [CAUSE_UNCLASSIFIED] = "unclassified",
};

static const char *const cause_meanings[CAUSE_MAX] = {
    [CAUSE_REFUSED] = "server host answered a SYN with RST: nothing listening on that port",
    [CAUSE_MIDDLEBOX_REFUSED] = "a firewall/IPS answered the SYN with RST for the server",
    [CAUSE_ACCEPT_OVERFLOW] = "server reset right after the handshake: listen queue overflow",
    [CAUSE_SERVER_ABORT] = "server aborted an open connection (abortive close, crash, limits)",
    [CAUSE_CLIENT_ABORT] = "client aborted an open connection (cancel, timeout, abortive close)",
    [CAUSE_DATA_AFTER_CLOSE] = "side that had FINed reset data still arriving (keep-alive race)",
    [CAUSE_AFTER_FIN] = "RST after the exchange finished with FINs (benign abortive close)",
    [CAUSE_STALE_CONNECTION] = "peer no longer knows the connection (reboot, failover, restart)",
    [CAUSE_MIDDLEBOX_INJECTED] = "RST forged by a device in the path (firewall, IPS, censor)",
    [CAUSE_OUT_OF_WINDOW] = "RST the receiver must ignore: outside its window or not exact",
    [CAUSE_IDLE_TIMEOUT] = "RST after a long idle gap: NAT/firewall/load-balancer state expiry",
    [CAUSE_KEEPALIVE_TIMEOUT] = "RST after unanswered keepalive probes: peer or path gone",
    [CAUSE_NO_FLOW] = "RST for a connection never seen (mid-stream start, backscatter, scans)",
    [CAUSE_UNCLASSIFIED] = "none of the known signatures fit",
};

static const char *const overload_names[OVL_MAX] = {
    [OVL_SYN_UNANSWERED] = "syn_unanswered", [OVL_SYN_RETRANS] = "syn_retrans",
    [OVL_SYNACK_RETRANS] = "synack_retrans", [OVL_ZERO_WINDOW] = "zero_window",
    [OVL_CHALLENGE_ACK] = "challenge_ack",
};

static const char *const evidence_names[EV_MAX_BIT] = {
    "ttl_mismatch", "ipid_mismatch", "sender_continued", "challenge_ack", "corrected",
    "duplicate",    "both_ways",     "capture_gap",      "midstream",
};

static const char *const state_names[CS_MAX] = {
    [CS_NONE] = "none",
    [CS_SYN_SENT] = "syn_sent",
    [CS_SYN_RECEIVED] = "syn_received",
    [CS_ESTABLISHED] = "established",
    [CS_MIDSTREAM] = "midstream",
    [CS_FIN_WAIT] = "fin_wait",
    [CS_CLOSING] = "closing",
    [CS_CLOSED] = "closed",
    [CS_RESET] = "reset",
};

static const char *const origin_names[ORIGIN_MAX] = {
    [ORIGIN_UNKNOWN] = "unknown", [ORIGIN_HOST] = "host", [ORIGIN_MIDDLEBOX] = "middlebox"};

static const char *const seq_check_names[SEQ_MAX] = {
    [SEQ_UNKNOWN] = "unknown",     [SEQ_EXACT] = "exact",
    [SEQ_IN_WINDOW] = "in_window", [SEQ_OUT_OF_WINDOW] = "out_of_window",
    [SEQ_ACK_OK] = "ack_ok",       [SEQ_ACK_BAD] = "ack_bad",
};

static const char *const malformed_names[MAL_MAX] = {
    [MAL_NONE] = "none",
    [MAL_L2_TRUNCATED] = "l2_truncated",
    [MAL_VLAN_TRUNCATED] = "vlan_truncated",
    [MAL_VLAN_TOO_DEEP] = "vlan_too_deep",
    [MAL_IPV4_TRUNCATED] = "ipv4_truncated",
    [MAL_IPV4_BAD_VERSION] = "ipv4_bad_version",
    [MAL_IPV4_BAD_HEADER_LEN] = "ipv4_bad_header_len",
    [MAL_IPV4_BAD_TOTAL_LEN] = "ipv4_bad_total_len",
    [MAL_IPV6_TRUNCATED] = "ipv6_truncated",
    [MAL_IPV6_BAD_VERSION] = "ipv6_bad_version",
    [MAL_IPV6_BAD_PAYLOAD_LEN] = "ipv6_bad_payload_len",
    [MAL_IPV6_EXT_TRUNCATED] = "ipv6_ext_truncated",
    [MAL_IPV6_EXT_TOO_DEEP] = "ipv6_ext_too_deep",
    [MAL_TCP_TRUNCATED] = "tcp_truncated",
    [MAL_TCP_BAD_DATA_OFFSET] = "tcp_bad_data_offset",
    [MAL_TCP_BAD_OPTION] = "tcp_bad_option",
    [MAL_GRE_TRUNCATED] = "gre_truncated",
    [MAL_GRE_BAD_HEADER] = "gre_bad_header",
    [MAL_ERSPAN_TRUNCATED] = "erspan_truncated",
    [MAL_ERSPAN_BAD_VERSION] = "erspan_bad_version",
    [MAL_UDP_TRUNCATED] = "udp_truncated",
    [MAL_VXLAN_BAD_FLAGS] = "vxlan_bad_flags",
    [MAL_MPLS_TRUNCATED] = "mpls_truncated",
    [MAL_MPLS_TOO_DEEP] = "mpls_too_deep",
    [MAL_ENCAP_TOO_DEEP] = "encap_too_deep",
    [MAL_ENCAP_BAD_LENGTH] = "encap_bad_length",
};

static const char *const encap_names[ENC_KIND_MAX] = {
    [ENC_NONE] = "none",       [ENC_GRE] = "gre",         [ENC_ERSPAN1] = "erspan1",
    [ENC_ERSPAN2] = "erspan2", [ENC_ERSPAN3] = "erspan3", [ENC_VXLAN] = "vxlan",
    [ENC_MPLS] = "mpls",
};

const char *encap_kind_name(int k)
{
    return NAME_OF(encap_names, k);
}

const char *cause_name(int c)
{
    return NAME_OF(cause_names, c);
}
const char *cause_meaning(int c)
{
    return NAME_OF(cause_meanings, c);
}
const char *overload_name(int o)
{
    return NAME_OF(overload_names, o);
}
const char *evidence_name(int bit)
{
    return NAME_OF(evidence_names, bit);
}
const char *conn_state_name(int s)
{
    return NAME_OF(state_names, s);
}
const char *origin_name(int o)
{
    return NAME_OF(origin_names, o);
}
const char *seq_check_name(int s)
{
    return NAME_OF(seq_check_names, s);
}
const char *malformed_name(int r)
{
    return NAME_OF(malformed_names, r);
}
