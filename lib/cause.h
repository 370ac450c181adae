/*
 * Reset causes, connection states and their stable names. The names are a contract: they are
 * JSON values in --events, keys in --summary and (later) Redis fields. Append, never reorder.
 */
#ifndef RS_CAUSE_H
#define RS_CAUSE_H

enum rst_cause {
    CAUSE_REFUSED = 0,   /* server host answered a SYN with RST */
    CAUSE_SERVER_ABORT,  /* server reset an established connection */
    CAUSE_CLIENT_ABORT,  /* client reset an established connection */
    CAUSE_AFTER_FIN,     /* RST once a FIN exchange had started */
    CAUSE_NO_FLOW,       /* RST for a connection the sensor never saw */
    CAUSE_OUT_OF_WINDOW, /* RST the receiver must not accept */
    CAUSE_UNCLASSIFIED,
    CAUSE_MAX
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
const char *conn_state_name(int s);
const char *origin_name(int o);
const char *seq_check_name(int s);
const char *malformed_name(int r);

#endif
