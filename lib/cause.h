/*
 * Reset causes, connection states and their stable names. The names are a contract: they are
 * JSON values in --events, keys in --summary and Redis fields; the numeric values are internal
 * (never written out), so the enums follow the order the report lists them in.
 */
#ifndef RS_CAUSE_H
#define RS_CAUSE_H

enum rst_cause {
    CAUSE_REFUSED = 0,        /* server host answered a SYN with RST */
    CAUSE_MIDDLEBOX_REFUSED,  /* RST to a SYN that the server host did not send */
    CAUSE_ACCEPT_OVERFLOW,    /* server reset right after the handshake (listen queue full) */
    CAUSE_SERVER_ABORT,       /* server reset an established connection */
    CAUSE_CLIENT_ABORT,       /* client reset an established connection */
    CAUSE_DATA_AFTER_CLOSE,   /* a side that had sent its FIN reset data still arriving */
    CAUSE_AFTER_FIN,          /* RST after the exchange had finished with FINs */
    CAUSE_STALE_CONNECTION,   /* the real peer no longer knows the connection */
    CAUSE_MIDDLEBOX_INJECTED, /* RST forged by a device in the path */
    CAUSE_OUT_OF_WINDOW,      /* RST the receiver must ignore */
    CAUSE_IDLE_TIMEOUT,       /* RST after an idle gap longer than the configured threshold */
    CAUSE_KEEPALIVE_TIMEOUT,  /* RST after unanswered keepalive probes */
    CAUSE_NO_FLOW,            /* RST for a connection the sensor never saw */
    CAUSE_UNCLASSIFIED,
    CAUSE_MAX
};

/*
 * Overload signals: not resets, but what explains them. Counted per worker and reported per
 * server:port through the engine's signal sink.
 */
enum overload_signal {
    OVL_SYN_UNANSWERED = 0, /* SYN that got neither SYN-ACK nor RST within the handshake hold */
    OVL_SYN_RETRANS,        /* the same SYN (same ISN) again */
    OVL_SYNACK_RETRANS,     /* the same SYN-ACK again */
    OVL_ZERO_WINDOW,        /* a zero-window advertisement (first of a run) */
    OVL_CHALLENGE_ACK,      /* RFC 5961 challenge ACK answering an in-window RST */
    OVL_MAX
};

/* Evidence bits carried by a reset event (why the cause or origin was chosen). */
enum rst_evidence {
    EV_TTL_MISMATCH = 1 << 0,     /* RST TTL unlike the sender's baseline (flow or host) */
    EV_IPID_MISMATCH = 1 << 1,    /* RST IPv4 ID unlike the sender's pattern */
    EV_SENDER_CONTINUED = 1 << 2, /* the purported sender kept sending after its RST */
    EV_CHALLENGE_ACK = 1 << 3,    /* the receiver answered with a challenge ACK */
    EV_CORRECTED = 1 << 4,        /* an exact RST followed the challenge ACK */
    EV_DUPLICATE = 1 << 5,        /* mirrored duplicate copies were folded */
    EV_BOTH_WAYS = 1 << 6,        /* RSTs went to both ends at once */
    EV_CAPTURE_GAP = 1 << 7,      /* the flow had a capture gap: low confidence */
    EV_MIDSTREAM = 1 << 8,        /* handshake not seen: roles and windows guessed */
    EV_MAX_BIT = 9
};

/* Connection state, as the sensor sees it from both directions. */
enum conn_state {
    CS_NONE = 0,     /* no packet of the connection seen before */
    CS_SYN_SENT,     /* client SYN seen, nothing from the server yet */
    CS_SYN_RECEIVED, /* SYN-ACK seen, handshake ACK not yet */
    CS_ESTABLISHED,
    CS_MIDSTREAM, /* traffic seen without its handshake (sensor started late, or evicted) */
    CS_FIN_WAIT,  /* one side sent FIN */
    CS_CLOSING,   /* both sides sent FIN */
    CS_CLOSED,    /* both FINs acknowledged */
    CS_RESET,     /* an accepted RST ended it */
    CS_MAX
};

enum rst_origin { ORIGIN_UNKNOWN = 0, ORIGIN_HOST, ORIGIN_MIDDLEBOX, ORIGIN_MAX };

/* How the RST's sequence number fits what the receiver expects (RFC 9293 §3.10.7). */
enum seq_check {
    SEQ_UNKNOWN = 0, /* not enough seen to judge: accepted */
    SEQ_EXACT,       /* == RCV.NXT: the receiver resets */
    SEQ_IN_WINDOW,   /* in window, not exact: RFC 5961 receivers send a challenge ACK */
    SEQ_OUT_OF_WINDOW,
    SEQ_ACK_OK,  /* SYN-SENT: the RST acknowledges the SYN */
    SEQ_ACK_BAD, /* SYN-SENT: it does not, the client drops it */
    SEQ_MAX
};

const char *cause_name(int c);
const char *cause_meaning(int c);
const char *overload_name(int o);
const char *evidence_name(int bit); /* bit index, 0..EV_MAX_BIT-1 */
const char *conn_state_name(int s);
const char *origin_name(int o);
const char *seq_check_name(int s);
const char *malformed_name(int r);
const char *encap_kind_name(int k); /* enum pkt_encap_kind */

#endif
