/* compare: repeat verdicts per format@kernel and pairwise distances between
 * formats (definitions in include/ra/compare.h). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ra/audit.h"
#include "ra/compare.h"
#include "ra/cpu.h"
#include "ra/text.h"
#include "ra/trace.h"
#include "ra/util.h"

/* One run: a trace of some bundle. */
typedef struct {
    uint32_t bundle, trace;
} run_ref;

typedef struct {
    run_ref *runs;  /* into one array of every run, sorted by group */
    uint32_t n_runs;
    ra_trace *ref;  /* the reference run, loaded */
} group_state;

static const ra_bundle_trace *bt_of(ra_bundle *const *b, run_ref r) { return &b[r.bundle]->traces[r.trace]; }

static void run_name(uint32_t n_bundles, ra_bundle *const *b, run_ref r, char *out, size_t n)
{
    const ra_bundle_trace *t = bt_of(b, r);
    char base[32];
    if (strcmp(t->scenario, "repeat")) snprintf(base, sizeof base, "%.24s", t->scenario);
    else snprintf(base, sizeof base, "r%u", t->repeat);
    if (n_bundles > 1) snprintf(out, n, "B%u:%s", r.bundle + 1, base);
    else snprintf(out, n, "%s", base);
}

/* How many distinct values of a string field the group's runs hold; counts
 * against the first 16 distinct ones, so it stays linear (and says "16"
 * for "16 or more"). */
static uint32_t count_distinct(ra_bundle *const *b, const group_state *g, size_t offset)
{
    const char *seen[16];
    uint32_t n = 0;
    for (uint32_t r = 0; r < g->n_runs && n < 16; r++) {
        const char *v = (const char *)bt_of(b, g->runs[r]) + offset;
        uint32_t k = 0;
        while (k < n && strcmp(v, seen[k])) k++;
        if (k == n) seen[n++] = v;
    }
    return n;
}

/* The bundles must describe the same experiment for their runs to be pooled. */
static ra_status check_compatible(ra_bundle *const *b, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        const char *what = NULL;
        if (strcmp(b[i]->mode, b[0]->mode)) what = "mode";
        else if (strcmp(b[i]->model_sha256, b[0]->model_sha256)) what = "model file";
        else if (strcmp(b[i]->tokenizer_sha256, b[0]->tokenizer_sha256)) what = "tokenizer";
        else if (strcmp(b[i]->prompts_sha256, b[0]->prompts_sha256)) what = "prompt set";
        else if (b[i]->max_new_tokens != b[0]->max_new_tokens) what = "max_new_tokens";
        if (what)
            return ra_fail(RA_ERR_USAGE, "%s and %s differ in %s; only bundles of the same inputs can be compared",
                           b[0]->dir, b[i]->dir, what);
    }
    return RA_OK;
}

/* Runs by (format, kernel), then in the order given: each group is a slice. */
static int by_group(const void *x, const void *y, void *bundles)
{
    const run_ref *a = x, *b = y;
    const ra_bundle_trace *ta = bt_of(bundles, *a), *tb = bt_of(bundles, *b);
    int c = strcmp(ta->format, tb->format);
    if (!c) c = strcmp(ta->kernel, tb->kernel);
    if (!c) c = (a->bundle > b->bundle) - (a->bundle < b->bundle);
    return c ? c : (a->trace > b->trace) - (a->trace < b->trace);
}

static bool same_group(ra_bundle *const *b, run_ref x, run_ref y)
{
    return !strcmp(bt_of(b, x)->format, bt_of(b, y)->format) && !strcmp(bt_of(b, x)->kernel, bt_of(b, y)->kernel);
}

/* Groups in order of first appearance, as before sorting. */
static int by_first_run(const void *x, const void *y)
{
    const group_state *a = x, *b = y;
    if (a->runs[0].bundle != b->runs[0].bundle) return a->runs[0].bundle < b->runs[0].bundle ? -1 : 1;
    return (a->runs[0].trace > b->runs[0].trace) - (a->runs[0].trace < b->runs[0].trace);
}

/* Groups every run by format@kernel (sorting, so O(n log n) in runs), in
 * order of first appearance; refuses more groups than RA_COMPARE_MAX_GROUPS. */
