/* Helpers shared by the command implementations. */
#ifndef RA_CLI_UTIL_H
#define RA_CLI_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "ra/status.h"

/* Exit codes: 0 ok, 1 an expectation failed, 2 bad input or usage. */
enum { RA_EXIT_OK = 0, RA_EXIT_FAIL = 1, RA_EXIT_USAGE = 2 };

/* Prints "repro-audit: <message>" for s and returns the exit code for it. */
int ra_cli_report(ra_status s);
/* Parses an unsigned integer option value in [lo, hi]. */
ra_status ra_cli_u32(const char *opt, const char *val, uint32_t lo, uint32_t hi, uint32_t *out);
/* For "--opt VALUE": returns the value and advances *i, or NULL with an error recorded. */
const char *ra_cli_value(int argc, char **argv, int *i);
bool ra_cli_is_help(const char *arg);
/* Parses `CMD [--format F] A B` (export-hf, quantize to GGUF): *help set on
 * --help/-h (print the usage then); else up to two positionals in pos, their
 * count in *npos (the caller says what it needs). */
ra_status ra_cli_format_and_two(int argc, char **argv, const char *cmd, const char **format, const char *pos[2],
                                int *npos, bool *help);
/* Progress lines (with \r) go to stderr only when it is a terminal. */
bool ra_cli_progress(void);

#endif
