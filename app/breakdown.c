#include "breakdown.h"

#include <inttypes.h>
#include <string.h>

/* Only the owning worker writes: a relaxed store lets the main thread read while it runs. */
#define BD_INC(x) __atomic_store_n(&(x), (x) + 1, __ATOMIC_RELAXED)

int breakdown_excluded(const struct options *o, const struct rst_event *ev)
{
    for (int i = 0; i < o->n_excludes; i++)
        if (opt_net_match(&o->excludes[i], ev->client_ip) ||
            opt_net_match(&o->excludes[i], ev->server_ip))
            return i + 1;
    return 0;
}

int breakdown_event(struct breakdown *b, const struct rst_event *ev)
{
    const struct options *o = b->o;

    if (ev->cause >= CAUSE_MAX)
        return 0;
    int x = breakdown_excluded(o, ev);
    if (x) {
        BD_INC(b->excluded[x - 1][ev->cause]);
        BD_INC(b->excluded_causes[ev->cause]);
        return 1;
    }
    if (ev->origin < ORIGIN_MAX)
        BD_INC(b->origin.n[ev->origin][ev->cause]);
    for (int i = 0; i < o->n_subnets; i++)
        if (opt_net_match(&o->subnets[i], ev->client_ip) ||
            opt_net_match(&o->subnets[i], ev->server_ip))
            BD_INC(b->subnet[i][ev->cause]); /* once per subnet, even when both ends are in it */
    if (o->by_vlan) {
        unsigned v = ev->vlan & (BREAKDOWN_VLANS - 1); /* the parser keeps 12 bits already */
        BD_INC(b->vlan[v][ev->cause]);
        __atomic_store_n(&b->vlan_seen[v], 1, __ATOMIC_RELAXED);
    }
    return 0;
}

static void add_causes(uint64_t *acc, const uint64_t *v)
{
    for (int c = 0; c < CAUSE_MAX; c++)
        acc[c] += __atomic_load_n(&v[c], __ATOMIC_RELAXED);
}

void breakdown_excluded_causes(const struct breakdown *b, uint64_t acc[CAUSE_MAX])
{
    if (b)
        add_causes(acc, b->excluded_causes);
}

void breakdown_add(struct breakdown *acc, const struct breakdown *b)
{
    const struct options *o = acc->o;
    for (int i = 0; i < o->n_subnets; i++)
        add_causes(acc->subnet[i], b->subnet[i]);
    for (int i = 0; i < o->n_excludes; i++)
        add_causes(acc->excluded[i], b->excluded[i]);
    add_causes(acc->excluded_causes, b->excluded_causes);
    for (int r = 0; r < ORIGIN_MAX; r++)
        add_causes(acc->origin.n[r], b->origin.n[r]);
    if (!o->by_vlan)
        return;
    for (unsigned v = 0; v < BREAKDOWN_VLANS; v++)
        if (__atomic_load_n(&b->vlan_seen[v], __ATOMIC_RELAXED)) {
            acc->vlan_seen[v] = 1;
            add_causes(acc->vlan[v], b->vlan[v]);
        }
}

void breakdown_subtract(const uint64_t excluded_causes[CAUSE_MAX], struct engine_stats *total)
{
    for (int c = 0; c < CAUSE_MAX; c++) {
        /* Snapshots of running workers are not taken at one instant: never underflow. */
        uint64_t x = excluded_causes[c] < total->causes[c] ? excluded_causes[c] : total->causes[c];
        total->causes[c] -= x;
        total->resets -= x < total->resets ? x : total->resets;
    }
}

static void causes_json(FILE *out, const uint64_t *n)
{
    fputc('{', out);
    for (int c = 0; c < CAUSE_MAX; c++)
        fprintf(out, "%s\"%s\":%" PRIu64, c ? "," : "", cause_name(c), n[c]);
    fputc('}', out);
}

