/* The CUDA engine on the real model (SmolLM2), held to the CPU reference
 * engine on the default prompts:
 *   - f32@ra: the same greedy tokens as f32@cpu and chosen-token log-probs
 *     within 1e-4 (the bar), every step of every prompt;
 *   - bf16@ra against bf16@cpu: measured and printed (the GPU rounds
 *     activations to bf16 before each product, the CPU does not);
 *   - for f32@ra and bf16@ra: with and without CUDA graphs, and decode
 *     against teacher-forced prefill of the same tokens, bit for bit.
 * usage: test_engine MODEL.gguf */
#include <stdlib.h>

#include "check.h"
#include "ra/audit.h"
#include "ra/cpu.h"
#include "ra/engine.h"
#include "ra/util.h"

#define NEW_TOKENS 32
#define TOL 1e-4

typedef struct {
    ra_model_desc *g;
    ra_pool *pool;
    ra_prompt_set *ps;
    uint32_t V;
} ctx;

static ra_status generate(ctx *c, const char *spec, bool no_graphs, bool score, ra_gen_result *out)
{
    const ra_format *f;
    const ra_kernel *k;
    RA_TRY(ra_format_resolve(spec, true, &f, &k));
    ra_model *m;
    ra_engine *e;
    RA_TRY(ra_model_load(c->g, f, c->pool, &m));
    ra_engine_opts o = {.no_graphs = no_graphs};
    ra_status s = ra_engine_open(m, k, &o, &e);
    if (s == RA_OK) {
        s = ra_generate(e, c->ps, NEW_TOKENS, score, false, NULL, NULL, out);
        ra_engine_close(e);
    }
    ra_model_free(m);
    return s;
}

static bool same_bits(const ra_gen_result *a, const ra_gen_result *b, uint32_t V)
{
    for (size_t i = 0; i < a->n_seqs; i++) {
        if (a->n_steps[i] != b->n_steps[i]) return false;
        if (memcmp(a->tokens[i], b->tokens[i], a->n_steps[i] * sizeof(int32_t)) ||
            memcmp(a->logprobs[i], b->logprobs[i], (size_t)a->n_steps[i] * V * sizeof(float)))
            return false;
    }
    return true;
}

/* The GPU run against the CPU's: steps compared until the first token
 * difference of each prompt; returns the largest chosen-token difference. */
static double against_cpu(const ra_gen_result *gpu, const ra_gen_result *cpu, uint32_t V, uint32_t *same_seqs,
                          uint64_t *steps)
{
    double worst = 0;
    *same_seqs = 0;
    *steps = 0;
    for (size_t i = 0; i < gpu->n_seqs; i++) {
        uint32_t n = gpu->n_steps[i] < cpu->n_steps[i] ? gpu->n_steps[i] : cpu->n_steps[i];
        bool same = gpu->n_steps[i] == cpu->n_steps[i];
        for (uint32_t k = 0; k < n; k++) {
            int32_t t = cpu->tokens[i][k];
            double d = fabs((double)gpu->logprobs[i][(size_t)k * V + t] - cpu->logprobs[i][(size_t)k * V + t]);
            worst = d > worst ? d : worst;
            (*steps)++;
            if (gpu->tokens[i][k] != t) {
                same = false;
                break;
            }
        }
        *same_seqs += same;
    }
    return worst;
}

/* The prompts with the given run's tokens as continuations, for score mode. */
static ra_status with_continuations(const ra_prompt_set *ps, const ra_gen_result *g, ra_prompt_set *out, ra_prompt **items)
{
    *out = *ps;
    RA_TRY(ra_calloc(items, ps->n, sizeof **items));
    for (size_t i = 0; i < ps->n; i++) {
        (*items)[i] = ps->items[i];
        (*items)[i].cont = g->tokens[i];
        (*items)[i].n_cont = g->n_steps[i];
    }
    out->items = *items;
    return RA_OK;
}

