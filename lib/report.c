#include "report.h"

#include <arpa/inet.h>
#include <inttypes.h>

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
    fprintf(out, "  %-16s %10s %7s  %s\n", "cause", "events", "share", "meaning");
    for (int c = 0; c < CAUSE_MAX; c++)
        fprintf(out, "  %-16s %10" PRIu64 " %6.1f%%  %s\n", cause_name(c), s->causes[c],
                pct(s->causes[c], s->resets), cause_meaning(c));
    int any = 0;
    for (int r = 1; r < MAL_MAX; r++) {
        if (!s->malformed[r])
            continue;
        if (!any++)
            fprintf(out, "\n  malformed by reason\n");
        fprintf(out, "  %-24s %10" PRIu64 "\n", malformed_name(r), s->malformed[r]);
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
}

int report_summary_json(FILE *out, const struct engine_stats *s, const struct run_info *ri)
{
    fprintf(out, "{\"version\":\"%s\",\"mode\":\"%s\",\"workers\":%u,", RSTSCOPE_VERSION, ri->mode,
            ri->workers);
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
    fputs("},\"malformed\":{", out);
    for (int r = 1; r < MAL_MAX; r++)
        fprintf(out, "%s\"%s\":%" PRIu64, r > 1 ? "," : "", malformed_name(r), s->malformed[r]);
    fprintf(out,
            "},\"flows\":{\"created\":%" PRIu64 ",\"expired\":%" PRIu64 ",\"evicted\":%" PRIu64
            ",\"dropped\":%" PRIu64 ",\"active\":%" PRIu64 "},",
            s->flows_created, s->flows_expired, s->flows_evicted, s->flows_dropped,
            s->flows_active);
    fprintf(out,
            "\"input\":{\"rx_missed\":%" PRIu64 ",\"rx_nombuf\":%" PRIu64 ",\"rx_errors\":%" PRIu64
            ",\"ring_drops\":%" PRIu64 ",\"events_dropped\":%" PRIu64 ",\"events_written\":%" PRIu64
            "},",
            ri->rx_missed, ri->rx_nombuf, ri->rx_errors, ri->ring_drops, s->events_dropped,
            ri->events_written);
    fprintf(out, "\"capture\":{\"first_ts\":%.6f,\"last_ts\":%.6f},\"wall_seconds\":%.3f}\n",
            ri->first_ts, ri->last_ts, ri->wall_seconds);
    return ferror(out) ? -1 : 0;
}

void report_event_json(FILE *out, const struct rst_event *ev)
{
    char c[INET6_ADDRSTRLEN], sv[INET6_ADDRSTRLEN];

    report_addr(ev->client_ip, ev->family, c, sizeof(c));
    report_addr(ev->server_ip, ev->family, sv, sizeof(sv));
    fprintf(out,
            "{\"ts\":%" PRIu64 ".%06" PRIu64 ",\"client_ip\":\"%s\",\"client_port\":%u,"
            "\"server_ip\":\"%s\",\"server_port\":%u,\"direction_known\":%s,"
            "\"sender\":\"%s\",\"origin\":\"%s\",\"cause\":\"%s\",\"state\":\"%s\","
            "\"rst_count\":%u,\"seq_check\":\"%s\",\"rst_seq\":%u,\"rst_ack\":%u,"
            "\"rst_flags\":\"%s\",\"ttl\":%u,\"worker\":%u}\n",
            ev->ts_us / 1000000, ev->ts_us % 1000000, c, ev->client_port, sv, ev->server_port,
            ev->direction_known ? "true" : "false", ev->sender ? "server" : "client",
            origin_name(ev->origin), cause_name(ev->cause), conn_state_name(ev->state),
            ev->rst_count, seq_check_name(ev->check), ev->seq, ev->ack,
            (ev->rst_flags & TCP_ACK) ? "RA" : "R", ev->ttl, ev->worker);
}
