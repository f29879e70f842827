/* The interface a backend implements behind ra_engine (include/ra/engine.h).
 * Private to src/backend/. */
#ifndef RA_BACKEND_H
#define RA_BACKEND_H

#include "ra/engine.h"

typedef struct {
    ra_status (*begin)(void *impl, uint32_t n, const uint32_t *cap);
    ra_status (*forward)(void *impl, const uint32_t *seq, const int32_t *token, const bool *want, uint32_t n,
                         float *logprobs, int32_t *argmax);
    void (*describe)(const void *impl, void *json_object);
    void (*close)(void *impl);
    ra_status (*set_probe)(void *impl, ra_probe_fn fn, void *ctx); /* NULL: the backend has no probe */
} ra_backend_ops;

ra_status ra_cpu_engine_open(ra_model *m, const ra_kernel *k, const ra_backend_ops **ops, void **impl);
#ifdef RA_HAVE_CUDA
ra_status ra_cuda_engine_open(ra_model *m, const ra_kernel *k, const ra_engine_opts *opts, const ra_backend_ops **ops,
                              void **impl);
bool ra_cuda_probe(char *why, size_t why_len);
#endif

#endif
