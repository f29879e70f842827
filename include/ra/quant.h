/* What the quantized weight formats in formats/ share (formats/quant.c,
 * formats/intq.c): the tensors of a checkpoint layer, scale dtypes, packed
 * integer fields, the integer group-quantized layer (AWQ, GPTQ, w4a16 and
 * Marlin all decode to it) and the weight-only matmul.
 *
 * A linear layer is y = x . W^T with W [rows = N out features][cols = K in
 * features]. Each format file has ra_<format>_quantize (RTN from float32),
 * ra_<format>_pack (the checkpoint's tensors) and ra_<format>_unpack (back,
 * every size checked); the math lives on the in-memory layer. The layouts,
 * rounding rules and reduction orders are in docs/formats.md. */
#ifndef RA_QUANT_H
#define RA_QUANT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/cpu.h"
#include "ra/safetensors.h"
#include "ra/status.h"

/* ---- Checkpoint tensors ------------------------------------------------ */

typedef enum { RA_QT_I32, RA_QT_I64, RA_QT_U8, RA_QT_F16, RA_QT_BF16, RA_QT_F32, RA_QT_F8_E4M3 } ra_qt_dtype;

const char *ra_qt_dtype_name(ra_qt_dtype t); /* the safetensors name: "I32", "F8_E4M3", ... */
uint32_t ra_qt_dtype_size(ra_qt_dtype t);
/* RA_ERR_UNSUPPORTED for a name that is none of the above. */
ra_status ra_qt_dtype_parse(const char *name, ra_qt_dtype *out);

#define RA_QT_MAX 8
#define RA_QT_SUFFIX_MAX 32
#define RA_QT_NAME_MAX 256

/* One tensor of a layer: the suffix is appended to the module path
 * ("model.layers.0.mlp.down_proj" + ".qweight", or + "_blocks" for gpt-oss). */
typedef struct {
    char suffix[RA_QT_SUFFIX_MAX];
    ra_qt_dtype dtype;
    uint32_t n_dims;  /* 0 (a scalar) to 4 */
    uint64_t shape[4];
    uint8_t *data;    /* little-endian, row-major */
    uint64_t nbytes;
    bool owned;
} ra_qtensor;

typedef struct {
    ra_qtensor t[RA_QT_MAX];
    uint32_t n;
} ra_qtensors;

/* A zeroed tensor owned by the set; *data points at its bytes. */
ra_status ra_qtensors_add(ra_qtensors *s, const char *suffix, ra_qt_dtype dt, uint32_t n_dims, const uint64_t *shape,
                          uint8_t **data);
/* Bytes a reader holds (e.g. mmap'd), borrowed: nbytes must equal the shape's
 * element count times the dtype size. */
ra_status ra_qtensors_borrow(ra_qtensors *s, const char *suffix, ra_qt_dtype dt, uint32_t n_dims, const uint64_t *shape,
                             const void *data, uint64_t nbytes);
const ra_qtensor *ra_qtensors_find(const ra_qtensors *s, const char *suffix);
void ra_qtensors_free(ra_qtensors *s);

/* The tensor `suffix` of a `fmt` layer, checked: present (RA_ERR_FORMAT "fmt:
 * tensor .x missing" otherwise), of dtype dt, of exactly this shape, holding
 * exactly the bytes the shape needs. */
ra_status ra_qtensors_expect(const ra_qtensors *s, const char *fmt, const char *suffix, ra_qt_dtype dt, uint32_t n_dims,
                             const uint64_t *shape, const ra_qtensor **out);
/* Appends s to out[] for ra_safetensors_write, named module + suffix (the
 * names live in names[], which must outlive the write). */
ra_status ra_qtensors_to_st(const ra_qtensors *s, const char *module, ra_st_tensor *out,
                            char (*names)[RA_QT_NAME_MAX]);

/* ---- Scales ------------------------------------------------------------ */

typedef enum { RA_SCALE_F16, RA_SCALE_BF16, RA_SCALE_F32 } ra_scale_dtype;

ra_qt_dtype ra_scale_qt(ra_scale_dtype d);
const char *ra_scale_dtype_name(ra_scale_dtype d);
/* F16, BF16 or F32; RA_ERR_FORMAT for any other tensor dtype. */
ra_status ra_scale_dtype_of(const ra_qtensor *t, const char *fmt, ra_scale_dtype *out);
/* s rounded to nearest even in d. A positive scale that underflows becomes
 * the smallest positive value of d (codes must stay finite); a scale that is
 * not finite or overflows d fails with RA_ERR_UNSUPPORTED. */
ra_status ra_scale_round(float s, ra_scale_dtype d, float *out);
void ra_scale_store(uint8_t *dst, size_t i, float v, ra_scale_dtype d);   /* v already exact in d */
float ra_scale_load(const uint8_t *src, size_t i, ra_scale_dtype d);
/* torch.finfo(d).eps: what compressed-tensors puts in place of a zero scale. */
float ra_scale_eps(ra_scale_dtype d);

/* Round half to even, as torch.round does (nearbyint in the default mode). */
static inline float ra_round_even(float x) { return nearbyintf(x); }

/* RA_ERR_USAGE when any of n weights is NaN or infinite (quantizers refuse them). */
ra_status ra_check_finite(const char *fmt, const float *w, size_t n);

/* ---- Packed integer fields ----------------------------------------------
 * A word is a little-endian uint32; field j of a word holds bits j*bits ..
 * j*bits + bits - 1 (bits is 4 or 8, so nibble j = bits 4j..4j+3). */

