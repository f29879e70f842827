/* Minifloat element and scale types of the FP8 / FP4 weight formats
 * (formats/minifloat.c). Decoders are exact. Encoders round to nearest, ties
 * to even, with the overflow rule of the named reference:
 *   E4M3 (OCP "E4M3", torch float8_e4m3fn): bias 7, no infinity, NaN = S.1111.111,
 *        max 448. saturate = CUDA __NV_SATFINITE (overflow -> +-448);
 *        !saturate = torch .to() and __NV_NOSAT (overflow and inf -> NaN).
 *   E5M2 (IEEE-like): bias 15, max 57344. !saturate: overflow -> +-inf.
 *   E2M1 (OCP MX FP4): bias 1, max 6, no inf/NaN; every reference saturates,
 *        NaN -> +6 (CUDA cvt.rn.satfinite.e2m1x2).
 *   E8M0 (OCP MX scale): 2^(b - 127), 0xFF = NaN.
 * Overflow is decided the IEEE way: round with an unbounded exponent, then
 * compare with the largest finite value (so E4M3 464 -> 448, 465 -> overflow).
 * NaN keeps its sign in FP8 (as torch and cuda_fp8.hpp do). */
#ifndef RA_MINIFLOAT_H
#define RA_MINIFLOAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RA_E4M3_MAX 448.0f
#define RA_E5M2_MAX 57344.0f
#define RA_E2M1_MAX 6.0f

float ra_e4m3_to_f32(uint8_t b);
float ra_e5m2_to_f32(uint8_t b);
float ra_e2m1_to_f32(uint8_t code); /* bits 0-3: sign bit 3, magnitude index bits 0-2 */
float ra_e8m0_to_f32(uint8_t b);

uint8_t ra_f32_to_e4m3(float x, bool saturate);
uint8_t ra_f32_to_e5m2(float x, bool saturate);
uint8_t ra_f32_to_e2m1(float x);
/* 2^e as E8M0, e clamped to [-127, 127]: OCP clamps a shared exponent below
 * the range; above it saturates, as __nv_cvt_float_to_e8m0 with satfinite. */
uint8_t ra_e8m0_from_exponent(int e);

/* FP4 storage (NVFP4, MXFP4): two E2M1 codes per byte, element 2j in the low
 * nibble of byte j and 2j + 1 in the high one. n is even. */
void ra_fp4_pack(const uint8_t *codes, size_t n, uint8_t *bytes);
void ra_fp4_unpack(const uint8_t *bytes, size_t n, uint8_t *codes);

#endif
