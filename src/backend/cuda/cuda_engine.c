/* The CUDA engine: the Llama-family forward pass on one GPU, weights and KV
 * cache resident on the device, kernels from kernels/ (or cuBLAS for the
 * matrix products of the "cublas" kernels), decode steps replayed from CUDA
 * graphs. The graph is the same as the CPU's (src/backend/cpu/forward.c):
 *
 *   x = embed[token]
 *   per layer: act = rmsnorm(x);  qkv = act . Wqkv^T;  q, K, V = rope(qkv)
 *              act = attention(q, K, V);  x += act . Wo^T
 *              act = rmsnorm(x);  act2 = silu(act . Wg^T) * (act . Wu^T);  x += act2 . Wd^T
 *   logits = rmsnorm(x) . Wout^T;  log-softmax and argmax on the device
 *
 * Activations into a matrix product are in the weights' dtype (float32 or
 * bfloat16); the residual stream x, the KV cache and every sum are float32.
 * A quantized format (awq, gptq, w4a16, fp8, nvfp4, mxfp4) keeps each linear
 * layer of the blocks in its checkpoint's packing (qlinear.h) and multiplies
 * float32 activations with ra_k_qgemm, as its CPU reference does; its
 * embeddings and lm_head (bf16 in such checkpoints) are widened to float32. */
#include <cjson/cJSON.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend.h"
#include "blas.h"
#include "blas_fp8.h"
#include "cuda_util.h"
#include "kernels.h"
#include "qlinear.h"
#include "ra/qlayer.h"
#include "ra/util.h"

#ifndef RA_KERNELS_BUILD
#define RA_KERNELS_BUILD "unknown"
#endif
#ifndef RA_NVCC_FLAGS
#define RA_NVCC_FLAGS "unknown"
#endif

#define GRAPH_MAX_ROWS 64 /* decode steps of up to this many sequences run from graphs */

enum { QL_Q, QL_K, QL_V, QL_O, QL_GATE, QL_UP, QL_DOWN, QL_COUNT };

typedef struct {
    void *wqkv, *wo, *wgu, *wd;   /* [q+2kv x dim], [dim x q], [2 ffn x dim] gate/up interleaved, [dim x ffn] */
    ra_cuda_qlayer q[QL_COUNT];   /* a quantized format's layers instead */
    float *attn_norm, *ffn_norm;
} dev_layer;

/* Inputs of one forward pass, packed so one copy moves them: four sections
 * of rows_cap int32 each. */
enum { IN_TOKEN, IN_START, IN_POS, IN_WANT, IN_SECTIONS };

typedef struct {
    ra_model *m;                  /* the host model (its RoPE tables grow with the sequences) */
    ra_model_config cfg;
    const ra_kernel *kernel;
    ra_dtype dt;
    size_t esize;                 /* bytes per weight / activation element */
    cudaStream_t stream;
    ra_blas *blas;                /* NULL for our own kernels */
    ra_blas_fp8 *lt8;             /* FP8 W8A8 on cuBLASLt (kernel "cublaslt"), else NULL */
    bool graphs_on;
    bool quant;                   /* linear layers in a quantized format (ra_k_qgemm) */
    bool atomic;                  /* ...added across K slices with float atomics (kernel "atomic") */

    dev_layer *layers;
    void *embed, *output;         /* output aliases embed when tied */
    float *out_norm, *rope_cos, *rope_sin;
    uint32_t rope_max_pos;

    /* sequences: slot i holds positions [start[i], start[i] + cap[i]) of the pool */
    uint32_t n_seqs;
    uint32_t *len, *cap, *start;
    uint32_t pool_len, pool_cap;
    float *kc, *vc;               /* [n_layers][pool_cap][kv_dim] */

    /* per-pass buffers for up to rows_cap rows and want_cap wanted rows */
    uint32_t rows_cap, want_cap;
    float *x, *qkv, *q, *gu;      /* gu: the gate/up product when cuBLAS computes it */
    void *act, *act2;
    float *logits;
    void *ls_ws;                  /* log-softmax slice partials */
    int32_t *d_in, *h_in, *d_argmax, *h_argmax;
    float *h_logits;

    float *gemm_ws;               /* split-K partial sums of our bf16 products */
    float *qgemm_ws;              /* slice sums of the quantized products, for rows_cap rows */
    float *xq, *xscale;           /* FP8 W8A8: the activations' decoded codes and scales */
    uint8_t *x8;                  /* ... and their E4M3 codes, for cuBLASLt */
    float *xscale_g;              /* ... and per-group scales group-major, for cuBLASLt */
    unsigned *gemm_counters;
    bool fused_rope;              /* RoPE and the KV store in the q/k/v product's epilogue */

    cudaGraphExec_t graph[GRAPH_MAX_ROWS + 1];
} cuda_engine;

