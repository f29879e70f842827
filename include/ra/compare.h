/* Comparing bundles: per format@kernel, are the repeats bit-identical (and if
 * not, where do they first part); between formats, how far apart are they.
 *
 * Every run of one format@kernel, across all bundles given, is held to the
 * first one (its reference). Pairwise distances use each group's reference
 * run, step by step, on the full log-prob vectors when both runs stored them
 * and on the shared top-k entries otherwise. In generate mode a sequence is
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
    bool pass;               /* expectation held (identical, when deterministic) */
    char scope[320];         /* where the runs ran (the reference run's scope) */
    uint32_t n_scopes;       /* distinct scopes among the runs (machines, GPUs, builds) */
    uint32_t n_scenarios;    /* distinct scenarios among the runs (repeat, batch-alone, ...) */
} ra_group_verdict;

typedef struct {
    uint32_t a, b;           /* group indices */
    bool identical;          /* same trace digest */
    bool full;               /* every compared step had both full vectors */
    uint64_t steps;          /* steps compared */
    double l2_mean;          /* mean over steps of the L2 norm of the log-prob difference */
    double max_abs;          /* largest |difference| of any log-prob */
    double kl_mean;          /* mean KL(a || b) in nats; NaN without full vectors */
    double top1_agree;       /* share of steps whose most likely token agrees */
    uint64_t nonfinite;      /* entries whose bits differ with NaN or inf on a side (not in l2/max/kl) */
    uint32_t seqs_same_tokens, n_seqs;
    ra_step_ref divergence;  /* first step whose token (generate) or log-probs (score) differ */
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
    ra_pair_stats *pairs;    /* identical pairs first, then by ascending l2_mean */
    bool ok;                 /* every expectation held */
} ra_comparison;

/* Loads the bundles (they must share model, tokenizer, prompts, mode and
 * max_new_tokens) and computes verdicts and pairwise distances. A failing
 * expectation is not an error: it is c->ok == false. */
ra_status ra_compare_bundles(const char *const *dirs, uint32_t n, ra_comparison **out);
void ra_comparison_free(ra_comparison *c);

/* Output (src/report/report.c): the terminal report, report.json (schema
 * "repro-audit.report", version 1, docs/report-schema.md) and report.md. */
void ra_report_print(const ra_comparison *c, FILE *f);
ra_status ra_report_json(const ra_comparison *c, char **text);
ra_status ra_report_markdown(const ra_comparison *c, char **text);
/* Writes both files atomically; either path may be NULL. */
ra_status ra_report_write(const ra_comparison *c, const char *json_path, const char *md_path);

#endif
