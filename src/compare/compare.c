/* compare: repeat verdicts per format@kernel and pairwise distances between
 * formats (definitions in include/ra/compare.h). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ra/audit.h"
#include "ra/compare.h"
#include "ra/cpu.h"
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

/* The reference is the first run that stored full vectors (so distances use
 * them), else the first run. */
static run_ref pick_reference(ra_bundle *const *b, const group_state *g)
{
    for (uint32_t r = 0; r < g->n_runs; r++)
        if (bt_of(b, g->runs[r])->full) return g->runs[r];
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
    for (uint32_t r = 0; r < g->n_runs; r++) {
        const ra_bundle_trace *bt = bt_of(b, g->runs[r]);
        if (bt == rbt) continue;
        ra_trace *t;
        RA_TRY(read_run(b, g->runs[r], &t)); /* every run, so the verdict rests on bytes, not on the manifest */
        ra_status s = RA_OK;
        if (memcmp(t->digest, g->ref->digest, 32) != 0) {
            v->identical = false;
            if (v->n_differing++ == 0) { /* locate only the first differing run */
                run_name(nb, b, g->runs[r], v->first_differing_run, sizeof v->first_differing_run);
                s = same_shape(g->ref, t, rbt->file, bt->file);
                v->divergence = first_difference(g->ref, t);
            }
        }
        ra_trace_free(t);
        RA_TRY(s);
    }
    v->pass = v->identical || !v->deterministic;
    return RA_OK;
}

/* Accumulates the distance between two log-prob vectors of one step. */
typedef struct {
    double l2_sum, max_abs, kl_sum, top1;
    uint64_t steps, nonfinite;
    bool topk_only;
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

static void step_full(pair_acc *acc, const float *a, const float *b, uint32_t n)
{
    double sq = 0, kl = 0;
    for (uint32_t v = 0; v < n; v++) entry(acc, a[v], b[v], &sq, &kl);
    acc->l2_sum += sqrt(sq);
    acc->kl_sum += kl;
    acc->top1 += ra_argmax(a, n) == ra_argmax(b, n);
}

/* Without full vectors: the entries both top-k lists hold. */
static void step_topk(pair_acc *acc, const ra_trace_step *a, const ra_trace_step *b, uint32_t k)
{
    double sq = 0, kl = 0;
    for (uint32_t i = 0; i < k; i++)
        for (uint32_t j = 0; j < k; j++)
            if (a->topk_id[i] == b->topk_id[j]) entry(acc, a->topk_lp[i], b->topk_lp[j], &sq, &kl);
    acc->l2_sum += sqrt(sq);
    acc->top1 += k > 0 && a->topk_id[0] == b->topk_id[0]; /* top-k ranks NaN last, as ra_argmax does */
    acc->topk_only = true;
}

static ra_status compare_pair(const ra_comparison *c, const ra_trace *a, const ra_trace *b, ra_pair_stats *p)
{
    bool generate = !strcmp(c->mode, "generate");
    pair_acc acc = {0};
    p->n_seqs = a->n_seqs;
    p->divergence = (ra_step_ref){-1, -1};
    p->identical = memcmp(a->digest, b->digest, 32) == 0;
    uint32_t k = a->meta.top_k < b->meta.top_k ? a->meta.top_k : b->meta.top_k;
    for (uint32_t i = 0; i < a->n_seqs; i++) {
        const ra_trace_seq *x = &a->seqs[i], *y = &b->seqs[i];
        uint32_t n = x->n_steps < y->n_steps ? x->n_steps : y->n_steps;
        bool same_tokens = x->n_steps == y->n_steps;
        for (uint32_t s = 0; s < n; s++) {
            const ra_trace_step *sa = &x->steps[s], *sb = &y->steps[s];
            bool parted = generate ? sa->token != sb->token : memcmp(sa->hash, sb->hash, 32) != 0;
            if (parted && p->divergence.seq < 0) p->divergence = (ra_step_ref){i, s};
            if (sa->full && sb->full) step_full(&acc, sa->full, sb->full, a->meta.n_vocab);
            else step_topk(&acc, sa, sb, k);
            acc.steps++;
            if (generate && sa->token != sb->token) {
                same_tokens = false;
                break;
            }
        }
        if (!generate) same_tokens = true; /* the tokens are the given continuation */
        p->seqs_same_tokens += same_tokens;
    }
    p->steps = acc.steps;
    p->full = !acc.topk_only;
    double n = acc.steps ? (double)acc.steps : 1;
    p->l2_mean = acc.l2_sum / n;
    p->max_abs = acc.max_abs;
    p->kl_mean = acc.topk_only ? NAN : acc.kl_sum / n;
    p->top1_agree = acc.steps ? acc.top1 / n : 1;
    p->nonfinite = acc.nonfinite;
    return RA_OK;
}

static int pair_order(const void *x, const void *y)
{
    const ra_pair_stats *a = x, *b = y;
    if (a->identical != b->identical) return a->identical ? -1 : 1;
    if (a->l2_mean != b->l2_mean) return a->l2_mean < b->l2_mean ? -1 : 1;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    return a->b < b->b ? -1 : a->b > b->b;
}

static ra_status compare_all(ra_comparison *c, ra_bundle *const *b, uint32_t nb, group_state *gs)
{
    for (uint32_t g = 0; g < c->n_groups; g++) RA_TRY(judge_group(c, b, nb, g, &gs[g]));
    c->ok = true;
    for (uint32_t g = 0; g < c->n_groups; g++) c->ok &= c->groups[g].pass;
    size_t ng = c->n_groups, np = ng ? ng * (ng - 1) / 2 : 0; /* size_t, and groups are capped */
    if (np == 0) return RA_OK; /* and no qsort(NULL, 0): its pointer must not be NULL */
    RA_TRY(ra_calloc(&c->pairs, np, sizeof *c->pairs));
    for (uint32_t i = 0; i < c->n_groups; i++)
        for (uint32_t j = i + 1; j < c->n_groups; j++) {
            ra_pair_stats *p = &c->pairs[c->n_pairs++];
            p->a = i;
            p->b = j;
            RA_TRY(same_shape(gs[i].ref, gs[j].ref, c->groups[i].label, c->groups[j].label));
            RA_TRY(compare_pair(c, gs[i].ref, gs[j].ref, p));
        }
    qsort(c->pairs, c->n_pairs, sizeof *c->pairs, pair_order);
    return RA_OK;
}

ra_status ra_compare_bundles(const char *const *dirs, uint32_t n, ra_comparison **out)
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
    if (s == RA_OK) s = compare_all(c, b, n, gs);
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

void ra_comparison_free(ra_comparison *c)
{
    if (!c) return;
    for (uint32_t i = 0; i < c->n_bundles; i++) free(c->bundle_dirs[i]);
    free(c->bundle_dirs);
    free(c->groups);
    free(c->pairs);
    free(c);
}