static ra_status build_groups(ra_comparison *c, ra_bundle *const *b, uint32_t nb, run_ref **all_out, group_state **gs_out)
{
    size_t total = 0;
    for (uint32_t i = 0; i < nb; i++) total += b[i]->n_traces;
    run_ref *all;
    RA_TRY(ra_calloc(&all, total, sizeof *all));
    *all_out = all;
    size_t k = 0;
    for (uint32_t i = 0; i < nb; i++)
        for (uint32_t t = 0; t < b[i]->n_traces; t++) all[k++] = (run_ref){i, t};
    qsort_r(all, total, sizeof *all, by_group, (void *)b);
    size_t n_groups = 0;
    for (size_t r = 0; r < total; r++) n_groups += r == 0 || !same_group(b, all[r - 1], all[r]);
    if (n_groups > RA_COMPARE_MAX_GROUPS)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: %zu format@kernel groups; compare handles at most %d", nb == 1 ? b[0]->dir : "the bundles",
                       n_groups, RA_COMPARE_MAX_GROUPS);
    RA_TRY(ra_calloc(&c->groups, n_groups, sizeof *c->groups));
    group_state *gs;
    RA_TRY(ra_calloc(&gs, n_groups, sizeof *gs));
    *gs_out = gs;
    for (size_t r = 0, g = 0; r < total; r++) {
        if (r > 0 && same_group(b, all[r - 1], all[r])) {
            gs[g - 1].n_runs++;
            continue;
        }
        gs[g].runs = &all[r];
        gs[g++].n_runs = 1;
    }
    qsort(gs, n_groups, sizeof *gs, by_first_run);
    for (size_t g = 0; g < n_groups; g++) {
        const ra_bundle_trace *bt = bt_of(b, gs[g].runs[0]);
        ra_group_verdict *v = &c->groups[g];
        snprintf(v->format, sizeof v->format, "%s", bt->format);
        snprintf(v->kernel, sizeof v->kernel, "%s", bt->kernel);
        snprintf(v->label, sizeof v->label, "%s@%s", bt->format, bt->kernel);
        v->deterministic = bt->deterministic;
    }
    c->n_groups = (uint32_t)n_groups;
    return RA_OK;
}

static const char *const scenario_families[] = {"repeat", "process", "batch", "prefill-decode", "threads", "kernel", "control"};

const char *ra_expectation_name(ra_expectation e)
{
    return e == RA_EXPECT_IDENTICAL ? "identical" : e == RA_EXPECT_DIFFERENT ? "different" : "none";
}

void ra_scenario_verdict_text(const ra_scenario_verdict *sv, char *out, size_t n)
{
    if (sv->identical) {
        snprintf(out, n, "bit-identical (%u run%s, %llu steps each)", sv->n_runs, sv->n_runs == 1 ? "" : "s",
                 (unsigned long long)(sv->n_runs ? sv->steps / sv->n_runs : 0));
        return;
    }
    char gap[64] = "";
    if (!isnan(sv->top2_gap)) /* near-tie or real change: a question only when the token changed */
        snprintf(gap, sizeof gap, ", top-2 gap %.3g%s", sv->top2_gap,
                 !sv->token_changed ? "" : sv->near_tie ? " (near-tie)" : " (real change)");
    snprintf(out, n, "DIFFERENT: %llu/%llu sequences, %llu/%llu steps; first %s at seq %lld step %lld, %s%s",
             (unsigned long long)sv->seqs_differ, (unsigned long long)sv->seqs, (unsigned long long)sv->steps_differ,
             (unsigned long long)sv->steps, sv->first_run, (long long)sv->divergence.seq, (long long)sv->divergence.step,
             sv->token_changed ? "token changed" : "same token, log-probs differ", gap);
}

/* A run's scenario family: the known name it is or starts with before a '-'
 * ("batch-2-1" -> "batch"); an unknown name is its own family. */
static void scenario_family(const char *scenario, char *out, size_t n)
{
    for (size_t i = 0; i < sizeof scenario_families / sizeof *scenario_families; i++) {
        size_t len = strlen(scenario_families[i]);
        if (!strncmp(scenario, scenario_families[i], len) && (scenario[len] == 0 || scenario[len] == '-')) {
            snprintf(out, n, "%s", scenario_families[i]);
            return;
        }
    }
    snprintf(out, n, "%s", scenario);
}

static bool is_control(const ra_bundle_trace *t)
{
    char fam[32];
    scenario_family(t->scenario, fam, sizeof fam);
    return !strcmp(fam, "control");
}

/* The reference is the first run that stored full vectors (so distances use
 * them), else the first run; never a negative control. */
static run_ref pick_reference(ra_bundle *const *b, const group_state *g)
{
    for (uint32_t r = 0; r < g->n_runs; r++)
        if (bt_of(b, g->runs[r])->full && !is_control(bt_of(b, g->runs[r]))) return g->runs[r];
    for (uint32_t r = 0; r < g->n_runs; r++)
        if (!is_control(bt_of(b, g->runs[r]))) return g->runs[r];
    return g->runs[0];
}

/* First step where two traces of the same prompts part: a different step hash,
 * or one sequence ending earlier. */
