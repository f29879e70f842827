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


#define REPORT_SCHEMA_VERSION 2

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

/* The pairwise tables: pairs with the base and the other pairs, each split by
 * basis, so a top-k-only row is never ranked with full-vector rows. */
enum { PAIR_TABLES = 4, PAIR_COLS = 13 };
static const char *const pair_table_title[PAIR_TABLES] = {
    "Against the base (full vectors), by mean KLD",
    "Against the base, top-k entries only (no KLD; not comparable with the rows above), by same top p",
    "Other pairs (a: the higher precision; full vectors), by mean KLD",
    "Other pairs, top-k entries only (no KLD), by same top p"};
static const char *const pair_col_name[PAIR_COLS] = {"a", "b", "steps", "bit-exact", "mean KLD", "+-", "median KLD",
                                                     "99% KLD", "RMS dp", "same top p", "L2 mean", "max|diff|", "first divergence"};
static const int pair_col_width[PAIR_COLS] = {-12, -12, 6, 9, 10, 9, 10, 10, 8, 10, 9, 9, -1};

static int pair_table(const ra_pair_stats *p) { return (p->with_base ? 0 : 2) + !p->full; }

static uint32_t table_rows(const ra_comparison *c, int t)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_pairs; i++) n += pair_table(&c->pairs[i]) == t;
    return n;
}

static void num_text(double v, const char *fmt, char *out, size_t n)
{
    if (isnan(v)) snprintf(out, n, "n/a");
    else snprintf(out, n, fmt, v);
}

/* One row's cells (unescaped: labels come from bundles). */
static void pair_cells(const ra_comparison *c, const ra_pair_stats *p, char cell[PAIR_COLS][80])
{
    double n = p->steps ? (double)p->steps : 1;
    snprintf(cell[0], 80, "%s", c->groups[p->a].label);
    snprintf(cell[1], 80, "%s", c->groups[p->b].label);
    snprintf(cell[2], 80, "%llu", (unsigned long long)p->steps);
    snprintf(cell[3], 80, "%.1f%%", 100 * (double)p->bit_exact_steps / n);
    num_text(p->kl_mean, "%.3e", cell[4], 80);
    num_text(p->kl_unc, "%.1e", cell[5], 80);
    num_text(p->kl_q[5], "%.3e", cell[6], 80);
    num_text(p->kl_q[2], "%.3e", cell[7], 80);
    num_text(100 * p->dp_rms, "%.3f%%", cell[8], 80);
    snprintf(cell[9], 80, "%.2f%%", 100 * p->top1_agree);
    snprintf(cell[10], 80, "%.4g", p->l2_mean);
    snprintf(cell[11], 80, "%.4g", p->max_abs);
    step_text(p->divergence, cell[12], 80);
}

static const char *quantile_name(double at, char *buf, size_t n)
{
    if (at == 1) return "max";
    if (at == 0) return "min";
    if (at == .5) return "median";
    snprintf(buf, n, "%g%%", 100 * at);
    return buf;
}

/* "max 1.2e-3, 99.9% ..., min ..." */
static void quantile_line(const double *q, const double *at, int m, double scale, const char *fmt, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < m && len < n; i++) {
        char name[16], v[32];
        num_text(scale * q[i], fmt, v, sizeof v);
        len += (size_t)snprintf(out + len, n - len, "%s%s %s", i ? ", " : "", quantile_name(at[i], name, sizeof name), v);
    }
}

/* Score mode: the perplexity of the given tokens under both. */
static void ppl_text(const ra_pair_stats *p, char *out, size_t n)
{
    if (isnan(p->ppl_a) || isnan(p->ppl_b)) out[0] = 0;
    else snprintf(out, n, "PPL(base) %.4f, PPL(other) %.4f, ln(PPL(other)/PPL(base)) %+.3e", p->ppl_a, p->ppl_b, log(p->ppl_b / p->ppl_a));
}

