/* Minifloat conversions (include/ra/minifloat.h). One encoder serves every
 * element type: the magnitude is scaled by a power of two so that one unit is
 * the spacing of the target grid at its exponent (exact in double, since the
 * input is a float), rounded to nearest even, and checked against the largest
 * finite value. The rounding mode is the process default (nearest), which
 * nothing in repro-audit changes. */
#include "ra/minifloat.h"

#include <math.h>

#include "ra/util.h"

typedef struct {
    int man_bits; /* stored mantissa bits */
    int bias;
    float max;    /* largest finite magnitude */
} mini_spec;

static const mini_spec E4M3 = {3, 7, RA_E4M3_MAX};
static const mini_spec E5M2 = {2, 15, RA_E5M2_MAX};
static const mini_spec E2M1 = {1, 1, RA_E2M1_MAX};

/* The magnitude bits (exponent field, mantissa) of finite a >= 0 rounded to
 * nearest even, or -1 when the rounded value exceeds the largest finite one. */
static int encode_magnitude(float a, const mini_spec *s)
{
    if (a == 0.0f) return 0;
    const int emin = 1 - s->bias; /* exponent of the smallest normal; subnormals share its spacing */
    int e;
    frexpf(a, &e);
    e -= 1; /* a in [2^e, 2^(e+1)) */
    if (e < emin) e = emin;
    double units = nearbyint(ldexp((double)a, s->man_bits - e));
    if (units >= (double)(2 << s->man_bits)) { /* rounded up to the next binade */
        units /= 2;
        e++;
    }
    if (ldexp(units, e - s->man_bits) > (double)s->max) return -1;
    int n = (int)units;
    if (n < (1 << s->man_bits)) return n; /* subnormal: exponent field 0 */
    return ((e + s->bias) << s->man_bits) | (n - (1 << s->man_bits));
}

static float decode(uint32_t exp_field, uint32_t man, const mini_spec *s)
{
    if (exp_field == 0) return ldexpf((float)man, 1 - s->bias - s->man_bits);
    return ldexpf((float)((1u << s->man_bits) | man), (int)exp_field - s->bias - s->man_bits);
}

float ra_e4m3_to_f32(uint8_t b)
{
    float v = (b & 0x7f) == 0x7f ? NAN : decode((b >> 3) & 15, b & 7, &E4M3);
    return b & 0x80 ? -v : v;
}

float ra_e5m2_to_f32(uint8_t b)
{
    uint32_t e = (b >> 2) & 31, m = b & 3;
    float v = e == 31 ? (m ? NAN : INFINITY) : decode(e, m, &E5M2);
    return b & 0x80 ? -v : v;
}

float ra_e2m1_to_f32(uint8_t code)
{
    float v = decode((code >> 1) & 3, code & 1, &E2M1);
    return code & 8 ? -v : v;
}

float ra_e8m0_to_f32(uint8_t b) { return b == 0xff ? NAN : ldexpf(1.0f, (int)b - 127); }

uint8_t ra_f32_to_e4m3(float x, bool saturate)
{
    uint8_t sign = signbit(x) ? 0x80 : 0;
    if (isnan(x)) return sign | 0x7f;
    int m = isinf(x) ? -1 : encode_magnitude(fabsf(x), &E4M3);
    if (m < 0) return sign | (saturate ? 0x7e : 0x7f);
    return (uint8_t)(sign | m);
}

uint8_t ra_f32_to_e5m2(float x, bool saturate)
{
    uint8_t sign = signbit(x) ? 0x80 : 0;
    /* NaN: the two top mantissa bits ORed into 0x7E, as cuda_fp8.hpp does */
    if (isnan(x)) return (uint8_t)(sign | 0x7e | ((ra_f32_bits(x) >> 21) & 3));
    int m = isinf(x) ? -1 : encode_magnitude(fabsf(x), &E5M2);
    if (m < 0) return sign | (saturate ? 0x7b : 0x7c);
    return (uint8_t)(sign | m);
}

uint8_t ra_f32_to_e2m1(float x)
{
    if (isnan(x)) return 0x7;
    uint8_t sign = signbit(x) ? 0x8 : 0;
    int m = isinf(x) ? -1 : encode_magnitude(fabsf(x), &E2M1);
    return (uint8_t)(sign | (m < 0 ? 0x7 : m));
}

uint8_t ra_e8m0_from_exponent(int e)
{
    if (e < -127) e = -127;
    if (e > 127) e = 127;
    return (uint8_t)(e + 127);
}

void ra_fp4_pack(const uint8_t *codes, size_t n, uint8_t *bytes)
{
    for (size_t j = 0; j < n / 2; j++) bytes[j] = (uint8_t)((codes[2 * j] & 15) | (codes[2 * j + 1] & 15) << 4);
}

void ra_fp4_unpack(const uint8_t *bytes, size_t n, uint8_t *codes)
{
    for (size_t j = 0; j < n / 2; j++) {
        codes[2 * j] = bytes[j] & 15;
        codes[2 * j + 1] = bytes[j] >> 4;
    }
}