static ra_step_ref first_difference(const ra_trace *a, const ra_trace *b)
{
    uint32_t ns = a->n_seqs < b->n_seqs ? a->n_seqs : b->n_seqs;
    for (uint32_t i = 0; i < ns; i++) {
        const ra_trace_seq *x = &a->seqs[i], *y = &b->seqs[i];
        uint32_t n = x->n_steps < y->n_steps ? x->n_steps : y->n_steps;
        for (uint32_t k = 0; k < n; k++)
            if (memcmp(x->steps[k].hash, y->steps[k].hash, 32) != 0) return (ra_step_ref){i, k};
        if (x->n_steps != y->n_steps) return (ra_step_ref){i, n};
    }
    if (a->n_seqs != b->n_seqs) return (ra_step_ref){ns, 0};
    return (ra_step_ref){-1, -1};
}

static ra_status same_shape(const ra_trace *a, const ra_trace *b, const char *fa, const char *fb)
{
    if (a->meta.n_vocab != b->meta.n_vocab || a->n_seqs != b->n_seqs)
        return ra_fail(RA_ERR_FORMAT, "%s and %s differ in vocabulary size or number of sequences", fa, fb);
    for (uint32_t i = 0; i < a->n_seqs; i++) {
        const ra_trace_seq *x = &a->seqs[i], *y = &b->seqs[i];
        if (x->n_prompt != y->n_prompt || memcmp(x->prompt_ids, y->prompt_ids, x->n_prompt * sizeof(int32_t)) != 0)
            return ra_fail(RA_ERR_FORMAT, "%s and %s hold different prompts at sequence %u", fa, fb, i);
    }
    return RA_OK;
}

/* Reads run r of a bundle, held to its manifest entry (file SHA-256 first). */
static ra_status read_run(ra_bundle *const *b, run_ref r, ra_trace **out)
{
    return ra_bundle_read_trace(b[r.bundle], r.trace, out);
}

/* The scenario verdict of a family in v, added (empty, expecting e) if new. */
static ra_status scenario_slot(ra_group_verdict *v, const char *family, ra_expectation e, const char *against,
                               ra_scenario_verdict **out)
{
    for (uint32_t i = 0; i < v->n_scenario_verdicts; i++)
        if (!strcmp(v->scenarios[i].scenario, family)) return *out = &v->scenarios[i], RA_OK;
    if (v->n_scenario_verdicts == RA_MAX_SCENARIO_VERDICTS)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: more than %d scenarios", v->label, RA_MAX_SCENARIO_VERDICTS);
    ra_scenario_verdict *sv = &v->scenarios[v->n_scenario_verdicts++];
    memset(sv, 0, sizeof *sv);
    snprintf(sv->scenario, sizeof sv->scenario, "%s", family);
    snprintf(sv->against, sizeof sv->against, "%s", against);
    sv->expect = e;
    sv->identical = true;
    sv->divergence = (ra_step_ref){-1, -1};
    sv->top2_gap = NAN;
    sv->top1_min = 1;
    *out = sv;
    return RA_OK;
}

/* Holds one run t (named name) to the reference: counts its differing
 * sequences and steps, its distances, and the first run to differ gives the
 * divergence. */
static void hold_run(const ra_comparison *c, ra_scenario_verdict *sv, const ra_trace *ref, const ra_trace *t, const char *name)
{
    sv->n_runs++;
    bool same = memcmp(ref->digest, t->digest, 32) == 0;
    if (!same) {
        ra_pair_stats p = {0};
        if (ra_compare_traces(ref, t, !strcmp(c->mode, "generate"), false, &p) != RA_OK) p.kl_mean = NAN; /* shapes were checked */
        if (isnan(p.kl_mean)) sv->kl_max = NAN; /* no full vectors: KL unknown, and stays so */
        else if (p.kl_mean > sv->kl_max) sv->kl_max = p.kl_mean;
        if (p.max_abs > sv->max_abs) sv->max_abs = p.max_abs;
        if (p.top1_agree < sv->top1_min) sv->top1_min = p.top1_agree;
    }
    for (uint32_t i = 0; i < ref->n_seqs; i++) { /* same_shape: t has as many */
        const ra_trace_seq *x = &ref->seqs[i], *y = &t->seqs[i];
        uint32_t n = x->n_steps > y->n_steps ? x->n_steps : y->n_steps;
        sv->seqs++;
        sv->steps += n;
        if (same || memcmp(x->digest, y->digest, 32) == 0) continue;
        sv->seqs_differ++;
        for (uint32_t k = 0; k < n; k++)
            sv->steps_differ += k >= x->n_steps || k >= y->n_steps || memcmp(x->steps[k].hash, y->steps[k].hash, 32) != 0;
    }
    if (same || !sv->identical) return;
    sv->identical = false;
    snprintf(sv->first_run, sizeof sv->first_run, "%s", name);
    ra_step_ref d = first_difference(ref, t);
    sv->divergence = d;
    if (d.seq < 0) return;
    const ra_trace_seq *x = &ref->seqs[d.seq], *y = &t->seqs[d.seq];
    sv->token_changed = d.step >= x->n_steps || d.step >= y->n_steps || x->steps[d.step].token != y->steps[d.step].token;
    if (d.step < x->n_steps && ref->meta.top_k >= 2) {
        const ra_trace_step *st = &x->steps[d.step];
        sv->top2_gap = (double)st->topk_lp[0] - (double)st->topk_lp[1];
        sv->near_tie = sv->top2_gap < RA_NEAR_TIE_NATS;
    }
}