ra_status ra_cuda_alloc(void *out_ptr, size_t n, size_t sz, const char *what)
{
    void **out = out_ptr;
    *out = NULL;
    if (sz && n > SIZE_MAX / sz) return ra_fail(RA_ERR_NOMEM, "CUDA: %s: %zu x %zu bytes overflows", what, n, sz);
    const size_t bytes = n * sz;
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e == cudaSuccess) e = cudaMemset(*out, 0, bytes ? bytes : 1); /* zeroed: workspaces' counters rely on it */
    if (e != cudaSuccess) {
        cudaFree(*out);
        *out = NULL;
        return ra_fail(RA_ERR_DEVICE, "CUDA: allocating %zu bytes for %s: %s", n * sz, what, cudaGetErrorString(e));
    }
    return RA_OK;
}

bool ra_cuda_probe(char *why, size_t why_len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, why_len, "no usable CUDA GPU or driver (CUDA says: %s)", cudaGetErrorString(e));
        cudaGetLastError();
        return false;
    }
    if (n == 0) {
        snprintf(why, why_len, "no CUDA device found");
        return false;
    }
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        snprintf(why, why_len, "cannot read the properties of device 0");
        return false;
    }
    if (p.major < 8) {
        snprintf(why, why_len, "%s has compute capability %d.%d; the kernels need 8.0 or newer", p.name, p.major, p.minor);
        return false;
    }
    snprintf(why, why_len, "%s (compute capability %d.%d, %d SMs)", p.name, p.major, p.minor, p.multiProcessorCount);
    return true;
}

/* ---- buffers ---------------------------------------------------------------- */

static void drop_graphs(cuda_engine *e)
{
    for (int i = 0; i <= GRAPH_MAX_ROWS; i++)
        if (e->graph[i]) {
            cudaGraphExecDestroy(e->graph[i]);
            e->graph[i] = NULL;
        }
}

static void free_rows(cuda_engine *e)
{
    cudaFree(e->x);
    cudaFree(e->qkv);
    cudaFree(e->q);
    cudaFree(e->gu);
    cudaFree(e->act);
    cudaFree(e->act2);
    cudaFree(e->logits);
    cudaFree(e->ls_ws);
    e->ls_ws = NULL;
    cudaFree(e->qgemm_ws);
    cudaFree(e->xq);
    cudaFree(e->xscale);
    cudaFree(e->x8);
    cudaFree(e->xscale_g);
    e->qgemm_ws = e->xq = e->xscale = e->xscale_g = NULL;
    e->x8 = NULL;
    cudaFree(e->d_in);
    cudaFree(e->d_argmax);
    cudaFreeHost(e->h_in);
    cudaFreeHost(e->h_argmax);
    cudaFreeHost(e->h_logits);
    e->x = e->qkv = e->q = e->gu = e->logits = e->h_logits = NULL;
    e->act = e->act2 = NULL;
    e->d_in = e->h_in = e->d_argmax = e->h_argmax = NULL;
    e->rows_cap = e->want_cap = 0;
}

/* Buffers for n rows, want of them wanted; growing them invalidates graphs. */
static ra_status ensure_rows(cuda_engine *e, uint32_t n, uint32_t want)
{
    if (n <= e->rows_cap && want <= e->want_cap) return RA_OK;
    drop_graphs(e);
    uint32_t rows = n > e->rows_cap ? n : e->rows_cap, wants = want > e->want_cap ? want : e->want_cap;
    if (wants < 1) wants = 1;
    free_rows(e);
    const ra_model_config *c = &e->cfg;
    const size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    const size_t wide = q_dim > c->dim ? q_dim : c->dim;
    RA_TRY(ra_cuda_alloc(&e->x, rows, c->dim * sizeof(float), "residual stream"));
    RA_TRY(ra_cuda_alloc(&e->qkv, rows, (q_dim + 2 * kv_dim) * sizeof(float), "q/k/v"));
    RA_TRY(ra_cuda_alloc(&e->q, rows, q_dim * sizeof(float), "queries"));
    RA_TRY(ra_cuda_alloc(&e->act, rows, wide * e->esize, "activations"));
    RA_TRY(ra_cuda_alloc(&e->act2, rows, (size_t)c->ffn_dim * e->esize, "MLP activations"));
    if (e->blas || e->quant) RA_TRY(ra_cuda_alloc(&e->gu, rows, 2 * (size_t)c->ffn_dim * sizeof(float), "gate/up products"));
    if (e->quant) {
        size_t ws = 0;
        for (int i = 0; i < QL_COUNT; i++) {
            const ra_qweight *w = &e->layers[0].q[i].w;
            const size_t need = ra_qgemm_workspace(w->kind, w->n, w->k, (int)rows);
            ws = need > ws ? need : ws;
        }
        RA_TRY(ra_cuda_alloc(&e->qgemm_ws, ws, sizeof(float), "quantized slice sums"));
        if (e->layers[0].q[0].w.act) { /* the widest input is the MLP's */
            const size_t k = c->ffn_dim > wide ? c->ffn_dim : wide;
            RA_TRY(ra_cuda_alloc(&e->xq, rows, k * sizeof(float), "FP8 activations"));
            RA_TRY(ra_cuda_alloc(&e->xscale, rows, (k + 127) / 128 * sizeof(float), "FP8 activation scales"));
            if (e->lt8) RA_TRY(ra_cuda_alloc(&e->x8, rows, k, "FP8 activation codes"));
            if (e->lt8) RA_TRY(ra_cuda_alloc(&e->xscale_g, rows, (k + 127) / 128 * sizeof(float), "FP8 scales"));
        }
    }
    RA_TRY(ra_cuda_alloc(&e->logits, wants, (size_t)c->n_vocab * sizeof(float), "logits"));
    RA_TRY(ra_cuda_alloc(&e->ls_ws, ra_log_softmax_workspace((int)wants, (int)c->n_vocab), 1, "log-softmax workspace"));
    RA_TRY(ra_cuda_alloc(&e->d_in, rows, IN_SECTIONS * sizeof(int32_t), "inputs"));
    RA_TRY(ra_cuda_alloc(&e->d_argmax, wants, sizeof(int32_t), "argmax"));
    CU_TRY(cudaMallocHost((void **)&e->h_in, (size_t)rows * IN_SECTIONS * sizeof(int32_t)), "pinned inputs");
    CU_TRY(cudaMallocHost((void **)&e->h_argmax, (size_t)wants * sizeof(int32_t)), "pinned argmax");
    CU_TRY(cudaMallocHost((void **)&e->h_logits, (size_t)wants * c->n_vocab * sizeof(float)), "pinned log-probs");
    e->rows_cap = rows;
    e->want_cap = wants;
    return RA_OK;
}

