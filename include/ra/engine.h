/* An engine runs one model with one kernel on one backend: the CPU reference
 * (src/backend/cpu) or CUDA (src/backend/cuda, device code in kernels/).
 * audit/ drives every engine through these calls and never knows which.
 *
 * Sequences are numbered 0..n-1 by ra_engine_begin; each keeps its own KV
 * cache and position. A forward pass takes rows (sequence, token): a row
 * appends its token to its sequence, and rows of one sequence come in order.
 * A row's numbers never depend on the other rows of the batch (the kernels'
 * contract, tested per backend). */
#ifndef RA_ENGINE_H
#define RA_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/format.h"
#include "ra/model.h"
#include "ra/status.h"

typedef struct ra_engine ra_engine;

typedef struct {
    bool no_graphs;          /* CUDA: launch decode steps one kernel at a time */
} ra_engine_opts;

/* Builds an engine for model m (weights in m's format) and kernel k; m must
 * outlive the engine (the CUDA backend copies the weights to the device but
 * grows its RoPE tables from m's as sequences get longer).
 * Fails with RA_ERR_UNSUPPORTED and a clear message when k needs a GPU that
 * this build or this machine lacks. opts may be NULL. */
ra_status ra_engine_open(ra_model *m, const ra_kernel *k, const ra_engine_opts *opts, ra_engine **out);
void ra_engine_close(ra_engine *e);
const ra_model_config *ra_engine_config(const ra_engine *e);
const ra_kernel *ra_engine_kernel(const ra_engine *e);

/* Drops every sequence and makes n new, empty ones; sequence i holds up to
 * cap[i] tokens. */
ra_status ra_engine_begin(ra_engine *e, uint32_t n, const uint32_t *cap);

/* One forward pass over n rows. Row i appends token[i] to sequence seq[i];
 * if want[i], the float32 log-softmax over the vocabulary goes to
 * logprobs + j * n_vocab and its argmax (ties to the lowest id) to argmax[j],
 * where j counts the wanted rows before i. argmax may be NULL. */
ra_status ra_engine_forward(ra_engine *e, const uint32_t *seq, const int32_t *token, const bool *want, uint32_t n,
                            float *logprobs, int32_t *argmax);

/* What a verdict on this engine is scoped to, as "key": value pairs for the
 * manifest's "device" object (a cJSON object passed as void*): backend, GPU
 * name, SM count, compute capability, driver, runtime and library versions,
 * kernel build id. */
void ra_engine_describe(const ra_engine *e, void *json_object);

/* Activation probe, for `locate`: once set, fn sees the output of every op
 * of every forward pass, all rows of it (n rows of width floats, row-major),
 * in order: "embed" (layer -1); per layer "input_layernorm",
 * "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" (before bias,
 * norm and RoPE), "self_attn.attention", "self_attn.o_proj", "attn_residual",
 * "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.act"
 * (silu(gate) * up), "mlp.down_proj", "mlp_residual"; then "norm" and
 * "lm_head.log_softmax" (layer -1, wanted rows only). fn NULL turns it off;
 * off, it costs one test per op. RA_ERR_UNSUPPORTED on backends without one
 * (CUDA). */
typedef void (*ra_probe_fn)(void *ctx, int32_t layer, const char *op, const float *rows, uint32_t n, uint32_t width);
ra_status ra_engine_set_probe(ra_engine *e, ra_probe_fn fn, void *ctx);

/* Whether a CUDA GPU can be used: false with the reason in why. */
bool ra_cuda_available(char *why, size_t why_len);

#endif