static void scenario_pass(ra_scenario_verdict *sv)
{
    sv->pass = sv->expect == RA_EXPECT_IDENTICAL ? sv->identical
             : sv->expect == RA_EXPECT_DIFFERENT ? !sv->identical && sv->n_runs > 0
             : true;
}

static void group_pass(ra_group_verdict *v)
{
    v->pass = true;
    for (uint32_t i = 0; i < v->n_scenario_verdicts; i++) {
        scenario_pass(&v->scenarios[i]);
        v->pass &= v->scenarios[i].pass;
    }
}

static ra_status judge_group(ra_comparison *c, ra_bundle *const *b, uint32_t nb, uint32_t gi, group_state *g)
{
    ra_group_verdict *v = &c->groups[gi];
    run_ref ref = pick_reference(b, g);
    const ra_bundle_trace *rbt = bt_of(b, ref);
    RA_TRY(read_run(b, ref, &g->ref));
    v->n_runs = g->n_runs;
    run_name(nb, b, ref, v->ref_run, sizeof v->ref_run);
    snprintf(v->scope, sizeof v->scope, "%s", rbt->scope);
    v->n_scopes = count_distinct(b, g, offsetof(ra_bundle_trace, scope));
    v->n_scenarios = count_distinct(b, g, offsetof(ra_bundle_trace, scenario));
    memcpy(v->digest, g->ref->digest, 32);
    for (uint32_t i = 0; i < g->ref->n_seqs; i++) v->steps += g->ref->seqs[i].n_steps;
    v->identical = true;
    v->divergence = (ra_step_ref){-1, -1};
    ra_expectation promise = v->deterministic ? RA_EXPECT_IDENTICAL : RA_EXPECT_NONE;
    ra_scenario_verdict *sv;
    RA_TRY(scenario_slot(v, "repeat", promise, v->ref_run, &sv));
    for (uint32_t r = 0; r < g->n_runs; r++) {
        const ra_bundle_trace *bt = bt_of(b, g->runs[r]);
        if (bt == rbt) continue;
        char name[48], family[32];
        run_name(nb, b, g->runs[r], name, sizeof name);
        scenario_family(bt->scenario, family, sizeof family);
        bool control = !strcmp(family, "control");
        RA_TRY(scenario_slot(v, family, control ? RA_EXPECT_DIFFERENT : promise, v->ref_run, &sv));
        ra_trace *t;
        RA_TRY(read_run(b, g->runs[r], &t)); /* every run, so the verdict rests on bytes, not on the manifest */
        ra_status s = same_shape(g->ref, t, rbt->file, bt->file);
        if (s == RA_OK) hold_run(c, sv, g->ref, t, name);
        if (s == RA_OK && !control && memcmp(t->digest, g->ref->digest, 32) != 0) {
            v->identical = false;
            if (v->n_differing++ == 0) { /* locate only the first differing run */
                snprintf(v->first_differing_run, sizeof v->first_differing_run, "%s", name);
                v->divergence = first_difference(g->ref, t);
            }
        }
        ra_trace_free(t);
        RA_TRY(s);
    }
    group_pass(v);
    return RA_OK;
}

/* "kernel": every kernel of a format held to the format's first one. No
 * kernel promises another's bits, so it is reported, not expected. */
static ra_status judge_kernels(ra_comparison *c, group_state *gs)
{
    for (uint32_t g = 0; g < c->n_groups; g++) {
        ra_group_verdict *v = &c->groups[g];
        uint32_t f = 0;
        while (f < g && strcmp(c->groups[f].format, v->format)) f++;
        if (f == g) continue;
        RA_TRY(same_shape(gs[f].ref, gs[g].ref, c->groups[f].label, v->label));
        ra_scenario_verdict *sv;
        RA_TRY(scenario_slot(v, "kernel", RA_EXPECT_NONE, c->groups[f].label, &sv));
        hold_run(c, sv, gs[f].ref, gs[g].ref, v->label);
        group_pass(v);
    }
    return RA_OK;
}

