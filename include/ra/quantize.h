/* Quantizing a whole model into a checkpoint directory (src/quant/):
 * `repro-audit quantize` and the derived formats of `run` (which caches the
 * directory, src/quant/qcache.c). Layer by layer: one decoder block's float
 * weights, its calibration activations and its Hessians are held at a time. */
#ifndef RA_QUANTIZE_H
#define RA_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/cpu.h"
#include "ra/desc.h"
#include "ra/qformat.h"

/* Calibration token sequences: n_seqs x seq_len ids, row-major. */
typedef struct {
    const int32_t *tokens;
    uint32_t n_seqs, seq_len;
    uint8_t sha256[32];          /* of the text they were cut from (for cache keys and metadata) */
} ra_calib_tokens;

typedef struct {
    const ra_qformat *format;
    const char *name;            /* the format's name, for progress and metadata */
    const ra_calib_tokens *calib; /* needed by GPTQ and act-order, else ignored */
    ra_pool *pool;
    bool progress;               /* a line per block on stderr */
} ra_quantize_opts;

/* Peak memory of the process (getrusage maxrss) and the part of it that the
 * quantizer's own buffers reached, filled by ra_quantize_model. */
typedef struct {
    uint64_t peak_rss_bytes;
    uint64_t calib_bytes;        /* activations of one block for the calibration set */
    uint64_t hessian_bytes;      /* the largest block's Hessians */
    double seconds;
} ra_quantize_stats;

/* Writes out_dir (which must not exist; it appears complete or not at all):
 * model.safetensors with the format's tensors for every decoder block's
 * linear layers and bf16 embeddings, norms and lm_head; config.json
 * (torch_dtype bfloat16 and the format's quantization_config);
 * tokenizer.json and tokenizer_config.json. The decoder weights are
 * rounded to bf16 first (the base model as a bf16 checkpoint holds them),
 * then quantized by RTN or GPTQ. The same inputs give the same bytes on any
 * thread count. base must be unquantized. */
ra_status ra_quantize_model(const ra_model_desc *base, const ra_quantize_opts *o, const char *out_dir,
                            ra_quantize_stats *stats);

/* Bumped whenever a quantizer's output changes: part of every cache key. */
#define RA_QUANT_VERSION 1u

/* Where derived checkpoints are cached: $REPRO_AUDIT_CACHE, else
 * $XDG_CACHE_HOME/repro-audit, else $HOME/.cache/repro-audit. */
ra_status ra_cache_dir_default(char *buf, size_t n);
/* The cache key of a derived checkpoint (hex SHA-256; src/quant/qcache.c says what it covers). */
ra_status ra_derive_key(const ra_model_desc *base, const char *name, const ra_qformat *f, const ra_calib_tokens *calib,
                        char hex[65]);
/* The checkpoint directory of o->format derived from base under
 * cache_dir/derived/NAME-KEY: the cached one, or quantized now (*made) and
 * renamed into place complete. *dir is new. */
ra_status ra_derive_checkpoint(const ra_model_desc *base, const ra_quantize_opts *o, const char *cache_dir, char **dir, bool *made);

/* Loading models in any format from one base description, deriving the
 * checkpoint formats through the cache (run, ppl). */
typedef struct {
    const char *cache_dir;      /* NULL: ra_cache_dir_default */
    bool no_cache;              /* derive into a temporary directory, removed at close */
    const char *calib_path;     /* NULL: RA_DEFAULT_TEXT */
    bool progress;
} ra_derive_opts;

struct ra_model;
struct ra_tokenizer;
typedef struct ra_deriver ra_deriver;
ra_status ra_deriver_open(const ra_model_desc *base, const struct ra_tokenizer *tok, ra_pool *pool, const ra_derive_opts *o,
                          ra_deriver **out);
/* The model in format f: a checkpoint format of an unquantized base is
 * derived (fitted group size; calibration from the text's first half, 8 x
 * 256 tokens), everything else loads from the base. */
ra_status ra_deriver_load(ra_deriver *dv, const struct ra_format *f, struct ra_model **m);
/* The formats derived so far and their cached checkpoint directories. */
size_t ra_deriver_n(const ra_deriver *dv);
void ra_deriver_at(const ra_deriver *dv, size_t i, const char **format, const char **dir);
void ra_deriver_close(ra_deriver *dv);

#endif
