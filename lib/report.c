#include "report.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>

const char *report_addr(const uint8_t addr[16], int family, char *buf, size_t len)
{
    if (family == 4)
        return inet_ntop(AF_INET, addr + 12, buf, (socklen_t)len);
    return inet_ntop(AF_INET6, addr, buf, (socklen_t)len);
}

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

void report_text(FILE *out, const struct engine_stats *s, const struct run_info *ri)
{
    fprintf(out, "\nrstscope %s report (%s: %s, %u worker%s)\n", RSTSCOPE_VERSION, ri->mode,
            ri->source, ri->workers, ri->workers == 1 ? "" : "s");
    fprintf(out, "  packets        %12" PRIu64 "  (%.2f s, %.0f pkt/s)\n", s->packets,
            ri->wall_seconds, ri->wall_seconds > 0 ? (double)s->packets / ri->wall_seconds : 0.0);
    fprintf(out, "  ip packets     %12" PRIu64 "  (ipv4 %" PRIu64 ", ipv6 %" PRIu64 ")\n",
            s->ipv4 + s->ipv6, s->ipv4, s->ipv6);
    fprintf(out, "  tcp packets    %12" PRIu64 "\n", s->tcp_packets);
    fprintf(out,
            "  other          %12" PRIu64 "  (non-ip %" PRIu64 ", non-tcp %" PRIu64
            ", fragments %" PRIu64 ")\n",
            s->non_ip + s->non_tcp + s->fragments, s->non_ip, s->non_tcp, s->fragments);
    fprintf(out, "  malformed      %12" PRIu64 "\n", s->malformed_total);
    fprintf(out, "  rst packets    %12" PRIu64 "\n", s->rst_packets);
    fprintf(out, "  reset events   %12" PRIu64 "\n\n", s->resets);
    fprintf(out, "  %-18s %8s %7s  %s\n", "cause", "events", "share", "meaning");
    for (int c = 0; c < CAUSE_MAX; c++)
        fprintf(out, "  %-18s %8" PRIu64 " %6.1f%%  %s\n", cause_name(c), s->causes[c],
                pct(s->causes[c], s->resets), cause_meaning(c));
    fprintf(out,
            "\n  low-confidence events %" PRIu64 ", late RSTs %" PRIu64
            ", mirrored duplicates %" PRIu64 ", flows with capture gaps %" PRIu64 "\n",
            s->low_confidence, s->late_rsts, s->duplicates, s->capture_gaps);
    fprintf(out, "\n  overload signals (not resets)\n");
    for (int o = 0; o < OVL_MAX; o++)
        fprintf(out, "  %-18s %8" PRIu64 "\n", overload_name(o), s->overload[o]);
    int any = 0;
    for (int r = 1; r < MAL_MAX; r++) {
        if (!s->malformed[r])
            continue;
        if (!any++)
            fprintf(out, "\n  malformed by reason\n");
        fprintf(out, "  %-24s %10" PRIu64 "\n", malformed_name(r), s->malformed[r]);
    }
    uint64_t tunnelled = 0;
    for (int k = 1; k < ENC_KIND_MAX; k++)
        tunnelled += s->encap[k];
    if (tunnelled) {
        fprintf(out, "\n  mirror tunnels  ");
        for (int k = 1; k < ENC_KIND_MAX; k++)
            if (s->encap[k])
                fprintf(out, " %s %" PRIu64, encap_kind_name(k), s->encap[k]);
        fprintf(out,
                "\n  mirror loss     %" PRIu64 " copies missing (sequence gaps), %" PRIu64
                " late, %" PRIu64 " restarts, %" PRIu64 " untracked\n",
                s->mirror_lost, s->mirror_late, s->mirror_restarts, s->mirror_untracked);
    }
    fprintf(out,
            "\n  flows          created %" PRIu64 ", expired %" PRIu64 ", evicted %" PRIu64
            ", dropped (table full) %" PRIu64 "\n",
            s->flows_created, s->flows_expired, s->flows_evicted, s->flows_dropped);
    if (ri->rx_missed || ri->rx_nombuf || ri->rx_errors || ri->ring_drops || s->events_dropped)
        fprintf(out,
                "  NOT SEEN       nic missed %" PRIu64 ", no mbuf %" PRIu64 ", rx errors %" PRIu64
                ", ring drops %" PRIu64 ", event records dropped %" PRIu64 "\n",
                ri->rx_missed, ri->rx_nombuf, ri->rx_errors, ri->ring_drops, s->events_dropped);
    if (s->flows_dropped || s->ipv6_pool_full) {
        fprintf(out,
                "  NOT TRACKED    %" PRIu64 " packets of new connections found the flow table "
                "full of established ones (raise --max-flows)",
                s->flows_dropped);
        if (s->ipv6_pool_full)
            fprintf(out,
                    "; %" PRIu64
                    " IPv6 packets found the IPv6 address pool full (raise --ipv6-share)",
                    s->ipv6_pool_full);
        fputc('\n', out);
    }
    if (s->rst_pool_full)
        fprintf(out,
                "  HOLDS CUT      %" PRIu64 " reset events judged before their hold ran out: a "
                "reset storm filled the held-event pool (max-flows / 16)\n",
                s->rst_pool_full);
}

