/* Reports of a comparison: terminal text, report.json (docs/report-schema.md)
 * and report.md. All three say the same things in the same order. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ra/compare.h"
#include "ra/json.h"
#include "ra/text.h"
#include "ra/util.h"
#include "ra/version.h"


#define REPORT_SCHEMA_VERSION 1

static void step_text(ra_step_ref r, char *out, size_t n)
{
    if (r.seq < 0) snprintf(out, n, "-");
    else snprintf(out, n, "seq %lld step %lld", (long long)r.seq, (long long)r.step);
}

static void verdict_text(const ra_group_verdict *v, char *out, size_t n)
{
    char where[64];
    step_text(v->divergence, where, sizeof where);
    if (v->identical) snprintf(out, n, "bit-identical");
    else snprintf(out, n, "DIFFERENT: %s parts from %s at %s (%u of %u runs differ)", v->first_differing_run, v->ref_run,
                  where, v->n_differing, v->n_runs);
}

/* What a verdict covers: the runs' scenarios and where they ran; never more. */
static void scope_text(const ra_group_verdict *v, char *out, size_t n)
{
    if (v->n_scopes <= 1)
        snprintf(out, n, "%u run%s, %u scenario%s, on %s", v->n_runs, v->n_runs == 1 ? "" : "s", v->n_scenarios,
                 v->n_scenarios == 1 ? "" : "s", v->scope);
    else
        snprintf(out, n, "%u runs, %u scenario%s, on %u%s machines or builds (reference: %s)", v->n_runs, v->n_scenarios,
                 v->n_scenarios == 1 ? "" : "s", v->n_scopes, v->n_scopes >= 16 ? " or more" : "", v->scope);
}

static const char *expectation_text(const ra_group_verdict *v)
{
    if (!v->deterministic) return "none (kernel not deterministic)";
    return v->pass ? "identical: ok" : "identical: FAILED";
}

static void kl_text(double kl, char *out, size_t n)
{
    if (isnan(kl)) snprintf(out, n, "n/a");
    else snprintf(out, n, "%.3e", kl);
}

