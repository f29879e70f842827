/* Greedy generation and teacher-forced scoring of a prompt set, all prompts
 * batched together. Batching is safe: a row's numbers do not depend on the
 * batch (the engines' contract, include/ra/engine.h), so this is the same as
 * one prompt at a time; the batch scenario of `run` checks that it is. */
#include <stdlib.h>
#include <string.h>

#include "ra/audit.h"
#include "ra/util.h"

void ra_gen_result_free(ra_gen_result *r)
{
    for (size_t i = 0; i < r->n_seqs; i++) {
        if (r->tokens) free(r->tokens[i]);
        if (r->logprobs) free(r->logprobs[i]);
    }
    free(r->tokens);
    free(r->logprobs);
    free(r->n_steps);
    memset(r, 0, sizeof *r);
}

typedef struct {
    uint32_t *seq;
    int32_t *token;
    bool *want;
    uint32_t n, cap;
} batch;

static ra_status batch_add(batch *b, uint32_t seq, int32_t token, bool want)
{
    if (b->n == b->cap) return ra_fail(RA_ERR_INTERNAL, "batch overflow");
    b->seq[b->n] = seq;
    b->token[b->n] = token;
    b->want[b->n] = want;
    b->n++;
    return RA_OK;
}

static bool is_eos(const ra_model_config *c, int32_t tok)
{
    for (uint32_t i = 0; i < c->n_eos; i++)
        if (tok == c->eos_ids[i]) return true;
    return false;
}

ra_status ra_generate(ra_engine *e, const ra_prompt_set *ps, uint32_t max_new, bool score, bool ignore_eos,
                      ra_progress_fn progress, void *progress_ctx, ra_gen_result *out)
{
    const ra_model_config *cfg = ra_engine_config(e);
    const uint32_t V = cfg->n_vocab;
    const size_t n = ps->n;
    memset(out, 0, sizeof *out);
    out->n_seqs = n;
    uint32_t *cap = NULL;
    batch b = {0};
    float *lp = NULL;
    int32_t *next = NULL;
    uint32_t *limit = NULL;
    bool *done = NULL;
    ra_status s;

    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        if (score && !ps->items[i].cont)
            return ra_fail(RA_ERR_USAGE, "score mode: prompt '%s' has no continuation", ps->items[i].id);
        rows += ps->items[i].n_ids + (score ? ps->items[i].n_cont : 0);
    }
    if ((s = ra_calloc(&out->n_steps, n, sizeof *out->n_steps)) != RA_OK ||
        (s = ra_calloc(&out->tokens, n, sizeof *out->tokens)) != RA_OK ||
        (s = ra_calloc(&out->logprobs, n, sizeof *out->logprobs)) != RA_OK ||
        (s = ra_calloc(&cap, n, sizeof *cap)) != RA_OK || (s = ra_calloc(&limit, n, sizeof *limit)) != RA_OK ||
        (s = ra_calloc(&next, n, sizeof *next)) != RA_OK ||
        (s = ra_calloc(&done, n, sizeof *done)) != RA_OK)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const ra_prompt *p = &ps->items[i];
        limit[i] = score ? (uint32_t)p->n_cont : max_new;
        cap[i] = (uint32_t)(p->n_ids + limit[i] + 1);
        if ((s = ra_calloc(&out->tokens[i], limit[i] ? limit[i] : 1, sizeof(int32_t))) != RA_OK ||
            (s = ra_calloc(&out->logprobs[i], (size_t)(limit[i] ? limit[i] : 1) * V, sizeof(float))) != RA_OK)
            goto cleanup;
        done[i] = limit[i] == 0;
    }
    if ((s = ra_engine_begin(e, (uint32_t)n, cap)) != RA_OK) goto cleanup;
    b.cap = (uint32_t)(rows > n ? rows : n);
    if ((s = ra_calloc(&b.seq, b.cap, sizeof *b.seq)) != RA_OK || (s = ra_calloc(&b.token, b.cap, sizeof *b.token)) != RA_OK ||
        (s = ra_calloc(&b.want, b.cap, sizeof *b.want)) != RA_OK)
        goto cleanup;

    if (score) {
        /* Every position at once: the prediction for cont[k] comes from the row before it. */
        size_t n_want = 0;
        for (size_t i = 0; i < n; i++) {
            const ra_prompt *p = &ps->items[i];
            for (size_t t = 0; t < p->n_ids; t++) batch_add(&b, (uint32_t)i, p->ids[t], t + 1 == p->n_ids && p->n_cont > 0);
            for (size_t t = 0; t + 1 < p->n_cont; t++) batch_add(&b, (uint32_t)i, p->cont[t], true);
            n_want += p->n_cont;
        }
        if ((s = ra_calloc(&lp, n_want ? n_want : 1, (size_t)V * sizeof(float))) != RA_OK) goto cleanup;
        double t0 = ra_now();
        if ((s = ra_engine_forward(e, b.seq, b.token, b.want, b.n, lp, NULL)) != RA_OK) goto cleanup;
        out->decode_seconds = ra_now() - t0;
        out->decode_tokens = b.n;
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            const ra_prompt *p = &ps->items[i];
            for (size_t k = 0; k < p->n_cont; k++, j++) {
                out->tokens[i][k] = p->cont[k];
                memcpy(out->logprobs[i] + k * V, lp + j * V, (size_t)V * sizeof(float));
            }
            out->n_steps[i] = (uint32_t)p->n_cont;
        }
        if (progress) progress(progress_ctx, 1, 1);
        goto cleanup;
    }

    /* Generate: prefill every prompt, then decode the live sequences in lockstep. */
    if ((s = ra_calloc(&lp, n, (size_t)V * sizeof(float))) != RA_OK) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const ra_prompt *p = &ps->items[i];
        for (size_t t = 0; t < p->n_ids; t++) batch_add(&b, (uint32_t)i, p->ids[t], t + 1 == p->n_ids && !done[i]);
    }
    if ((s = ra_engine_forward(e, b.seq, b.token, b.want, b.n, lp, next)) != RA_OK) goto cleanup;
    double t0 = ra_now();
    for (uint32_t step = 0;; step++) {
        /* lp holds one vector per live sequence, in sequence order. */
        b.n = 0;
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (done[i]) continue;
            const float *v = lp + j * V;
            int32_t tok = next[j++];
            uint32_t k = out->n_steps[i]++;
            out->tokens[i][k] = tok;
            memcpy(out->logprobs[i] + (size_t)k * V, v, (size_t)V * sizeof(float));
            if (out->n_steps[i] == limit[i] || (!ignore_eos && is_eos(cfg, tok))) done[i] = true;
            else batch_add(&b, (uint32_t)i, tok, true);
        }
        if (progress) progress(progress_ctx, step + 1, max_new);
        if (b.n == 0) break;
        if ((s = ra_engine_forward(e, b.seq, b.token, b.want, b.n, lp, next)) != RA_OK) goto cleanup;
        out->decode_tokens += b.n;
    }
    out->decode_seconds = ra_now() - t0;

cleanup: /* success and failure alike; s says which */
    free(cap); free(next); free(b.seq); free(b.token); free(b.want); free(lp); free(limit); free(done);
    if (s != RA_OK) ra_gen_result_free(out);
    return s;
}