static inline uint32_t ra_field_get(const uint8_t *words, size_t w, uint32_t j, uint32_t bits)
{
    uint32_t bit = j * bits;
    return (uint32_t)(words[4 * w + bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
}

/* ORs v into a field of a zeroed word. */
static inline void ra_field_set(uint8_t *words, size_t w, uint32_t j, uint32_t bits, uint32_t v)
{
    uint32_t bit = j * bits;
    words[4 * w + bit / 8] |= (uint8_t)((v & ((1u << bits) - 1)) << (bit % 8));
}

/* ---- The integer group-quantized layer -----------------------------------
 * W[n][k] = (codes[n][k] - zeros[n][g]) * scales[n][g], g = g_idx[k] (or
 * k / group_size without g_idx), computed in float32. With f16 or bf16 scales
 * the product is exact (|code - zero| <= 2^bits has at most 9 significant
 * bits, the scale 11 or 8), so the dequantized weight does not depend on the
 * hardware; with float32 scales it is rounded once, to nearest even. */
typedef struct {
    uint32_t rows, cols;        /* N, K */
    uint32_t bits;              /* 4 or 8 */
    uint32_t group_size;        /* columns per group in quantization order; cols for one group per row */
    uint32_t n_groups;
    ra_scale_dtype scale_dtype;
    uint8_t *codes;             /* [rows][cols], < 2^bits */
    uint16_t *zeros;            /* [rows][n_groups], <= 2^bits (a GPTQ v1 file can decode to 2^bits) */
    float *scales;              /* [rows][n_groups], exact in scale_dtype */
    int32_t *g_idx;             /* [cols] group of each column, or NULL */
} ra_intq;

ra_status ra_intq_alloc(ra_intq *q, uint32_t rows, uint32_t cols, uint32_t bits, uint32_t group_size,
                        uint32_t n_groups, bool with_g_idx);
void ra_intq_free(ra_intq *q);
/* Codes, zeros and g_idx in range, scales finite: RA_ERR_FORMAT naming fmt otherwise. */
ra_status ra_intq_check(const ra_intq *q, const char *fmt);
static inline uint32_t ra_intq_group(const ra_intq *q, uint32_t k)
{
    return q->g_idx ? (uint32_t)q->g_idx[k] : k / q->group_size;
}
/* Rows r0..r1-1 into out[(r - r0) * cols + k]. The dequantizers and the
 * matmul take a valid layer: one from a quantizer or an unpack, or one that
 * passed ra_intq_check. */
void ra_intq_dequantize_rows(const ra_intq *q, uint32_t r0, uint32_t r1, float *out);
ra_status ra_intq_dequantize(const ra_intq *q, float **out);
/* y[t][r] = W[r,:] . x[t,:] in the order of ra_qlinear_matmul. */
ra_status ra_intq_matmul(ra_pool *p, const ra_intq *q, const float *x, uint32_t n, float *y);

/* How to quantize: bits, columns per group (0 or >= cols: one group per
 * row), symmetric or not (a rule may ignore it), the scales' dtype, and perm
 * (act-order, may be NULL): the columns in quantization order. A group is
 * group_size consecutive entries of perm and g_idx[perm[i]] = i / group_size
 * is stored. Without perm groups are consecutive columns; the last one is
 * short when group_size does not divide cols. */
typedef struct {
    uint32_t bits, group_size;
    bool symmetric;
    ra_scale_dtype scale_dtype;
    const int32_t *perm;
} ra_intq_params;

/* One quantizer's rule for one group: n weights (in quantization order) ->
 * their codes and the group's stored scale and zero. */
typedef ra_status (*ra_intq_group_rule)(const float *vals, uint32_t n, const ra_intq_params *p, uint8_t *codes,
                                        float *scale, uint16_t *zero);

/* Round-to-nearest quantization of w [rows][cols] with `rule`, group by group. */
ra_status ra_intq_quantize(const float *w, uint32_t rows, uint32_t cols, const ra_intq_params *p, ra_intq_group_rule rule,
                           ra_intq *out);

/* ---- Block-scaled minifloat layers (NVFP4, MXFP4) ------------------------
 * One element code per weight and one scale byte per `group` consecutive
 * columns of a row; cols % group == 0. */
typedef struct {
    uint32_t rows, cols, group;
    uint8_t *codes;  /* [rows][cols] */
    uint8_t *scales; /* [rows][cols / group] */
} ra_blockq;

ra_status ra_blockq_alloc(ra_blockq *b, const char *fmt, uint32_t rows, uint32_t cols, uint32_t group);
void ra_blockq_free(ra_blockq *b);

/* ---- Weight-only matmul -------------------------------------------------
 * y[t][r] = W[r,:] . x[t,:] for t < n: rows are dequantized to float32 by
 * the format (exactly, or with the rounding its dequantizer documents) 16 at
 * a time and multiplied in the CPU float kernel's documented order
 * (src/backend/cpu/matmul.c: 8 lanes by k % 8, products rounded before they
 * are added, the tail into the first lanes, a fixed tree). Every output is
 * computed by one task in that order, so y is bitwise the same for any batch
 * size, position in the batch and thread count. */
typedef void (*ra_dequant_rows_fn)(const void *layer, uint32_t r0, uint32_t r1, float *out);
ra_status ra_qlinear_matmul(ra_pool *p, const void *layer, uint32_t rows, uint32_t cols, ra_dequant_rows_fn dequant,
                            const float *x, uint32_t n, float *y);
/* The whole layer dequantized into one new [rows][cols] array. */
ra_status ra_qlinear_dequantize(const void *layer, uint32_t rows, uint32_t cols, ra_dequant_rows_fn dequant, float **out);

#endif
