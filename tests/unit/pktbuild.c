#include "pktbuild.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_track.h"

static void die(const char *what)
{
    fprintf(stderr, "pktbuild: %s\n", what);
    abort();
}

void pb_addr(uint8_t out[16], const char *text)
{
    memset(out, 0, 16);
    if (strchr(text, ':')) {
        if (inet_pton(AF_INET6, text, out) != 1)
            die("bad IPv6 address");
        return;
    }
    out[10] = out[11] = 0xff;
    if (inet_pton(AF_INET, text, out + 12) != 1)
        die("bad IPv4 address");
}

void pb_pkt_init(struct pb_pkt *p, int family)
{
    static const uint8_t dmac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
    static const uint8_t smac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

    memset(p, 0, sizeof(*p));
    memcpy(p->dst_mac, dmac, 6);
    memcpy(p->src_mac, smac, 6);
    p->family = family;
    pb_addr(p->src, family == 6 ? "2001:db8::1" : "10.0.0.1");
    pb_addr(p->dst, family == 6 ? "2001:db8::2" : "10.0.0.2");
    p->ttl = 64;
    p->ip_id = 0x1234;
    p->df = 1;
    p->proto = PB_IP_TCP;
    p->sport = 40000;
    p->dport = 80;
    p->seq = 1000;
    p->ack = 0;
    p->flags = TCP_ACK;
    p->win = 65535;
    p->wscale = -1;
}

void pb_vlans(struct pb_pkt *p, int n, const uint16_t *tpids, const uint16_t *tcis)
{
    if (n < 0 || n > PB_MAX_VLANS)
        die("too many VLAN tags");
    p->n_vlans = n;
    for (int i = 0; i < n; i++) {
        p->vlan_tpid[i] = tpids[i];
        p->vlan_tci[i] = tcis[i];
    }
}

