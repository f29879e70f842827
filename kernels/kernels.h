/* The CUDA kernels' C interface: one launcher per kernel family, called by
 * the host code in src/backend/cuda/ and by tests/gpu/. Every launcher
 * enqueues on `stream` and returns the launch error (cudaSuccess if none).
 *
 * The determinism contract of every kernel here (docs/architecture.md):
 * each output element is computed by one thread in an order fixed by the
 * code and the shapes of the weights alone, never by the number of rows in
 * the batch or by their positions; no floating-point atomics; no fused
 * multiply-add the source does not spell (built with --fmad=false). */
#ifndef RA_KERNELS_H
#define RA_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Activations and weights of one matrix product share a dtype. */
typedef enum { RA_DT_F32 = 0, RA_DT_BF16 = 1 } ra_dtype;

/* The per-row layout of the KV cache: layer l, pool position p at
 * ((l * pool_len) + p) * kv_dim; row i's sequence starts at start[i] and the
 * row sits at position pos[i]. */
typedef struct {
    float *k, *v;
    int pool_len, n_layers;
    const int32_t *start, *pos;
} ra_kv_layout;

/* RoPE and the KV-cache store, for the ROPE epilogue and ra_k_rope_store:
 * q (roped) to q_out (n x n_heads*head_dim), k (roped) and v into the cache
 * at layer. cos/sin tables are [max_pos x head_dim/2]. */
typedef struct {
    float *q_out;
    ra_kv_layout kv;
    int layer, n_heads, n_kv_heads, head_dim;
    const float *cos_t, *sin_t;
} ra_rope_args;

/* What a matrix product does with its result v (M x N, float32):
 * STORE: y = v;  ADD: y += v (the residual stream);
 * SWIGLU: rows come in groups of 16, gate rows j..j+7 then up rows j..j+7,
 *   and act (M x N/2, dtype of x) gets silu(gate) * up, computed in double
 *   and rounded once;
 * ROPE: v is the fused q/k/v projection of each row; rope (ra_rope_args) is
 *   applied as ra_k_rope_store does, bit for bit. bf16 only, head_dim must
 *   divide 128 (ra_gemm_fuses_rope). */
typedef enum { RA_EPI_STORE = 0, RA_EPI_ADD = 1, RA_EPI_SWIGLU = 2, RA_EPI_ROPE = 3 } ra_epilogue;

typedef struct {
    ra_dtype dtype;
    const void *w;   /* N x K weights, row-major (a row is an output feature) */
    const void *x;   /* M x K activations, row-major */
    float *y;        /* M x N, row stride N (STORE, ADD) */
    void *act;       /* M x N/2 (SWIGLU) */
    int m, n, k;
    ra_epilogue epilogue;
    ra_rope_args rope;       /* ROPE */
    float *ws;               /* ra_gemm_workspace() floats, for split-K partial sums */
    unsigned *counters;      /* ra_gemm_workspace() counters, zero before first use; each
                                launch leaves them zero again */
} ra_gemm_args;

/* Our matrix product ("ra"), y = x . W^T.
 *  float32 weights: CUDA cores, fmaf. A block owns 16 weight rows and up to
 *   64 tokens; its 8 warps take 2 rows each, lanes split K in 4-float steps,
 *   then a butterfly over the lanes.
 *  bfloat16 weights: tensor cores (mma.sync m16n8k16, float32 accumulate).
 *   A block owns 128 weight rows (16 per warp), up to 64 tokens and one of
 *   S slices of K; S depends on N and K alone (ra_gemm_splits). Each warp
 *   runs its slice in 64-wide chunks in ascending order, and the S partial
 *   sums are added in slice order by the last block to finish.
 * Either way a token's result is the same bits whatever M is and wherever
 * the token sits in the batch. */
cudaError_t ra_k_gemm(const ra_gemm_args *a, cudaStream_t stream);

/* K slices of a bf16 product of this shape (1 for float32). */
int ra_gemm_splits(ra_dtype dtype, int n, int k);
/* Workspace a product of this shape needs for any M: floats in *ws_floats,
 * counters in *n_counters. */