/* ---- weights ---------------------------------------------------------------- */

static ra_status upload(const void *host, size_t bytes, void **dev, const char *what)
{
    RA_TRY(ra_cuda_alloc(dev, bytes, 1, what));
    CU_TRY(cudaMemcpy(*dev, host, bytes, cudaMemcpyHostToDevice), what);
    return RA_OK;
}

/* Several host weights with the same columns, stacked row-wise into one. */
static ra_status upload_stacked(const ra_weight *const *ws, int n, void **dev, const char *what)
{
    size_t bytes = 0;
    for (int i = 0; i < n; i++) bytes += (size_t)ws[i]->rows * ws[i]->row_bytes;
    uint8_t *buf;
    RA_TRY(ra_calloc(&buf, bytes, 1));
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(buf + at, ws[i]->data, (size_t)ws[i]->rows * ws[i]->row_bytes);
        at += (size_t)ws[i]->rows * ws[i]->row_bytes;
    }
    ra_status s = upload(buf, bytes, dev, what);
    free(buf);
    return s;
}

/* Gate and up rows interleaved in groups of 8, as the SWIGLU epilogue reads
 * them: rows 16b..16b+7 are gate rows 8b..8b+7, rows 16b+8..16b+15 up rows. */
static ra_status upload_gate_up(const ra_weight *gate, const ra_weight *up, void **dev)
{
    const size_t rb = gate->row_bytes;
    uint8_t *buf;
    RA_TRY(ra_calloc(&buf, 2 * (size_t)gate->rows, rb));
    for (uint32_t j = 0; j < gate->rows; j++) {
        size_t blk = j / 8, r = j % 8;
        memcpy(buf + (blk * 16 + r) * rb, gate->data + j * rb, rb);
        memcpy(buf + (blk * 16 + 8 + r) * rb, up->data + j * rb, rb);
    }
    ra_status s = upload(buf, 2 * (size_t)gate->rows * rb, dev, "gate/up weights");
    free(buf);
    return s;
}

/* A bf16 or f32 table as float32 (exact), for the quantized formats. */
static ra_status upload_f32(const ra_weight *w, void **dev, const char *what)
{
    float *buf;
    RA_TRY(ra_calloc(&buf, (size_t)w->rows * w->cols, sizeof *buf));
    ra_status s = RA_OK;
    for (uint32_t r = 0; r < w->rows && s == RA_OK; r++) s = ra_weight_row_f32(w, r, buf + (size_t)r * w->cols);
    if (s == RA_OK) s = upload(buf, (size_t)w->rows * w->cols * sizeof *buf, dev, what);
    free(buf);
    return s;
}

static ra_status upload_quant_model(cuda_engine *e, const ra_model *m)
{
    const ra_model_config *c = &e->cfg;
    RA_TRY(ra_calloc(&e->layers, c->n_layers, sizeof *e->layers));
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const ra_layer *L = &m->layers[l];
        dev_layer *D = &e->layers[l];
        const ra_weight *ws[QL_COUNT] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < QL_COUNT; i++) {
            if (ws[i]->type != RA_W_QUANT || !ws[i]->q)
                return ra_fail(RA_ERR_UNSUPPORTED, "format %s: layer %u has a linear layer that is not quantized",
                               m->format->name, l);
            RA_TRY(ra_cuda_qlayer_upload(m->format->quant, ws[i]->q, &D->q[i]));
        }
        RA_TRY(upload(L->attn_norm.data, (size_t)c->dim * sizeof(float), (void **)&D->attn_norm, "norm"));
        RA_TRY(upload(L->ffn_norm.data, (size_t)c->dim * sizeof(float), (void **)&D->ffn_norm, "norm"));
    }
    RA_TRY(upload_f32(&m->embed, &e->embed, "embeddings"));
    if (c->tied_embeddings) e->output = e->embed;
    else RA_TRY(upload_f32(&m->output, &e->output, "output weights"));
    return upload(m->out_norm.data, (size_t)c->dim * sizeof(float), (void **)&e->out_norm, "norm");
}