int report_summary_json(FILE *out, const struct engine_stats *s, const struct run_info *ri)
{
    fprintf(out, "{\"version\":\"%s\",\"mode\":\"%s\",\"workers\":%u,\"hash_key\":\"%s\",",
            RSTSCOPE_VERSION, ri->mode, ri->workers, ri->hash_key ? ri->hash_key : "none");
    fprintf(out,
            "\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"tcp_packets\":%" PRIu64
            ",\"ipv4\":%" PRIu64 ",\"ipv6\":%" PRIu64 ",\"non_ip\":%" PRIu64 ",\"non_tcp\":%" PRIu64
            ",\"fragments\":%" PRIu64 ",\"malformed_packets\":%" PRIu64 ",\"rst_packets\":%" PRIu64
            ",\"resets\":%" PRIu64 ",\"syn\":%" PRIu64 ",\"synack\":%" PRIu64 ",\"fin\":%" PRIu64
            ",",
            s->packets, s->bytes, s->tcp_packets, s->ipv4, s->ipv6, s->non_ip, s->non_tcp,
            s->fragments, s->malformed_total, s->rst_packets, s->resets, s->syn, s->synack, s->fin);
    fputs("\"causes\":{", out);
    for (int c = 0; c < CAUSE_MAX; c++)
        fprintf(out, "%s\"%s\":%" PRIu64, c ? "," : "", cause_name(c), s->causes[c]);
    fprintf(out,
            "},\"low_confidence\":%" PRIu64 ",\"late_rsts\":%" PRIu64 ",\"duplicates\":%" PRIu64
            ",\"capture_gaps\":%" PRIu64 ",\"overload\":{",
            s->low_confidence, s->late_rsts, s->duplicates, s->capture_gaps);
    for (int o = 0; o < OVL_MAX; o++)
        fprintf(out, "%s\"%s\":%" PRIu64, o ? "," : "", overload_name(o), s->overload[o]);
    fputs("},\"malformed\":{", out);
    for (int r = 1; r < MAL_MAX; r++)
        fprintf(out, "%s\"%s\":%" PRIu64, r > 1 ? "," : "", malformed_name(r), s->malformed[r]);
    fputs("},\"encap\":{", out);
    for (int k = 1; k < ENC_KIND_MAX; k++)
        fprintf(out, "%s\"%s\":%" PRIu64, k > 1 ? "," : "", encap_kind_name(k), s->encap[k]);
    fprintf(out,
            "},\"mirror\":{\"lost\":%" PRIu64 ",\"late\":%" PRIu64 ",\"restarts\":%" PRIu64
            ",\"untracked\":%" PRIu64,
            s->mirror_lost, s->mirror_late, s->mirror_restarts, s->mirror_untracked);
    fprintf(out,
            "},\"flows\":{\"created\":%" PRIu64 ",\"expired\":%" PRIu64 ",\"evicted\":%" PRIu64
            ",\"dropped\":%" PRIu64 ",\"active\":%" PRIu64 ",\"rst_pool_full\":%" PRIu64
            ",\"ipv6_pool_full\":%" PRIu64 "},",
            s->flows_created, s->flows_expired, s->flows_evicted, s->flows_dropped, s->flows_active,
            s->rst_pool_full, s->ipv6_pool_full);
    fprintf(out,
            "\"input\":{\"rx_missed\":%" PRIu64 ",\"rx_nombuf\":%" PRIu64 ",\"rx_errors\":%" PRIu64
            ",\"ring_drops\":%" PRIu64 ",\"events_dropped\":%" PRIu64 ",\"events_written\":%" PRIu64
            ",\"flow_records_dropped\":%" PRIu64 ",\"flow_records_written\":%" PRIu64 "},",
            ri->rx_missed, ri->rx_nombuf, ri->rx_errors, ri->ring_drops, s->events_dropped,
            ri->events_written, s->flow_records_dropped, ri->flows_written);
    if (ri->dump_enabled)
        fprintf(out,
                "\"dump\":{\"dump_packets\":%" PRIu64 ",\"dump_dropped\":%" PRIu64
                ",\"evicted\":%" PRIu64 ",\"bytes\":%" PRIu64 "},",
                ri->dump_packets, ri->dump_dropped, ri->dump_evicted, ri->dump_bytes);
    if (ri->tsc_hz && ri->flow_capacity) {
        /* Cycles of busy polls per packet, and the rate one core sustains at that cost. */
        double cpp = s->packets ? (double)s->busy_cycles / (double)s->packets : 0;
        fprintf(out,
                "\"perf\":{\"tsc_hz\":%" PRIu64 ",\"busy_cycles\":%" PRIu64
                ",\"cycles_per_packet\":%.2f,\"mpps_per_worker\":%.3f,\"flow_capacity\":%" PRIu64
                ",\"flow_table_bytes\":%" PRIu64 ",\"bytes_per_flow\":%.2f"
                ",\"flow_record_bytes_per_flow\":%.2f},",
                ri->tsc_hz, s->busy_cycles, cpp, cpp > 0 ? (double)ri->tsc_hz / cpp / 1e6 : 0,
                ri->flow_capacity, ri->flow_table_bytes,
                (double)ri->flow_table_bytes / (double)ri->flow_capacity,
                (double)ri->flow_record_bytes / (double)ri->flow_capacity);
    }
    fprintf(out, "\"capture\":{\"first_ts\":%.6f,\"last_ts\":%.6f},\"wall_seconds\":%.3f}\n",
            ri->first_ts, ri->last_ts, ri->wall_seconds);
    return ferror(out) ? -1 : 0;
}

