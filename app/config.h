/*
 * --config FILE: an INI file (inih, Debian's libinih) whose keys are rstscope's long option
 * names, grouped in sections for the reader. The file becomes "--key=value" arguments placed
 * before the command line's, so the command line overrides the file (the last value of an
 * option wins). Each argument remembers its file and line, so a bad value is reported as
 * "FILE:LINE: ...".
 *
 * Slow path only (start-up).
 */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#define CONFIG_MAX_ARGS 256

struct config_args {
    int n;
    char *argv[CONFIG_MAX_ARGS]; /* "--key=value", malloc'ed */
    int line[CONFIG_MAX_ARGS];   /* where each came from */
};

/* Is name a long option, and does it take a value (1) or not (0)? -1: unknown. */
typedef int (*config_lookup_fn)(const char *name);

/* Read path into a. Returns 0, or -1 after printing "rstscope: PATH:LINE: why" (or why the
 * file cannot be read). */
int config_load(const char *path, config_lookup_fn lookup, struct config_args *a);
void config_free(struct config_args *a);

#endif
