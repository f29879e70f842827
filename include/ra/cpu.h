/* CPU reference backend: a thread pool and the float kernels the model uses.
 * Every output element is computed by one thread in a fixed order, so results
 * are bitwise the same for any thread count and any batch composition.
 * Transcendentals are evaluated in double and rounded once to float, which
 * makes them independent of the libm's float implementations in practice. */
#ifndef RA_CPU_H
#define RA_CPU_H

#include <stdbool.h>
#include <stddef.h>
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

/* Which code computes the hot loops; every path gives the same bits. */
typedef enum { RA_CPU_PATH_SCALAR, RA_CPU_PATH_AVX2 } ra_cpu_path;
/* The fastest path this machine runs. */
ra_cpu_path ra_cpu_best_path(void);

/* y[t][r] = W[r,:] . x[t,:] for t < n, r < w->rows (x: n x cols, y: n x rows),
 * on the fastest path; _path on a given one (the same bits). */
ra_status ra_cpu_matmul(ra_pool *p, const ra_weight *w, const float *x, uint32_t n, float *y);
ra_status ra_cpu_matmul_path(ra_pool *p, ra_cpu_path path, const ra_weight *w, const float *x, uint32_t n, float *y);

/* Row-wise RMSNorm: y = x / sqrt(mean(x^2) + eps) * g. */
void ra_cpu_rmsnorm(const float *x, const float *g, uint32_t dim, float eps, float *y);
/* log-softmax of n values in place. */
void ra_cpu_log_softmax(float *x, uint32_t n);
/* SiLU(gate) * up, elementwise into gate. */
void ra_cpu_swiglu(float *gate, const float *up, uint32_t n);
/* exp and tanh-free helpers with the double-then-round rule. */
float ra_cpu_exp(float x);

/* ---- llama.cpp's arithmetic: the kernel "ggml-avx2" (src/backend/cpu/ggml_avx2.c) ----
 * What ggml computes on an x86-64 machine with AVX2 and FMA when llama.cpp
 * decodes one token at a time (float32 KV cache, flash attention off), in
 * portable C: the same bits on every machine. */

/* An activation block as ggml quantizes it (block_q8_1 / block_q8_0), with
 * the fp16 scale d and sum s (q8_1 only) widened to float. */
typedef struct {
    int8_t q[32];
    float d, s;
} ra_ggml_q8;

/* quantize_row_q8_1 (with_sum) or quantize_row_q8_0 of n (a multiple of 32) values. */
void ra_ggml_quantize_q8(const float *x, uint32_t n, bool with_sum, ra_ggml_q8 *out);
/* ggml_vec_dot_q4_1_q8_1 / ggml_vec_dot_q8_0_q8_0 over nb blocks, in scalar C. */
float ra_ggml_dot_q4_1_ref(const void *row, const ra_ggml_q8 *x, uint32_t nb);
float ra_ggml_dot_q8_0_ref(const void *row, const ra_ggml_q8 *x, uint32_t nb);
/* ggml_vec_dot_q5_0_q8_0 (AVX2): the q8_0 lanes with q5_0's codes - 16. */
float ra_ggml_dot_q5_0_ref(const void *row, const ra_ggml_q8 *x, uint32_t nb);

/* An activation super-block of 256 as ggml quantizes it for K-quant weights
 * (block_q8_K): float d, int8 codes, sums of each 16 codes. */
typedef struct {
    float d;
    int8_t q[256];
    int16_t bsums[16];
} ra_ggml_q8k;
/* quantize_row_q8_K (the reference rule on x86) of n (a multiple of 256) values. */
void ra_ggml_quantize_q8k(const float *x, uint32_t n, ra_ggml_q8k *out);
/* ggml_vec_dot_q4_K_q8_K / ggml_vec_dot_q6_K_q8_K (AVX2) over nb super-blocks, in scalar C. */
float ra_ggml_dot_q4_k_ref(const void *row, const ra_ggml_q8k *x, uint32_t nb);
float ra_ggml_dot_q6_k_ref(const void *row, const ra_ggml_q8k *x, uint32_t nb);
/* ggml_gemv_q4_K_8x8_q8_K (AVX2): llama.cpp's product for a Q4_K matrix of a
 * multiple of 8 rows, which it repacks at load (one row's arithmetic). */
float ra_ggml_dot_q4_k_8x8_ref(const void *row, const ra_ggml_q8k *x, uint32_t nb);
/* y[t][r] = W[r,:] . x[t,:] for Q4_1, Q8_0, Q5_0, Q4_K and Q6_K weights, ggml's vec_dot path. */
ra_status ra_ggml_matmul(ra_pool *p, ra_cpu_path path, const ra_weight *w, const float *x, uint32_t n, float *y);
/* ggml_vec_dot_f32 (4 x 8 lanes, fused multiply-add). */
float ra_ggml_dot_f32(const float *x, const float *y, uint32_t n);
/* One lane of ggml_v_expf. */
float ra_ggml_expf(float x);
void ra_ggml_rmsnorm(const float *x, const float *g, uint32_t dim, float eps, float *y);
void ra_ggml_swiglu(ra_cpu_path path, float *gate, const float *up, uint32_t n);
/* cos and sin of pos * base^(-2i/n_dims), i < n_dims/2, as ggml_rope_cache_init makes them. */
void ra_ggml_rope_cache(uint32_t pos, float base, uint32_t n_dims, float *cs, float *sn);
/* NORMAL RoPE on n_heads heads of hd values in HF (rotate-half) row order. */
void ra_ggml_rope(float *x, uint32_t n_heads, uint32_t hd, const float *cs, const float *sn);
/* Softmax attention of one query head q (hd values) over npos cached keys K
 * and values V (position p at p * stride), ggml's unfused order; q and K in
 * GGUF's interleaved pair order. w: scratch of npos rounded up to 8 floats. */
void ra_ggml_attn_head(ra_cpu_path path, const float *q, const float *K, const float *V, size_t stride, uint32_t npos,
                       uint32_t hd, float scale, float *w, float *out);

/* Index of the largest value; ties go to the lowest index (greedy decoding).
 * NaN ranks below every number, as in ra_topk, so the greedy token is the
 * first top-k entry; only an all-NaN vector gives 0. The CUDA log-softmax
 * kernel picks the same index. */
int32_t ra_argmax(const float *v, uint32_t n);

#endif
