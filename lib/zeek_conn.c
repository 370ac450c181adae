#include "zeek_conn.h"

#include <ctype.h>
#include <string.h>

#include "flow.h" /* flow_addr_family */

/* Zeek's timers (init-bare.zeek defaults), in µs. */
#define ZK_CLOSE_DELAY 5000000ULL   /* tcp_close_delay / tcp_reset_delay */
#define ZK_ATTEMPT     5000000ULL   /* tcp_attempt_delay: an unanswered SYN */
#define ZK_LINGER      5000000ULL   /* tcp_connection_linger */
#define ZK_INACTIVITY  300000000ULL /* tcp_inactivity_timeout */
#define ZK_LARGE_DELTA 1048576      /* TOO_LARGE_SEQ_DELTA */

/* History masks, one bit per letter kind; the responder's are shifted by 16. */
#define H_SYN    0x01u
#define H_FIN    0x02u
#define H_RST    0x04u
#define H_FINRST 0x08u
#define H_DATA   0x10u
#define H_ACK    0x20u
#define H_MULTI  0x40u

int zeek_likely_server_port(uint16_t port)
{
    /* Ports Zeek's default analyzers register (so they sit in likely_server_ports). */
    static const uint16_t ports[] = {
        21,   22,   23,   25,   53,   80,   81,   88,   110,  111,   135,   139,   143,
        161,  389,  443,  445,  465,  502,  512,  513,  514,  543,   544,   585,   587,
        614,  636,  989,  990,  992,  993,  995,  1080, 1194, 1433,  1521,  1883,  2049,
        3128, 3306, 3389, 5060, 5061, 5222, 5223, 5269, 5432, 5672,  5900,  6379,  6666,
        6667, 6668, 6669, 8000, 8080, 8081, 8443, 8888, 9042, 11211, 20000, 47808,
    };
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
        if (ports[i] == port)
            return 1;
    return 0;
}

static void add_letter(struct zeek_conn *z, int is_orig, char code)
{
    if (z->hist_len < ZEEK_HIST_MAX) {
        z->hist[z->hist_len++] = is_orig ? code : (char)tolower((unsigned char)code);
        z->hist[z->hist_len] = '\0';
    }
}

/* Log a letter once per direction. Returns 1 when it had been logged before (Zeek's
 * Connection::CheckHistory). */
static int check_letter(struct zeek_conn *z, int is_orig, uint32_t mask, char code)
{
    uint32_t m = is_orig ? mask : mask << 16;
    if (z->hist_seen & m)
        return 1;
    z->hist_seen |= m;
    add_letter(z, is_orig, code);
    return 0;
}

/* Logarithmic letters: logged at the 1st, 10th, 100th ... occurrence. */
static void scaled_letter(struct zeek_conn *z, int is_orig, char code, uint32_t *cnt,
                          uint32_t *thresh)
{
    if (*thresh == 0)
        *thresh = 1;
    if (++*cnt == *thresh) {
        add_letter(z, is_orig, code);
        *thresh *= 10;
    }
}

static void set_state(struct zeek_ep *e, uint8_t s)
{
    e->prev_state = e->state;
    e->state = s;
}

static int inactive(uint8_t s)
{
    return s == ZE_INACTIVE || s == ZE_PARTIAL;
}

static void begin(struct zeek_conn *z, const struct pkt_info *p, int d, uint64_t ts)
{
    memset(z, 0, sizeof(*z));
    z->active = 1;
    z->ts_start = ts;
    z->ts_last = ts;
    int flip = 0;
    if ((p->flags & (TCP_SYN | TCP_ACK)) != TCP_SYN) {
        /* Mid-stream or SYN-ACK first: Zeek turns it round when only the source port looks
         * like a server's, or both do and it is not a SYN-ACK and the source port is lower. */
        int sl = zeek_likely_server_port(p->sport), dl = zeek_likely_server_port(p->dport);
        flip =
            (sl && !dl) || (sl && dl && (p->flags & (TCP_SYN | TCP_ACK)) != (TCP_SYN | TCP_ACK) &&
                            p->sport < p->dport);
    }
    z->orig_dir = (uint8_t)(flip ? 1 - d : d);
    if (flip) {
        z->flipped = 1;
        z->hist[z->hist_len++] = '^';
    }
}

static void flip_roles(struct zeek_conn *z)
{
    struct zeek_ep t = z->ep[0];
    z->ep[0] = z->ep[1];
    z->ep[1] = t;
    z->orig_dir = (uint8_t)(1 - z->orig_dir);
    z->flipped = 1;
    z->hist_seen = (z->hist_seen >> 16) | (z->hist_seen << 16);
}