/* Every string from a bundle goes through ra_esc before it reaches the terminal. */
void ra_report_print(const ra_comparison *c, FILE *f)
{
    char e1[256], e2[256];
    fprintf(f, "repro-audit compare:");
    for (uint32_t i = 0; i < c->n_bundles; i++) fprintf(f, " %s", ra_esc(e1, sizeof e1, c->bundle_dirs[i]));
    fprintf(f, "\n  model %s (sha256 %.12s), %u prompts, mode %s\n\n", ra_esc(e1, sizeof e1, c->model_name), c->model_sha256,
            c->n_prompts, c->mode);

    fprintf(f, "Repeat verdicts (each run of a format@kernel against its reference run)\n");
    fprintf(f, "  %-14s %4s  %-8s %-18s %s\n", "format@kernel", "runs", "ref", "expectation", "verdict");
    for (uint32_t g = 0; g < c->n_groups; g++) {
        const ra_group_verdict *v = &c->groups[g];
        char verdict[256], dig[65];
        verdict_text(v, verdict, sizeof verdict);
        ra_hex(v->digest, 32, dig);
        fprintf(f, "  %-14s %4u  %-8s %-18s %s", ra_esc(e1, sizeof e1, v->label), v->n_runs, v->ref_run, expectation_text(v),
                verdict);
        if (v->identical) fprintf(f, "  digest %.16s", dig);
        fputc('\n', f);
    }
    fprintf(f, "\nScope (a verdict holds for these runs where they ran, and claims nothing beyond)\n");
    for (uint32_t g = 0; g < c->n_groups; g++) {
        char scope[512];
        scope_text(&c->groups[g], scope, sizeof scope);
        fprintf(f, "  %-14s %s\n", ra_esc(e1, sizeof e1, c->groups[g].label), scope);
    }

    fprintf(f, "\nPairwise (reference runs; steps up to each sequence's first token divergence)\n");
    if (c->n_pairs == 0) fprintf(f, "  only one format@kernel: no pairs\n");
    bool any_identical = false;
    for (uint32_t i = 0; i < c->n_pairs; i++)
        if (c->pairs[i].identical) {
            fprintf(f, "  identical: %s = %s\n", ra_esc(e1, sizeof e1, c->groups[c->pairs[i].a].label),
                    ra_esc(e2, sizeof e2, c->groups[c->pairs[i].b].label));
            any_identical = true;
        }
    if (c->n_pairs && !any_identical) fprintf(f, "  identical pairs: none\n");
    if (c->n_pairs > 0 && !(any_identical && c->pairs[c->n_pairs - 1].identical)) {
        fprintf(f, "  %-12s %-12s %6s %10s %10s %10s %7s %8s  %-6s %s\n", "a", "b", "steps", "L2 mean", "max|diff|",
                "mean KL", "top-1", "same seq", "basis", "first divergence");
        for (uint32_t i = 0; i < c->n_pairs; i++) {
            const ra_pair_stats *p = &c->pairs[i];
            if (p->identical) continue;
            char kl[32], div[64], seqs[32];
            kl_text(p->kl_mean, kl, sizeof kl);
            step_text(p->divergence, div, sizeof div);
            snprintf(seqs, sizeof seqs, "%u/%u", p->seqs_same_tokens, p->n_seqs);
            fprintf(f, "  %-12s %-12s %6llu %10.4g %10.4g %10s %6.1f%% %8s  %-6s %s\n", ra_esc(e1, sizeof e1, c->groups[p->a].label),
                    ra_esc(e2, sizeof e2, c->groups[p->b].label), (unsigned long long)p->steps, p->l2_mean, p->max_abs, kl,
                    100 * p->top1_agree, seqs, p->full ? "full" : "top-k", div);
        }
        for (uint32_t i = 0; i < c->n_pairs; i++)
            if (c->pairs[i].nonfinite)
                fprintf(f, "  note: %s vs %s: %llu log-probs differ with NaN or inf on one side (counted, not in L2/max/KL)\n",
                        ra_esc(e1, sizeof e1, c->groups[c->pairs[i].a].label), ra_esc(e2, sizeof e2, c->groups[c->pairs[i].b].label),
                        (unsigned long long)c->pairs[i].nonfinite);
    }
    fprintf(f, "\n%s\n", c->ok ? "Result: every expectation held." : "Result: a determinism expectation FAILED.");
}

/* JSON numbers cannot be NaN: absent values are null. */
static void add_num(cJSON *o, const char *key, double v)
{
    if (isnan(v) || isinf(v)) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, v);
}