void ra_gemm_workspace(ra_dtype dtype, int n, int k, size_t *ws_floats, size_t *n_counters);
/* Whether the ROPE epilogue can run for this dtype and head size. */
int ra_gemm_fuses_rope(ra_dtype dtype, int head_dim);

/* SWIGLU epilogue for products that do not fuse it (cuBLAS): act from
 * y (M x N, interleaved as above). */
cudaError_t ra_k_swiglu(ra_dtype dtype, const float *y, void *act, int m, int n, cudaStream_t stream);
/* The same with gate in columns 0..n/2-1 and up in n/2..n-1 of each row. */
cudaError_t ra_k_swiglu_halves(ra_dtype dtype, const float *y, void *act, int m, int n, cudaStream_t stream);

/* x[i] = embed[tokens[i]] as float32 (embed: vocab x dim, dtype). */
cudaError_t ra_k_embed(ra_dtype dtype, const void *embed, const int32_t *tokens, float *x, int n, int dim,
                       cudaStream_t stream);

/* RMSNorm of rows (rows == NULL: row i of x; else row rows[i]):
 * out[i] = x * (1 / sqrt(mean(x^2) + eps)) * g, the sum of squares in double;
 * out in dtype (bfloat16: rounded to nearest even). */
cudaError_t ra_k_rmsnorm(ra_dtype dtype, const float *x, const int32_t *rows, const float *g, void *out, int n, int dim,
                         float eps, cudaStream_t stream);

/* RoPE (rotate-half) on q and k of each row of qkv (n x (q_dim + 2 kv_dim)),
 * as r describes; a*c - b*s and b*c + a*s with every product rounded, as the
 * CPU computes it. */
cudaError_t ra_k_rope_store(const float *qkv, const ra_rope_args *r, int n, cudaStream_t stream);

/* Causal grouped-query attention of each row over its sequence's positions
 * 0..pos: positions in chunks of 32 dealt to 4 warps round-robin (online
 * softmax per warp), warps merged in order; the split depends on the
 * position only. out (n x n_heads*head_dim) in dtype. head_dim <= 256. */
cudaError_t ra_k_attention(ra_dtype dtype, const float *q, const ra_kv_layout *kv, int layer, void *out, int n,
                           int n_heads, int n_kv_heads, int head_dim, cudaStream_t stream);

/* In place: each of n rows of length vocab becomes its log-softmax (max in
 * float, sum of exp in double, as the CPU does); argmax[i] its largest
 * value, ties to the lowest id, NaN never chosen (all NaN: 0). ws holds
 * ra_log_softmax_workspace(n, vocab) bytes. */
cudaError_t ra_k_log_softmax(float *logits, int32_t *argmax, void *ws, int n, int vocab, cudaStream_t stream);
size_t ra_log_softmax_workspace(int n, int vocab);

/* n values of dtype at p, uniform in [-1, 1), a function of (index, seed). */
cudaError_t ra_k_fill_random(ra_dtype dtype, void *p, size_t n, uint32_t seed, cudaStream_t stream);

/* ---- Weight-only quantized products (quant.cu) ----------------------------
 * The weights stay in their checkpoint's packing (docs/formats.md):
 *  GPTQ   qweight [K/8][N] (8 codes of column k along a word), qzeros [G][N/8]
 *         (stored zero - zero_offset: 1 for GPTQ v1), scales [G][N], g_idx [K] or NULL;
 *  AWQ    qweight [K][N/8] (features in the order 0,2,4,6,1,3,5,7), qzeros
 *         [K/group][N/8] the same way, scales [K/group][N];
 *  W4A16  weight_packed [N][K/8], weight_scale [N][G], weight_zero_point
 *         [N/8][G] or NULL (symmetric: 8), weight_g_idx [K] or NULL;
 *  FP8    codes [N][K] E4M3, fscales float [N/block_rows][scale_cols], the
 *         scale of (n, k) at [n / block_rows][k / block_cols];
 *  NVFP4  codes [N][K/2] E2M1 (even k low nibble), bscales E4M3 [N][K/16],
 *         global_scale; MXFP4 the same with E8M0 bscales [N][K/32].
 *  MARLIN qweight [K/16][2N] in the tensor-core tile layout, scales16
 *         [G][N] permuted, qzeros [G][N/8] or NULL (8), perm [K] (Marlin row k
 *         is source column perm[k]) and g_idx [K] in Marlin's row order, or
 *         NULL (include/ra/marlin.h); N % 64 == 0, K % 16 == 0, groups of a
 *         multiple of 16 rows, contiguous in Marlin's order.
 * 16-bit scales are f16 or (scale_bf16) bf16. N and K multiples of 8. */
