#include "cli_util.h"
#include "ra/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ra_cli_report(ra_status s)
{
    if (s == RA_OK) return RA_EXIT_OK;
    char esc[2048]; /* messages quote names from the files we read */
    fprintf(stderr, "repro-audit: %s\n", *ra_errmsg() ? ra_esc(esc, sizeof esc, ra_errmsg()) : ra_status_name(s));
    return RA_EXIT_USAGE;
}

ra_status ra_cli_u32(const char *opt, const char *val, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || end == val || *end || val[0] == '-' || v < lo || v > hi)
        return ra_fail(RA_ERR_USAGE, "%s expects an integer in %u..%u, got '%s'", opt, lo, hi, val);
    *out = (uint32_t)v;
    return RA_OK;
}

const char *ra_cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        ra_fail(RA_ERR_USAGE, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool ra_cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

bool ra_cli_progress(void) { return isatty(STDERR_FILENO); }

ra_status ra_cli_format_and_two(int argc, char **argv, const char *cmd, const char **format, const char *pos[2],
                                int *npos, bool *help)
{
    *npos = 0;
    *help = false;
    for (int i = 1; i < argc; i++) {
        if (ra_cli_is_help(argv[i])) {
            *help = true;
            return RA_OK;
        }
        if (!strcmp(argv[i], "--format")) {
            if (!(*format = ra_cli_value(argc, argv, &i))) return RA_ERR_USAGE;
        } else if (argv[i][0] == '-') {
            return ra_fail(RA_ERR_USAGE, "unknown option '%s' (see %s --help)", argv[i], cmd);
        } else if (*npos < 2) {
            pos[(*npos)++] = argv[i];
        } else {
            return ra_fail(RA_ERR_USAGE, "too many arguments (see %s --help)", cmd);
        }
    }
    return RA_OK;
}
