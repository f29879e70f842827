/* The end-to-end half of `repro-audit bench` (include/ra/bench.h): a real
 * model through ra_generate on each engine, as an audit runs it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/audit.h"
#include "ra/bench.h"
#include "ra/cpu.h"
#include "ra/engine.h"
#include "ra/util.h"

/* The first n prompts of ps, as a view (items are not owned). */
static ra_prompt_set prompt_view(const ra_prompt_set *ps, size_t n)
{
    ra_prompt_set v = *ps;
    v.n = n < ps->n ? n : ps->n;
    return v;
}

/* Decode tokens per second of one generation (after a short warm-up run
 * that also captures the graphs of each batch size). */
static ra_status decode_rate(ra_engine *e, const ra_prompt_set *ps, uint32_t tokens, double *rate)
{
    ra_gen_result g;
    RA_TRY(ra_generate(e, ps, 8, false, true, NULL, NULL, &g));
    ra_gen_result_free(&g);
    RA_TRY(ra_generate(e, ps, tokens, false, true, NULL, NULL, &g));
    *rate = g.decode_seconds > 0 ? (double)g.decode_tokens / g.decode_seconds : 0;
    ra_gen_result_free(&g);
    return RA_OK;
}

/* n prompts of len pseudo-random token ids, each with a one-token
 * continuation: score mode then runs every prompt token in one pass. */
static ra_status synthetic_prompts(uint32_t n, uint32_t len, uint32_t vocab, ra_prompt_set *out, ra_prompt **items)
{
    memset(out, 0, sizeof *out);
    RA_TRY(ra_calloc(items, n, sizeof **items));
    uint64_t r = 0x853c49e6748fea9bull;
    for (uint32_t i = 0; i < n; i++) {
        ra_prompt *p = &(*items)[i];
        RA_TRY(ra_calloc(&p->ids, len, sizeof *p->ids));
        RA_TRY(ra_calloc(&p->cont, 1, sizeof *p->cont));
        for (uint32_t t = 0; t < len; t++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            p->ids[t] = (int32_t)((r >> 33) % vocab);
        }
        p->n_ids = len;
        p->n_cont = 1;
        p->id = "synthetic";
    }
    out->n = n;
    out->items = *items;
    out->path = "synthetic";
    return RA_OK;
}

static void free_synthetic(ra_prompt *items, uint32_t n)
{
    for (uint32_t i = 0; items && i < n; i++) {
        free(items[i].ids);
        free(items[i].cont);
    }
    free(items);
}

static ra_status prefill_rate(ra_engine *e, const ra_prompt_set *ps, double *rate)
{
    ra_gen_result g;
    RA_TRY(ra_generate(e, ps, 0, true, true, NULL, NULL, &g)); /* warm-up */
    ra_gen_result_free(&g);
    RA_TRY(ra_generate(e, ps, 0, true, true, NULL, NULL, &g));
    *rate = g.decode_seconds > 0 ? (double)g.decode_tokens / g.decode_seconds : 0;
    ra_gen_result_free(&g);
    return RA_OK;
}

static cJSON *result(const char *kernel, bool graphs, const char *what, uint32_t batch, double rate)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "kernel", kernel);
    cJSON_AddBoolToObject(r, "graphs", graphs);
    cJSON_AddStringToObject(r, "what", what);
    cJSON_AddNumberToObject(r, "batch", batch);
    cJSON_AddNumberToObject(r, "tokens_per_s", rate);
    return r;
}