static void add_step(cJSON *o, const char *key, ra_step_ref r)
{
    if (r.seq < 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    cJSON *s = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(s, "seq", (double)r.seq);
    cJSON_AddNumberToObject(s, "step", (double)r.step);
}

static cJSON *report_json(const ra_comparison *c)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "repro-audit.report");
    cJSON_AddNumberToObject(root, "version", REPORT_SCHEMA_VERSION);
    cJSON *tool = cJSON_AddObjectToObject(root, "tool");
    cJSON_AddStringToObject(tool, "name", "repro-audit");
    cJSON_AddStringToObject(tool, "version", RA_VERSION);
    cJSON *bundles = cJSON_AddArrayToObject(root, "bundles");
    for (uint32_t i = 0; i < c->n_bundles; i++) cJSON_AddItemToArray(bundles, cJSON_CreateString(c->bundle_dirs[i]));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "name", c->model_name);
    cJSON_AddStringToObject(model, "sha256", c->model_sha256);
    cJSON_AddStringToObject(root, "mode", c->mode);
    cJSON_AddNumberToObject(root, "prompts", c->n_prompts);

    cJSON *groups = cJSON_AddArrayToObject(root, "groups");
    for (uint32_t g = 0; g < c->n_groups; g++) {
        const ra_group_verdict *v = &c->groups[g];
        cJSON *o = cJSON_CreateObject();
        char dig[65];
        ra_hex(v->digest, 32, dig);
        cJSON_AddStringToObject(o, "label", v->label);
        cJSON_AddStringToObject(o, "format", v->format);
        cJSON_AddStringToObject(o, "kernel", v->kernel);
        cJSON_AddBoolToObject(o, "deterministic", v->deterministic);
        cJSON_AddNumberToObject(o, "runs", v->n_runs);
        cJSON_AddStringToObject(o, "reference_run", v->ref_run);
        cJSON_AddStringToObject(o, "reference_digest", dig);
        cJSON_AddNumberToObject(o, "steps", (double)v->steps);
        cJSON_AddBoolToObject(o, "identical", v->identical);
        cJSON_AddNumberToObject(o, "differing_runs", v->n_differing);
        if (v->identical) cJSON_AddNullToObject(o, "first_differing_run");
        else cJSON_AddStringToObject(o, "first_differing_run", v->first_differing_run);
        add_step(o, "divergence", v->divergence);
        cJSON_AddStringToObject(o, "scope", v->scope);
        cJSON_AddNumberToObject(o, "scopes", v->n_scopes);
        cJSON_AddNumberToObject(o, "scenarios", v->n_scenarios);
        cJSON_AddStringToObject(o, "expectation", v->deterministic ? "identical" : "none");
        cJSON_AddBoolToObject(o, "pass", v->pass);
        cJSON_AddItemToArray(groups, o);
    }
    cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
    for (uint32_t i = 0; i < c->n_pairs; i++) {
        const ra_pair_stats *p = &c->pairs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "a", c->groups[p->a].label);
        cJSON_AddStringToObject(o, "b", c->groups[p->b].label);
        cJSON_AddBoolToObject(o, "identical", p->identical);
        cJSON_AddStringToObject(o, "basis", p->full ? "full" : "topk");
        cJSON_AddNumberToObject(o, "steps", (double)p->steps);
        add_num(o, "l2_mean", p->l2_mean);
        add_num(o, "max_abs_diff", p->max_abs);
        add_num(o, "kl_mean", p->kl_mean);
        add_num(o, "top1_agreement", p->top1_agree);
        cJSON_AddNumberToObject(o, "nonfinite_values", (double)p->nonfinite);
        cJSON_AddNumberToObject(o, "seqs_same_tokens", p->seqs_same_tokens);
        cJSON_AddNumberToObject(o, "seqs", p->n_seqs);
        add_step(o, "first_divergence", p->divergence);
        cJSON_AddItemToArray(pairs, o);
    }
    cJSON_AddBoolToObject(root, "ok", c->ok);
    return root;
}

ra_status ra_report_json(const ra_comparison *c, char **text)
{
    cJSON *root = report_json(c);
    ra_status s = ra_json_print(root, true, text);
    cJSON_Delete(root);
    return s;
}

/* An untrusted string as Markdown text: escaped for a terminal and for Markdown (safe in a table cell). */
static ra_status md_text(ra_buf *b, const char *str)
{
    return ra_escape(b, str, strlen(str), RA_ESC_MARKDOWN);
}

