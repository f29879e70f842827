/* Perplexity per format (include/ra/ppl.h). Each chunk of ctx tokens is
 * scored from its own start: the log-prob of token i + 1 given tokens 0..i,
 * for i < ctx - 1, every position in one forward pass. Chunks are
 * consecutive and disjoint, from the start of the text's evaluation half
 * (the calibration half is never scored). */
#include "ra/ppl.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/engine.h"
#include "ra/json.h"
#include "ra/textset.h"
#include "ra/util.h"

#define CHUNKS_PER_PASS 4 /* log-prob rows held at once: CHUNKS_PER_PASS x ctx x vocab floats */

static ra_status score(ra_engine *e, const int32_t *ids, uint32_t chunks, uint32_t ctx, ra_ppl_row *row)
{
    const uint32_t V = ra_engine_config(e)->n_vocab, per = CHUNKS_PER_PASS;
    const size_t rows = (size_t)per * ctx;
    uint32_t *seq = NULL, cap[CHUNKS_PER_PASS];
    int32_t *tok = NULL;
    bool *want = NULL;
    float *lp = NULL;
    ra_sha256_ctx *h = NULL;
    double sum = 0;
    ra_status s = ra_calloc(&seq, rows, sizeof *seq);
    if (s == RA_OK) s = ra_calloc(&tok, rows, sizeof *tok);
    if (s == RA_OK) s = ra_calloc(&want, rows, sizeof *want);
    if (s == RA_OK) s = ra_calloc(&lp, rows, (size_t)V * sizeof *lp);
    if (s == RA_OK) s = ra_sha256_new(&h);
    for (uint32_t c0 = 0; c0 < chunks && s == RA_OK; c0 += per) {
        const uint32_t nc = chunks - c0 < per ? chunks - c0 : per;
        uint32_t n = 0;
        for (uint32_t c = 0; c < nc; c++) {
            cap[c] = ctx;
            for (uint32_t i = 0; i < ctx; i++, n++) {
                seq[n] = c;
                tok[n] = ids[(size_t)(c0 + c) * ctx + i];
                want[n] = i + 1 < ctx;
            }
        }
        if ((s = ra_engine_begin(e, nc, cap)) != RA_OK) break;
        if ((s = ra_engine_forward(e, seq, tok, want, n, lp, NULL)) != RA_OK) break;
        size_t j = 0; /* wanted rows in order */
        for (uint32_t c = 0; c < nc; c++)
            for (uint32_t i = 0; i + 1 < ctx; i++, j++) {
                const float v = lp[j * V + (uint32_t)ids[(size_t)(c0 + c) * ctx + i + 1]];
                uint8_t b[4];
                ra_put_le32(b, ra_f32_bits(v));
                ra_sha256_update(h, b, 4);
                sum -= v;
            }
    }
    row->tokens = (uint64_t)chunks * (ctx - 1);
    row->nll = sum / (double)row->tokens;
    row->ppl = exp(row->nll);
    if (h) {
        uint8_t d[32];
        ra_sha256_final(h, d);
        ra_hex(d, 32, row->nll_sha256);
    }
    free(seq), free(tok), free(want), free(lp);
    return s;
}

