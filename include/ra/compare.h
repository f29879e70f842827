/* Comparing bundles: per format@kernel, are the repeats bit-identical (and if
 * not, where do they first part); between formats, how far apart are they.
 *
 * Every run of one format@kernel, across all bundles given, is held to the
 * first one (its reference). Pairwise statistics use each group's reference
 * run, step by step, on the full log-prob vectors when both runs stored them
 * and on the shared top-k entries otherwise, with one group as the base
 * (llama.cpp's --kl-divergence statistics, ra_pair_stats). In generate mode a sequence is
 * compared up to and including its first step whose tokens differ: after that
 * the two runs condition on different text.
 *
 * Verdicts come from the trace bytes: every run is read from its bundle and
 * held to its manifest entry (ra_bundle_read_trace: file SHA-256, recomputed
 * hashes and digest, format/kernel/repeat/mode) before its digest counts.
 *
 * Non-finite log-probs: two values with the same bits are equal (a -inf or a
 * NaN both runs share adds nothing); where the bits differ and either value is
 * NaN or infinite, the entry is counted in nonfinite_values and left out of
 * L2, max |diff| and KL, which stay finite. The most likely token ranks NaN
 * below every number (ra_argmax, the first top-k entry). */
#ifndef RA_COMPARE_H
#define RA_COMPARE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "ra/bundle.h"
#include "ra/status.h"

/* format@kernel groups one comparison handles: the pairs grow as its square. */
#define RA_COMPARE_MAX_GROUPS 256

typedef struct {
    int64_t seq, step;   /* -1, -1 when there is none */
} ra_step_ref;

/* Scenarios (`run --scenarios`, docs/scenarios.md): each run's manifest
 * "scenario" is a family name, or a family name, '-' and a variant
 * ("batch-2-1", "process-3"); verdicts are per family. */
typedef enum {
    RA_EXPECT_IDENTICAL,     /* the kernel promises bit-identical results here */
    RA_EXPECT_DIFFERENT,     /* a negative control: it must differ */
    RA_EXPECT_NONE           /* no promise (a nondeterministic kernel, another kernel): reported only */
} ra_expectation;

#define RA_MAX_SCENARIO_VERDICTS 12

/* One scenario of one format@kernel: its runs held to the group's reference
 * run (for "kernel": this kernel's reference held to the format's first
 * kernel's). Shares count over every run of the scenario: a sequence differs
 * when its digest does, a step when its step hash does (or one run has it and
 * the other not). */
typedef struct {
    char scenario[32];       /* family: "repeat", "process", "batch", "prefill-decode", "threads", "kernel", "control" */
    char against[72];        /* the run it is held to: "r0", "B2:r0", or "q4_1@cpu" for kernel */
    ra_expectation expect;
    uint32_t n_runs;
    bool identical;          /* every run bit-identical to the reference */
    uint64_t seqs, seqs_differ;
    uint64_t steps, steps_differ;
    char first_run[48];      /* the first differing run ("batch-2-1", "B2:r1", "q4_1@ggml-avx2") */
    ra_step_ref divergence;  /* its first differing (sequence, step) */
    bool token_changed;      /* the token at the divergence differs, not just the log-probs */
    double top2_gap;         /* the reference's top-1 minus top-2 log-prob there (nats); NaN without one */
    bool near_tie;           /* top2_gap below RA_NEAR_TIE_NATS */
    /* Distances of the farthest run from the reference (as in ra_pair_stats,
     * reference first: KL(reference || run)); 0, 0, 1 when identical. */
    double kl_max;           /* largest mean KL; NaN when a run lacks full vectors */
    double max_abs;          /* largest |difference| of any log-prob */
    double top1_min;         /* smallest share of steps whose most likely token agrees */
    bool pass;               /* identical when expected; differs when a control; always when no promise */
} ra_scenario_verdict;

/* A divergence whose reference top-2 gap is below this is a near-tie. */
#define RA_NEAR_TIE_NATS 0.01