typedef enum { RA_Q_GPTQ = 0, RA_Q_AWQ, RA_Q_W4A16, RA_Q_FP8, RA_Q_NVFP4, RA_Q_MXFP4, RA_Q_MARLIN } ra_qkind;
/* FP8 activations: none (weight-only), per token, per 128-column group. */
typedef enum { RA_QACT_NONE = 0, RA_QACT_TOKEN = 1, RA_QACT_GROUP = 2 } ra_qact;

typedef struct {
    ra_qkind kind;
    int n, k, group;
    const uint32_t *qweight, *qzeros;
    const uint16_t *scales16;
    int scale_bf16;
    unsigned zero_offset;
    const int32_t *g_idx;
    const int32_t *perm; /* Marlin act-order: the source column of each row */
    const uint8_t *codes, *bscales;
    const float *fscales;
    int block_rows, block_cols, scale_cols;
    float global_scale;
    ra_qact act;     /* FP8 W8A8: x holds decoded activation codes, xscale their scales */
    int seg;         /* W8A8: columns per scaled segment (128 with block weights or group activations, else K) */
} ra_qweight;

typedef struct {
    ra_qweight w;
    const float *x;  /* M x K float32 activations */
    float *y;        /* M x N, row stride ldy (0: N) */
    int m, ldy;
    ra_epilogue epilogue; /* STORE or ADD */
    const float *xscale; /* W8A8: M x groups activation scales (ra_k_fp8_quantize_act) */
    float *ws;       /* ra_qgemm_workspace(n, k, m) floats, zeroed once when allocated (counters the
                        kernels put back); not needed when atomic */
    int atomic;      /* add slice sums with floating-point atomics, in no fixed order */
} ra_qgemm_args;

/* y = x . W^T: a thread per output feature walks its K slice in order; the S
 * slices (ra_qgemm_slices, from the layout, N and K alone) are added in slice
 * order, or atomically when a->atomic. */
cudaError_t ra_k_qgemm(const ra_qgemm_args *a, cudaStream_t stream);
int ra_qgemm_slices(ra_qkind kind, int n, int k);
int ra_qgemm_slices_atomic(ra_qkind kind, int n, int k, int act); /* the @atomic variant's (at least 8) */
size_t ra_qgemm_workspace(ra_qkind kind, int n, int k, int max_m);
/* FP8 activation quantization as the CPU does it (formats/fp8.c): per token
 * (act TOKEN) or per 128 columns (GROUP), s = amax / 448, codes e4m3(x / s)
 * saturated; xq gets the codes decoded (M x K), xscale the scales (M x groups). */
cudaError_t ra_k_fp8_quantize_act(const float *x, float *xq, float *xscale, int m, int k, int act, cudaStream_t stream);
/* The E4M3 codes of n decoded values (exact: they are E4M3 values), for cuBLASLt. */
cudaError_t ra_k_fp8_encode(const float *xq, uint8_t *codes, size_t n, cudaStream_t stream);
/* Per-group activation scales M x groups, transposed to groups x M (cuBLASLt's 128-block layout). */
cudaError_t ra_k_fp8_scales_by_group(const float *xscale, float *out, int m, int groups, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
