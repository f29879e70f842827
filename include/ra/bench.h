/* `repro-audit bench`: the speed of each kernel, as a ratio to ceilings
 * measured in the same run. Results are cJSON objects (passed as void*),
 * which the command prints as tables or as JSON. */
#ifndef RA_BENCH_H
#define RA_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

typedef struct {
    char name[48];             /* "llama3-8b qkv", "model down" */
    uint32_t n, k;             /* out features x in features */
} ra_bench_shape;

typedef struct {
    const char *const *kernels; /* GPU format@kernel names: f32@ra, bf16@ra, bf16@cublas, bf16@cublas-bi */
    size_t n_kernels;
    const ra_bench_shape *shapes;
    size_t n_shapes;
    const uint32_t *ms;         /* batch sizes */
    size_t n_ms;
    uint32_t runs;              /* timed launches per point; the median is reported */
    bool progress;
} ra_gemm_bench_opts;

/* Device-to-device copy bandwidth (bytes read + written), then every kernel x
 * shape x M on synthetic random weights rotated through more than the L2
 * cache: median time, weight bytes per second, ratio to the copy bandwidth
 * and speed-up over the fastest cuBLAS kernel of the same point.
 * Fails with RA_ERR_UNSUPPORTED when there is no usable GPU. */
ra_status ra_bench_gemm(const ra_gemm_bench_opts *o, void **json_out);

typedef struct {
    const char *model_path;
    const char *const *kernels; /* format@kernel names, CPU or GPU */
    size_t n_kernels;
    uint32_t decode_tokens;     /* new tokens per sequence in the decode runs */
    uint32_t prompt_tokens;     /* tokens per prompt in the prompt-processing run */
    bool progress;
} ra_e2e_bench_opts;

/* Per kernel: load time, decode tokens/s at batch 1 and 10 (GPU kernels with
 * and without CUDA graphs) and prompt-processing tokens/s (10 prompts of
 * prompt_tokens scored in one pass). */
ra_status ra_bench_e2e(const ra_e2e_bench_opts *o, void **json_out);

#endif