static ra_status upload_model(cuda_engine *e, const ra_model *m)
{
    if (e->quant) return upload_quant_model(e, m);
    const ra_model_config *c = &e->cfg;
    RA_TRY(ra_calloc(&e->layers, c->n_layers, sizeof *e->layers));
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const ra_layer *L = &m->layers[l];
        dev_layer *D = &e->layers[l];
        const ra_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
        RA_TRY(upload_stacked(qkv, 3, &D->wqkv, "q/k/v weights"));
        RA_TRY(upload(L->wo.data, (size_t)L->wo.rows * L->wo.row_bytes, &D->wo, "output projection"));
        RA_TRY(upload_gate_up(&L->w_gate, &L->w_up, &D->wgu));
        RA_TRY(upload(L->w_down.data, (size_t)L->w_down.rows * L->w_down.row_bytes, &D->wd, "down projection"));
        RA_TRY(upload(L->attn_norm.data, (size_t)c->dim * sizeof(float), (void **)&D->attn_norm, "norm"));
        RA_TRY(upload(L->ffn_norm.data, (size_t)c->dim * sizeof(float), (void **)&D->ffn_norm, "norm"));
    }
    RA_TRY(upload(m->embed.data, (size_t)m->embed.rows * m->embed.row_bytes, &e->embed, "embeddings"));
    if (c->tied_embeddings) e->output = e->embed;
    else RA_TRY(upload(m->output.data, (size_t)m->output.rows * m->output.row_bytes, &e->output, "output weights"));
    RA_TRY(upload(m->out_norm.data, (size_t)c->dim * sizeof(float), (void **)&e->out_norm, "norm"));
    return RA_OK;
}

/* The RoPE tables on the device for positions 0..n-1: the host model's,
 * grown as needed. New tables are new pointers, so graphs are dropped. */
static ra_status reserve_rope(cuda_engine *e, uint32_t n)
{
    if (n <= e->rope_max_pos) return RA_OK;
    RA_TRY(ra_model_rope_reserve(e->m, n));
    drop_graphs(e);
    cudaFree(e->rope_cos);
    cudaFree(e->rope_sin);
    e->rope_cos = e->rope_sin = NULL;
    e->rope_max_pos = 0;
    const size_t bytes = (size_t)e->m->rope_max_pos * (e->cfg.head_dim / 2) * sizeof(float);
    RA_TRY(upload(e->m->rope_cos, bytes, (void **)&e->rope_cos, "RoPE table"));
    RA_TRY(upload(e->m->rope_sin, bytes, (void **)&e->rope_sin, "RoPE table"));
    e->rope_max_pos = e->m->rope_max_pos;
    return RA_OK;
}

/* The split-K workspace of our products: the largest any weight shape needs. */
static ra_status alloc_gemm_workspace(cuda_engine *e)
{
    const ra_model_config *c = &e->cfg;
    const int q = (int)(c->n_heads * c->head_dim), kv = (int)(c->n_kv_heads * c->head_dim);
    const int shapes[5][2] = {{q + 2 * kv, (int)c->dim}, {(int)c->dim, q}, {2 * (int)c->ffn_dim, (int)c->dim},
                              {(int)c->dim, (int)c->ffn_dim}, {(int)c->n_vocab, (int)c->dim}};
    size_t ws = 0, counters = 0;
    for (int i = 0; i < 5; i++) {
        size_t w, n;
        ra_gemm_workspace(e->dt, shapes[i][0], shapes[i][1], &w, &n);
        ws = w > ws ? w : ws;
        counters = n > counters ? n : counters;
    }
    RA_TRY(ra_cuda_alloc(&e->gemm_ws, ws, sizeof(float), "split-K workspace"));
    RA_TRY(ra_cuda_alloc(&e->gemm_counters, counters, sizeof(unsigned), "split-K counters"));
    if (counters) CU_TRY(cudaMemset(e->gemm_counters, 0, counters * sizeof(unsigned)), "split-K counters");
    return RA_OK;
}

/* ---- the forward pass ------------------------------------------------------- */

static ra_status gemm(cuda_engine *e, const void *w, const void *x, float *y, void *act, int m, int n, int k, ra_epilogue epi,
                      const ra_rope_args *rope)
{
    if (!e->blas) {
        ra_gemm_args a = {.dtype = e->dt, .w = w, .x = x, .y = y, .act = act, .m = m, .n = n, .k = k, .epilogue = epi,
                          .ws = e->gemm_ws, .counters = e->gemm_counters};
        if (rope) a.rope = *rope;
        return ra_cuda_check(ra_k_gemm(&a, e->stream), "matrix product");
    }
    float *out = epi == RA_EPI_SWIGLU ? e->gu : y;
    RA_TRY(ra_blas_gemm(e->blas, w, x, out, m, n, k, epi == RA_EPI_ADD));
    if (epi == RA_EPI_SWIGLU) CU_TRY(ra_k_swiglu(e->dt, e->gu, act, m, n, e->stream), "SwiGLU");
    return RA_OK;
}

