/* CPU reference backend: a thread pool and the float kernels the model uses.
 * Every output element is computed by one thread in a fixed order, so results
 * are bitwise the same for any thread count and any batch composition.
 * Transcendentals are evaluated in double and rounded once to float, which
 * makes them independent of the libm's float implementations in practice. */
#ifndef RA_CPU_H
#define RA_CPU_H

#include <stdint.h>

#include "ra/format.h"
#include "ra/status.h"

typedef struct ra_pool ra_pool;
typedef void (*ra_task_fn)(void *ctx, uint32_t task);

/* n_threads = 0: one per online CPU. */
ra_status ra_pool_new(uint32_t n_threads, ra_pool **out);
void ra_pool_free(ra_pool *p);
uint32_t ra_pool_threads(const ra_pool *p);
/* Runs fn(ctx, i) for every i < n_tasks across the pool; returns when all are done. */
void ra_pool_for(ra_pool *p, uint32_t n_tasks, ra_task_fn fn, void *ctx);

/* y[t][r] = W[r,:] . x[t,:] for t < n, r < w->rows (x: n x cols, y: n x rows). */
ra_status ra_cpu_matmul(ra_pool *p, const ra_weight *w, const float *x, uint32_t n, float *y);

/* Row-wise RMSNorm: y = x / sqrt(mean(x^2) + eps) * g. */
void ra_cpu_rmsnorm(const float *x, const float *g, uint32_t dim, float eps, float *y);
/* log-softmax of n values in place. */
void ra_cpu_log_softmax(float *x, uint32_t n);
/* SiLU(gate) * up, elementwise into gate. */
void ra_cpu_swiglu(float *gate, const float *up, uint32_t n);
/* exp and tanh-free helpers with the double-then-round rule. */
float ra_cpu_exp(float x);

/* Index of the largest value; ties go to the lowest index (greedy decoding).
 * NaN ranks below every number, as in ra_topk, so the greedy token is the
 * first top-k entry; only an all-NaN vector gives 0. The CUDA log-softmax
 * kernel picks the same index. */
int32_t ra_argmax(const float *v, uint32_t n);

#endif
