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
    "bit-identical, and if not, the first step where they part. Then every pair of\n"
    "format@kernel, their reference runs step by step (generate mode: each sequence\n"
    "up to and including its first step whose tokens differ; score mode: every step),\n"
    "with llama.cpp's --kl-divergence statistics against a base. Bundles must come\n"
    "from the same model, tokenizer, prompts and settings (e.g. other machines or\n"
    "thread counts). Writes report.json, report.md and report.html.\n"
    "\n"
    "definitions (a = the base side of a pair: the base, or the higher precision):\n"
    "  KLD           KL(P_a || P_b) = sum_v p_a(v) (lp_a(v) - lp_b(v)) in nats, per step,\n"
    "                on full vectors only; mean +- its standard error, and the\n"
    "                max/99.9/99/95/90%/median/10/5/1/0.1%/min of the per-step values\n"
    "                (linear interpolation between sorted values, as llama.cpp)\n"
    "  dp            p_b(t) - p_a(t), t the base's token at the step (generate: the\n"
    "                token a chose; score: the given token); its quantiles, RMS dp\n"
    "                = sqrt(mean dp^2)\n"
    "  same top p    share of steps whose most likely token is the same\n"
    "  bit-exact     share of steps whose step hashes (token + log-prob bits) agree\n"
    "  L2 mean       mean over steps of ||lp_a - lp_b||_2 over the vocabulary; the far\n"
    "                tail dominates it (max|diff|: the largest single difference)\n"
    "  PPL           score mode: exp(mean -lp(t)) over the compared steps, each side\n"
    "  Every mean pools all compared steps of all sequences (a longer sequence weighs\n"
    "  more). Rows over top-k entries only (no full vectors stored) get no KLD and\n"
    "  are ranked in their own table, never with full-vector rows.\n"
    "\n"
    "options:\n"
    "  --base F[@K]  the base of the quality statistics (default: the highest\n"
    "                precision present: f32, then f16, then bf16, else the first)\n"
    "  --json FILE   where to write report.json; '-': print it on stdout instead of\n"
    "                the tables (default: BUNDLE/report.json for one bundle,\n"
    "                ./report.json for several)\n"
    "  --md FILE     where to write report.md (same defaults)\n"
    "  --html FILE   where to write report.html (same defaults; self-contained, no script)\n"
    "  --no-write    write no file\n"
    "  --quiet       no progress on stderr\n"
    "\n"
    "exit: 0 every expectation held, 1 a determinism expectation failed, 2 bad input\n";

static void default_path(char *out, size_t n, const char *const *dirs, uint32_t nd, const char *name)
{
    snprintf(out, n, "%s/%s", nd == 1 ? dirs[0] : ".", name);
}

int ra_cmd_compare(int argc, char **argv)
{
    const char *json = NULL, *md = NULL, *html = NULL;
    ra_compare_opts o = {.progress = true};
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
        else if (!strcmp(a, "--quiet")) o.progress = false;
        else if (!strcmp(a, "--json") || !strcmp(a, "--md") || !strcmp(a, "--html") || !strcmp(a, "--base")) {
            const char *v = ra_cli_value(argc, argv, &i);
            if (!v) s = RA_ERR_USAGE;
            else if (a[2] == 'j') json = v;
            else if (a[2] == 'm') md = v;
            else if (a[2] == 'h') html = v;
            else o.base = v;
        } else if (!strncmp(a, "--", 2)) s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see compare --help)", a);
        else dirs[n++] = a;
    }
    if (s == RA_OK && n == 0) s = ra_fail(RA_ERR_USAGE, "compare needs at least one bundle (see compare --help)");
    bool json_stdout = json && !strcmp(json, "-");
    ra_comparison *c = NULL;
    if (s == RA_OK) s = ra_compare_bundles_opts(dirs, n, &o, &c);
    char paths[3][4096];
    default_path(paths[0], sizeof paths[0], dirs, n, "report.json");
    default_path(paths[1], sizeof paths[1], dirs, n, "report.md");
    default_path(paths[2], sizeof paths[2], dirs, n, "report.html");
    const char *jp = json_stdout ? NULL : json ? json : paths[0], *mp = md ? md : paths[1], *hp = html ? html : paths[2];
    if (s == RA_OK && json_stdout) {
        char *text = NULL;
        s = ra_report_json(c, &text);
        if (s == RA_OK) fputs(text, stdout);
        free(text);
    } else if (s == RA_OK) ra_report_print(c, stdout);
    if (s == RA_OK && write) {
        s = ra_report_write_all(c, jp, mp, hp);
        char e1[512], e2[512], e3[512];
        if (s == RA_OK)
            fprintf(json_stdout ? stderr : stdout, "report: %s%s%s, %s\n", jp ? ra_esc(e1, sizeof e1, jp) : "", jp ? ", " : "",
                    ra_esc(e2, sizeof e2, mp), ra_esc(e3, sizeof e3, hp));
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