/* Scenario verdicts: one line per format@kernel x scenario family. */
static void print_scenarios(const ra_comparison *c, FILE *f)
{
    char e1[256], e2[256], verdict[512];
    fprintf(f, "\nScenario verdicts (each scenario's runs against the reference; control must differ)\n");
    fprintf(f, "  %-18s %-15s %-9s %-4s %s\n", "format@kernel", "scenario", "expect", "", "verdict");
    for (uint32_t g = 0; g < c->n_groups; g++)
        for (uint32_t i = 0; i < c->groups[g].n_scenario_verdicts; i++) {
            const ra_scenario_verdict *sv = &c->groups[g].scenarios[i];
            ra_scenario_verdict_text(sv, verdict, sizeof verdict);
            fprintf(f, "  %-18s %-15s %-9s %-4s %s\n", ra_esc(e1, sizeof e1, c->groups[g].label), ra_esc(e2, sizeof e2, sv->scenario),
                    ra_expectation_name(sv->expect), sv->pass ? "ok" : "FAIL", ra_esc(verdict, sizeof verdict, verdict));
        }
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
    print_scenarios(c, f);
    fprintf(f, "\nScope (a verdict holds for these runs where they ran, and claims nothing beyond)\n");
    for (uint32_t g = 0; g < c->n_groups; g++) {
        char scope[512];
        scope_text(&c->groups[g], scope, sizeof scope);
        fprintf(f, "  %-14s %s\n", ra_esc(e1, sizeof e1, c->groups[g].label), scope);
    }

    fprintf(f, "\nPairwise (reference runs; %s)\n", c->mode[0] == 'g' ? "steps up to each sequence's first token divergence"
                                                                         : "every step of the given continuations");
    if (c->n_pairs == 0) fprintf(f, "  only one format@kernel: no pairs\n");
    else fprintf(f, "  base %s; KLD = KL(base || other), dp = p_other - p_base of the base's token; means pool every\n"
                    "  compared step of every sequence (compare --help has every definition)\n",
                 ra_esc(e1, sizeof e1, c->groups[c->base].label));
    for (int t = 0; t < PAIR_TABLES; t++) {
        if (!table_rows(c, t)) continue;
        fprintf(f, "\n%s\n  ", pair_table_title[t]);
        for (int k = 0; k < PAIR_COLS; k++) fprintf(f, "%s%*s", k ? " " : "", pair_col_width[k], pair_col_name[k]);
        fputc('\n', f);
        for (uint32_t i = 0; i < c->n_pairs; i++) {
            const ra_pair_stats *p = &c->pairs[i];
            if (pair_table(p) != t) continue;
            char cell[PAIR_COLS][80];
            pair_cells(c, p, cell);
            fputs("  ", f);
            for (int k = 0; k < PAIR_COLS; k++) fprintf(f, "%s%*s", k ? " " : "", pair_col_width[k], ra_esc(e1, sizeof e1, cell[k]));
            fputc('\n', f);
        }
    }
    for (uint32_t i = 0; i < c->n_pairs; i++) {
        const ra_pair_stats *p = &c->pairs[i];
        if (!p->with_base) continue;
        char kq[512], dq[640], ppl[160];
        quantile_line(p->kl_q, ra_kl_quantile_at, RA_N_KL_QUANTILES, 1, "%.3g", kq, sizeof kq);
        quantile_line(p->dp_q, ra_dp_quantile_at, RA_N_DP_QUANTILES, 100, "%+.3f%%", dq, sizeof dq);
        ppl_text(p, ppl, sizeof ppl);
        fprintf(f, "\n  %s against the base:\n    KLD %s\n    dp  %s\n", ra_esc(e1, sizeof e1, c->groups[p->b].label), kq, dq);
        if (ppl[0]) fprintf(f, "    %s\n", ppl);
    }
    for (uint32_t i = 0; i < c->n_pairs; i++)
        if (c->pairs[i].nonfinite)
            fprintf(f, "  note: %s vs %s: %llu log-probs differ with NaN or inf on one side (counted, not in L2/max/KL)\n",
                    ra_esc(e1, sizeof e1, c->groups[c->pairs[i].a].label), ra_esc(e2, sizeof e2, c->groups[c->pairs[i].b].label),
                    (unsigned long long)c->pairs[i].nonfinite);
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

/* {"max": .., "99.9%": .., ..., "median": .., ..., "min": ..} */
static void add_quantiles(cJSON *o, const char *key, const double *q, const double *at, int m)
{
    cJSON *x = cJSON_AddObjectToObject(o, key);
    for (int i = 0; i < m; i++) {
        char name[16];
        add_num(x, quantile_name(at[i], name, sizeof name), q[i]);
    }
}

/* A group's "scenario_verdicts" (docs/report-schema.md). */
static void add_scenarios(cJSON *o, const ra_group_verdict *v)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "scenario_verdicts");
    for (uint32_t i = 0; i < v->n_scenario_verdicts; i++) {
        const ra_scenario_verdict *sv = &v->scenarios[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "scenario", sv->scenario);
        cJSON_AddStringToObject(x, "against", sv->against);
        cJSON_AddStringToObject(x, "expectation", ra_expectation_name(sv->expect));
        cJSON_AddNumberToObject(x, "runs", sv->n_runs);
        cJSON_AddBoolToObject(x, "identical", sv->identical);
        cJSON_AddNumberToObject(x, "seqs", (double)sv->seqs);
        cJSON_AddNumberToObject(x, "seqs_differ", (double)sv->seqs_differ);
        cJSON_AddNumberToObject(x, "steps", (double)sv->steps);
        cJSON_AddNumberToObject(x, "steps_differ", (double)sv->steps_differ);
        if (sv->identical) cJSON_AddNullToObject(x, "first_differing_run");
        else cJSON_AddStringToObject(x, "first_differing_run", sv->first_run);
        add_step(x, "divergence", sv->divergence);
        cJSON_AddBoolToObject(x, "token_changed", sv->token_changed);
        add_num(x, "top2_gap", sv->top2_gap);
        cJSON_AddBoolToObject(x, "near_tie", sv->near_tie);
        add_num(x, "kl_max", sv->kl_max);
        add_num(x, "max_abs_diff", sv->max_abs);
        add_num(x, "top1_min", sv->top1_min);
        cJSON_AddBoolToObject(x, "pass", sv->pass);
        cJSON_AddItemToArray(arr, x);
    }
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
        add_scenarios(o, v);
        cJSON_AddItemToArray(groups, o);
    }
    if (c->n_groups) cJSON_AddStringToObject(root, "base", c->groups[c->base].label);
    cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
    for (uint32_t i = 0; i < c->n_pairs; i++) {
        const ra_pair_stats *p = &c->pairs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "a", c->groups[p->a].label);
        cJSON_AddStringToObject(o, "b", c->groups[p->b].label);
        cJSON_AddBoolToObject(o, "with_base", p->with_base);
        cJSON_AddBoolToObject(o, "identical", p->identical);
        cJSON_AddStringToObject(o, "basis", p->full ? "full" : "topk");
        cJSON_AddNumberToObject(o, "steps", (double)p->steps);
        cJSON_AddNumberToObject(o, "bit_exact_steps", (double)p->bit_exact_steps);
        add_num(o, "l2_mean", p->l2_mean);
        add_num(o, "max_abs_diff", p->max_abs);
        add_num(o, "kl_mean", p->kl_mean);
        add_num(o, "kl_uncertainty", p->kl_unc);
        add_quantiles(o, "kl_quantiles", p->kl_q, ra_kl_quantile_at, RA_N_KL_QUANTILES);
        add_num(o, "delta_p_mean", p->dp_mean);
        add_num(o, "delta_p_rms", p->dp_rms);
        cJSON_AddNumberToObject(o, "delta_p_steps", (double)p->dp_steps);
        add_quantiles(o, "delta_p_quantiles", p->dp_q, ra_dp_quantile_at, RA_N_DP_QUANTILES);
        add_num(o, "top1_agreement", p->top1_agree);
        add_num(o, "ppl_a", p->ppl_a);
        add_num(o, "ppl_b", p->ppl_b);
        cJSON_AddNumberToObject(o, "nonfinite_values", (double)p->nonfinite);
        cJSON_AddNumberToObject(o, "seqs_same_tokens", p->seqs_same_tokens);
        cJSON_AddNumberToObject(o, "seqs", p->n_seqs);
        add_step(o, "first_divergence", p->divergence);
        if (p->with_base) {
            cJSON *kc = cJSON_AddArrayToObject(o, "kl_by_step"), *lc = cJSON_AddArrayToObject(o, "l2_by_step");
            for (uint32_t k = 0; k < p->n_curve; k++) {
                cJSON_AddItemToArray(kc, isnan(p->kl_curve[k]) ? cJSON_CreateNull() : cJSON_CreateNumber(p->kl_curve[k]));
                cJSON_AddItemToArray(lc, isnan(p->l2_curve[k]) ? cJSON_CreateNull() : cJSON_CreateNumber(p->l2_curve[k]));
            }
            cJSON *sd = cJSON_AddArrayToObject(o, "seq_divergence");
            for (uint32_t k = 0; k < p->n_seqs; k++)
                cJSON_AddItemToArray(sd, p->seq_divergence[k] < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(p->seq_divergence[k]));
        }
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
    if (s == RA_OK && c->n_pairs) {
        s = ra_buf_printf(&b, "\n## Pairwise statistics\n\nBase: ");
        if (s == RA_OK) s = md_text(&b, c->groups[c->base].label);
        if (s == RA_OK)
            s = ra_buf_printf(&b, ". KLD = KL(base ‖ other) in nats, Δp = p_other − p_base of the base's token; means pool every "
                                  "compared step of every sequence (definitions: docs/report-schema.md).\n");
    }
    for (int t = 0; s == RA_OK && t < PAIR_TABLES; t++) {
        if (!table_rows(c, t)) continue;
        s = ra_buf_printf(&b, "\n### %s\n\n|", pair_table_title[t]);
        for (int k = 0; s == RA_OK && k < PAIR_COLS; k++) s = ra_buf_printf(&b, " %s |", pair_col_name[k]);
        if (s == RA_OK) s = ra_buf_printf(&b, "\n|");
        for (int k = 0; s == RA_OK && k < PAIR_COLS; k++) s = ra_buf_printf(&b, "%s|", pair_col_width[k] < 0 ? "---" : "---:");
        for (uint32_t i = 0; s == RA_OK && i < c->n_pairs; i++) {
            if (pair_table(&c->pairs[i]) != t) continue;
            char cell[PAIR_COLS][80];
            pair_cells(c, &c->pairs[i], cell);
            s = ra_buf_printf(&b, "\n|");
            for (int k = 0; s == RA_OK && k < PAIR_COLS; k++) {
                s = ra_buf_printf(&b, " ");
                if (s == RA_OK) s = md_text(&b, cell[k]);
                if (s == RA_OK) s = ra_buf_printf(&b, " |");
            }
        }
        if (s == RA_OK) s = ra_buf_printf(&b, "\n");
    }
    for (uint32_t i = 0; s == RA_OK && i < c->n_pairs; i++) {
        const ra_pair_stats *p = &c->pairs[i];
        if (!p->with_base) continue;
        char kq[512], dq[640], ppl[160];
        quantile_line(p->kl_q, ra_kl_quantile_at, RA_N_KL_QUANTILES, 1, "%.3g", kq, sizeof kq);
        quantile_line(p->dp_q, ra_dp_quantile_at, RA_N_DP_QUANTILES, 100, "%+.3f%%", dq, sizeof dq);
        ppl_text(p, ppl, sizeof ppl);
        s = ra_buf_printf(&b, "\n");
        if (s == RA_OK) s = md_text(&b, c->groups[p->b].label);
        if (s == RA_OK) s = ra_buf_printf(&b, " against the base:\n\n- KLD: ");
        if (s == RA_OK) s = md_text(&b, kq);
        if (s == RA_OK) s = ra_buf_printf(&b, "\n- Δp: ");
        if (s == RA_OK) s = md_text(&b, dq);
        if (s == RA_OK && ppl[0]) s = ra_buf_printf(&b, "\n- %s", ppl);
        if (s == RA_OK) s = ra_buf_printf(&b, "\n");
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

ra_status ra_report_write_all(const ra_comparison *c, const char *json_path, const char *md_path, const char *html_path)
{
    const char *path[3] = {json_path, md_path, html_path};
    ra_status (*make[3])(const ra_comparison *, char **) = {ra_report_json, ra_report_markdown, ra_report_html};
    ra_status s = RA_OK;
    for (int i = 0; s == RA_OK && i < 3; i++) {
        if (!path[i]) continue;
        char *text = NULL;
        s = make[i](c, &text);
        if (s == RA_OK) s = ra_write_file_atomic(path[i], text, strlen(text));
        free(text);
    }
    return s;
}

ra_status ra_report_write(const ra_comparison *c, const char *json_path, const char *md_path)
{
    return ra_report_write_all(c, json_path, md_path, NULL);
}
