/* The Llama-family decoder: configuration, weights in one format, and a
 * batched forward pass over a backend. Rows of a batch are independent
 * (sequence, token) pairs, so a row's numbers never depend on the batch. */
#ifndef RA_MODEL_H
#define RA_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/format.h"
#include "ra/desc.h"
#include "ra/status.h"

/* The configuration of a model description, checked and completed: head_dim
 * defaulted, the embedding's shape checked against it, the context length
 * capped to the sliding window (within it, sliding-window attention is full
 * attention), numbers held to plausible ranges. */
ra_status ra_config_from_desc(const ra_model_desc *d, ra_model_config *c);

/* Weights are held in the canonical (HF) layout: rows are output features,
 * Q and K rows in rotate-half RoPE order, as the description holds them. */
typedef struct {
    ra_weight attn_norm, ffn_norm;       /* f32, dim */
    ra_weight wq, wk, wv, wo;            /* [heads*hd x dim], [kv*hd x dim], [kv*hd x dim], [dim x heads*hd] */
    ra_weight w_gate, w_up, w_down;      /* [ffn x dim], [ffn x dim], [dim x ffn] */
    float *bq, *bk, *bv;                 /* q/k/v biases (attn_bias), else NULL */
    float *q_norm, *k_norm;              /* per-head RMSNorm gains, head_dim each (qk_norm), else NULL */
} ra_layer;

typedef struct ra_pool ra_pool;

typedef struct ra_model {
    ra_model_config cfg;
    const ra_format *format;
    ra_weight embed;                     /* [n_vocab x dim] */
    ra_weight output;                    /* [n_vocab x dim]; aliases embed when tied */
    ra_weight out_norm;                  /* f32, dim */
    ra_layer *layers;
    float *rope_cos, *rope_sin;          /* [rope_max_pos x head_dim/2], grown by ra_model_rope_reserve */
    uint32_t rope_max_pos;
    ra_pool *pool;                       /* not owned */
} ra_model;

/* Builds the model in `format` from a description (derivation per formats/).
 * Tensors are looked up by their HF names; a missing one or a wrong shape
 * fails naming the tensor and its file. */
ra_status ra_model_load(const ra_model_desc *d, const ra_format *format, ra_pool *pool, ra_model **out);
void ra_model_free(ra_model *m);

/* Grows m's RoPE tables to cover positions 0..n-1 (cos/sin in double,
 * rounded once). Engines call it when they begin sequences. */
ra_status ra_model_rope_reserve(ra_model *m, uint32_t n);

/* A planted difference (src/model/perturb.c): the first stored value of one
 * layer's linear weight moved one unit in the last place (a float, a
 * bfloat16, or a quantized block's f16 scale d). spec is "LAYER:TENSOR",
 * TENSOR one of q_proj k_proj v_proj o_proj gate_proj up_proj down_proj. */
typedef struct {
    uint32_t layer, tensor;
} ra_perturb;
ra_status ra_perturb_parse(const char *spec, ra_perturb *out);
void ra_perturb_name(const ra_perturb *p, char *out, size_t n);  /* "model.layers.0.mlp.down_proj.weight" */
void ra_perturb_op(const ra_perturb *p, char *out, size_t n);    /* "mlp.down_proj" */
/* Applies it to m; `what` says what changed, from which bits to which. */
ra_status ra_model_perturb(ra_model *m, const ra_perturb *p, char *what, size_t n);

#endif