/* A quantized layer's product into y (row stride ldy). */
static ra_status qgemm(cuda_engine *e, const ra_cuda_qlayer *q, const float *x, float *y, int ldy, int m, ra_epilogue epi)
{
    ra_qgemm_args a = {.w = q->w, .x = x, .y = y, .m = m, .ldy = ldy, .epilogue = epi, .ws = e->qgemm_ws,
                       .atomic = e->atomic};
    if (q->w.act) { /* W8A8: the activations quantized as the CPU does, per product */
        CU_TRY(ra_k_fp8_quantize_act(x, e->xq, e->xscale, m, q->w.k, q->w.act, e->stream), "FP8 activations");
        a.x = e->xq;
        a.xscale = e->xscale;
    }
    if (e->lt8) { /* the field's FP8 GEMM: cuBLASLt with its own scaling */
        const bool block = q->w.block_rows > 1;
        CU_TRY(ra_k_fp8_encode(e->xq, e->x8, (size_t)m * q->w.k, e->stream), "FP8 activation codes");
        if (block) CU_TRY(ra_k_fp8_scales_by_group(e->xscale, e->xscale_g, m, (q->w.k + 127) / 128, e->stream), "scales");
        return ra_blas_fp8_gemm(e->lt8, q->w.codes, q->w.fscales, e->x8, block ? e->xscale_g : e->xscale, y, m, q->w.n,
                                q->w.k, ldy, block, epi == RA_EPI_ADD);
    }
    return ra_cuda_check(ra_k_qgemm(&a, e->stream), "quantized matrix product");
}

/* One block's attention-input and MLP products for the quantized formats:
 * q, k, v side by side in qkv; gate and up side by side in gu. */
static ra_status quant_qkv(cuda_engine *e, const dev_layer *L, int rows, int q_dim, int kv_dim)
{
    const int ld = q_dim + 2 * kv_dim;
    const float *x = e->act;
    RA_TRY(qgemm(e, &L->q[QL_Q], x, e->qkv, ld, rows, RA_EPI_STORE));
    RA_TRY(qgemm(e, &L->q[QL_K], x, e->qkv + q_dim, ld, rows, RA_EPI_STORE));
    return qgemm(e, &L->q[QL_V], x, e->qkv + q_dim + kv_dim, ld, rows, RA_EPI_STORE);
}

static ra_status quant_mlp(cuda_engine *e, const dev_layer *L, int rows, int dim, int ffn)
{
    RA_TRY(qgemm(e, &L->q[QL_GATE], e->act, e->gu, 2 * ffn, rows, RA_EPI_STORE));
    RA_TRY(qgemm(e, &L->q[QL_UP], e->act, e->gu + ffn, 2 * ffn, rows, RA_EPI_STORE));
    CU_TRY(ra_k_swiglu_halves(e->dt, e->gu, e->act2, rows, 2 * ffn, e->stream), "SwiGLU");
    return qgemm(e, &L->q[QL_DOWN], e->act2, e->x, dim, rows, RA_EPI_ADD);
}