/* Would Zeek's timers have removed this record before a packet at ts? */
static int expired(const struct zeek_conn *z, uint64_t ts)
{
    const struct zeek_ep *o = &z->ep[0], *r = &z->ep[1];
    if (ts > z->ts_last + ZK_INACTIVITY)
        return 1;
    if (z->close_ts && ts > z->close_ts + ZK_CLOSE_DELAY)
        return 1; /* ConnDeleteTimer after a complete close */
    if ((o->state == ZE_SYN_SENT || o->state == ZE_SYN_ACK_SENT) && r->state == ZE_INACTIVE &&
        ts > z->ts_start + ZK_ATTEMPT)
        return 1;
    if ((o->did_close || r->did_close) && ts > z->ts_last + ZK_LINGER &&
        ((o->did_close && r->did_close) || o->state == ZE_RESET || r->state == ZE_RESET ||
         o->state == ZE_INACTIVE || r->state == ZE_INACTIVE))
        return 1;
    return 0;
}

/* Zeek's IsReuse: a SYN that starts a new connection on the tuple. */
static int is_reuse(const struct zeek_conn *z, const struct pkt_info *p)
{
    const struct zeek_ep *conn_orig = &z->ep[0];
    if (!(p->flags & TCP_SYN))
        return 0;
    if (p->flags & TCP_ACK) {
        if (z->ep[0].state != ZE_INACTIVE)
            return 0; /* not a half connection */
        conn_orig = &z->ep[1];
    }
    if (!(z->ep[0].did_close || z->ep[1].did_close))
        return p->seq != conn_orig->start_seq;
    return 1;
}

static void init_endpoint(struct zeek_ep *e, uint8_t fl, uint32_t seq, uint32_t last)
{
    int syn = (fl & TCP_SYN) != 0;
    switch (e->state) {
    case ZE_INACTIVE:
        e->start_seq = syn ? seq : seq - 1;
        e->last_seq = syn ? last : seq;
        break;
    case ZE_SYN_SENT:
    case ZE_SYN_ACK_SENT:
    case ZE_ESTABLISHED:
    case ZE_PARTIAL:
        if (syn && (e->state == ZE_ESTABLISHED || e->state == ZE_PARTIAL || seq != e->start_seq)) {
            e->start_seq = seq;
            e->last_seq = last;
        }
        break;
    case ZE_RESET:
        if (syn && e->prev_state == ZE_INACTIVE) {
            e->start_seq = seq;
            e->last_seq = last;
        }
        break;
    default:
        break;
    }
}

static void update_history(struct zeek_conn *z, struct zeek_ep *e, int is_orig, uint8_t fl,
                           uint32_t seq, uint32_t len)
{
    int bits = !!(fl & TCP_SYN) + !!(fl & TCP_FIN) + !!(fl & TCP_RST);
    if (bits > 1) {
        if ((fl & TCP_FIN) && (fl & TCP_RST))
            check_letter(z, is_orig, H_FINRST, 'I');
        else
            check_letter(z, is_orig, H_MULTI, 'Q');
    } else if (bits == 1) {
        /* S, H, F and R repeat only at another sequence number. */
        if (fl & TCP_SYN) {
            char code = (fl & TCP_ACK) ? 'H' : 'S';
            if (check_letter(z, is_orig, H_SYN, code) && seq != e->hist_syn)
                add_letter(z, is_orig, code);
            e->hist_syn = seq;
        }
        if (fl & TCP_FIN) {
            if (check_letter(z, is_orig, H_FIN, 'F') && seq + len != e->hist_fin)
                add_letter(z, is_orig, 'F');
            e->hist_fin = seq + len;
        }
        if (fl & TCP_RST) {
            if (check_letter(z, is_orig, H_RST, 'R') && seq != e->hist_rst)
                add_letter(z, is_orig, 'R');
            e->hist_rst = seq;
        }
    } else if (len) {
        check_letter(z, is_orig, H_DATA, 'D');
    } else if (fl & TCP_ACK) {
        check_letter(z, is_orig, H_ACK, 'A');
    }
}

/* FIN closes the endpoint, RST resets it (RST wins on FIN+RST). Returns 1 when either did. */
static int close_flags(struct zeek_ep *e, uint8_t fl)
{
    if (fl & TCP_FIN)
        set_state(e, ZE_CLOSED);
    if (fl & TCP_RST)
        set_state(e, ZE_RESET);
    return (fl & (TCP_FIN | TCP_RST)) != 0;
}

