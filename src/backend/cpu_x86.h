/* AVX2 helpers shared by the CPU kernels (src/backend/cpu/matmul.c,
 * ggml_avx2.c). Include only where __x86_64__ and GCC-style attributes are
 * available; each function is compiled for AVX2 alone. */
#ifndef RA_CPU_X86_H
#define RA_CPU_X86_H

#include <immintrin.h>
#include <string.h>

#include "ra/ggml_types.h"

/* The 32 codes of a q5_0 block as signed bytes q - 16, element order: the
 * nibbles, and 0xF0 (-16) where bit 4 (bit j of qh for element j) is clear. */
__attribute__((target("avx2"))) static inline __m256i ra_q5_0_codes_avx2(const ra_block_q5_0 *b)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)b->qs);
    const __m256i nib = _mm256_and_si256(_mm256_set1_epi8(15), _mm256_set_m128i(_mm_srli_epi16(t, 4), t));
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    /* byte j of the vector: the byte of qh holding bit j, tested against 1 << (j % 8) */
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
                                              _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                                0x0101010101010101, 0x0000000000000000));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_or_si256(nib, _mm256_andnot_si256(set, _mm256_set1_epi8((char)0xF0)));
}

#endif