/* Enqueues one pass over n rows (inputs already in h_in), n_want of them wanted. */
static ra_status enqueue(cuda_engine *e, uint32_t n, uint32_t n_want)
{
    const ra_model_config *c = &e->cfg;
    const int dim = (int)c->dim, hd = (int)c->head_dim, nh = (int)c->n_heads, nkv = (int)c->n_kv_heads;
    const int q_dim = nh * hd, kv_dim = nkv * hd, ffn = (int)c->ffn_dim, rows = (int)n;
    const int32_t *in = e->d_in;
    CU_TRY(cudaMemcpyAsync(e->d_in, e->h_in, (size_t)e->rows_cap * IN_SECTIONS * sizeof(int32_t), cudaMemcpyHostToDevice,
                           e->stream),
           "copying inputs");
    ra_kv_layout kv = {e->kc, e->vc, (int)e->pool_cap, (int)c->n_layers, in + IN_START * e->rows_cap,
                       in + IN_POS * e->rows_cap};
    ra_rope_args rope = {e->q, kv, 0, nh, nkv, hd, e->rope_cos, e->rope_sin};
    CU_TRY(ra_k_embed(e->dt, e->embed, in + IN_TOKEN * e->rows_cap, e->x, rows, dim, e->stream), "embedding");
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const dev_layer *L = &e->layers[l];
        CU_TRY(ra_k_rmsnorm(e->dt, e->x, NULL, L->attn_norm, e->act, rows, dim, c->rms_eps, e->stream), "rmsnorm");
        rope.layer = (int)l;
        if (e->quant) {
            RA_TRY(quant_qkv(e, L, rows, q_dim, kv_dim));
            CU_TRY(ra_k_rope_store(e->qkv, &rope, rows, e->stream), "RoPE");
        } else if (e->fused_rope) {
            RA_TRY(gemm(e, L->wqkv, e->act, NULL, NULL, rows, q_dim + 2 * kv_dim, dim, RA_EPI_ROPE, &rope));
        } else {
            RA_TRY(gemm(e, L->wqkv, e->act, e->qkv, NULL, rows, q_dim + 2 * kv_dim, dim, RA_EPI_STORE, NULL));
            CU_TRY(ra_k_rope_store(e->qkv, &rope, rows, e->stream), "RoPE");
        }
        CU_TRY(ra_k_attention(e->dt, e->q, &kv, (int)l, e->act, rows, nh, nkv, hd, e->stream), "attention");
        if (e->quant) RA_TRY(qgemm(e, &L->q[QL_O], e->act, e->x, dim, rows, RA_EPI_ADD));
        else RA_TRY(gemm(e, L->wo, e->act, e->x, NULL, rows, dim, q_dim, RA_EPI_ADD, NULL));
        CU_TRY(ra_k_rmsnorm(e->dt, e->x, NULL, L->ffn_norm, e->act, rows, dim, c->rms_eps, e->stream), "rmsnorm");
        if (e->quant) {
            RA_TRY(quant_mlp(e, L, rows, dim, ffn));
            continue;
        }
        RA_TRY(gemm(e, L->wgu, e->act, NULL, e->act2, rows, 2 * ffn, dim, RA_EPI_SWIGLU, NULL));
        RA_TRY(gemm(e, L->wd, e->act2, e->x, NULL, rows, dim, ffn, RA_EPI_ADD, NULL));
    }
    if (n_want == 0) return RA_OK;
    CU_TRY(ra_k_rmsnorm(e->dt, e->x, in + IN_WANT * e->rows_cap, e->out_norm, e->act, (int)n_want, dim, c->rms_eps,
                        e->stream),
           "rmsnorm");
    RA_TRY(gemm(e, e->output, e->act, e->logits, NULL, (int)n_want, (int)c->n_vocab, dim, RA_EPI_STORE, NULL));
    CU_TRY(ra_k_log_softmax(e->logits, e->d_argmax, e->ls_ws, (int)n_want, (int)c->n_vocab, e->stream), "log-softmax");
    CU_TRY(cudaMemcpyAsync(e->h_logits, e->logits, (size_t)n_want * c->n_vocab * sizeof(float), cudaMemcpyDeviceToHost,
                           e->stream),
           "copying log-probs");
    CU_TRY(cudaMemcpyAsync(e->h_argmax, e->d_argmax, n_want * sizeof(int32_t), cudaMemcpyDeviceToHost, e->stream),
           "copying argmax");
    return RA_OK;
}

/* A decode step of n rows, every row wanted, captured once and replayed. */
static ra_status launch_graph(cuda_engine *e, uint32_t n)
{
    if (!e->graph[n]) {
        cudaGraph_t g = NULL;
        CU_TRY(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal), "graph capture");
        ra_status s = enqueue(e, n, n);
        cudaError_t ce = cudaStreamEndCapture(e->stream, &g);
        if (s == RA_OK) s = ra_cuda_check(ce, "graph capture");
        if (s == RA_OK) s = ra_cuda_check(cudaGraphInstantiate(&e->graph[n], g, 0), "graph instantiation");
        if (g) cudaGraphDestroy(g);
        RA_TRY(s);
    }
    CU_TRY(cudaGraphLaunch(e->graph[n], e->stream), "graph launch");
    return RA_OK;
}

static ra_status cu_forward(void *impl, const uint32_t *seq, const int32_t *token, const bool *want, uint32_t n,
                            float *logprobs, int32_t *argmax)
{
    cuda_engine *e = impl;
    const ra_model_config *c = &e->cfg;
    if (n == 0) return RA_OK;
    uint32_t n_want = 0;
    for (uint32_t i = 0; i < n; i++) n_want += want[i];
    RA_TRY(ensure_rows(e, n, n_want));
    int32_t *h = e->h_in;
    const uint32_t rc = e->rows_cap;
    ra_status s = RA_OK;
    uint32_t placed = 0;
    for (uint32_t j = 0; placed < n; placed++) {
        const uint32_t i = placed, q = seq[i];
        if (q >= e->n_seqs) { s = ra_fail(RA_ERR_USAGE, "sequence %u was not begun (%u exist)", q, e->n_seqs); break; }
        if (e->len[q] >= e->cap[q]) { s = ra_fail(RA_ERR_USAGE, "sequence longer than its KV capacity %u", e->cap[q]); break; }
        h[IN_TOKEN * rc + i] = token[i];
        h[IN_START * rc + i] = (int32_t)e->start[q];
        h[IN_POS * rc + i] = (int32_t)e->len[q]++;
        if (want[i]) h[IN_WANT * rc + j++] = (int32_t)i;
    }
    if (s == RA_OK) {
        if (e->graphs_on && n_want == n && n <= GRAPH_MAX_ROWS) s = launch_graph(e, n);
        else s = enqueue(e, n, n_want);
    }
    if (s == RA_OK) s = ra_cuda_check(cudaStreamSynchronize(e->stream), "forward pass");
    if (s != RA_OK) {
        while (placed-- > 0) e->len[seq[placed]]--;
        return s;
    }
    memcpy(logprobs, e->h_logits, (size_t)n_want * c->n_vocab * sizeof(float));
    if (argmax) memcpy(argmax, e->h_argmax, n_want * sizeof(int32_t));
    return RA_OK;
}

