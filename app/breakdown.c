#include "breakdown.h"

#include <inttypes.h>
#include <string.h>

int breakdown_event(struct breakdown *b, const struct rst_event *ev)
{
    const struct options *o = b->o;

    if (ev->cause >= CAUSE_MAX)
        return 0;
    for (int i = 0; i < o->n_excludes; i++) {
        if (opt_net_match(&o->excludes[i], ev->client_ip) ||
            opt_net_match(&o->excludes[i], ev->server_ip)) {
            b->excluded[i][ev->cause]++;
            b->excluded_causes[ev->cause]++;
            return 1;
        }
    }
    for (int i = 0; i < o->n_subnets; i++)
        if (opt_net_match(&o->subnets[i], ev->client_ip) ||
            opt_net_match(&o->subnets[i], ev->server_ip))
            b->subnet[i][ev->cause]++; /* once per subnet, even when both ends are in it */
    return 0;
}

void breakdown_subtract(const struct breakdown *b, struct engine_stats *total)
{
    for (int c = 0; c < CAUSE_MAX; c++) {
        /* Live, an event can be lost on a full ring after being counted: never underflow. */
        uint64_t x =
            b->excluded_causes[c] < total->causes[c] ? b->excluded_causes[c] : total->causes[c];
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
    fputs("}}}\n", out);
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
}