static void engine_checks(ctx *c, const char *gpu_spec, const char *cpu_spec, bool hold_to_cpu)
{
    ra_gen_result cpu, gpu, nog, sc;
    memset(&sc, 0, sizeof sc);
    CHECK_OK(generate(c, cpu_spec, false, false, &cpu));
    CHECK_OK(generate(c, gpu_spec, false, false, &gpu));
    CHECK_OK(generate(c, gpu_spec, true, false, &nog));
    if (!cpu.n_seqs || !gpu.n_seqs || !nog.n_seqs) return;
    uint32_t same;
    uint64_t steps;
    double worst = against_cpu(&gpu, &cpu, c->V, &same, &steps);
    printf("  %s vs %s: %u/%zu prompts with the same greedy tokens, max |chosen log-prob diff| %.3g over %llu steps\n",
           gpu_spec, cpu_spec, same, gpu.n_seqs, worst, (unsigned long long)steps);
    if (hold_to_cpu) {
        CHECK_MSG(same == gpu.n_seqs, "%s: %u of %zu prompts keep the CPU's tokens", gpu_spec, same, gpu.n_seqs);
        CHECK_MSG(worst <= TOL, "%s: chosen-token log-prob differs from the CPU's by %.3g (> %g)", gpu_spec, worst, TOL);
    }
    CHECK_MSG(same_bits(&gpu, &nog, c->V), "%s: graphs and plain launches differ", gpu_spec);

    /* Teacher-forced prefill of the generated tokens: the same bits as decode. */
    ra_prompt_set forced;
    ra_prompt *items = NULL;
    CHECK_OK(with_continuations(c->ps, &gpu, &forced, &items));
    ctx cs = *c;
    cs.ps = &forced;
    CHECK_OK(generate(&cs, gpu_spec, false, true, &sc));
    bool eq = sc.n_seqs == gpu.n_seqs;
    for (size_t i = 0; eq && i < gpu.n_seqs; i++)
        eq = sc.n_steps[i] == gpu.n_steps[i] &&
             !memcmp(sc.logprobs[i], gpu.logprobs[i], (size_t)gpu.n_steps[i] * c->V * sizeof(float));
    CHECK_MSG(eq, "%s: prefill of the generated tokens differs from their decode", gpu_spec);
    printf("  %s: graphs = plain launches: %s; prefill = decode, bit for bit: %s\n", gpu_spec,
           same_bits(&gpu, &nog, c->V) ? "yes" : "NO", eq ? "yes" : "NO");
    free(items);
    ra_gen_result_free(&sc);
    ra_gen_result_free(&cpu);
    ra_gen_result_free(&gpu);
    ra_gen_result_free(&nog);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    char why[256];
    if (!ra_cuda_available(why, sizeof why)) {
        fprintf(stderr, "test_engine: no CUDA GPU (%s)\n", why);
        return 2;
    }
    ctx c = {0};
    ra_tokenizer *tok = NULL;
    ra_model_config cfg;
    CHECK_OK(ra_desc_open(argv[1], 0, &c.g));
    if (c.g) CHECK_OK(ra_tokenizer_from_desc(c.g, &tok));
    if (c.g) CHECK_OK(ra_config_from_desc(c.g, &cfg));
    if (tok) CHECK_OK(ra_prompts_load(NULL, tok, cfg.n_vocab, cfg.max_seq, &c.ps));
    CHECK_OK(ra_pool_new(0, &c.pool));
    if (!c.ps || !c.pool) CHECK_DONE();
    c.V = cfg.n_vocab;
    engine_checks(&c, "f32@ra", "f32@cpu", true);
    engine_checks(&c, "bf16@ra", "bf16@cpu", false);
    ra_pool_free(c.pool);
    ra_prompts_free(c.ps);
    ra_tokenizer_free(tok);
    ra_desc_close(c.g);
    CHECK_DONE();
}