static ra_status cu_begin(void *impl, uint32_t n, const uint32_t *cap)
{
    cuda_engine *e = impl;
    free(e->len);
    free(e->cap);
    free(e->start);
    e->len = e->cap = e->start = NULL;
    e->n_seqs = 0;
    uint64_t total = 0;
    uint32_t longest = 0;
    for (uint32_t i = 0; i < n; i++) {
        total += cap[i];
        longest = cap[i] > longest ? cap[i] : longest;
    }
    RA_TRY(reserve_rope(e, longest));
    if (total > (1u << 30)) return ra_fail(RA_ERR_USAGE, "%llu KV positions requested", (unsigned long long)total);
    RA_TRY(ra_calloc(&e->len, n ? n : 1, sizeof *e->len));
    RA_TRY(ra_calloc(&e->cap, n ? n : 1, sizeof *e->cap));
    RA_TRY(ra_calloc(&e->start, n ? n : 1, sizeof *e->start));
    for (uint32_t i = 0, at = 0; i < n; i++) {
        e->cap[i] = cap[i];
        e->start[i] = at;
        at += cap[i];
    }
    e->n_seqs = n;
    if (total > e->pool_cap) { /* the pool layout is baked into graphs: a new one drops them */
        drop_graphs(e);
        cudaFree(e->kc);
        cudaFree(e->vc);
        e->kc = e->vc = NULL;
        e->pool_cap = 0;
        const size_t per = (size_t)e->cfg.n_layers * e->cfg.n_kv_heads * e->cfg.head_dim;
        RA_TRY(ra_cuda_alloc(&e->kc, total, per * sizeof(float), "KV cache"));
        RA_TRY(ra_cuda_alloc(&e->vc, total, per * sizeof(float), "KV cache"));
        e->pool_cap = (uint32_t)total;
    }
    e->pool_len = (uint32_t)total;
    return RA_OK;
}

/* The NVIDIA kernel module's version, e.g. "580.159.04": the first word of
 * /proc/driver/nvidia/version that starts with digits and holds a dot. */
static void driver_version(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    if (!f) return;
    char line[512];
    if (fgets(line, sizeof line, f))
        for (char *w = strtok(line, " \t\n"); w; w = strtok(NULL, " \t\n"))
            if (w[0] >= '0' && w[0] <= '9' && strchr(w, '.')) {
                snprintf(out, n, "%s", w);
                break;
            }
    fclose(f);
}

static void cu_describe(const void *impl, void *json_object)
{
    const cuda_engine *e = impl;
    cJSON *o = json_object;
    struct cudaDeviceProp p;
    int dev = 0, rt = 0, drv = 0;
    char buf[64];
    cudaGetDevice(&dev);
    cudaGetDeviceProperties(&p, dev);
    cJSON_AddStringToObject(o, "backend", "cuda");
    cJSON_AddStringToObject(o, "gpu", p.name);
    cJSON_AddNumberToObject(o, "sm_count", p.multiProcessorCount);
    snprintf(buf, sizeof buf, "%d.%d", p.major, p.minor);
    cJSON_AddStringToObject(o, "compute_capability", buf);
    driver_version(buf, sizeof buf);
    cJSON_AddStringToObject(o, "driver", buf);
    cudaDriverGetVersion(&drv);
    snprintf(buf, sizeof buf, "%d.%d", drv / 1000, drv % 1000 / 10);
    cJSON_AddStringToObject(o, "driver_cuda_api", buf);
    cudaRuntimeGetVersion(&rt);
    snprintf(buf, sizeof buf, "%d.%d", rt / 1000, rt % 1000 / 10);
    cJSON_AddStringToObject(o, "cuda_runtime", buf);
    ra_blas_describe(e->blas, o);
    ra_blas_fp8_describe(e->lt8, o);
    cJSON_AddStringToObject(o, "kernel", e->kernel->name);
    cJSON_AddStringToObject(o, "kernels_build", RA_KERNELS_BUILD);
    cJSON_AddStringToObject(o, "nvcc_flags", RA_NVCC_FLAGS);
    cJSON_AddBoolToObject(o, "graphs", e->graphs_on);
    cJSON_AddBoolToObject(o, "rope_in_qkv_epilogue", e->fused_rope);
    if (e->quant) {
        cJSON_AddStringToObject(o, "quantized_layers", ra_qfamily_name(e->m->format->quant->family));
        cJSON_AddStringToObject(o, "slice_sums", e->lt8      ? "cuBLASLt's"
                                                 : e->atomic ? "float atomics, in the order blocks finish"
                                                             : "slice order");
    }
}