const double ra_kl_quantile_at[RA_N_KL_QUANTILES] = {1, .999, .99, .95, .90, .5, .10, .05, .01, .001, 0};
const double ra_dp_quantile_at[RA_N_DP_QUANTILES] = {1, .999, .99, .95, .90, .75, .5, .25, .10, .05, .01, .001, 0};

/* Sums over the compared steps of one pair, and every step's KL and Δp for
 * the quantiles. */
typedef struct {
    double l2_sum, max_abs, kl_sum, kl_sq, top1, dp_sum, dp_sq, nll_a, nll_b;
    uint64_t steps, nonfinite, bit_exact;
    bool topk_only;
    double *kl, *dp;       /* one per step (kl only with full vectors) */
    size_t n_kl, n_dp;
} pair_acc;

/* One log-prob of each run: equal bits are equal (a shared -inf or NaN adds
 * nothing); a difference with NaN or inf on either side is counted, not summed. */
static void entry(pair_acc *acc, float a, float b, double *sq, double *kl)
{
    if (ra_f32_bits(a) == ra_f32_bits(b)) return;
    if (!isfinite(a) || !isfinite(b)) {
        acc->nonfinite++;
        return;
    }
    double d = (double)a - (double)b;
    *sq += d * d;
    if (fabs(d) > acc->max_abs) acc->max_abs = fabs(d);
    *kl += exp((double)a) * d;
}

/* One step on the full vectors; returns its KL(a || b), *l2 its L2. */
static double step_full(pair_acc *acc, const float *a, const float *b, uint32_t n, double *l2)
{
    double sq = 0, kl = 0;
    for (uint32_t v = 0; v < n; v++) entry(acc, a[v], b[v], &sq, &kl);
    *l2 = sqrt(sq);
    acc->kl[acc->n_kl++] = kl;
    acc->kl_sum += kl;
    acc->kl_sq += kl * kl;
    acc->top1 += ra_argmax(a, n) == ra_argmax(b, n);
    return kl;
}

/* Without full vectors: the entries both top-k lists hold; returns NaN (no KL). */
static double step_topk(pair_acc *acc, const ra_trace_step *a, const ra_trace_step *b, uint32_t k, double *l2)
{
    double sq = 0, kl = 0;
    for (uint32_t i = 0; i < k; i++)
        for (uint32_t j = 0; j < k; j++)
            if (a->topk_id[i] == b->topk_id[j]) entry(acc, a->topk_lp[i], b->topk_lp[j], &sq, &kl);
    *l2 = sqrt(sq);
    acc->top1 += k > 0 && a->topk_id[0] == b->topk_id[0]; /* top-k ranks NaN last, as ra_argmax does */
    acc->topk_only = true;
    return NAN;
}

/* b's log-prob of token t at this step: from its full vector, its own token
 * or its top-k list; NaN when it holds none. */
static double logprob_of(const ra_trace_step *b, int32_t t, uint32_t n_vocab, uint32_t k)
{
    if (b->full && t >= 0 && (uint32_t)t < n_vocab) return b->full[t];
    if (b->token == t) return b->logprob;
    for (uint32_t i = 0; i < k; i++)
        if (b->topk_id[i] == t) return b->topk_lp[i];
    return NAN;
}

/* Δp and the log-likelihoods of the base's token t = a->token. */
static void step_token(pair_acc *acc, const ra_trace_step *a, const ra_trace_step *b, uint32_t n_vocab, uint32_t k)
{
    double la = a->logprob, lb = logprob_of(b, a->token, n_vocab, k);
    acc->nll_a -= la;
    acc->nll_b -= lb; /* NaN when b does not hold t: then no perplexity either */
    double dp = exp(lb) - exp(la);
    if (isnan(dp)) return;
    acc->dp[acc->n_dp++] = dp;
    acc->dp_sum += dp;
    acc->dp_sq += dp * dp;
}