/* UpdateStateMachine of Zeek's TCP analyzer, minus events and weirds. */
static void state_machine(struct zeek_conn *z, struct zeek_ep *e, struct zeek_ep *peer, int is_orig,
                          const struct pkt_info *p, uint64_t ts)
{
    uint8_t fl = p->flags;
    int do_close = 0;

    switch (e->state) {
    case ZE_INACTIVE:
        if (fl & TCP_SYN) {
            if (is_orig) {
                set_state(e, (fl & TCP_ACK) ? ZE_SYN_ACK_SENT : ZE_SYN_SENT);
            } else {
                if (peer->state == ZE_SYN_SENT)
                    set_state(peer, ZE_ESTABLISHED);
                set_state(e, ZE_ESTABLISHED);
            }
        }
        do_close = close_flags(e, fl);
        if (e->state == ZE_INACTIVE) {
            if (!is_orig && p->payload_len == 0 && z->ep[0].state == ZE_SYN_SENT)
                ; /* an ACK of the SYN before the SYN-ACK: not a partial connection */
            else if ((fl & TCP_ACK) && peer->state == ZE_ESTABLISHED)
                set_state(e, ZE_ESTABLISHED); /* its SYN was missed */
            else
                set_state(e, ZE_PARTIAL);
        }
        break;
    case ZE_SYN_SENT:
    case ZE_SYN_ACK_SENT:
        do_close = close_flags(e, fl);
        break;
    case ZE_ESTABLISHED:
    case ZE_PARTIAL:
        if ((fl & TCP_SYN) && e->state == ZE_PARTIAL && peer->state == ZE_INACTIVE &&
            !(fl & TCP_ACK))
            set_state(e, ZE_SYN_SENT);
        if ((fl & TCP_FIN) && !(fl & TCP_RST)) {
            set_state(e, ZE_CLOSED);
            /* FIN then RST from the peer, now a FIN back: a normal close after all. */
            if (peer->state == ZE_RESET && peer->prev_state == ZE_CLOSED)
                set_state(peer, ZE_CLOSED);
            do_close = 1;
        }
        if (fl & TCP_RST) {
            set_state(e, ZE_RESET);
            do_close = 1;
        }
        break;
    case ZE_CLOSED:
        /* A RST after a complete FIN exchange changes nothing. */
        if ((fl & TCP_RST) && peer->state != ZE_CLOSED) {
            set_state(e, ZE_RESET);
            do_close = 1;
        }
        break;
    default: /* RESET absorbs */
        break;
    }
    if (do_close && !e->did_close) {
        e->did_close = 1;
        /* Zeek's close_complete: the record is deleted tcp_close_delay after it. */
        if (!z->close_ts && (e->state == ZE_RESET || peer->did_close || peer->state == ZE_INACTIVE))
            z->close_ts = ts;
    }
}

static void process(struct zeek_conn *z, const struct pkt_info *p, int d, uint64_t ts)
{
    uint8_t fl = p->flags;

    /* A lone SYN-ACK followed by a pure ACK or data either way: the SYN-ACK's receiver was
     * the originator (Zeek PR #2191: stealth scans never ACK or send data). */
    if (!z->flipped && z->hist_len == 1 && z->hist[0] == 'H' &&
        !(fl & (TCP_SYN | TCP_FIN | TCP_RST))) {
        flip_roles(z);
        strcpy(z->hist, "^h");
        z->hist_len = 2;
    }
    int is_orig = d == z->orig_dir;
    struct zeek_ep *e = &z->ep[is_orig ? 0 : 1];
    struct zeek_ep *peer = &z->ep[is_orig ? 1 : 0];
    uint32_t len = p->payload_len;
    uint32_t seg_len = len + !!(fl & TCP_SYN) + !!(fl & TCP_FIN) - ((fl & TCP_RST) ? len : 0);
    uint32_t past = p->seq + seg_len;

    init_endpoint(e, fl, p->seq, past);
    update_history(z, e, is_orig, fl, p->seq, len);
    if (p->win == 0 && !(fl & TCP_RST) && peer->state != ZE_CLOSED && e->state != ZE_RESET &&
        (fl & TCP_ACK))
        scaled_letter(z, is_orig, 'W', &e->win0_cnt, &e->win0_thresh);
    if ((fl & TCP_ACK) && peer->state == ZE_INACTIVE) {
        peer->start_seq = p->ack - 1;
        peer->last_seq = p->ack - 1;
    } else if ((fl & TCP_ACK) && !(fl & (TCP_FIN | TCP_RST)) &&
               (int32_t)(p->ack - peer->last_seq) > 0 &&
               (!peer->gap_mark || (int32_t)(p->ack - peer->gap_mark) > 0)) {
        /* Acknowledged bytes of the peer never seen: a content gap in its stream. */
        peer->gap_mark = p->ack;
        scaled_letter(z, !is_orig, 'G', &peer->gap_cnt, &peer->gap_thresh);
    }
    int32_t delta = (int32_t)(past - e->last_seq);
    if ((fl & (TCP_SYN | TCP_RST)) && (delta > ZK_LARGE_DELTA || delta < -ZK_LARGE_DELTA))
        ; /* an outlandish SYN/RST sequence number is not trusted */
    else if ((fl & TCP_FIN) && e->last_seq == e->start_seq + 1)
        e->last_seq = past;
    else if (e->state == ZE_RESET)
        ; /* nothing after a RST is trusted */
    else if (delta > 0)
        e->last_seq = past;
    else if (len > 0)
        scaled_letter(z, is_orig, 'T', &e->rxmt_cnt, &e->rxmt_thresh);

    state_machine(z, e, peer, is_orig, p, ts);
    if (!(fl & TCP_RST))
        e->payload += len;
    e->pkts++;
    if ((!z->ep[0].did_close || !z->ep[1].did_close) && ts > z->ts_last)
        z->ts_last = ts; /* capture time may step back (merged captures): keep the span */
}

