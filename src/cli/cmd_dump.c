/* repro-audit dump: a trace (or every trace of a bundle) as JSON lines or
 * CSV, one record per step, for jq, pandas or a script that checks our
 * numbers. Strings from the files are escaped for their format; floats are
 * printed with 9 significant digits, which give the float32 back exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/bundle.h"
#include "ra/text.h"
#include "ra/trace.h"
#include "ra/util.h"

static const char dump_usage[] =
    "usage: repro-audit dump TRACE|BUNDLE [--format jsonl|csv] [--full]\n"
    "\n"
    "Prints every step of a trace file, or of every trace of a bundle (each read\n"
    "and held to its manifest entry first, as verify does), one record per step:\n"
    "  file, format, kernel, repeat, scenario (bundles), seq (0-based), prompt_index,\n"
    "  step (0-based), token, logprob (of the token), topk_ids, topk_logprobs,\n"
    "  step_hash, seq_digest, trace_digest (hex SHA-256 / Merkle roots)\n"
    "jsonl: one JSON object a line; a log-prob that is not finite is null.\n"
    "csv: a header line, then one row a step; the top-k lists are space-separated.\n"
    "\n"
    "options:\n"
    "  --format F   jsonl (default) or csv\n"
    "  --full       jsonl only: also \"logprobs\", the full vector where the trace\n"
    "               stored it (n_vocab numbers a step)\n"
    "\n"
    "exit: 0 ok, 2 bad input (unreadable or tampered file, bad option)\n";

typedef struct {
    FILE *out;
    bool csv, full;
    const char *file, *scenario;
} dump_ctx;

/* A JSON string (quoted) or a CSV field (quoted, quotes doubled), escaped. */
static ra_status put_str(const dump_ctx *d, ra_buf *b, const char *s)
{
    if (!d->csv) {
        RA_TRY(ra_buf_append(b, "\"", 1));
        RA_TRY(ra_escape(b, s, strlen(s), RA_ESC_JSON));
        return ra_buf_append(b, "\"", 1);
    }
    ra_buf e = {0};
    ra_status st = ra_escape(&e, s, strlen(s), 0);
    RA_TRY(ra_buf_append(b, "\"", 1));
    for (size_t i = 0; st == RA_OK && i < e.len; i++) st = ra_buf_append(b, e.data[i] == '"' ? "\"\"" : (char *)&e.data[i], e.data[i] == '"' ? 2 : 1);
    ra_buf_free(&e);
    RA_TRY(st);
    return ra_buf_append(b, "\"", 1);
}

