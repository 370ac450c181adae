#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Sections are for the reader; only these exist, so a typo is an error, not silence. */
static const char *const sections[] = {"capture",   "analysis", "output",  "redis", "telemetry",
                                       "breakdown", "subnets",  "exclude", NULL};

struct load {
    FILE *f;
    int line; /* of the line inih is handling: counted by our reader */
    const char *path;
    config_lookup_fn lookup;
    struct config_args *a;
    char err[256]; /* the first error, printed with the line ini_parse returns */
    int err_line;
};

/* fgets with a line count: the handler runs right after its line was read. */
static char *reader(char *str, int num, void *stream)
{
    struct load *l = stream;
    char *s = fgets(str, num, l->f);
    if (s)
        l->line++;
    return s;
}

static int add(struct load *l, const char *opt, const char *value)
{
    struct config_args *a = l->a;
    if (a->n >= CONFIG_MAX_ARGS) {
        snprintf(l->err, sizeof(l->err), "more than %d settings", CONFIG_MAX_ARGS);
        return 0;
    }
    size_t len = strlen(opt) + strlen(value) + 4;
    char *s = malloc(len);
    if (!s) {
        snprintf(l->err, sizeof(l->err), "out of memory");
        return 0;
    }
    if (value[0] || l->lookup(opt) == 1)
        snprintf(s, len, "--%s=%s", opt, value);
    else
        snprintf(s, len, "--%s", opt);
    a->line[a->n] = l->line;
    a->argv[a->n++] = s;
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct load *l = user;
    int known = 0;

    if (l->err[0])
        return 0;
    l->err_line = l->line; /* kept only if err is set below */
    for (int i = 0; sections[i]; i++)
        known |= strcmp(section, sections[i]) == 0;
    if (!known) {
        snprintf(l->err, sizeof(l->err), "unknown section [%s]", section);
        return 0;
    }
    /* [subnets] name = CIDR and [exclude] name = CIDR: named lists, repeated keys allowed. */
    if (!strcmp(section, "subnets") || !strcmp(section, "exclude")) {
        char buf[200];
        snprintf(buf, sizeof(buf), "%s=%s", name, value);
        return add(l, !strcmp(section, "subnets") ? "subnet" : "exclude", buf);
    }
    int arg = l->lookup(name);
    if (arg < 0 || !strcmp(name, "config") || !strcmp(name, "help") || !strcmp(name, "version")) {
        snprintf(l->err, sizeof(l->err), "unknown key '%s' in [%s]", name, section);
        return 0;
    }
    if (arg == 0) { /* a switch: a boolean in the file */
        if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1"))
            return add(l, name, "");
        if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0"))
            return 1;
        snprintf(l->err, sizeof(l->err), "'%s' for %s: expected true or false", value, name);
        return 0;
    }
    if (!value[0]) {
        snprintf(l->err, sizeof(l->err), "%s has no value", name);
        return 0;
    }
    return add(l, name, value);
}

int config_load(const char *path, config_lookup_fn lookup, struct config_args *a)
{
    struct load l = {.path = path, .lookup = lookup, .a = a};

    memset(a, 0, sizeof(*a));
    l.f = fopen(path, "r");
    if (!l.f) {
        fprintf(stderr, "rstscope: cannot read --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(reader, &l, handler, &l);
    fclose(l.f);
    if (rc == 0)
        return 0;
    /* inih reports syntax errors (no '=', unterminated section, line too long) itself. */
    fprintf(stderr, "rstscope: %s:%d: %s\n", path, rc,
            l.err[0] && l.err_line == rc ? l.err
                                         : "syntax error (expected [section] or key = value)");
    config_free(a);
    return -1;
}

void config_free(struct config_args *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->argv[i]);
    a->n = 0;
}