static struct event_field *field(struct event_field *f, int *n, const char *name, int kind)
{
    struct event_field *x = &f[(*n)++];
    x->name = name;
    x->kind = kind;
    return x;
}

#define FNUM(name, fmt, ...)                                                                       \
    snprintf(field(f, &n, name, FIELD_NUM)->value, sizeof(f->value), fmt, __VA_ARGS__)
#define FSTR(name, str) snprintf(field(f, &n, name, FIELD_STR)->value, sizeof(f->value), "%s", str)

int report_event_fields(const struct rst_event *ev, struct event_field *f)
{
    char c[INET6_ADDRSTRLEN], sv[INET6_ADDRSTRLEN];
    int n = 0;

    report_addr(ev->client_ip, ev->family, c, sizeof(c));
    report_addr(ev->server_ip, ev->family, sv, sizeof(sv));
    FNUM("ts", "%" PRIu64 ".%06" PRIu64, ev->ts_us / 1000000, ev->ts_us % 1000000);
    FSTR("client_ip", c);
    FNUM("client_port", "%u", ev->client_port);
    FSTR("server_ip", sv);
    FNUM("server_port", "%u", ev->server_port);
    snprintf(field(f, &n, "direction_known", FIELD_BOOL)->value, sizeof(f->value), "%s",
             ev->direction_known ? "true" : "false");
    FSTR("sender", ev->sender ? "server" : "client");
    FSTR("origin", origin_name(ev->origin));
    FSTR("cause", cause_name(ev->cause));
    FSTR("state", conn_state_name(ev->state));
    FNUM("rst_count", "%u", ev->rst_count);
    FSTR("seq_check", seq_check_name(ev->check));
    FNUM("rst_seq", "%u", ev->seq);
    FNUM("rst_ack", "%u", ev->ack);
    FSTR("rst_flags", (ev->rst_flags & TCP_ACK) ? "RA" : "R");
    FNUM("ttl", "%u", ev->ttl);
    FNUM("ip_id", "%u", ev->ip_id);
    FNUM("idle_ms", "%u", ev->idle_ms);
    struct event_field *e = field(f, &n, "evidence", FIELD_LIST);
    size_t used = 0;
    e->value[0] = '\0';
    for (int b = 0; b < EV_MAX_BIT; b++)
        if (ev->evidence & (1u << b))
            used += (size_t)snprintf(e->value + used, sizeof(e->value) - used, "%s%s",
                                     used ? "," : "", evidence_name(b));
    snprintf(field(f, &n, "low_confidence", FIELD_BOOL)->value, sizeof(f->value), "%s",
             ev->low_confidence ? "true" : "false");
    FNUM("worker", "%u", ev->worker);
    FNUM("vlan", "%u", ev->vlan);
    return n;
}