static ra_status put_float(const dump_ctx *d, ra_buf *b, float v)
{
    if (isfinite(v)) return ra_buf_printf(b, "%.9g", (double)v);
    if (!d->csv) return ra_buf_printf(b, "null");
    return ra_buf_printf(b, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
}

static ra_status put_hex(ra_buf *b, const uint8_t h[32], bool quote)
{
    char hex[65];
    ra_hex(h, 32, hex);
    return ra_buf_printf(b, quote ? "\"%s\"" : "%s", hex);
}

static ra_status step_record(const dump_ctx *d, const ra_trace *t, uint32_t i, uint32_t k, ra_buf *b)
{
    const ra_trace_seq *q = &t->seqs[i];
    const ra_trace_step *st = &q->steps[k];
    const char *sep = d->csv ? "," : ", ";
    if (!d->csv) RA_TRY(ra_buf_printf(b, "{\"file\": "));
    RA_TRY(put_str(d, b, d->file));
    RA_TRY(ra_buf_printf(b, d->csv ? "," : ", \"format\": "));
    RA_TRY(put_str(d, b, t->meta.format));
    RA_TRY(ra_buf_printf(b, d->csv ? "," : ", \"kernel\": "));
    RA_TRY(put_str(d, b, t->meta.kernel));
    RA_TRY(ra_buf_printf(b, d->csv ? ",%u," : ", \"repeat\": %u, \"scenario\": ", t->meta.repeat));
    if (d->scenario) RA_TRY(put_str(d, b, d->scenario));
    else if (!d->csv) RA_TRY(ra_buf_printf(b, "null"));
    RA_TRY(ra_buf_printf(b, d->csv ? ",%u,%u,%u,%d," : ", \"seq\": %u, \"prompt_index\": %u, \"step\": %u, \"token\": %d, \"logprob\": ", i,
                         q->prompt_index, k, st->token));
    RA_TRY(put_float(d, b, st->logprob));
    RA_TRY(ra_buf_printf(b, d->csv ? ",\"" : ", \"topk_ids\": ["));
    for (uint32_t j = 0; j < t->meta.top_k; j++) RA_TRY(ra_buf_printf(b, "%s%d", j ? (d->csv ? " " : ", ") : "", st->topk_id[j]));
    RA_TRY(ra_buf_printf(b, d->csv ? "\",\"" : "], \"topk_logprobs\": ["));
    for (uint32_t j = 0; j < t->meta.top_k; j++) {
        if (j) RA_TRY(ra_buf_printf(b, "%s", d->csv ? " " : ", "));
        RA_TRY(put_float(d, b, st->topk_lp[j]));
    }
    RA_TRY(ra_buf_printf(b, d->csv ? "\"," : "], \"step_hash\": "));
    RA_TRY(put_hex(b, st->hash, !d->csv));
    RA_TRY(ra_buf_printf(b, "%s%s", sep, d->csv ? "" : "\"seq_digest\": "));
    RA_TRY(put_hex(b, q->digest, !d->csv));
    RA_TRY(ra_buf_printf(b, "%s%s", sep, d->csv ? "" : "\"trace_digest\": "));
    RA_TRY(put_hex(b, t->digest, !d->csv));
    if (d->full && st->full) {
        RA_TRY(ra_buf_printf(b, ", \"logprobs\": ["));
        for (uint32_t v = 0; v < t->meta.n_vocab; v++) {
            if (v) RA_TRY(ra_buf_append(b, ",", 1));
            RA_TRY(put_float(d, b, st->full[v]));
        }
        RA_TRY(ra_buf_append(b, "]", 1));
    }
    return ra_buf_printf(b, d->csv ? "\n" : "}\n");
}

static ra_status dump_trace(const dump_ctx *d, const ra_trace *t)
{
    ra_buf b = {0};
    ra_status s = RA_OK;
    for (uint32_t i = 0; s == RA_OK && i < t->n_seqs; i++)
        for (uint32_t k = 0; s == RA_OK && k < t->seqs[i].n_steps; k++) {
            b.len = 0;
            s = step_record(d, t, i, k, &b);
            if (s == RA_OK && fwrite(b.data, 1, b.len, d->out) != b.len) s = ra_fail(RA_ERR_IO, "dump: cannot write the output");
        }
    ra_buf_free(&b);
    return s;
}

int ra_cmd_dump(int argc, char **argv)
{
    const char *path = NULL, *format = "jsonl";
    dump_ctx d = {.out = stdout};
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i];
        if (ra_cli_is_help(a)) {
            fputs(dump_usage, stdout);
            return RA_EXIT_OK;
        } else if (!strcmp(a, "--full")) d.full = true;
        else if (!strcmp(a, "--format")) {
            if (!(format = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        } else if (!strncmp(a, "--", 2) || path) s = ra_fail(RA_ERR_USAGE, "unexpected argument '%s' (see dump --help)", a);
        else path = a;
    }
    char e[128];
    if (s == RA_OK && !path) s = ra_fail(RA_ERR_USAGE, "dump needs a trace file or a bundle (see dump --help)");
    if (s == RA_OK && strcmp(format, "jsonl") && strcmp(format, "csv"))
        s = ra_fail(RA_ERR_USAGE, "unknown dump format '%s': jsonl or csv", ra_esc(e, sizeof e, format));
    d.csv = s == RA_OK && !strcmp(format, "csv");
    if (s == RA_OK && d.csv && d.full) s = ra_fail(RA_ERR_USAGE, "--full needs --format jsonl");
    if (s != RA_OK) return ra_cli_report(s);
    if (d.csv)
        fputs("file,format,kernel,repeat,scenario,seq,prompt_index,step,token,logprob,topk_ids,topk_logprobs,step_hash,seq_digest,"
              "trace_digest\n",
              stdout);
    if (!ra_is_dir(path)) {
        ra_trace *t;
        s = ra_trace_read(path, &t);
        if (s != RA_OK) return ra_cli_report(s);
        d.file = path;
        s = dump_trace(&d, t);
        ra_trace_free(t);
        return ra_cli_report(s);
    }
    ra_bundle *b;
    bool progress = ra_cli_progress();
    if ((s = ra_bundle_open(path, &b)) != RA_OK) return ra_cli_report(s);
    for (uint32_t i = 0; s == RA_OK && i < b->n_traces; i++) {
        ra_trace *t;
        s = ra_bundle_read_trace(b, i, &t);
        if (s != RA_OK) break;
        d.file = b->traces[i].rel;
        d.scenario = b->traces[i].scenario;
        s = dump_trace(&d, t);
        ra_trace_free(t);
        if (progress) fprintf(stderr, "\rdump: %u/%u traces%s", i + 1, b->n_traces, i + 1 == b->n_traces ? "\n" : "");
    }
    ra_bundle_close(b);
    if (s == RA_OK && fflush(stdout) != 0) s = ra_fail(RA_ERR_IO, "dump: cannot write the output");
    return ra_cli_report(s);
}
