/* An engine against llama.cpp itself (a fixture made by tools/llamacpp_reference.py
 * with llama-cpp-python on the CPU): teacher-forced on llama.cpp's greedy tokens,
 * the engine's argmax is llama.cpp's token at every step and every chosen
 * token's log-prob is within TOL of llama.cpp's.
 * Usage: test_llamacpp_fixture MODEL.gguf FIXTURE.json FORMAT@KERNEL TOL */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture_json.h"
#include "ra/audit.h"
#include "ra/cpu.h"
#include "ra/util.h"

static ra_status int_array(const cJSON *a, int32_t **out, size_t *n)
{
    *n = (size_t)cJSON_GetArraySize(a);
    RA_TRY(ra_calloc(out, *n ? *n : 1, sizeof **out));
    for (size_t i = 0; i < *n; i++) (*out)[i] = cJSON_GetArrayItem(a, (int)i)->valueint;
    return RA_OK;
}

/* Prompt ids, and llama.cpp's tokens as the continuation to score. */
static ra_status fixture_prompts(const cJSON *fx, ra_prompt_set **out)
{
    const cJSON *ps = cJSON_GetObjectItem(fx, "prompts");
    if (!cJSON_IsArray(ps)) return ra_fail(RA_ERR_FORMAT, "fixture has no \"prompts\" array");
    ra_prompt_set *set;
    RA_TRY(ra_calloc(&set, 1, sizeof *set));
    ra_status s = ra_calloc(&set->items, (size_t)cJSON_GetArraySize(ps), sizeof *set->items);
    for (int i = 0; s == RA_OK && i < cJSON_GetArraySize(ps); i++) {
        const cJSON *p = cJSON_GetArrayItem(ps, i);
        ra_prompt *it = &set->items[set->n++];
        it->id = strdup(cJSON_GetObjectItem(p, "id")->valuestring);
        s = int_array(cJSON_GetObjectItem(p, "ids"), &it->ids, &it->n_ids);
        if (s == RA_OK) s = int_array(cJSON_GetObjectItem(p, "tokens"), &it->cont, &it->n_cont);
    }
    if (s != RA_OK) { ra_prompts_free(set); return s; }
    *out = set;
    return RA_OK;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL.gguf FIXTURE.json FORMAT@KERNEL TOL\n", argv[0]);
        return 2;
    }
    const double tol = atof(argv[4]);
    cJSON *fx = NULL;
    ra_model_desc *g = NULL;
    ra_prompt_set *ps = NULL;
    ra_pool *pool = NULL;
    ra_model *m = NULL;
    ra_engine *e = NULL;
    const ra_format *f = NULL;
    const ra_kernel *k = NULL;
    CHECK_OK(load_json(argv[2], &fx));
    if (fx) CHECK_OK(fixture_prompts(fx, &ps));
    CHECK_OK(ra_format_resolve(argv[3], false, &f, &k));
    CHECK_OK(ra_desc_open(argv[1], 0, &g));
    CHECK_OK(ra_pool_new(0, &pool));
    if (g && pool && f) CHECK_OK(ra_model_load(g, f, pool, &m));
    if (m) CHECK_OK(ra_engine_open(m, k, NULL, &e));
    if (!ps || !e) CHECK_DONE();

    ra_gen_result gen;
    const uint32_t V = m->cfg.n_vocab;
    CHECK_OK(ra_generate(e, ps, 0, true, true, NULL, NULL, &gen));
    double worst = 0;
    uint64_t steps = 0, argmax_same = 0;
    const cJSON *fps = cJSON_GetObjectItem(fx, "prompts");
    for (size_t i = 0; i < ps->n; i++) {
        const cJSON *lps = cJSON_GetObjectItem(cJSON_GetArrayItem(fps, (int)i), "logprobs");
        CHECK_MSG(gen.n_steps[i] == ps->items[i].n_cont, "%s: %u steps", ps->items[i].id, gen.n_steps[i]);
        for (uint32_t s = 0; s < gen.n_steps[i] && s < (uint32_t)cJSON_GetArraySize(lps); s++) {
            const float *v = gen.logprobs[i] + (size_t)s * V;
            const int32_t want = ps->items[i].cont[s], top = ra_argmax(v, V);
            const double d = fabs((double)v[want] - cJSON_GetArrayItem(lps, (int)s)->valuedouble);
            CHECK_MSG(top == want, "%s step %u: our argmax %d, llama.cpp chose %d", ps->items[i].id, s, top, want);
            CHECK_MSG(d <= tol, "%s step %u: log-prob %.7f, llama.cpp %.7f", ps->items[i].id, s, v[want],
                      cJSON_GetArrayItem(lps, (int)s)->valuedouble);
            worst = d > worst ? d : worst;
            argmax_same += top == want;
            steps++;
        }
    }
    printf("llama.cpp fixture, %s: %zu prompts, %llu steps, top-1 same %llu/%llu, max |log-prob diff| %.3g "
           "(tolerance %g)\n", argv[3], ps->n, (unsigned long long)steps, (unsigned long long)argmax_same,
           (unsigned long long)steps, worst, tol);
    ra_gen_result_free(&gen);
    ra_engine_close(e);
    ra_model_free(m);
    ra_pool_free(pool);
    ra_prompts_free(ps);
    ra_desc_close(g);
    cJSON_Delete(fx);
    CHECK_DONE();
}
