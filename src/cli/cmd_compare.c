/* repro-audit compare and verify */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/bundle.h"
#include "ra/compare.h"
#include "ra/text.h"
#include "ra/util.h"

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
    "  --quiet       no progress on stderr (shown when stderr is a terminal)\n"
    "\n"
    "exit: 0 every expectation held, 1 a determinism expectation failed, 2 bad input\n";

static void default_path(char *out, size_t n, const char *const *dirs, uint32_t nd, const char *name)
{
    snprintf(out, n, "%s/%s", nd == 1 ? dirs[0] : ".", name);
}

int ra_cmd_compare(int argc, char **argv)
{
    const char *json = NULL, *md = NULL, *html = NULL;
    ra_compare_opts o = {.progress = ra_cli_progress()};
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
    "Re-hashes every trace file of a bundle and checks it against the manifest, and\n"
    "says what it checked, for someone who did not make the bundle:\n"
    "  per trace: the file's SHA-256; every step hash recomputed where the trace\n"
    "  stores the full log-prob vector (SHA-256 of the int32 token and the float32\n"
    "  log-softmax vector, little-endian); every sequence's and the trace's Merkle\n"
    "  root (RFC 6962) recomputed from the step hashes and held to the manifest's\n"
    "  digest; format, kernel, repeat and mode against the manifest.\n"
    "It does not re-run the model: that these are the numbers the model gives is\n"
    "shown by a new `run` with the same inputs whose digests agree (compare both).\n"
    "\n"
    "exit: 0 all hold, 1 something does not match, 2 not a readable bundle\n";

/* What the bundle claims to be, before what was checked. */
static void verify_header(const ra_bundle *b, const char *dir)
{
    char e1[512], e2[300], path[4200], hex[65] = "unreadable";
    uint8_t sha[32];
    snprintf(path, sizeof path, "%s/manifest.json", b->dir);
    if (ra_sha256_file(path, sha) == RA_OK) ra_hex(sha, 32, hex);
    printf("verify %s\n  manifest.json sha256 %s\n  model %s, sha256 %s\n  tokenizer sha256 %s\n  prompts sha256 %s (%u prompts), mode %s\n",
           ra_esc(e1, sizeof e1, dir), hex, ra_esc(e2, sizeof e2, b->model_name), b->model_sha256, b->tokenizer_sha256,
           b->prompts_sha256, b->n_prompts, b->mode);
    /* the scopes the traces claim, each once */
    for (uint32_t i = 0; i < b->n_traces; i++) {
        uint32_t j = 0, n = 0;
        while (j < i && strcmp(b->traces[j].scope, b->traces[i].scope)) j++;
        if (j < i) continue;
        for (uint32_t k = i; k < b->n_traces; k++) n += !strcmp(b->traces[k].scope, b->traces[i].scope);
        printf("  scope (what the traces' numbers are scoped to, as recorded): %s (%u trace%s)\n", ra_esc(e1, sizeof e1, b->traces[i].scope), n,
               n == 1 ? "" : "s");
    }
    printf("\n");
}

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
    verify_header(b, argv[1]);
    uint32_t bad = 0;
    s = ra_bundle_verify(b, stdout, &bad);
    uint32_t n = b->n_traces;
    ra_bundle_close(b);
    if (s != RA_OK) return ra_cli_report(s);
    char dir[512];
    ra_esc(dir, sizeof dir, argv[1]);
    if (bad) {
        printf("\nverify %s: %u problem%s in %u traces\n", dir, bad, bad == 1 ? "" : "s", n);
        return RA_EXIT_FAIL;
    }
    printf("\nverify %s: %u traces, every hash and digest matches the manifest\n"
           "not checked: that the model gives these numbers (re-run with the same inputs and compare digests)\n",
           dir, n);
    return RA_EXIT_OK;
}