ra_status ra_report_markdown(const ra_comparison *c, char **text)
{
    ra_buf b = {0};
    ra_status s = ra_buf_printf(&b, "# repro-audit report\n\nModel: ");
    if (s == RA_OK) s = md_text(&b, c->model_name);
    if (s == RA_OK) s = ra_buf_printf(&b, " (sha256 `%.16s`), %u prompts, mode %s.\nBundles:", c->model_sha256, c->n_prompts, c->mode);
    for (uint32_t i = 0; s == RA_OK && i < c->n_bundles; i++) {
        s = ra_buf_printf(&b, " ");
        if (s == RA_OK) s = md_text(&b, c->bundle_dirs[i]);
    }
    if (s == RA_OK)
        s = ra_buf_printf(&b, "\n\n## Repeat verdicts\n\n| format@kernel | runs | reference | expectation | verdict |\n"
                              "|---|---:|---|---|---|\n");
    for (uint32_t g = 0; s == RA_OK && g < c->n_groups; g++) {
        const ra_group_verdict *v = &c->groups[g];
        char verdict[256];
        verdict_text(v, verdict, sizeof verdict);
        s = ra_buf_printf(&b, "| ");
        if (s == RA_OK) s = md_text(&b, v->label);
        if (s == RA_OK) s = ra_buf_printf(&b, " | %u | %s | %s | %s |\n", v->n_runs, v->ref_run, expectation_text(v), verdict);
    }
    if (s == RA_OK) s = ra_buf_printf(&b, "\nScope: a verdict holds for these runs where they ran, and claims nothing beyond.\n\n");
    for (uint32_t g = 0; s == RA_OK && g < c->n_groups; g++) {
        char scope[512];
        scope_text(&c->groups[g], scope, sizeof scope);
        s = ra_buf_printf(&b, "- ");
        if (s == RA_OK) s = md_text(&b, c->groups[g].label);
        if (s == RA_OK) s = ra_buf_printf(&b, ": ");
        if (s == RA_OK) s = md_text(&b, scope);
        if (s == RA_OK) s = ra_buf_printf(&b, "\n");
    }
    if (s == RA_OK && c->n_pairs)
        s = ra_buf_printf(&b, "\n## Pairwise distances\n\n| a | b | identical | steps | L2 mean | max abs diff | mean KL | "
                              "top-1 | same tokens | basis | first divergence | non-finite |\n"
                              "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|\n");
    for (uint32_t i = 0; s == RA_OK && i < c->n_pairs; i++) {
        const ra_pair_stats *p = &c->pairs[i];
        char kl[32], div[64];
        kl_text(p->kl_mean, kl, sizeof kl);
        step_text(p->divergence, div, sizeof div);
        s = ra_buf_printf(&b, "| ");
        if (s == RA_OK) s = md_text(&b, c->groups[p->a].label);
        if (s == RA_OK) s = ra_buf_printf(&b, " | ");
        if (s == RA_OK) s = md_text(&b, c->groups[p->b].label);
        if (s == RA_OK)
            s = ra_buf_printf(&b, " | %s | %llu | %.4g | %.4g | %s | %.1f%% | %u/%u | %s | %s | %llu |\n", p->identical ? "yes" : "no",
                              (unsigned long long)p->steps, p->l2_mean, p->max_abs, kl, 100 * p->top1_agree,
                              p->seqs_same_tokens, p->n_seqs, p->full ? "full" : "top-k", div, (unsigned long long)p->nonfinite);
    }
    if (s == RA_OK)
        s = ra_buf_printf(&b, "\n**Result:** %s\n", c->ok ? "every expectation held." : "a determinism expectation FAILED.");
    if (s == RA_OK) s = ra_buf_append(&b, "", 1);
    if (s != RA_OK) {
        ra_buf_free(&b);
        return s;
    }
    *text = (char *)b.data;
    return RA_OK;
}

ra_status ra_report_write(const ra_comparison *c, const char *json_path, const char *md_path)
{
    char *text = NULL;
    ra_status s = RA_OK;
    if (json_path) {
        s = ra_report_json(c, &text);
        if (s == RA_OK) s = ra_write_file_atomic(json_path, text, strlen(text));
        free(text);
        text = NULL;
    }
    if (s == RA_OK && md_path) {
        s = ra_report_markdown(c, &text);
        if (s == RA_OK) s = ra_write_file_atomic(md_path, text, strlen(text));
        free(text);
    }
    return s;
}