int zeek_conn_packet(struct zeek_conn *z, const struct pkt_info *p, int d, uint64_t ts,
                     struct zeek_conn *done)
{
    int ended = 0;
    if (z->active && (expired(z, ts) || is_reuse(z, p))) {
        *done = *z;
        ended = 1;
        z->active = 0;
    }
    if (!z->active)
        begin(z, p, d, ts);
    process(z, p, d, ts);
    return ended;
}

/* Zeek's RSTOS0 history test: /^\^?S[^HAFGIQ]*R.*$/ */
static int rstos0_history(const char *h)
{
    if (*h == '^')
        h++;
    if (*h++ != 'S')
        return 0;
    for (; *h && *h != 'R'; h++)
        if (strchr("HAFGIQ", *h))
            return 0;
    return *h == 'R';
}

const char *zeek_conn_state(const struct zeek_conn *z)
{
    uint8_t os = z->ep[0].state, rs = z->ep[1].state;
    int o_in = inactive(os), r_in = inactive(rs);

    if (rs == ZE_RESET) {
        if (os == ZE_SYN_SENT || os == ZE_SYN_ACK_SENT ||
            (os == ZE_RESET && z->ep[0].payload == 0 && z->ep[1].payload == 0))
            return "REJ";
        return o_in ? "RSTRH" : "RSTR";
    }
    if (os == ZE_RESET)
        return r_in ? (rstos0_history(z->hist) ? "RSTOS0" : "OTH") : "RSTO";
    if (rs == ZE_CLOSED && os == ZE_CLOSED)
        return "SF";
    if (os == ZE_CLOSED)
        return r_in ? "SH" : "S2";
    if (rs == ZE_CLOSED)
        return o_in ? "SHR" : "S3";
    if (os == ZE_SYN_SENT && rs == ZE_INACTIVE)
        return "S0";
    if (os == ZE_ESTABLISHED && rs == ZE_ESTABLISHED)
        return "S1";
    return "OTH";
}

void zeek_conn_finish(const struct zeek_conn *z, const uint8_t lo_addr[16], uint16_t lo_port,
                      const uint8_t hi_addr[16], uint16_t hi_port, struct flow_record *r)
{
    int o = z->orig_dir;
    memset(r, 0, sizeof(*r));
    r->ts_start = z->ts_start;
    r->ts_end = z->ts_last;
    memcpy(r->orig_ip, o == 0 ? lo_addr : hi_addr, 16);
    memcpy(r->resp_ip, o == 0 ? hi_addr : lo_addr, 16);
    r->orig_port = o == 0 ? lo_port : hi_port;
    r->resp_port = o == 0 ? hi_port : lo_port;
    r->family = flow_addr_family(lo_addr);
    r->cause = z->cause;
    strncpy(r->conn_state, zeek_conn_state(z), sizeof(r->conn_state) - 1);
    memcpy(r->history, z->hist, sizeof(r->history));
    r->orig_bytes = z->ep[0].payload;
    r->resp_bytes = z->ep[1].payload;
    r->orig_pkts = z->ep[0].pkts;
    r->resp_pkts = z->ep[1].pkts;
}