const char *ra_expectation_name(ra_expectation e);
/* One line: "bit-identical (3 runs)" or the shares, the first divergence and
 * its top-2 gap ("DIFFERENT: 2/10 sequences, 15/320 steps; first batch-2-1 at
 * seq 3 step 7, token changed, top-2 gap 0.0031 (near-tie)"). */
void ra_scenario_verdict_text(const ra_scenario_verdict *sv, char *out, size_t n);

typedef struct {
    char label[72];          /* "q4_1@cpu" */
    char format[32], kernel[32];
    bool deterministic;      /* the kernel promises bit-identical repeats */
    uint32_t n_runs;
    char ref_run[48];        /* "r0" or "B2:r0" when several bundles */
    uint8_t digest[32];      /* the reference run's trace digest */
    uint64_t steps;          /* steps in the reference run */
    bool identical;          /* every run has the reference's digest */
    uint32_t n_differing;
    char first_differing_run[48];
    ra_step_ref divergence;  /* first step where that run parts from the reference */
    bool pass;               /* every expectation held (each scenario's pass) */
    char scope[320];         /* where the runs ran (the reference run's scope) */
    uint32_t n_scopes;       /* distinct scopes among the runs (machines, GPUs, builds) */
    uint32_t n_scenarios;    /* distinct scenarios among the runs (repeat, batch-alone, ...) */
    /* Per scenario family, "repeat" first; the fields above cover every run
     * but the negative controls. pass is every scenario's pass. */
    uint32_t n_scenario_verdicts;
    ra_scenario_verdict scenarios[RA_MAX_SCENARIO_VERDICTS];
} ra_group_verdict;

/* Quantiles reported for the per-step KL and Δp values, in llama.cpp's
 * --kl-divergence order: linear interpolation between the sorted values at
 * fraction x (n - 1), so the median of an even count is the mean of the
 * middle two. */
#define RA_N_KL_QUANTILES 11
#define RA_N_DP_QUANTILES 13
extern const double ra_kl_quantile_at[RA_N_KL_QUANTILES]; /* 1, .999, .99, .95, .90, .5, .10, .05, .01, .001, 0 */
extern const double ra_dp_quantile_at[RA_N_DP_QUANTILES]; /* 1, .999, .99, .95, .90, .75, .5, .25, .10, .05, .01, .001, 0 */

/* Two format@kernel groups compared step by step, a as the base: the
 * comparison's base when it is one of them, else the one of higher
 * precision (f32, f16, bf16, then the rest in order of appearance).
 * Means pool every compared step of every sequence (a long sequence
 * weighs more). With a the base, in llama.cpp's terms (Q = b):
 *   KLD  = KL(P_a || P_b) = sum_v p_a(v) (lp_a(v) - lp_b(v)), nats, per step;
 *   Δp   = p_b(t) - p_a(t), t the base's token at that step (generate: the
 *          token a chose; score: the given token);
 *   RMS Δp = sqrt(mean Δp^2); same top p = share of steps whose most likely
 *   token is the same in both;
 *   PPL  = exp(mean over the steps of -lp(t)) (score mode only). */