int breakdown_summary(FILE *out, const char *json, size_t len, const struct breakdown *b)
{
    const struct options *o = b->o;

    while (len && (json[len - 1] == '\n' || json[len - 1] == '}'))
        if (json[--len] == '}')
            break;
    fwrite(json, 1, len, out);
    fputs(",\"breakdown\":{\"subnets\":{", out);
    for (int i = 0; i < o->n_subnets; i++) {
        fprintf(out, "%s\"%s\":", i ? "," : "", o->subnets[i].name);
        causes_json(out, b->subnet[i]);
    }
    fputs("},\"excluded\":{", out);
    for (int i = 0; i < o->n_excludes; i++) {
        fprintf(out, "%s\"%s\":", i ? "," : "", o->excludes[i].name);
        causes_json(out, b->excluded[i]);
    }
    fputc('}', out);
    if (o->by_vlan) {
        int first = 1;
        fputs(",\"vlans\":{", out);
        for (unsigned v = 0; v < BREAKDOWN_VLANS; v++) {
            if (!b->vlan_seen[v])
                continue;
            fprintf(out, "%s\"%u\":", first ? "" : ",", v);
            causes_json(out, b->vlan[v]);
            first = 0;
        }
        fputc('}', out);
    }
    fputs("}}\n", out);
    return ferror(out) ? -1 : 0;
}

void breakdown_text(FILE *out, const struct breakdown *b)
{
    const struct options *o = b->o;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? o->n_excludes : o->n_subnets;
        if (n)
            fprintf(out, "\n  %s\n", pass ? "excluded (not in the counts above)" : "by subnet");
        for (int i = 0; i < n; i++) {
            const struct opt_net *net = pass ? &o->excludes[i] : &o->subnets[i];
            const uint64_t *v = pass ? b->excluded[i] : b->subnet[i];
            uint64_t sum = 0;
            for (int c = 0; c < CAUSE_MAX; c++)
                sum += v[c];
            fprintf(out, "  %-16s %10" PRIu64, net->name, sum);
            for (int c = 0; c < CAUSE_MAX; c++)
                if (v[c])
                    fprintf(out, "  %s %" PRIu64, cause_name(c), v[c]);
            fputc('\n', out);
        }
    }
    if (!o->by_vlan)
        return;
    fprintf(out, "\n  by vlan (of the decisive RST; 0 = untagged)\n");
    for (unsigned v = 0; v < BREAKDOWN_VLANS; v++) {
        if (!b->vlan_seen[v])
            continue;
        uint64_t sum = 0;
        for (int c = 0; c < CAUSE_MAX; c++)
            sum += b->vlan[v][c];
        fprintf(out, "  vlan %-11u %10" PRIu64, v, sum);
        for (int c = 0; c < CAUSE_MAX; c++)
            if (b->vlan[v][c])
                fprintf(out, "  %s %" PRIu64, cause_name(c), b->vlan[v][c]);
        fputc('\n', out);
    }
}

/* A label value in Prometheus' text format: backslash, quote and newline escaped. */
static void prom_label(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', out);
        if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

void breakdown_prom(FILE *out, const struct breakdown *b)
{
    const struct options *o = b->o;
    if (o->n_subnets) {
        fputs("# HELP rstscope_subnet_resets_total reset events with client or server in the "
              "named subnet, by cause\n# TYPE rstscope_subnet_resets_total counter\n",
              out);
        for (int i = 0; i < o->n_subnets; i++)
            for (int c = 0; c < CAUSE_MAX; c++) {
                fputs("rstscope_subnet_resets_total{subnet=\"", out);
                prom_label(out, o->subnets[i].name);
                fprintf(out, "\",cause=\"%s\"} %" PRIu64 "\n", cause_name(c), b->subnet[i][c]);
            }
    }
    if (o->by_vlan) {
        /* Only VLANs that had events: 4096 x causes series would swamp the scrape. A series
         * appears with its first event and stays (counters never go back). */
        fputs("# HELP rstscope_vlan_resets_total reset events by VLAN id of the decisive RST "
              "(0 = untagged) and cause\n# TYPE rstscope_vlan_resets_total counter\n",
              out);
        for (unsigned v = 0; v < BREAKDOWN_VLANS; v++)
            if (b->vlan_seen[v])
                for (int c = 0; c < CAUSE_MAX; c++)
                    fprintf(out,
                            "rstscope_vlan_resets_total{vlan=\"%u\",cause=\"%s\"} %" PRIu64 "\n", v,
                            cause_name(c), b->vlan[v][c]);
    }
}