/* Internet checksum over a buffer, continuing from sum. */
static uint32_t csum_add(uint32_t sum, const uint8_t *b, uint32_t n)
{
    for (uint32_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (n & 1)
        sum += (uint32_t)b[n - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* TCP options as the builder lays them out (Linux-like order). Returns the padded length. */
static uint32_t write_tcp_opts(const struct pb_pkt *p, uint8_t *o)
{
    uint8_t tmp[80];
    uint32_t n = 0;

    if (p->mss) {
        tmp[n++] = 2;
        tmp[n++] = 4;
        pb_put16(tmp + n, p->mss);
        n += 2;
    }
    if (p->sack_ok && p->has_ts) {
        tmp[n++] = 4;
        tmp[n++] = 2;
    } else if (p->has_ts || p->sack_ok) {
        tmp[n++] = 1;
        tmp[n++] = 1;
        if (!p->has_ts) {
            tmp[n++] = 4;
            tmp[n++] = 2;
        }
    }
    if (p->has_ts) {
        tmp[n++] = 8;
        tmp[n++] = 10;
        pb_put32(tmp + n, p->tsval);
        pb_put32(tmp + n + 4, p->tsecr);
        n += 8;
    }
    if (p->wscale >= 0) {
        tmp[n++] = 1;
        tmp[n++] = 3;
        tmp[n++] = 3;
        tmp[n++] = (uint8_t)p->wscale;
    }
    memcpy(tmp + n, p->raw_opts, p->raw_opts_len);
    n += p->raw_opts_len;
    while (n & 3)
        tmp[n++] = 0; /* EOL padding */
    if (n > 40)
        die("TCP options longer than 40 bytes");
    memcpy(o, tmp, n);
    return n;
}

static uint32_t ext_len(const struct pb_v6ext *x)
{
    switch (x->type) {
    case PB_IP_FRAGMENT:
        return 8;
    case PB_IP_AH:
        return ((uint32_t)x->len + 2) * 4;
    default:
        return ((uint32_t)x->len + 1) * 8;
    }
}

static void write_ext(const struct pb_v6ext *x, uint8_t next, uint8_t *e)
{
    uint32_t n = ext_len(x);

    memset(e, 0, n);
    e[0] = next;
    switch (x->type) {
    case PB_IP_FRAGMENT:
        pb_put16(e + 2, (uint16_t)(x->frag_off << 3 | (x->frag_mf ? 1 : 0)));
        pb_put32(e + 4, x->frag_id);
        break;
    case PB_IP_AH:
        e[1] = x->len;
        pb_put32(e + 4, 0x100); /* SPI */
        pb_put32(e + 8, 1);     /* sequence number */
        break;
    case PB_IP_ROUTING:
        e[1] = x->len;
        e[2] = 4; /* segment routing header type, segments left 0 */
        break;
    default: /* hop-by-hop, destination options: one PadN option filling the header */
        e[1] = x->len;
        e[2] = 1;
        e[3] = (uint8_t)(n - 4);
        break;
    }
}

uint32_t pb_build(const struct pb_pkt *p, uint8_t *buf, uint32_t cap, struct pb_layout *lay)
{
    uint8_t f[PB_MAX_FRAME + 128];
    struct pb_layout l;
    uint32_t off = 0;

    memset(&l, 0, sizeof(l));
    memset(f, 0, sizeof(f));
    memcpy(f, p->dst_mac, 6);
    memcpy(f + 6, p->src_mac, 6);
    off = 12;
    for (int i = 0; i < p->n_vlans; i++) {
        pb_put16(f + off, p->vlan_tpid[i]);
        pb_put16(f + off + 2, p->vlan_tci[i]);
        off += 4;
    }
    uint16_t et = p->ethertype ? p->ethertype : p->family == 6 ? PB_ETH_IPV6 : PB_ETH_IPV4;
    pb_put16(f + off, et);
    off += 2;
    l.l3 = off;

    if (et == PB_ETH_ARP) {
        uint8_t *a = f + off;
        pb_put16(a, 1);          /* Ethernet */
        pb_put16(a + 2, 0x0800); /* IPv4 */
        a[4] = 6;
        a[5] = 4;
        pb_put16(a + 6, 1); /* request */
        memcpy(a + 8, p->src_mac, 6);
        memcpy(a + 14, p->src + 12, 4);
        memcpy(a + 24, p->dst + 12, 4);
        off += 28;
        l.l4 = l.tcp_opts = l.tcp_end = off;
        l.len = off;
        goto out;
    }
    if (et != PB_ETH_IPV4 && et != PB_ETH_IPV6) {
        /* Some other protocol: payload_len opaque bytes. */
        if (off + p->payload_len > PB_MAX_FRAME)
            die("frame too long");
        memset(f + off, 0xab, p->payload_len);
        off += p->payload_len;
        l.l4 = l.tcp_opts = l.tcp_end = off;
        l.len = off;
        goto out;
    }

    /* L3 header length, then L4 into place, then the L3 header with the lengths. */
    uint32_t l3len;
    if (p->family == 6) {
        l3len = 40;
        for (int i = 0; i < p->n_ext; i++) {
            l.ext[i] = l.l3 + l3len;
            l3len += ext_len(&p->ext[i]);
        }
    } else {
        if (p->ip_opts_len > 40)
            die("IPv4 options longer than 40 bytes");
        l3len = 20 + ((p->ip_opts_len + 3u) & ~3u);
    }
    l.l4 = l.l3 + l3len;
    uint8_t *t = f + l.l4;
    uint32_t l4hdr;
    if (p->proto == PB_IP_TCP) {
        uint32_t olen = write_tcp_opts(p, t + 20);
        l4hdr = 20 + olen;
        pb_put16(t, p->sport);
        pb_put16(t + 2, p->dport);
        pb_put32(t + 4, p->seq);
        pb_put32(t + 8, p->ack);
        t[12] = (uint8_t)((l4hdr / 4) << 4);
        t[13] = p->flags;
        pb_put16(t + 14, p->win);
        l.tcp_opts = l.l4 + 20;
    } else if (p->proto == PB_IP_UDP) {
        l4hdr = 8;
        pb_put16(t, p->sport);
        pb_put16(t + 2, p->dport);
        pb_put16(t + 4, (uint16_t)(8 + p->payload_len));
        l.tcp_opts = l.l4 + 8;
    } else if (p->proto == PB_IP_ICMP || p->proto == PB_IP_ICMPV6) {
        l4hdr = 8;
        t[0] = p->proto == PB_IP_ICMP ? 8 : 128; /* echo request */
        pb_put16(t + 4, 1);
        pb_put16(t + 6, 1);
        l.tcp_opts = l.l4 + 8;
    } else {
        l4hdr = 0;
        l.tcp_opts = l.l4;
    }
    l.tcp_end = l.l4 + l4hdr;
    if (l.tcp_end + p->payload_len > PB_MAX_FRAME)
        die("frame too long");
    for (uint32_t i = 0; i < p->payload_len; i++)
        t[l4hdr + i] = (uint8_t)('a' + i % 26);
    uint32_t l4len = l4hdr + p->payload_len;
    l.len = l.tcp_end + p->payload_len;

    uint8_t *ip = f + l.l3;
    uint32_t psum = 0; /* pseudo-header sum */
    if (p->family == 6) {
        if (l3len - 40 + l4len > 0xffff)
            die("IPv6 payload too long");
        ip[0] = 0x60;
        pb_put16(ip + 4, (uint16_t)(l3len - 40 + l4len));
        ip[6] = p->n_ext ? p->ext[0].type : p->proto;
        ip[7] = p->ttl;
        memcpy(ip + 8, p->src, 16);
        memcpy(ip + 24, p->dst, 16);
        for (int i = 0; i < p->n_ext; i++)
            write_ext(&p->ext[i], i + 1 < p->n_ext ? p->ext[i + 1].type : p->proto, f + l.ext[i]);
        psum = csum_add(psum, p->src, 16);
        psum = csum_add(psum, p->dst, 16);
        psum += l4len + p->proto;
    } else {
        if (l3len + l4len > 0xffff)
            die("IPv4 packet too long");
        ip[0] = (uint8_t)(0x40 | (l3len / 4));
        pb_put16(ip + 2, (uint16_t)(l3len + l4len));
        pb_put16(ip + 4, p->ip_id);
        pb_put16(ip + 6,
                 (uint16_t)((p->df ? 0x4000 : 0) | (p->mf ? 0x2000 : 0) | (p->frag_off & 0x1fff)));
        ip[8] = p->ttl;
        ip[9] = p->proto;
        memcpy(ip + 12, p->src + 12, 4);
        memcpy(ip + 16, p->dst + 12, 4);
        memcpy(ip + 20, p->ip_opts, p->ip_opts_len);
        pb_put16(ip + 10, csum_fold(csum_add(0, ip, l3len)));
        psum = csum_add(psum, p->src + 12, 4);
        psum = csum_add(psum, p->dst + 12, 4);
        psum += l4len + p->proto;
    }
    if (p->proto == PB_IP_TCP)
        pb_put16(t + 16, csum_fold(csum_add(psum, t, l4len)));
    else if (p->proto == PB_IP_UDP)
        pb_put16(t + 6, csum_fold(csum_add(psum, t, l4len)));
    else if (p->proto == PB_IP_ICMP)
        pb_put16(t + 2, csum_fold(csum_add(0, t, l4len)));

out:
    if (l.len > cap)
        die("frame does not fit the buffer");
    memcpy(buf, f, l.len);
    if (lay)
        *lay = l;
    return l.len;
}

void pb_to_info(const struct pb_pkt *p, struct pkt_info *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->src, p->src, 16);
    memcpy(out->dst, p->dst, 16);
    out->sport = p->sport;
    out->dport = p->dport;
    out->family = (uint8_t)p->family;
    out->ttl = p->ttl;
    out->flags = p->flags;
    out->df = p->family == 6 ? 1 : p->df;
    out->ip_id = p->family == 6 ? 0 : p->ip_id;
    out->vlan = p->n_vlans ? (uint16_t)(p->vlan_tci[0] & 0x0fff) : 0;
    out->vlan_depth = (uint8_t)p->n_vlans;
    out->malformed = MAL_NONE;
    out->win = p->win;
    out->seq = p->seq;
    out->ack = p->ack;
    out->payload_len = p->payload_len;
    out->opt.mss = p->mss;
    out->opt.wscale = p->wscale < 0 ? 0xff : p->wscale > 14 ? 14 : (uint8_t)p->wscale;
    out->opt.sack_ok = p->sack_ok;
    out->opt.has_ts = p->has_ts;
    out->opt.tsval = p->has_ts ? p->tsval : 0;
    out->opt.tsecr = p->has_ts ? p->tsecr : 0;
}

/* ---- conversations ---- */

void pb_conv_init(struct pb_conv *c, int family)
{
    memset(c, 0, sizeof(*c));
    c->family = family;
    pb_addr(c->cli, family == 6 ? "2001:db8::1" : "10.0.0.1");
    pb_addr(c->srv, family == 6 ? "2001:db8::2" : "10.0.0.2");
    c->cport = 40000;
    c->sport = 80;
    c->cisn = 1000;
    c->sisn = 500000;
    c->cttl = 64;
    c->sttl = 60;
    c->cws = 7;
    c->sws = 7;
    c->cwin = 502;
    c->swin = 509;
    c->t0 = 1000000000000ULL;
}

void pb_conv_pkt(const struct pb_conv *c, const struct pb_seg *s, struct pb_pkt *out)
{
    int from_cli = s->dir == PB_C2S;

    pb_pkt_init(out, c->family);
    out->n_vlans = c->n_vlans;
    memcpy(out->vlan_tpid, c->vlan_tpid, sizeof(out->vlan_tpid));
    memcpy(out->vlan_tci, c->vlan_tci, sizeof(out->vlan_tci));
    memcpy(out->src, from_cli ? c->cli : c->srv, 16);
    memcpy(out->dst, from_cli ? c->srv : c->cli, 16);
    out->sport = from_cli ? c->cport : c->sport;
    out->dport = from_cli ? c->sport : c->cport;
    out->ttl = s->ttl ? s->ttl : from_cli ? c->cttl : c->sttl;
    out->ip_id = (uint16_t)(from_cli ? 0x1000 + s->seq : 0x2000 + s->seq);
    out->flags = s->flags;
    out->seq = (from_cli ? c->cisn : c->sisn) + s->seq;
    out->ack = (s->flags & TCP_ACK) ? (from_cli ? c->sisn : c->cisn) + s->ack : 0;
    out->win = s->win == PB_WIN_ZERO ? 0 : s->win ? (uint16_t)s->win : from_cli ? c->cwin : c->swin;
    out->payload_len = s->len;
    if (s->flags & TCP_SYN) {
        out->mss = 1460;
        out->sack_ok = 1;
        out->wscale = from_cli ? c->cws : c->sws;
    }
}

void pb_conv_info(const struct pb_conv *c, const struct pb_seg *s, struct pkt_info *out)
{
    struct pb_pkt p;

    pb_conv_pkt(c, s, &p);
    pb_to_info(&p, out);
}

int pb_conv_dir(const struct pb_conv *c, int who)
{
    struct pb_seg s = {.dir = (uint8_t)who, .flags = TCP_ACK};
    struct pkt_info p;
    struct flow_key k;
    int d;

    pb_conv_info(c, &s, &p);
    flow_key_make(&p, &k, &d);
    return d;
}

void pb_track(struct flow *f, const struct pb_conv *c, const struct pb_seg *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pkt_info p;
        struct flow_key k;
        int d;
        uint64_t ts = pb_conv_ts(c, &s[i]);

        pb_conv_info(c, &s[i], &p);
        flow_key_make(&p, &k, &d);
        /* A bare flow has no table: an IPv6 key is known by its hash and ports alone. */
        struct flow_ckey ck;
        uint8_t v6 = (uint8_t)flow_ckey_make(&k, &ck);
        uint32_t h = flow_key_hash(&k);
        if (f->first_ts == 0) {
            f->key = ck;
            f->key_v6 = v6;
            f->hash = h;
            tcp_track_init(f, &p, d, ts);
        }
        if (memcmp(&f->key, &ck, sizeof(ck)) || f->key_v6 != v6 || f->hash != h)
            die("pb_track: segment of another connection");
        tcp_track_segment(f, &p, d, ts);
        f->last_ts = ts;
    }
}

/* ---- engine harness ---- */

void pb_event_sink(void *ctx, const struct rst_event *ev)
{
    struct pb_harness *h = ctx;

    if (h->nev == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->ev = realloc(h->ev, h->cap * sizeof(*h->ev));
        if (!h->ev)
            die("out of memory");
    }
    h->ev[h->nev++] = *ev;
}

struct pb_harness *pb_harness_new(const struct engine_config *cfg)
{
    struct engine_config def;
    struct pb_harness *h = aligned_alloc(64, sizeof(*h));

    if (!h)
        die("out of memory");
    memset(h, 0, sizeof(*h));
    if (!cfg) {
        engine_config_defaults(&def);
        def.max_flows = 1024;
        cfg = &def;
    }
    h->e = engine_create(cfg, &h->stats, pb_event_sink, h, 3);
    if (!h->e)
        die("engine_create failed");
    return h;
}

void pb_harness_free(struct pb_harness *h)
{
    if (!h)
        return;
    engine_destroy(h->e);
    free(h->ev);
    free(h);
}

void pb_input(struct pb_harness *h, const struct pb_pkt *p, uint64_t ts)
{
    uint8_t buf[PB_MAX_FRAME];
    uint32_t len = pb_build(p, buf, sizeof(buf), NULL);

    engine_input(h->e, buf, len, ts);
}

void pb_run(struct pb_harness *h, const struct pb_conv *c, const struct pb_seg *s, size_t n,
            enum pb_mode mode)
{
    for (size_t i = 0; i < n; i++) {
        struct pb_pkt p;
        pb_conv_pkt(c, &s[i], &p);
        if (mode == PB_FRAMES) {
            pb_input(h, &p, pb_conv_ts(c, &s[i]));
        } else {
            struct pkt_info pi;
            pb_to_info(&p, &pi);
            engine_segment(h->e, &pi, pb_conv_ts(c, &s[i]));
        }
    }
}

const struct pb_seg pb_handshake[3] = {
    PB_C(TCP_SYN, 0, 0, 0),
    PB_S(TCP_SYN | TCP_ACK, 0, 1, 0),
    PB_C(TCP_ACK, 1, 1, 0),
};

const struct pb_seg pb_exchange[3] = {
    PB_C(TCP_ACK | TCP_PSH, 1, 1, 100),
    PB_S(TCP_ACK | TCP_PSH, 1, 101, 1000),
    PB_C(TCP_ACK, 101, 1001, 0),
};
