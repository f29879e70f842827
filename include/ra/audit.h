/* The audit: prompts in, a bundle of hashed traces out. */
#ifndef RA_AUDIT_H
#define RA_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/engine.h"
#include "ra/model.h"
#include "ra/status.h"
#include "ra/tokenizer.h"

/* A prompt set is JSONL, one object per line:
 *   {"id": "greeting", "text": "<|im_start|>user\nHi<|im_end|>\n"}   (special tokens parsed)
 *   {"id": "raw", "ids": [1, 2, 3]}                                      (token ids as given)
 * optional "continuation": text or "continuation_ids": [...] for score mode. */
typedef struct {
    char *id;
    int32_t *ids;
    size_t n_ids;
    int32_t *cont;      /* continuation ids, NULL when none */
    size_t n_cont;
} ra_prompt;

typedef struct {
    char *path;
    uint8_t sha256[32];
    size_t n;
    ra_prompt *items;
} ra_prompt_set;

/* The name of the prompt set built into the binary (data/prompts.jsonl at build time). */
#define RA_DEFAULT_PROMPTS "built-in:data/prompts.jsonl"
/* path NULL: the built-in set. Each line is parsed by ra_json_parse (strict:
 * no NUL, duplicate key or trailing data). A prompt with its continuation may
 * be at most max_tokens tokens (the model's context length); a text that
 * cannot fit is refused before it is tokenized. The file may be at most
 * RA_PROMPTS_MAX_BYTES. */
#define RA_PROMPTS_MAX_BYTES ((size_t)64 << 20)
ra_status ra_prompts_load(const char *path, const ra_tokenizer *tok, uint32_t n_vocab, uint32_t max_tokens,
                          ra_prompt_set **out);
/* Every sequence the run will make (prompt + continuation or max_new tokens,
 * as ra_generate sizes it) fits the context length; else a message naming it. */
ra_status ra_prompts_fit(const ra_prompt_set *ps, uint32_t context, uint32_t max_new, bool score);
void ra_prompts_free(ra_prompt_set *p);

typedef enum { RA_STORE_NONE, RA_STORE_FIRST, RA_STORE_ALL } ra_store_full;
/* Where bare format names run: auto = the GPU when one can be used. */
typedef enum { RA_DEVICE_AUTO, RA_DEVICE_CPU, RA_DEVICE_GPU } ra_device;

typedef struct {
    const char *model_path;
    const char *prompts_path;   /* NULL: the built-in set */
    const char *out_dir;
    const char *const *formats; /* "format" or "format@kernel" (ra_format_resolve) */
    size_t n_formats;
    ra_device device;
    uint32_t max_new_tokens;
    uint32_t repeats;
    uint32_t top_k;
    uint32_t threads;           /* 0 = all CPUs */
    bool score;                 /* score mode (teacher-forced) instead of generate */
    bool ignore_eos;
    /* Scenarios besides the repeats (docs/scenarios.md); each is a run held to repeat 0. */
    bool batch_scenario;        /* every prompt alone, then in batches of 2..batch_max at each position */
    uint32_t batch_max;         /* 0: RA_DEFAULT_BATCH_MAX */
    bool process_scenario;      /* `processes` fresh processes (this binary, re-executed), one run each */
    uint32_t processes;         /* 0: RA_DEFAULT_PROCESSES */
    bool prefill_decode_scenario; /* generate mode: each generated sequence re-scored in one prefill pass */
    bool threads_scenario;      /* CPU kernels: once more on another thread count (1, or 2 when running on 1) */
    bool control_scenario;      /* negative control: one weight one ulp off (perturb); must differ */
    const char *perturb;        /* "LAYER:TENSOR" (ra_perturb_parse); NULL: RA_DEFAULT_PERTURB */
    uint32_t first_repeat;      /* number of the first run: a process scenario's child is told its own */
    const char *plant;          /* "LAYER:TENSOR": every run's model has that weight one ulp off (a planted
                                   difference, to show a gate or `locate` failing); recorded in the manifest */
    bool no_graphs;             /* CUDA: no graph capture of decode steps */
    ra_store_full store_full;
    bool progress;              /* progress lines on stderr */
    /* Derived checkpoint formats (awq, gptq, fp8, ...): */
    const char *cache_dir;      /* NULL: ra_cache_dir_default */
    bool no_cache;              /* derive into a temporary directory, removed at the end */
    const char *calib_path;     /* calibration text of gptq-cal and act-order (NULL: RA_DEFAULT_TEXT) */
} ra_run_opts;

#define RA_DEFAULT_BATCH_MAX 3
#define RA_DEFAULT_PROCESSES 2
#define RA_DEFAULT_PERTURB "0:down_proj"

/* n_formats 0: the checkpoint's own format for a quantized checkpoint, else
 * q4_1, f32 and bf16. */
#define RA_DEFAULT_FORMATS "q4_1,f32,bf16"

/* Runs the audit and writes the bundle at opts->out_dir (atomically: the
 * directory appears only when complete). */
ra_status ra_run(const ra_run_opts *opts);

/* One greedy generation (or scoring) pass of every prompt with one model;
 * exposed for tests. For each prompt, steps[i] holds n_steps[i] tokens and
 * n_steps[i] x n_vocab log-probs. */
typedef struct {
    size_t n_seqs;
    uint32_t *n_steps;
    int32_t **tokens;
    float **logprobs;
    double decode_seconds;
    uint64_t decode_tokens;
} ra_gen_result;

typedef void (*ra_progress_fn)(void *ctx, uint32_t step, uint32_t total);
ra_status ra_generate(ra_engine *e, const ra_prompt_set *ps, uint32_t max_new_tokens, bool score, bool ignore_eos,
                      ra_progress_fn progress, void *progress_ctx, ra_gen_result *out);
void ra_gen_result_free(ra_gen_result *r);

#endif