ra_status ra_ppl_run(const ra_ppl_opts *o, ra_ppl_result *out)
{
    memset(out, 0, sizeof *out);
    if (o->ctx < 2 || o->chunks == 0) return ra_fail(RA_ERR_USAGE, "ppl needs --ctx of at least 2 and --chunks of at least 1");
    ra_model_desc *d = NULL;
    ra_tokenizer *tok = NULL;
    ra_pool *pool = NULL;
    ra_deriver *dv = NULL;
    ra_text text = {0};
    int32_t *ids = NULL;
    ra_model_config cfg;
    const char *tp = o->text_path ? o->text_path : RA_DEFAULT_TEXT;
    ra_status s = ra_desc_open(o->model_path, 0, &d);
    if (s == RA_OK) s = ra_tokenizer_from_desc(d, &tok);
    if (s == RA_OK) s = ra_config_from_desc(d, &cfg);
    if (s == RA_OK && o->ctx > cfg.max_seq) s = ra_fail(RA_ERR_USAGE, "--ctx %u exceeds the context length %u", o->ctx, cfg.max_seq);
    if (s == RA_OK) s = ra_text_load(tp, tok, &text);
    if (s == RA_OK) s = ra_text_slices(&text, true, o->chunks, o->ctx, &ids);
    if (s == RA_OK) s = ra_pool_new(o->threads, &pool);
    if (s == RA_OK) s = ra_deriver_open(d, tok, pool, &o->derive, &dv);
    if (s == RA_OK) s = ra_calloc(&out->rows, o->n_formats ? o->n_formats : 1, sizeof *out->rows);
    if (s == RA_OK) {
        snprintf(out->model_name, sizeof out->model_name, "%s", cfg.name);
        snprintf(out->text_path, sizeof out->text_path, "%s", tp);
        ra_hex(text.sha256, 32, out->text_sha256);
        out->chunks = o->chunks;
        out->ctx = o->ctx;
    }
    for (size_t i = 0; i < o->n_formats && s == RA_OK; i++) {
        const ra_format *f;
        const ra_kernel *k;
        ra_model *m = NULL;
        ra_engine *e = NULL;
        double t0 = ra_now();
        s = ra_format_resolve(o->formats[i], false, &f, &k);
        if (s == RA_OK) s = ra_deriver_load(dv, f, &m);
        if (s == RA_OK) s = ra_engine_open(m, k, &(ra_engine_opts){0}, &e);
        ra_ppl_row *row = &out->rows[out->n];
        if (s == RA_OK) {
            snprintf(row->label, sizeof row->label, "%s@%s", f->name, k->name);
            s = score(e, ids, o->chunks, o->ctx, row);
            row->seconds = ra_now() - t0;
        }
        if (s == RA_OK) out->n++;
        if (s == RA_OK && o->derive.progress)
            fprintf(stderr, "  %-14s ppl %.4f over %llu tokens (%.1fs)\n", row->label, row->ppl,
                    (unsigned long long)row->tokens, row->seconds);
        ra_engine_close(e);
        ra_model_free(m);
    }
    free(ids);
    ra_text_free(&text);
    ra_deriver_close(dv);
    ra_pool_free(pool);
    ra_tokenizer_free(tok);
    ra_desc_close(d);
    if (s != RA_OK) ra_ppl_result_free(out);
    return s;
}

void ra_ppl_result_free(ra_ppl_result *r)
{
    free(r->rows);
    memset(r, 0, sizeof *r);
}

ra_status ra_ppl_json(const ra_ppl_result *r, char **text)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema", "repro-audit.ppl");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddStringToObject(o, "model", r->model_name);
    cJSON *t = cJSON_AddObjectToObject(o, "text");
    cJSON_AddStringToObject(t, "path", r->text_path);
    cJSON_AddStringToObject(t, "sha256", r->text_sha256);
    cJSON_AddStringToObject(t, "slice", "evaluation half");
    cJSON_AddNumberToObject(t, "chunks", r->chunks);
    cJSON_AddNumberToObject(t, "ctx", r->ctx);
    cJSON *rows = cJSON_AddArrayToObject(o, "formats");
    for (size_t i = 0; i < r->n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "format", r->rows[i].label);
        cJSON_AddNumberToObject(e, "tokens", (double)r->rows[i].tokens);
        cJSON_AddNumberToObject(e, "nll", r->rows[i].nll);
        cJSON_AddNumberToObject(e, "ppl", r->rows[i].ppl);
        cJSON_AddStringToObject(e, "logprobs_sha256", r->rows[i].nll_sha256);
        cJSON_AddNumberToObject(e, "seconds", r->rows[i].seconds);
        cJSON_AddItemToArray(rows, e);
    }
    ra_status s = ra_json_print(o, true, text);
    cJSON_Delete(o);
    return s;
}

ra_status ra_ppl_markdown(const ra_ppl_result *r, char **text)
{
    ra_buf b = {0};
    ra_status s = ra_buf_printf(&b, "| format@kernel | tokens | NLL (nats) | perplexity | log-probs SHA-256 |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < r->n && s == RA_OK; i++)
        s = ra_buf_printf(&b, "| %s | %llu | %.5f | %.4f | %.16s |\n", r->rows[i].label, (unsigned long long)r->rows[i].tokens,
                          r->rows[i].nll, r->rows[i].ppl, r->rows[i].nll_sha256);
    if (s == RA_OK) s = ra_buf_append(&b, "", 1);
    if (s != RA_OK) {
        ra_buf_free(&b);
        return s;
    }
    *text = (char *)b.data;
    return RA_OK;
}