static int by_value(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Sorted values at each fraction, interpolated linearly at f x (n - 1). */
static void quantiles(double *v, size_t n, const double *at, size_t m, double *out)
{
    if (n) qsort(v, n, sizeof *v, by_value);
    for (size_t i = 0; i < m; i++) {
        if (!n) {
            out[i] = NAN;
            continue;
        }
        double x = at[i] * (double)(n - 1);
        size_t lo = (size_t)x, hi = lo + 1 < n ? lo + 1 : n - 1;
        out[i] = v[lo] + (x - (double)lo) * (v[hi] - v[lo]);
    }
}

/* Mean with llama.cpp's uncertainty: the standard error, 0 for 10 values or fewer. */
static double std_error(double sum, double sq, uint64_t n)
{
    if (n <= 10) return 0;
    double m = sum / (double)n, var = sq / (double)n - m * m;
    return var > 0 ? sqrt(var / (double)(n - 1)) : 0;
}

void ra_pair_stats_free(ra_pair_stats *p)
{
    free(p->kl_curve);
    free(p->l2_curve);
    free(p->seq_divergence);
    p->kl_curve = p->l2_curve = NULL;
    p->seq_divergence = NULL;
    p->n_curve = 0;
}

/* Per step index, sums of KL and L2 and how many sequences reached it. */
static ra_status alloc_figures(const ra_trace *a, const ra_trace *b, ra_pair_stats *p, uint32_t **count)
{
    uint32_t longest = 0;
    for (uint32_t i = 0; i < a->n_seqs; i++) {
        uint32_t n = a->seqs[i].n_steps < b->seqs[i].n_steps ? a->seqs[i].n_steps : b->seqs[i].n_steps;
        if (n > longest) longest = n;
    }
    p->n_curve = longest;
    RA_TRY(ra_calloc(&p->kl_curve, longest ? longest : 1, sizeof *p->kl_curve));
    RA_TRY(ra_calloc(&p->l2_curve, longest ? longest : 1, sizeof *p->l2_curve));
    RA_TRY(ra_calloc(&p->seq_divergence, a->n_seqs ? a->n_seqs : 1, sizeof *p->seq_divergence));
    return ra_calloc(count, longest ? longest : 1, sizeof **count);
}

static ra_status pair_steps(const ra_trace *a, const ra_trace *b, bool generate, bool figures, ra_pair_stats *p, pair_acc *acc,
                            uint32_t *count)
{
    uint32_t k = a->meta.top_k < b->meta.top_k ? a->meta.top_k : b->meta.top_k;
    for (uint32_t i = 0; i < a->n_seqs; i++) {
        const ra_trace_seq *x = &a->seqs[i], *y = &b->seqs[i];
        uint32_t n = x->n_steps < y->n_steps ? x->n_steps : y->n_steps;
        bool same_tokens = x->n_steps == y->n_steps;
        if (figures) p->seq_divergence[i] = same_tokens ? -1 : (int32_t)n;
        for (uint32_t s = 0; s < n; s++) {
            const ra_trace_step *sa = &x->steps[s], *sb = &y->steps[s];
            bool parted = generate ? sa->token != sb->token : memcmp(sa->hash, sb->hash, 32) != 0;
            if (parted && p->divergence.seq < 0) p->divergence = (ra_step_ref){i, s};
            if (parted && figures && (p->seq_divergence[i] < 0 || (uint32_t)p->seq_divergence[i] > s)) p->seq_divergence[i] = (int32_t)s;
            double l2, kl = sa->full && sb->full ? step_full(acc, sa->full, sb->full, a->meta.n_vocab, &l2) : step_topk(acc, sa, sb, k, &l2);
            step_token(acc, sa, sb, a->meta.n_vocab, k);
            acc->l2_sum += l2;
            acc->bit_exact += memcmp(sa->hash, sb->hash, 32) == 0;
            acc->steps++;
            if (figures) {
                p->kl_curve[s] += kl;
                p->l2_curve[s] += l2;
                count[s]++;
            }
            if (generate && sa->token != sb->token) {
                same_tokens = false;
                break;
            }
        }
        if (!generate) same_tokens = true; /* the tokens are the given continuation */
        p->seqs_same_tokens += same_tokens;
    }
    return RA_OK;
}

ra_status ra_compare_traces(const ra_trace *a, const ra_trace *b, bool generate, bool figures, ra_pair_stats *p)
{
    char na[72], nb[72];
    snprintf(na, sizeof na, "%s@%s", a->meta.format, a->meta.kernel);
    snprintf(nb, sizeof nb, "%s@%s", b->meta.format, b->meta.kernel);
    RA_TRY(same_shape(a, b, na, nb));
    pair_acc acc = {0};
    uint32_t *count = NULL;
    p->n_seqs = a->n_seqs;
    p->divergence = (ra_step_ref){-1, -1};
    p->identical = memcmp(a->digest, b->digest, 32) == 0;
    size_t bound = 0;
    for (uint32_t i = 0; i < a->n_seqs; i++) bound += a->seqs[i].n_steps < b->seqs[i].n_steps ? a->seqs[i].n_steps : b->seqs[i].n_steps;
    ra_status s = ra_calloc(&acc.kl, bound ? bound : 1, sizeof *acc.kl);
    if (s == RA_OK) s = ra_calloc(&acc.dp, bound ? bound : 1, sizeof *acc.dp);
    if (s == RA_OK && figures) s = alloc_figures(a, b, p, &count);
    if (s == RA_OK) s = pair_steps(a, b, generate, figures, p, &acc, count);
    if (s == RA_OK) {
        p->steps = acc.steps;
        p->bit_exact_steps = acc.bit_exact;
        p->full = !acc.topk_only;
        double n = acc.steps ? (double)acc.steps : 1;
        p->l2_mean = acc.l2_sum / n;
        p->max_abs = acc.max_abs;
        p->kl_mean = acc.topk_only ? NAN : acc.kl_sum / n;
        p->kl_unc = acc.topk_only ? NAN : std_error(acc.kl_sum, acc.kl_sq, acc.steps);
        quantiles(acc.kl, acc.topk_only ? 0 : acc.n_kl, ra_kl_quantile_at, RA_N_KL_QUANTILES, p->kl_q);
        p->dp_steps = acc.n_dp;
        p->dp_mean = acc.n_dp ? acc.dp_sum / (double)acc.n_dp : NAN;
        p->dp_rms = acc.n_dp ? sqrt(acc.dp_sq / (double)acc.n_dp) : NAN;
        quantiles(acc.dp, acc.n_dp, ra_dp_quantile_at, RA_N_DP_QUANTILES, p->dp_q);
        p->top1_agree = acc.steps ? acc.top1 / n : 1;
        p->ppl_a = generate || !acc.steps ? NAN : exp(acc.nll_a / n);
        p->ppl_b = generate || !acc.steps ? NAN : exp(acc.nll_b / n);
        p->nonfinite = acc.nonfinite;
        for (uint32_t i = 0; figures && i < p->n_curve; i++) {
            p->kl_curve[i] = acc.topk_only || !count[i] ? NAN : p->kl_curve[i] / count[i];
            p->l2_curve[i] = count[i] ? p->l2_curve[i] / count[i] : NAN;
        }
    }
    free(acc.kl);
    free(acc.dp);
    free(count);
    if (s != RA_OK) ra_pair_stats_free(p);
    return s;
}

/* The order of precision of formats, for the default base and for which side
 * of a pair is its base: f32, f16, bf16, then everything else. */
static int precision_rank(const char *format)
{
    static const char *const order[] = {"f32", "f16", "bf16"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(format, order[i])) return i;
    return 3;
}

static ra_status pick_base(ra_comparison *c, const char *spec)
{
    c->base = 0;
    if (!spec) {
        for (uint32_t g = 1; g < c->n_groups; g++)
            if (precision_rank(c->groups[g].format) < precision_rank(c->groups[c->base].format)) c->base = g;
        return RA_OK;
    }
    for (uint32_t g = 0; g < c->n_groups; g++) /* an exact label first, then the first group of a bare format */
        if (!strcmp(spec, c->groups[g].label)) return c->base = g, RA_OK;
    for (uint32_t g = 0; g < c->n_groups; g++)
        if (!strchr(spec, '@') && !strcmp(spec, c->groups[g].format)) return c->base = g, RA_OK;
    char have[512] = "", e[128];
    for (uint32_t g = 0; g < c->n_groups && strlen(have) < sizeof have - 80; g++)
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", g ? ", " : "", c->groups[g].label);
    return ra_fail(RA_ERR_USAGE, "--base '%s': no such format@kernel in the bundles (they hold %s)", ra_esc(e, sizeof e, spec), have);
}

/* Which group of a pair is its base side. */
static bool a_is_base(const ra_comparison *c, uint32_t i, uint32_t j)
{
    if (i == c->base || j == c->base) return i == c->base;
    int ri = precision_rank(c->groups[i].format), rj = precision_rank(c->groups[j].format);
    return ri != rj ? ri < rj : i < j;
}

/* NaN sorts last. */
static int cmp_num(double a, double b)
{
    if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
    return (a > b) - (a < b);
}

static int pair_order(const void *x, const void *y)
{
    const ra_pair_stats *a = x, *b = y;
    if (a->with_base != b->with_base) return a->with_base ? -1 : 1;
    if (a->full != b->full) return a->full ? -1 : 1;
    int c = a->full ? cmp_num(a->kl_mean, b->kl_mean) : cmp_num(1 - a->top1_agree, 1 - b->top1_agree);
    if (!c) c = cmp_num(a->l2_mean, b->l2_mean);
    if (!c) c = (a->a > b->a) - (a->a < b->a);
    return c ? c : (a->b > b->b) - (a->b < b->b);
}

/* "compare: what k/n (elapsed, time left)" on one line of stderr. */
static void progress(bool on, const char *what, size_t done, size_t total, double t0)
{
    if (!on) return;
    double el = ra_now() - t0, left = done ? el / (double)done * (double)(total - done) : 0;
    fprintf(stderr, "\rcompare: %s %zu/%zu  %.1fs, about %.0fs left   %s", what, done, total, el, left, done == total ? "\n" : "");
    fflush(stderr);
}

static ra_status compare_all(ra_comparison *c, ra_bundle *const *b, uint32_t nb, group_state *gs, const ra_compare_opts *o)
{
    double t0 = ra_now();
    for (uint32_t g = 0; g < c->n_groups; g++) {
        RA_TRY(judge_group(c, b, nb, g, &gs[g]));
        progress(o->progress, "format@kernel groups read", g + 1, c->n_groups, t0);
    }
    RA_TRY(judge_kernels(c, gs));
    c->ok = true;
    for (uint32_t g = 0; g < c->n_groups; g++) c->ok &= c->groups[g].pass;
    RA_TRY(pick_base(c, o->base));
    size_t ng = c->n_groups, np = ng ? ng * (ng - 1) / 2 : 0; /* size_t, and groups are capped */
    if (np == 0) return RA_OK; /* and no qsort(NULL, 0): its pointer must not be NULL */
    RA_TRY(ra_calloc(&c->pairs, np, sizeof *c->pairs));
    bool generate = !strcmp(c->mode, "generate");
    t0 = ra_now();
    for (uint32_t i = 0; i < c->n_groups; i++)
        for (uint32_t j = i + 1; j < c->n_groups; j++) {
            ra_pair_stats *p = &c->pairs[c->n_pairs++];
            bool ai = a_is_base(c, i, j);
            p->a = ai ? i : j;
            p->b = ai ? j : i;
            p->with_base = p->a == c->base;
            RA_TRY(ra_compare_traces(gs[p->a].ref, gs[p->b].ref, generate, p->with_base, p));
            progress(o->progress, "pairs compared", c->n_pairs, np, t0);
        }
    qsort(c->pairs, c->n_pairs, sizeof *c->pairs, pair_order);
    return RA_OK;
}

ra_status ra_compare_bundles(const char *const *dirs, uint32_t n, ra_comparison **out)
{
    ra_compare_opts o = {0};
    return ra_compare_bundles_opts(dirs, n, &o, out);
}

ra_status ra_compare_bundles_opts(const char *const *dirs, uint32_t n, const ra_compare_opts *o, ra_comparison **out)
{
    *out = NULL;
    if (n == 0) return ra_fail(RA_ERR_USAGE, "compare needs at least one bundle");
    ra_comparison *c;
    RA_TRY(ra_calloc(&c, 1, sizeof *c));
    ra_bundle **b = NULL;
    group_state *gs = NULL;
    run_ref *all = NULL;
    ra_status s = ra_calloc(&b, n, sizeof *b);
    if (s == RA_OK) s = ra_calloc(&c->bundle_dirs, n, sizeof *c->bundle_dirs);
    for (uint32_t i = 0; s == RA_OK && i < n; i++) {
        s = ra_bundle_open(dirs[i], &b[i]);
        if (s == RA_OK) s = ra_strdup(&c->bundle_dirs[i], dirs[i]);
        if (s == RA_OK) c->n_bundles = i + 1;
    }
    if (s == RA_OK) s = check_compatible(b, n);
    if (s == RA_OK) {
        snprintf(c->mode, sizeof c->mode, "%s", b[0]->mode);
        snprintf(c->model_name, sizeof c->model_name, "%s", b[0]->model_name);
        memcpy(c->model_sha256, b[0]->model_sha256, sizeof c->model_sha256);
        c->n_prompts = b[0]->n_prompts;
        s = build_groups(c, b, n, &all, &gs);
    }
    if (s == RA_OK) s = compare_all(c, b, n, gs, o);
    for (uint32_t g = 0; gs && g < c->n_groups; g++) ra_trace_free(gs[g].ref);
    free(gs);
    free(all);
    for (uint32_t i = 0; b && i < n; i++) ra_bundle_close(b[i]);
    free(b);
    if (s != RA_OK) {
        ra_comparison_free(c);
        return s;
    }
    *out = c;
    return RA_OK;
}

ra_step_ref ra_first_difference(const ra_trace *a, const ra_trace *b) { return first_difference(a, b); }

void ra_comparison_free(ra_comparison *c)
{
    if (!c) return;
    for (uint32_t i = 0; i < c->n_bundles; i++) free(c->bundle_dirs[i]);
    free(c->bundle_dirs);
    free(c->groups);
    for (uint32_t i = 0; i < c->n_pairs; i++) ra_pair_stats_free(&c->pairs[i]);
    free(c->pairs);
    free(c);
}
