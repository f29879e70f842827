/* report.html: the comparison as one self-contained page (no script, no
 * network, no external file), with inline SVG figures: the scenario verdict
 * grid, the pairwise distance heat map, per-step divergence curves against
 * the base and the first-divergence map per sequence. Every string from a
 * bundle goes through ra_escape(RA_ESC_HTML). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ra/compare.h"
#include "ra/text.h"
#include "ra/util.h"

/* A page being written; the first error sticks and later writes do nothing. */
typedef struct {
    ra_buf b;
    ra_status s;
} page;

static void __attribute__((format(printf, 2, 3))) put(page *p, const char *fmt, ...)
{
    if (p->s != RA_OK) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->s = n < 0 || (size_t)n >= sizeof line ? ra_fail(RA_ERR_INTERNAL, "report.html: line too long") : ra_buf_append(&p->b, line, (size_t)n);
}

/* Untrusted text (labels, paths, model names, scopes). */
static void text(page *p, const char *s)
{
    if (p->s == RA_OK) p->s = ra_escape(&p->b, s, strlen(s), RA_ESC_HTML);
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
#define N_PALETTE (sizeof palette / sizeof palette[0])

/* Light to dark blue for t in [0, 1]. */
static void shade(double t, char out[16])
{
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    int r = (int)(235 - 205 * t), g = (int)(242 - 150 * t), b = (int)(250 - 90 * t);
    snprintf(out, 16, "#%02x%02x%02x", r, g, b);
}

/* Room for the longest format@kernel label on the left of a figure (11px text). */
static int label_room(const ra_comparison *c)
{
    size_t n = 8;
    for (uint32_t g = 0; g < c->n_groups; g++)
        if (strlen(c->groups[g].label) > n) n = strlen(c->groups[g].label);
    return n > 40 ? 270 : 12 + (int)n * 13 / 2;
}

static const ra_pair_stats *find_pair(const ra_comparison *c, uint32_t i, uint32_t j)
{
    for (uint32_t k = 0; k < c->n_pairs; k++)
        if ((c->pairs[k].a == i && c->pairs[k].b == j) || (c->pairs[k].a == j && c->pairs[k].b == i)) return &c->pairs[k];
    return NULL;
}

/* The distance a heat-map cell shows: mean KL with full vectors, else none. */
static double cell_kl(const ra_pair_stats *p) { return p && p->full ? p->kl_mean : NAN; }

static void header(page *p, const ra_comparison *c)
{
    put(p, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
           "<title>repro-audit report</title>\n<style>\n"
           "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}\n"
           "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}\n"
           "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}\n"
           "td.l,th.l{text-align:left}.ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}\n"
           "svg text{font:11px system-ui,sans-serif}.note{color:#555;max-width:900px}\n"
           "</style></head><body>\n<h1>repro-audit report</h1>\n<p>Model ");
    text(p, c->model_name);
    put(p, " (sha256 <code>%.16s</code>), %u prompts, mode %s. Bundles:", c->model_sha256, c->n_prompts,
        !strcmp(c->mode, "score") ? "score" : "generate");
    for (uint32_t i = 0; i < c->n_bundles; i++) {
        put(p, " <code>");
        text(p, c->bundle_dirs[i]);
        put(p, "</code>");
    }
    put(p, "</p>\n<p class=\"%s\">%s</p>\n", c->ok ? "ok" : "bad",
        c->ok ? "Result: every expectation held." : "Result: a determinism expectation FAILED.");
}

/* The scenario families of the comparison, in order of first appearance. */
static uint32_t scenario_columns(const ra_comparison *c, const char *cols[], uint32_t max)
{
    uint32_t n = 0;
    for (uint32_t g = 0; g < c->n_groups; g++)
        for (uint32_t i = 0; i < c->groups[g].n_scenario_verdicts; i++) {
            const char *name = c->groups[g].scenarios[i].scenario;
            uint32_t k = 0;
            while (k < n && strcmp(cols[k], name)) k++;
            if (k == n && n < max) cols[n++] = name;
        }
    return n;
}

/* One cell: its fill and its words ("identical", "differs, as required", "2/10 steps"). */
static const char *scenario_cell(const ra_scenario_verdict *sv, char *words, size_t n)
{
    if (sv->identical) {
        snprintf(words, n, sv->pass ? "identical" : "identical: FAILED");
        return sv->pass ? "#c8e6c9" : "#ffcdd2";
    }
    if (sv->expect == RA_EXPECT_DIFFERENT) snprintf(words, n, "differs, as required");
    else snprintf(words, n, "%s%llu/%llu steps", sv->pass ? "" : "FAILED ", (unsigned long long)sv->steps_differ,
                  (unsigned long long)sv->steps);
    return !sv->pass ? "#ffcdd2" : sv->expect == RA_EXPECT_DIFFERENT ? "#c8e6c9" : "#fff3c4";
}

/* Rows format@kernel, columns scenario families (repeat, process, batch,
 * prefill-decode, threads, kernel, control); hover a cell for its verdict. */
static void verdict_grid(page *p, const ra_comparison *c)
{
    const char *cols[RA_MAX_SCENARIO_VERDICTS * 4];
    uint32_t n_cols = scenario_columns(c, cols, sizeof cols / sizeof cols[0]);
    const int row = 24, left = label_room(c), col = 150;
    put(p, "<h2>Verdicts</h2>\n<p class=\"note\">Each format@kernel in each scenario: are its runs bit-identical to the "
           "reference run (a negative control must differ). Green: as expected; yellow: differs where nothing is "
           "promised; red: an expectation failed. A verdict holds for these runs where they ran (scope below) and "
           "claims nothing beyond.</p>\n<svg role=\"img\" aria-label=\"scenario verdict grid\" width=\"%u\" height=\"%u\">\n",
        left + col * (n_cols ? n_cols : 1) + 10, 30 + row * c->n_groups);
    for (uint32_t k = 0; k < n_cols; k++) {
        put(p, "<text x=\"%u\" y=\"16\">", left + col * k + 4);
        text(p, cols[k]);
        put(p, "</text>\n");
    }
    for (uint32_t g = 0; g < c->n_groups; g++) {
        const ra_group_verdict *v = &c->groups[g];
        unsigned y = 24 + row * g;
        put(p, "<text x=\"4\" y=\"%u\">", y + 15);
        text(p, v->label);
        put(p, "</text>\n");
        for (uint32_t k = 0; k < n_cols; k++) {
            const ra_scenario_verdict *sv = NULL;
            for (uint32_t i = 0; i < v->n_scenario_verdicts && !sv; i++)
                if (!strcmp(v->scenarios[i].scenario, cols[k])) sv = &v->scenarios[i];
            char words[64] = "-", detail[512] = "not run";
            const char *fill = sv ? scenario_cell(sv, words, sizeof words) : "#eeeeee";
            if (sv) ra_scenario_verdict_text(sv, detail, sizeof detail);
            put(p, "<g><title>");
            text(p, detail);
            put(p, "</title><rect x=\"%u\" y=\"%u\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#999\"/>"
                   "<text x=\"%u\" y=\"%u\">%s</text></g>\n",
                left + col * k, y, col - 2, row - 2, fill, left + col * k + 6, y + 15, words);
        }
    }
    put(p, "</svg>\n<table><tr><th class=\"l\">format@kernel</th><th>runs</th><th class=\"l\">verdict</th>"
           "<th class=\"l\">first divergence</th><th class=\"l\">scope</th></tr>\n");
    for (uint32_t g = 0; g < c->n_groups; g++) {
        const ra_group_verdict *v = &c->groups[g];
        put(p, "<tr><td class=\"l\">");
        text(p, v->label);
        put(p, "</td><td>%u</td><td class=\"l %s\">%s</td><td class=\"l\">", v->n_runs, v->pass ? "ok" : "bad",
            v->identical ? "bit-identical" : v->pass ? "differs (not promised)" : "DIFFERENT");
        if (v->divergence.seq >= 0) {
            text(p, v->first_differing_run);
            put(p, " at seq %lld step %lld", (long long)v->divergence.seq, (long long)v->divergence.step);
        } else put(p, "-");
        put(p, "</td><td class=\"l\">");
        text(p, v->scope);
        put(p, "</td></tr>\n");
    }
    put(p, "</table>\n");
}

static void heat_map(page *p, const ra_comparison *c)
{
    uint32_t n = c->n_groups;
    const int cell = 64, left = label_room(c), top = 20 + label_room(c) * 2 / 3;
    double lo = INFINITY, hi = -INFINITY;
    for (uint32_t k = 0; k < c->n_pairs; k++) {
        double kl = cell_kl(&c->pairs[k]);
        if (!isnan(kl) && kl > 0) {
            lo = fmin(lo, log10(kl));
            hi = fmax(hi, log10(kl));
        }
    }
    put(p, "<h2>Pairwise distance</h2>\n<p class=\"note\">Mean KL divergence (nats) between the reference runs of two "
           "format@kernel, KL(a&#8214;b) with a the base or the higher precision, pooled over every compared step; the "
           "shade is log-scaled. &#8220;=&#8221;: bit-identical traces; &#8220;top-k&#8221;: only top-k entries stored, no KL.</p>\n"
           "<svg role=\"img\" aria-label=\"pairwise distance heat map\" width=\"%u\" height=\"%u\">\n",
        left + cell * n + 10, top + cell * n + 10);
    for (uint32_t i = 0; i < n; i++) {
        put(p, "<text x=\"%d\" y=\"%u\">", 4, top + cell * i + cell / 2 + 4);
        text(p, c->groups[i].label);
        put(p, "</text><text transform=\"translate(%u,%d) rotate(-40)\">", left + cell * i + cell / 2, top - 6);
        text(p, c->groups[i].label);
        put(p, "</text>\n");
        for (uint32_t j = 0; j < n; j++) {
            const ra_pair_stats *q = i == j ? NULL : find_pair(c, i, j);
            double kl = cell_kl(q);
            char fill[16] = "#eeeeee", label[32] = "";
            double t = 0;
            if (i != j && q && q->identical) snprintf(label, sizeof label, "=");
            else if (i != j && isnan(kl)) snprintf(label, sizeof label, "top-k");
            else if (i != j) {
                t = kl > 0 && hi > lo ? 0.15 + 0.85 * (log10(kl) - lo) / (hi - lo) : kl > 0;
                shade(t, fill);
                snprintf(label, sizeof label, "%.2e", kl);
            }
            put(p, "<rect x=\"%u\" y=\"%u\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#fff\"/>", left + cell * j,
                top + cell * i, cell, cell, fill);
            if (label[0])
                put(p, "<text x=\"%u\" y=\"%u\" text-anchor=\"middle\" fill=\"%s\">%s</text>", left + cell * j + cell / 2,
                    top + cell * i + cell / 2 + 4, t > 0.55 ? "#fff" : "#000", label);
            put(p, "\n");
        }
    }
    put(p, "</svg>\n");
}

/* Mean KL against the base at each step index (log scale), one line per
 * format@kernel; L2 where only top-k entries were stored. */
static void curves(page *p, const ra_comparison *c)
{
    const int w = 640, h = 260, left = 70, top = 16, bottom = 40;
    uint32_t longest = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (uint32_t k = 0; k < c->n_pairs; k++) {
        const ra_pair_stats *q = &c->pairs[k];
        if (!q->with_base || !q->full) continue;
        if (q->n_curve > longest) longest = q->n_curve;
        for (uint32_t s = 0; s < q->n_curve; s++)
            if (q->kl_curve[s] > 0) {
                lo = fmin(lo, log10(q->kl_curve[s]));
                hi = fmax(hi, log10(q->kl_curve[s]));
            }
    }
    put(p, "<h2>Divergence per step</h2>\n<p class=\"note\">Mean KL(base&#8214;other) at each generated step, over the "
           "sequences compared there (a sequence stops at its first token divergence in generate mode); log scale. "
           "Steps with KL 0 (bit-identical distributions) are drawn on the bottom axis.</p>\n");
    if (!longest || !(hi >= lo)) {
        put(p, "<p>No pair with the base has full vectors and a nonzero KL.</p>\n");
        return;
    }
    lo = floor(lo);
    hi = ceil(hi);
    if (hi == lo) hi = lo + 1;
    double xs = longest > 1 ? (double)(w - left - 20) / (longest - 1) : 0, ys = (h - top - bottom) / (hi - lo);
    put(p, "<svg role=\"img\" aria-label=\"divergence per step\" width=\"%d\" height=\"%d\">\n"
           "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n",
        w + 200, h, left, top, w - left - 20, h - top - bottom);
    for (double e = lo; e <= hi; e++)
        put(p, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", left - 4, h - bottom - (e - lo) * ys + 4, (int)e);
    for (uint32_t s = 0; s < longest; s += longest > 16 ? longest / 8 : 1)
        put(p, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%u</text>\n", left + s * xs, h - bottom + 14, s);
    put(p, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n", left + (w - left) / 2, h - 6);
    uint32_t line = 0;
    for (uint32_t k = 0; k < c->n_pairs; k++) {
        const ra_pair_stats *q = &c->pairs[k];
        if (!q->with_base || !q->full) continue;
        const char *colour = palette[line % N_PALETTE];
        put(p, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colour);
        for (uint32_t s = 0; s < q->n_curve; s++) {
            if (isnan(q->kl_curve[s])) continue;
            double y = q->kl_curve[s] > 0 ? log10(q->kl_curve[s]) : lo;
            put(p, "%.1f,%.1f ", left + s * xs, h - bottom - (fmax(y, lo) - lo) * ys);
        }
        put(p, "\"/>\n<rect x=\"%d\" y=\"%u\" width=\"14\" height=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%u\">", w, top + 16 * line + 4,
            colour, w + 20, top + 16 * line + 9);
        text(p, c->groups[q->b].label);
        put(p, "</text>\n");
        line++;
    }
    put(p, "</svg>\n");
}

/* Rows: each format@kernel against the base; columns: sequences; the shade
 * says how early its tokens (generate) or log-probs (score) first differ. */
static void divergence_map(page *p, const ra_comparison *c)
{
    const int cw = 22, row = 22, left = label_room(c), top = 30;
    uint32_t rows = 0, longest = 1;
    for (uint32_t k = 0; k < c->n_pairs; k++)
        if (c->pairs[k].with_base) {
            rows++;
            if (c->pairs[k].n_curve > longest) longest = c->pairs[k].n_curve;
        }
    uint32_t n_seqs = rows ? c->pairs[0].n_seqs : 0;
    put(p, "<h2>First divergence per sequence</h2>\n<p class=\"note\">Against the base: the first step where the "
           "sequence's %s differ (darker: earlier; the number is the step), &#8220;=&#8221; where none does.</p>\n",
        !strcmp(c->mode, "score") ? "log-probs" : "tokens");
    if (!rows) {
        put(p, "<p>Only one format@kernel: nothing to compare.</p>\n");
        return;
    }
    put(p, "<svg role=\"img\" aria-label=\"first divergence per sequence\" width=\"%u\" height=\"%u\">\n",
        left + cw * n_seqs + 10, top + row * rows + 10);
    for (uint32_t s = 0; s < n_seqs; s++)
        put(p, "<text x=\"%u\" y=\"%d\" text-anchor=\"middle\">%u</text>\n", left + cw * s + cw / 2, top - 8, s);
    uint32_t r = 0;
    for (uint32_t k = 0; k < c->n_pairs; k++) {
        const ra_pair_stats *q = &c->pairs[k];
        if (!q->with_base) continue;
        put(p, "<text x=\"4\" y=\"%u\">", top + row * r + 15);
        text(p, c->groups[q->b].label);
        put(p, "</text>\n");
        for (uint32_t s = 0; s < q->n_seqs; s++) {
            int32_t d = q->seq_divergence[s];
            char fill[16] = "#e8f5e9";
            if (d >= 0) shade(1 - (double)d / longest, fill);
            put(p, "<rect x=\"%u\" y=\"%u\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#fff\"/>"
                   "<text x=\"%u\" y=\"%u\" text-anchor=\"middle\" fill=\"%s\">",
                left + cw * s, top + row * r, cw, row, fill, left + cw * s + cw / 2, top + row * r + 15,
                d >= 0 && d < (int32_t)longest / 2 ? "#fff" : "#000");
            if (d >= 0) put(p, "%d", d);
            else put(p, "=");
            put(p, "</text>\n");
        }
        r++;
    }
    put(p, "</svg>\n");
}

/* The statistics against the base, as the terminal and report.md have them. */
static void base_table(page *p, const ra_comparison *c)
{
    put(p, "<h2>Quality against the base</h2>\n<p class=\"note\">Base ");
    text(p, c->groups[c->base].label);
    put(p, ". In llama.cpp&#8217;s --kl-divergence terms: KLD = KL(base&#8214;other) per step; &#916;p = p_other &#8722; "
           "p_base of the base&#8217;s token; RMS &#916;p; same top p = share of steps with the same most likely token. "
           "Means pool every compared step of every sequence. Rows with top-k entries only are not ranked with "
           "full-vector rows (docs/report-schema.md).</p>\n<table><tr><th class=\"l\">other</th><th>basis</th><th>steps</th>"
           "<th>bit-exact</th><th>mean KLD</th><th>median KLD</th><th>99%% KLD</th><th>max KLD</th><th>RMS &#916;p</th>"
           "<th>same top p</th><th>L2 mean</th><th>max |diff|</th></tr>\n");
    for (uint32_t k = 0; k < c->n_pairs; k++) {
        const ra_pair_stats *q = &c->pairs[k];
        if (!q->with_base) continue;
        put(p, "<tr><td class=\"l\">");
        text(p, c->groups[q->b].label);
        put(p, "</td><td>%s</td><td>%llu</td><td>%.1f%%</td>", q->full ? "full" : "top-k", (unsigned long long)q->steps,
            q->steps ? 100.0 * (double)q->bit_exact_steps / (double)q->steps : 100.0);
        const double v[] = {q->kl_mean, q->kl_q[5], q->kl_q[2], q->kl_q[0]};
        for (int i = 0; i < 4; i++) put(p, isnan(v[i]) ? "<td>n/a</td>" : "<td>%.3e</td>", v[i]);
        put(p, isnan(q->dp_rms) ? "<td>n/a</td>" : "<td>%.3f%%</td>", 100 * q->dp_rms);
        put(p, "<td>%.2f%%</td><td>%.4g</td><td>%.4g</td></tr>\n", 100 * q->top1_agree, q->l2_mean, q->max_abs);
    }
    put(p, "</table>\n");
}

ra_status ra_report_html(const ra_comparison *c, char **out)
{
    page p = {{0}, RA_OK};
    header(&p, c);
    verdict_grid(&p, c);
    if (c->n_groups > 1) {
        base_table(&p, c);
        heat_map(&p, c);
        curves(&p, c);
        divergence_map(&p, c);
    }
    put(&p, "<p class=\"note\">Written by repro-audit compare; report.json holds every number.</p>\n</body></html>\n");
    if (p.s == RA_OK) p.s = ra_buf_append(&p.b, "", 1);
    if (p.s != RA_OK) {
        ra_buf_free(&p.b);
        return p.s;
    }
    *out = (char *)p.b.data;
    return RA_OK;
}