void report_event_json(FILE *out, const struct rst_event *ev)
{
    struct event_field f[EVENT_FIELDS_MAX];
    int n = report_event_fields(ev, f);

    putc('{', out);
    for (int i = 0; i < n; i++) {
        fprintf(out, "%s\"%s\":", i ? "," : "", f[i].name);
        if (f[i].kind == FIELD_STR) {
            fprintf(out, "\"%s\"", f[i].value);
        } else if (f[i].kind == FIELD_LIST) {
            putc('[', out);
            for (const char *p = f[i].value; *p;) {
                size_t len = strcspn(p, ",");
                fprintf(out, "%s\"%.*s\"", p == f[i].value ? "" : ",", (int)len, p);
                p += len + (p[len] == ',');
            }
            putc(']', out);
        } else {
            fputs(f[i].value, out);
        }
    }
    fputs("}\n", out);
}

void report_flow_json(FILE *out, const struct flow_record *r)
{
    char o[INET6_ADDRSTRLEN], rs[INET6_ADDRSTRLEN];

    report_addr(r->orig_ip, r->family, o, sizeof(o));
    report_addr(r->resp_ip, r->family, rs, sizeof(rs));
    fprintf(out,
            "{\"ts_start\":%" PRIu64 ".%06" PRIu64 ",\"ts_end\":%" PRIu64 ".%06" PRIu64
            ",\"orig_h\":\"%s\",\"orig_p\":%u,\"resp_h\":\"%s\",\"resp_p\":%u,\"proto\":\"tcp\","
            "\"conn_state\":\"%s\",\"history\":\"%s\",\"orig_pkts\":%u,\"orig_bytes\":%" PRIu64
            ",\"resp_pkts\":%u,\"resp_bytes\":%" PRIu64 ",\"cause\":",
            r->ts_start / 1000000, r->ts_start % 1000000, r->ts_end / 1000000, r->ts_end % 1000000,
            o, r->orig_port, rs, r->resp_port, r->conn_state, r->history, r->orig_pkts,
            r->orig_bytes, r->resp_pkts, r->resp_bytes);
    if (r->cause)
        fprintf(out, "\"%s\"}\n", cause_name(r->cause - 1));
    else
        fputs("null}\n", out);
}
