/* ra_engine: one model, one kernel, one backend (CPU or CUDA). */
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "ra/bench.h"
#include "ra/util.h"

struct ra_engine {
    const ra_backend_ops *ops;
    void *impl;
    const ra_kernel *kernel;
    ra_model_config cfg;
};

bool ra_cuda_available(char *why, size_t why_len)
{
#ifdef RA_HAVE_CUDA
    return ra_cuda_probe(why, why_len);
#else
    snprintf(why, why_len, "this build has no CUDA backend (nvcc was not found when it was built)");
    return false;
#endif
}

ra_status ra_engine_open(ra_model *m, const ra_kernel *k, const ra_engine_opts *opts, ra_engine **out)
{
    static const ra_engine_opts defaults = {0};
    if (!opts) opts = &defaults;
    ra_engine *e;
    RA_TRY(ra_calloc(&e, 1, sizeof *e));
    e->kernel = k;
    e->cfg = m->cfg;
    ra_status s;
    if (k->backend == RA_BACKEND_CPU) {
        s = ra_cpu_engine_open(m, k, &e->ops, &e->impl);
    } else {
        char why[256];
        if (m->cfg.attn_bias || m->cfg.qk_norm) {
            s = ra_fail(RA_ERR_UNSUPPORTED, "kernel %s@%s: the CUDA engine does not compute %s yet (use --device cpu)",
                        m->format->name, k->name, m->cfg.attn_bias ? "q/k/v biases" : "QK-norm");
        } else if (!ra_cuda_available(why, sizeof why)) {
            s = ra_fail(RA_ERR_UNSUPPORTED, "kernel %s@%s needs a CUDA GPU: %s", m->format->name, k->name, why);
        } else {
#ifdef RA_HAVE_CUDA
            s = ra_cuda_engine_open(m, k, opts, &e->ops, &e->impl);
#else
            s = RA_ERR_INTERNAL;
#endif
        }
    }
    if (s != RA_OK) {
        free(e);
        return s;
    }
    *out = e;
    return RA_OK;
}

void ra_engine_close(ra_engine *e)
{
    if (!e) return;
    e->ops->close(e->impl);
    free(e);
}

const ra_model_config *ra_engine_config(const ra_engine *e) { return &e->cfg; }
const ra_kernel *ra_engine_kernel(const ra_engine *e) { return e->kernel; }

ra_status ra_engine_begin(ra_engine *e, uint32_t n, const uint32_t *cap)
{
    for (uint32_t i = 0; i < n; i++)
        if (cap[i] == 0 || cap[i] > e->cfg.max_seq)
            return ra_fail(RA_ERR_USAGE, "sequence capacity %u outside 1..%u (the model's context length)", cap[i],
                           e->cfg.max_seq);
    return e->ops->begin(e->impl, n, cap);
}

ra_status ra_engine_forward(ra_engine *e, const uint32_t *seq, const int32_t *token, const bool *want, uint32_t n,
                            float *logprobs, int32_t *argmax)
{
    for (uint32_t i = 0; i < n; i++)
        if (token[i] < 0 || (uint32_t)token[i] >= e->cfg.n_vocab)
            return ra_fail(RA_ERR_USAGE, "token id %d outside the vocabulary of %u", token[i], e->cfg.n_vocab);
    return e->ops->forward(e->impl, seq, token, want, n, logprobs, argmax);
}

void ra_engine_describe(const ra_engine *e, void *json_object) { e->ops->describe(e->impl, json_object); }

ra_status ra_engine_set_probe(ra_engine *e, ra_probe_fn fn, void *ctx)
{
    if (!e->ops->set_probe)
        return ra_fail(RA_ERR_UNSUPPORTED, "kernel %s has no activation probe (locate runs on CPU kernels)", e->kernel->name);
    return e->ops->set_probe(e->impl, fn, ctx);
}

#ifndef RA_HAVE_CUDA
ra_status ra_bench_gemm(const ra_gemm_bench_opts *o, void **json_out)
{
    (void)o;
    (void)json_out;
    return ra_fail(RA_ERR_UNSUPPORTED, "bench: this build has no CUDA backend (nvcc was not found when it was built)");
}
#endif