static void cu_close(void *impl)
{
    cuda_engine *e = impl;
    if (!e) return;
    drop_graphs(e);
    free_rows(e);
    for (uint32_t l = 0; e->layers && l < e->cfg.n_layers; l++) {
        dev_layer *D = &e->layers[l];
        cudaFree(D->wqkv);
        cudaFree(D->wo);
        cudaFree(D->wgu);
        cudaFree(D->wd);
        cudaFree(D->attn_norm);
        cudaFree(D->ffn_norm);
        for (int i = 0; i < QL_COUNT; i++) ra_cuda_qlayer_free(&D->q[i]);
    }
    free(e->layers);
    if (e->output != e->embed) cudaFree(e->output);
    cudaFree(e->embed);
    cudaFree(e->out_norm);
    cudaFree(e->rope_cos);
    cudaFree(e->rope_sin);
    cudaFree(e->kc);
    cudaFree(e->vc);
    free(e->len);
    free(e->cap);
    free(e->start);
    ra_blas_close(e->blas);
    ra_blas_fp8_close(e->lt8);
    cudaFree(e->gemm_ws);
    cudaFree(e->gemm_counters);
    if (e->stream) cudaStreamDestroy(e->stream);
    free(e);
}

ra_status ra_cuda_engine_open(ra_model *m, const ra_kernel *k, const ra_engine_opts *opts, const ra_backend_ops **ops,
                              void **impl)
{
    static const ra_backend_ops cuda_ops = {cu_begin, cu_forward, cu_describe, cu_close, NULL}; /* no activation probe yet */
    const ra_model_config *c = &m->cfg;
    const ra_wtype wt = m->layers[0].wq.type;
    const bool quant = wt == RA_W_QUANT;
    if (quant) {
        const ra_qformat *qf = m->format->quant;
        const ra_qlayer *q0 = m->layers[0].wq.q;
        const bool w8a8 = qf && qf->family == RA_QF_FP8 && qf->fp8_act != RA_FP8_ACT_NONE;
        if (strcmp(k->name, "ra") && strcmp(k->name, "atomic") && (!w8a8 || strcmp(k->name, "cublaslt")))
            return ra_fail(RA_ERR_UNSUPPORTED, "format %s runs on the kernels ra, atomic%s, not %s", m->format->name,
                           w8a8 ? " and cublaslt" : "", k->name);
        if (!qf || !q0)
            return ra_fail(RA_ERR_UNSUPPORTED, "format %s has no CUDA kernel yet", m->format->name);
        if (m->embed.type != RA_W_BF16 && m->embed.type != RA_W_F32)
            return ra_fail(RA_ERR_UNSUPPORTED, "format %s: embeddings of type %s", m->format->name, ra_wtype_name(m->embed.type));
    } else if (!strcmp(k->name, "atomic")) {
        return ra_fail(RA_ERR_UNSUPPORTED, "kernel atomic runs the quantized formats only");
    } else if (wt != RA_W_F32 && wt != RA_W_BF16)
        return ra_fail(RA_ERR_UNSUPPORTED, "format %s has no CUDA kernel (its weights are %s)", m->format->name,
                       ra_wtype_name(wt));
    if (!quant && m->embed.type != wt) return ra_fail(RA_ERR_UNSUPPORTED, "format %s: embeddings and layers differ in type", m->format->name);
    if (c->head_dim > 256 || c->ffn_dim % 8)
        return ra_fail(RA_ERR_UNSUPPORTED, "the CUDA engine needs head_dim <= 256 and ffn_dim a multiple of 8 (got %u, %u)",
                       c->head_dim, c->ffn_dim);
    if (!quant && strcmp(k->name, "ra") && wt != RA_W_BF16)
        return ra_fail(RA_ERR_UNSUPPORTED, "kernel %s runs bf16 weights only", k->name);
    cuda_engine *e;
    RA_TRY(ra_calloc(&e, 1, sizeof *e));
    e->m = m;
    e->cfg = *c;
    e->kernel = k;
    e->quant = quant;
    e->atomic = !strcmp(k->name, "atomic");
    e->dt = wt == RA_W_BF16 ? RA_DT_BF16 : RA_DT_F32;
    e->esize = wt == RA_W_BF16 ? 2 : 4;
    e->graphs_on = !opts->no_graphs;
    ra_status s = ra_cuda_check(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking), "creating a stream");
    if (s == RA_OK && !quant && strcmp(k->name, "ra")) s = ra_blas_open(e->stream, !strcmp(k->name, "cublas-bi"), &e->blas);
    if (s == RA_OK && quant && !strcmp(k->name, "cublaslt")) s = ra_blas_fp8_open(e->stream, &e->lt8);
    if (s == RA_OK) s = upload_model(e, m);
    if (s == RA_OK && !e->blas) s = alloc_gemm_workspace(e);
    e->fused_rope = !e->blas && !quant && ra_gemm_fuses_rope(e->dt, (int)c->head_dim);
    if (s == RA_OK) s = ensure_rows(e, 1, 1);
    if (s != RA_OK) {
        cu_close(e);
        return s;
    }
    *ops = &cuda_ops;
    *impl = e;
    return RA_OK;
}