typedef struct {
    uint32_t a, b;           /* group indices; a is the base side */
    bool with_base;          /* a is the comparison's base */
    bool identical;          /* same trace digest */
    bool full;               /* every compared step had both full vectors */
    uint64_t steps;          /* steps compared */
    uint64_t bit_exact_steps; /* compared steps whose step hashes are equal */
    double l2_mean;          /* mean over steps of the L2 norm of the log-prob difference */
    double max_abs;          /* largest |difference| of any log-prob */
    double kl_mean;          /* mean KLD in nats; NaN without full vectors */
    double kl_unc;           /* its standard error, sqrt(var / (n - 1)) (0 for n <= 10, as llama.cpp) */
    double kl_q[RA_N_KL_QUANTILES];   /* at ra_kl_quantile_at; NaN without full vectors */
    double dp_mean, dp_rms;  /* Δp; NaN where no step has p_b(t) (top-k lists without t) */
    double dp_q[RA_N_DP_QUANTILES];   /* at ra_dp_quantile_at */
    uint64_t dp_steps;       /* steps with a Δp (all of them with full vectors) */
    double top1_agree;       /* "same top p": share of steps whose most likely token agrees */
    double ppl_a, ppl_b;     /* score mode: perplexity of the given tokens; NaN in generate mode */
    uint64_t nonfinite;      /* entries whose bits differ with NaN or inf on a side (not in l2/max/kl) */
    uint32_t seqs_same_tokens, n_seqs;
    ra_step_ref divergence;  /* first step whose token (generate) or log-probs (score) differ */
    /* For figures, only on pairs with the base: per step index, the mean KL
     * (NaN without full vectors) and L2 over the sequences compared there;
     * per sequence, its first divergent step (-1: none). */
    uint32_t n_curve;
    double *kl_curve, *l2_curve;
    int32_t *seq_divergence; /* n_seqs entries */
} ra_pair_stats;

typedef struct {
    uint32_t n_bundles;
    char **bundle_dirs;
    char mode[16];
    char model_name[128], model_sha256[65];
    uint32_t n_prompts;
    uint32_t n_groups;
    ra_group_verdict *groups;
    uint32_t n_pairs;
    uint32_t base;           /* group index of the base of the quality statistics */
    ra_pair_stats *pairs;    /* pairs with the base first, then the others; within each,
                                full-vector pairs before top-k-only ones; then by
                                ascending kl_mean (top-k: by 1 - top1_agree, then l2_mean) */
    bool ok;                 /* every expectation held */
} ra_comparison;

/* Loads the bundles (they must share model, tokenizer, prompts, mode and
 * max_new_tokens) and computes verdicts and pairwise distances. A failing
 * expectation is not an error: it is c->ok == false. */
ra_status ra_compare_bundles(const char *const *dirs, uint32_t n, ra_comparison **out);
typedef struct {
    const char *base;        /* "FORMAT" or "FORMAT@KERNEL"; NULL: the highest precision present */
    bool progress;           /* a line per run read, on stderr */
} ra_compare_opts;
ra_status ra_compare_bundles_opts(const char *const *dirs, uint32_t n, const ra_compare_opts *o, ra_comparison **out);
/* The pairwise statistics of two traces of the same prompts (a as the base),
 * as compare computes them (generate: the mode); with figures, also the
 * per-step curves and per-sequence divergences, which ra_pair_stats_free
 * releases. RA_ERR_FORMAT when the traces hold other prompts or vocabularies. */
ra_status ra_compare_traces(const struct ra_trace *a, const struct ra_trace *b, bool generate, bool figures, ra_pair_stats *p);
void ra_pair_stats_free(ra_pair_stats *p);
void ra_comparison_free(ra_comparison *c);
struct ra_trace;
/* First (sequence, step) where two traces of the same prompts part: a
 * different step hash, or one sequence ending earlier; -1, -1 when none. */
ra_step_ref ra_first_difference(const struct ra_trace *a, const struct ra_trace *b);

/* Output (src/report/report.c): the terminal report, report.json (schema
 * "repro-audit.report", version 2, docs/report-schema.md) and report.md. */
void ra_report_print(const ra_comparison *c, FILE *f);
ra_status ra_report_json(const ra_comparison *c, char **text);
ra_status ra_report_markdown(const ra_comparison *c, char **text);
/* report.html (src/report/html.c): one self-contained page, inline SVG figures. */
ra_status ra_report_html(const ra_comparison *c, char **text);
/* Writes the files atomically; any path may be NULL. */
ra_status ra_report_write(const ra_comparison *c, const char *json_path, const char *md_path);
ra_status ra_report_write_all(const ra_comparison *c, const char *json_path, const char *md_path, const char *html_path);

#endif