static ra_status bench_kernel(const ra_e2e_bench_opts *o, const ra_model_desc *d, ra_pool *pool, const ra_prompt_set *ps,
                              const ra_prompt_set *long_ps, const char *spec, cJSON *results)
{
    const ra_format *f;
    const ra_kernel *k;
    RA_TRY(ra_format_resolve(spec, true, &f, &k));
    char label[80];
    snprintf(label, sizeof label, "%s@%s", f->name, k->name);
    ra_status s = RA_OK;
    for (int graphs = 1; s == RA_OK && graphs >= 0; graphs--) {
        if (!graphs && k->backend == RA_BACKEND_CPU) break;
        double t0 = ra_now();
        ra_model *m;
        ra_engine *e;
        RA_TRY(ra_model_load(d, f, pool, &m));
        ra_engine_opts eo = {.no_graphs = !graphs};
        s = ra_engine_open(m, k, &eo, &e);
        if (s != RA_OK) {
            ra_model_free(m);
            return s;
        }
        if (graphs) {
            cJSON *r = result(label, k->backend == RA_BACKEND_CUDA, "load_seconds", 0, 0);
            cJSON_AddNumberToObject(r, "seconds", ra_now() - t0);
            cJSON_AddItemToArray(results, r);
        }
        static const uint32_t batches[] = {1, 10};
        for (size_t b = 0; s == RA_OK && b < 2; b++) {
            ra_prompt_set v = prompt_view(ps, batches[b]);
            double rate = 0;
            s = decode_rate(e, &v, o->decode_tokens, &rate);
            if (s == RA_OK) cJSON_AddItemToArray(results, result(label, graphs && k->backend == RA_BACKEND_CUDA, "decode", (uint32_t)v.n, rate));
            if (s == RA_OK && o->progress)
                fprintf(stderr, "  %-16s %s decode batch %2zu: %9.1f tokens/s\n", label, graphs ? "graphs   " : "no graphs", v.n, rate);
        }
        if (s == RA_OK && graphs) { /* prompt processing does not use graphs */
            double rate = 0;
            s = prefill_rate(e, long_ps, &rate);
            if (s == RA_OK) cJSON_AddItemToArray(results, result(label, false, "prompt", (uint32_t)long_ps->n, rate));
            if (s == RA_OK && o->progress)
                fprintf(stderr, "  %-16s prompt processing %zu x %u tokens: %9.0f tokens/s\n", label, long_ps->n,
                        o->prompt_tokens, rate);
        }
        ra_engine_close(e);
        ra_model_free(m);
    }
    return s;
}

ra_status ra_bench_e2e(const ra_e2e_bench_opts *o, void **json_out)
{
    ra_model_desc *d = NULL;
    ra_tokenizer *tok = NULL;
    ra_prompt_set *ps = NULL, long_ps;
    ra_prompt *long_items = NULL;
    ra_pool *pool = NULL;
    ra_model_config cfg;
    const uint32_t n_long = 10;
    ra_status s = ra_desc_open(o->model_path, 0, &d);
    if (s == RA_OK) s = ra_tokenizer_from_desc(d, &tok);
    if (s == RA_OK) s = ra_config_from_desc(d, &cfg);
    if (s == RA_OK) s = ra_prompts_load(NULL, tok, cfg.n_vocab, cfg.max_seq, &ps);
    if (s == RA_OK && o->prompt_tokens + 2 > cfg.max_seq) s = ra_fail(RA_ERR_USAGE, "bench: --prompt-tokens exceeds the context");
    if (s == RA_OK) s = synthetic_prompts(n_long, o->prompt_tokens, cfg.n_vocab, &long_ps, &long_items);
    if (s == RA_OK) s = ra_pool_new(0, &pool);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", cfg.name);
    cJSON_AddNumberToObject(root, "decode_tokens", o->decode_tokens);
    cJSON_AddNumberToObject(root, "prompt_tokens", o->prompt_tokens);
    cJSON *results = cJSON_AddArrayToObject(root, "e2e");
    for (size_t i = 0; s == RA_OK && i < o->n_kernels; i++) s = bench_kernel(o, d, pool, ps, &long_ps, o->kernels[i], results);
    free_synthetic(long_items, n_long);
    ra_pool_free(pool);
    ra_prompts_free(ps);
    ra_tokenizer_free(tok);
    ra_desc_close(d);
    if (s != RA_OK) {
        cJSON_Delete(root);
        return s;
    }
    *json_out = root;
    return RA_OK;
}
