/* repro-audit ppl: perplexity per format over the evaluation text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/ppl.h"
#include "ra/textset.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit ppl --model MODEL [options]\n"
    "\n"
    "Perplexity of the model in each format over the evaluation half of a text\n"
    "(the calibration half is what gptq-cal and act-order formats calibrate on):\n"
    "CHUNKS consecutive chunks of CTX tokens, each scored from its start. Prints a\n"
    "table; --json and --md write it (docs/report-schema.md defines it). Every\n"
    "row carries the SHA-256 of the log-probs it scored, so two runs of a format\n"
    "are bit-identical when those agree.\n"
    "\n"
    "options:\n"
    "  --model MODEL       a GGUF file or an HF checkpoint directory\n"
    "  --formats A,B,...   formats (default bf16); checkpoint formats of an unquantized\n"
    "                      model are derived and cached as `run` does\n"
    "  --text FILE         the text (default " RA_DEFAULT_TEXT ", `make text`)\n"
    "  --chunks N          chunks scored (default 8)\n"
    "  --ctx L             tokens per chunk (default 256)\n"
    "  --threads N         CPU threads (default: all); results do not depend on it\n"
    "  --cache-dir DIR     derived checkpoints' cache (see run --help)\n"
    "  --no-cache          derive into a temporary directory\n"
    "  --calib FILE        calibration text for derived formats (default: the text)\n"
    "  --json FILE         write the result as JSON\n"
    "  --md FILE           write the result as a Markdown table\n"
    "  --quiet             no progress on stderr\n";

static ra_status write_out(const ra_ppl_result *r, const char *path, ra_status (*fmt)(const ra_ppl_result *, char **))
{
    if (!path) return RA_OK;
    char *text;
    RA_TRY(fmt(r, &text));
    ra_status s = ra_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}

int ra_cmd_ppl(int argc, char **argv)
{
    ra_ppl_opts o = {.chunks = 8, .ctx = 256, .derive = {.progress = isatty(2)}};
    const char *formats = "bf16", *json = NULL, *md = NULL;
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i], *v = NULL;
        if (ra_cli_is_help(a)) { fputs(usage, stdout); return RA_EXIT_OK; }
        else if (!strcmp(a, "--quiet")) o.derive.progress = false;
        else if (!strcmp(a, "--no-cache")) o.derive.no_cache = true;
        else if (strncmp(a, "--", 2) != 0) s = ra_fail(RA_ERR_USAGE, "unexpected argument '%s' (see ppl --help)", a);
        else if (!(v = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        else if (!strcmp(a, "--model")) o.model_path = v;
        else if (!strcmp(a, "--formats")) formats = v;
        else if (!strcmp(a, "--text")) o.text_path = v;
        else if (!strcmp(a, "--calib")) o.derive.calib_path = v;
        else if (!strcmp(a, "--cache-dir")) o.derive.cache_dir = v;
        else if (!strcmp(a, "--json")) json = v;
        else if (!strcmp(a, "--md")) md = v;
        else if (!strcmp(a, "--chunks")) s = ra_cli_u32(a, v, 1, 100000, &o.chunks);
        else if (!strcmp(a, "--ctx")) s = ra_cli_u32(a, v, 2, 1 << 16, &o.ctx);
        else if (!strcmp(a, "--threads")) s = ra_cli_u32(a, v, 1, 256, &o.threads);
        else s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see ppl --help)", a);
    }
    if (s == RA_OK && !o.model_path) s = ra_fail(RA_ERR_USAGE, "ppl needs --model (see ppl --help)");
    if (s == RA_OK && !o.derive.calib_path) o.derive.calib_path = o.text_path;
    char *list = NULL;
    const char *names[64];
    if (s == RA_OK) s = ra_strdup(&list, formats);
    for (char *tok = s == RA_OK ? strtok(list, ",") : NULL; tok && s == RA_OK; tok = strtok(NULL, ",")) {
        if (o.n_formats == 64) s = ra_fail(RA_ERR_USAGE, "too many formats");
        else names[o.n_formats++] = tok;
    }
    o.formats = names;
    ra_ppl_result r = {0};
    if (s == RA_OK) s = ra_ppl_run(&o, &r);
    if (s == RA_OK) {
        printf("perplexity over %u chunks x %u tokens of %s (evaluation half, sha256 %.12s)\n", r.chunks, r.ctx, r.text_path,
               r.text_sha256);
        printf("  %-16s %8s %10s %11s  %s\n", "format@kernel", "tokens", "NLL", "perplexity", "log-probs sha256");
        for (size_t i = 0; i < r.n; i++)
            printf("  %-16s %8llu %10.5f %11.4f  %.16s\n", r.rows[i].label, (unsigned long long)r.rows[i].tokens,
                   r.rows[i].nll, r.rows[i].ppl, r.rows[i].nll_sha256);
    }
    if (s == RA_OK) s = write_out(&r, json, ra_ppl_json);
    if (s == RA_OK) s = write_out(&r, md, ra_ppl_markdown);
    ra_ppl_result_free(&r);
    free(list);
    return ra_cli_report(s);
}
