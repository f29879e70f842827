/* The CPU engine against HF transformers (tests/fixtures/hf_fixture.json, made
 * by tools/hf_reference.py on the GPU machine from `repro-audit export-hf`):
 * the prompts tokenize to the same ids, greedy f32 decoding picks the same
 * tokens, and every chosen token's log-prob is within TOL of transformers'.
 * Usage: test_hf_fixture MODEL.gguf FIXTURE.json PROMPTS.jsonl */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "fixture_json.h"
#include "ra/audit.h"
#include "ra/cpu.h"
#include "ra/util.h"

#define TOL 2e-3

/* The prompt's ids and the generated tokens against the fixture's; the
 * log-probs are compared in main, up to the first token that differs. */
static void check_prompt(const cJSON *fp, const ra_prompt *p, const ra_gen_result *g, size_t i)
{
    const cJSON *ids = cJSON_GetObjectItem(fp, "prompt_ids"), *steps = cJSON_GetObjectItem(fp, "steps");
    const char *id = cJSON_GetObjectItem(fp, "id")->valuestring;
    CHECK_MSG((size_t)cJSON_GetArraySize(ids) == p->n_ids, "%s: %zu prompt ids, fixture has %d", id, p->n_ids,
              cJSON_GetArraySize(ids));
    for (size_t k = 0; k < p->n_ids && k < (size_t)cJSON_GetArraySize(ids); k++)
        CHECK_MSG(cJSON_GetArrayItem(ids, (int)k)->valueint == p->ids[k], "%s: prompt id %zu: ours %d, HF %d", id, k,
                  p->ids[k], cJSON_GetArrayItem(ids, (int)k)->valueint);
    uint32_t n = (uint32_t)cJSON_GetArraySize(steps);
    CHECK_MSG(g->n_steps[i] == n, "%s: %u steps, fixture has %u", id, g->n_steps[i], n);
    for (uint32_t s = 0; s < n && s < g->n_steps[i]; s++) {
        int32_t want = cJSON_GetObjectItem(cJSON_GetArrayItem(steps, (int)s), "token")->valueint;
        CHECK_MSG(g->tokens[i][s] == want, "%s step %u: token %d, HF chose %d", id, s, g->tokens[i][s], want);
        if (g->tokens[i][s] != want) return; /* later steps condition on different text */
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.gguf FIXTURE.json PROMPTS.jsonl\n", argv[0]);
        return 2;
    }
    cJSON *fx = NULL;
    ra_model_desc *g = NULL;
    ra_tokenizer *tok = NULL;
    ra_prompt_set *ps = NULL;
    ra_pool *pool = NULL;
    ra_model *m = NULL;
    ra_engine *e = NULL;
    ra_model_config cfg;
    CHECK_OK(load_json(argv[2], &fx));
    CHECK_OK(ra_desc_open(argv[1], 0, &g));
    if (g) CHECK_OK(ra_tokenizer_from_desc(g, &tok));
    if (g) CHECK_OK(ra_config_from_desc(g, &cfg));
    if (tok) CHECK_OK(ra_prompts_load(argv[3], tok, cfg.n_vocab, cfg.max_seq, &ps));
    CHECK_OK(ra_pool_new(0, &pool));
    if (g && pool) CHECK_OK(ra_model_load(g, ra_format_find("f32"), pool, &m));
    if (m) CHECK_OK(ra_engine_open(m, ra_kernel_find("cpu"), NULL, &e));
    if (!fx || !ps || !e) CHECK_DONE();

    const cJSON *fps = cJSON_GetObjectItem(fx, "prompts");
    uint32_t n_new = (uint32_t)cJSON_GetObjectItem(fx, "new_tokens")->valueint;
    CHECK_MSG((size_t)cJSON_GetArraySize(fps) == ps->n && ps->n >= 6, "fixture has %d prompts, prompt file %zu",
              cJSON_GetArraySize(fps), ps->n);
    CHECK(n_new >= 32);
    ra_gen_result gen;
    CHECK_OK(ra_generate(e, ps, n_new, false, true, NULL, NULL, &gen));
    double worst = 0;
    uint64_t compared = 0;
    for (size_t i = 0; i < ps->n && i < (size_t)cJSON_GetArraySize(fps); i++) {
        const cJSON *fp = cJSON_GetArrayItem(fps, (int)i);
        check_prompt(fp, &ps->items[i], &gen, i);
        const cJSON *steps = cJSON_GetObjectItem(fp, "steps");
        for (uint32_t s = 0; s < gen.n_steps[i] && s < (uint32_t)cJSON_GetArraySize(steps); s++) {
            const cJSON *st = cJSON_GetArrayItem(steps, (int)s);
            int32_t tok_id = gen.tokens[i][s];
            if (tok_id != cJSON_GetObjectItem(st, "token")->valueint) break;
            double ours = gen.logprobs[i][(size_t)s * cfg.n_vocab + (size_t)tok_id];
            double hf = cJSON_GetObjectItem(st, "logprob")->valuedouble;
            CHECK_MSG(fabs(ours - hf) <= TOL, "%s step %u: logprob %.6f, HF %.6f", ps->items[i].id, s, ours, hf);
            if (fabs(ours - hf) > worst) worst = fabs(ours - hf);
            compared++;
        }
    }
    printf("hf fixture: %zu prompts, %llu steps compared, max |logprob diff| %.3g (tolerance %g)\n", ps->n,
           (unsigned long long)compared, worst, TOL);
    ra_gen_result_free(&gen);
    ra_engine_close(e);
    ra_model_free(m);
    ra_pool_free(pool);
    ra_prompts_free(ps);
    ra_tokenizer_free(tok);
    ra_desc_close(g);
    cJSON_Delete(fx);
    CHECK_DONE();
}
