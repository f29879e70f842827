/* Perplexity of a model in several formats over the evaluation half of a
 * text (src/audit/ppl.c; the definition is in docs/report-schema.md). */
#ifndef RA_PPL_H
#define RA_PPL_H

#include <stdbool.h>
#include <stdint.h>

#include "ra/quantize.h"

typedef struct {
    const char *model_path;
    const char *text_path;       /* NULL: RA_DEFAULT_TEXT */
    const char *const *formats;  /* "format" or "format@kernel" */
    size_t n_formats;
    uint32_t chunks, ctx;        /* chunks x ctx tokens from the evaluation half */
    uint32_t threads;
    ra_derive_opts derive;
} ra_ppl_opts;

typedef struct {
    char label[72];              /* format@kernel */
    uint64_t tokens;             /* predictions scored: chunks x (ctx - 1) */
    double nll;                  /* mean negative log-likelihood, nats */
    double ppl;                  /* exp(nll) */
    char nll_sha256[65];         /* SHA-256 of the float32 log-probs scored, in order: bit-exactness at a glance */
    double seconds;
} ra_ppl_row;

typedef struct {
    char model_name[128], text_path[512], text_sha256[65];
    uint32_t chunks, ctx;
    size_t n;
    ra_ppl_row *rows;
} ra_ppl_result;

ra_status ra_ppl_run(const ra_ppl_opts *o, ra_ppl_result *out);
void ra_ppl_result_free(ra_ppl_result *r);
/* JSON ("repro-audit.ppl", version 1) and Markdown of a result. */
ra_status ra_ppl_json(const ra_ppl_result *r, char **text);
ra_status ra_ppl_markdown(const ra_ppl_result *r, char **text);

#endif
