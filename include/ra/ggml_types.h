/* GGML tensor types as stored in GGUF files, and their exact CPU dequantizers
 * (formats/gguf_quants.c), following the GGUF specification block layouts. */
#ifndef RA_GGML_TYPES_H
#define RA_GGML_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

typedef enum {
    RA_GGML_F32 = 0, RA_GGML_F16 = 1, RA_GGML_Q4_0 = 2, RA_GGML_Q4_1 = 3,
    RA_GGML_Q5_0 = 6, RA_GGML_Q5_1 = 7, RA_GGML_Q8_0 = 8, RA_GGML_Q8_1 = 9,
    RA_GGML_Q2_K = 10, RA_GGML_Q3_K = 11, RA_GGML_Q4_K = 12, RA_GGML_Q5_K = 13,
    RA_GGML_Q6_K = 14, RA_GGML_Q8_K = 15, RA_GGML_I8 = 24, RA_GGML_I16 = 25,
    RA_GGML_I32 = 26, RA_GGML_I64 = 27, RA_GGML_F64 = 28, RA_GGML_BF16 = 30
} ra_ggml_type;

typedef struct {
    const char *name;       /* "q4_1" */
    uint32_t block_elems;   /* elements per block (1 for plain types) */
    uint32_t block_bytes;   /* bytes per block */
    bool dequant;           /* we can dequantize it */
} ra_ggml_type_info;

/* NULL for a type id that is not known at all. Known-but-undequantizable
 * types (K-quants other than the ones we implement) have dequant = false. */
const ra_ggml_type_info *ra_ggml_type_info_of(uint32_t type);

/* Bytes of a row of n elements; RA_ERR_FORMAT if n is not a multiple of the
 * block size or the type is unknown. */
ra_status ra_ggml_row_bytes(uint32_t type, uint64_t n, uint64_t *bytes);

/* Dequantize n elements (a multiple of the block size) from src to dst, bit
 * for bit as the specification defines (scales are converted from f16 to f32
 * exactly; each value is computed in float32 exactly as written there). */
ra_status ra_ggml_dequantize(uint32_t type, const void *src, float *dst, uint64_t n);

/* Quantize n float32 values (a multiple of the block size) to a GGML type
 * with ggml's reference rule (quantize_row_*_ref), bit for bit as llama.cpp's
 * quantize tool writes them: q8_0, q4_0, q4_1, q5_0, q4_k and q6_k (the
 * K-quants without an importance matrix: quantize_row_q4_K_ref, _q6_K_ref). */
ra_status ra_ggml_quantize(uint32_t type, const float *src, void *dst, uint64_t n);

/* Block structs for the types the engine computes on directly. */
typedef struct { uint16_t d; uint8_t qs[16]; } ra_block_q4_0;            /* x = (q - 8) * d */
typedef struct { uint16_t d, m; uint8_t qs[16]; } ra_block_q4_1;         /* x = q * d + m */
typedef struct { uint16_t d; int8_t qs[32]; } ra_block_q8_0;             /* x = q * d */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } ra_block_q5_0;  /* x = (q - 16) * d, bit 4 of q in qh */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } ra_block_q4_k; /* 256 values */
typedef struct { uint8_t ql[128], qh[64]; int8_t scales[16]; uint16_t d; } ra_block_q6_k; /* 256 values */
/* In q4 blocks, byte j holds element j in its low nibble and element j+16 in its high nibble. */

/* Sub-block j (< 8) of a q4_k block: its 6-bit scale and min from the 12 packed bytes. */
void ra_q4_k_scale_min(const uint8_t s[12], int j, uint8_t *sc, uint8_t *m);

#endif
