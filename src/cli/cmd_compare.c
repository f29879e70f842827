/* repro-audit compare and verify */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/bundle.h"
#include "ra/compare.h"
#include "ra/text.h"

static const char compare_usage[] =
    "usage: repro-audit compare [options] BUNDLE [BUNDLE ...]\n"
    "\n"
    "For each format@kernel: are all its runs (every repeat, in every bundle given)\n"
    "bit-identical, and if not, the first step where they part. Then, for every\n"
    "pair of format@kernel: L2, max |diff|, mean KL, top-1 agreement and the first\n"
    "divergent step, identical pairs first, the rest by distance. Bundles must come\n"
    "from the same model, tokenizer, prompts and settings (e.g. other machines or\n"
    "thread counts).\n"
    "\n"
    "options:\n"
    "  --json FILE   where to write report.json (default: BUNDLE/report.json for one\n"
    "                bundle, ./report.json for several)\n"
    "  --md FILE     where to write report.md (same defaults)\n"
    "  --no-write    print only\n"
    "\n"
    "exit: 0 every expectation held, 1 a determinism expectation failed, 2 bad input\n";

int ra_cmd_compare(int argc, char **argv)
{
    const char *json = NULL, *md = NULL;
    bool write = true;
    const char **dirs = calloc((size_t)argc, sizeof *dirs);
    uint32_t n = 0;
    ra_status s = dirs ? RA_OK : ra_fail(RA_ERR_NOMEM, "out of memory");
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i];
        if (ra_cli_is_help(a)) {
            fputs(compare_usage, stdout);
            free(dirs);
            return RA_EXIT_OK;
        } else if (!strcmp(a, "--no-write")) write = false;
        else if (!strcmp(a, "--json") || !strcmp(a, "--md")) {
            const char *v = ra_cli_value(argc, argv, &i);
            if (!v) s = RA_ERR_USAGE;
            else if (a[2] == 'j') json = v;
            else md = v;
        } else if (!strncmp(a, "--", 2)) s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see compare --help)", a);
        else dirs[n++] = a;
    }
    if (s == RA_OK && n == 0) s = ra_fail(RA_ERR_USAGE, "compare needs at least one bundle (see compare --help)");
    ra_comparison *c = NULL;
    if (s == RA_OK) s = ra_compare_bundles(dirs, n, &c);
    char json_default[4096], md_default[4096];
    snprintf(json_default, sizeof json_default, "%s/report.json", n == 1 ? dirs[0] : ".");
    snprintf(md_default, sizeof md_default, "%s/report.md", n == 1 ? dirs[0] : ".");
    if (s == RA_OK) {
        ra_report_print(c, stdout);
        if (write) {
            s = ra_report_write(c, json ? json : json_default, md ? md : md_default);
            if (s == RA_OK) printf("report: %s, %s\n", json ? json : json_default, md ? md : md_default);
        }
    }
    int rc = s != RA_OK ? ra_cli_report(s) : c->ok ? RA_EXIT_OK : RA_EXIT_FAIL;
    ra_comparison_free(c);
    free(dirs);
    return rc;
}

static const char verify_usage[] =
    "usage: repro-audit verify BUNDLE\n"
    "\n"
    "Re-hashes every trace file of a bundle and checks it against the manifest:\n"
    "file SHA-256, every step hash that has its full vector, every Merkle digest,\n"
    "format, kernel and repeat.\n"
    "\n"
    "exit: 0 all hold, 1 something does not match, 2 not a readable bundle\n";

int ra_cmd_verify(int argc, char **argv)
{
    if (argc == 2 && ra_cli_is_help(argv[1])) {
        fputs(verify_usage, stdout);
        return RA_EXIT_OK;
    }
    if (argc != 2 || !strncmp(argv[1], "--", 2)) {
        fputs(verify_usage, stderr);
        return RA_EXIT_USAGE;
    }
    ra_bundle *b;
    ra_status s = ra_bundle_open(argv[1], &b);
    if (s != RA_OK) return ra_cli_report(s);
    uint32_t bad = 0;
    s = ra_bundle_verify(b, stdout, &bad);
    uint32_t n = b->n_traces;
    ra_bundle_close(b);
    if (s != RA_OK) return ra_cli_report(s);
    char dir[512];
    ra_esc(dir, sizeof dir, argv[1]);
    if (bad) {
        printf("verify %s: %u problem%s in %u traces\n", dir, bad, bad == 1 ? "" : "s", n);
        return RA_EXIT_FAIL;
    }
    printf("verify %s: %u traces, every hash and digest matches the manifest\n", dir, n);
    return RA_EXIT_OK;
}
