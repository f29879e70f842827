/* Minifloat conversions: the decode/encode vectors of formats-fp.md (8.1, 8.2,
 * 1.3), every code of every type, and an independent nearest-value search
 * (the method of fp_vectors.py) over all ties, their neighbours and random
 * floats, for both overflow rules. */
#include <stdlib.h>

#include "check.h"
#include "ra/minifloat.h"
#include "ra/util.h"

typedef float (*decode_fn)(uint8_t);

static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || ra_f32_bits(a) == ra_f32_bits(b); }

/* The fp_vectors.py encoder: nearest finite positive code, ties to the even
 * code, with a virtual code one step past the largest to detect overflow.
 * Returns the magnitude code, or -1 on overflow. */
static int search_encode(float a, decode_fn dec, int ncodes, int signbit)
{
    float vmax = 0, vprev = 0;
    int cmax = 0;
    for (int c = 0; c < ncodes; c++) {
        if (c & signbit) continue;
        float v = dec((uint8_t)c);
        if (!isfinite(v)) continue;
        if (v > vmax) { vprev = vmax; vmax = v; cmax = c; }
    }
    double best_d = INFINITY;
    int best = -2;
    for (int c = 0; c <= cmax + 1; c++) {
        if (c & signbit) continue;
        double v = c == cmax + 1 ? (double)vmax + ((double)vmax - vprev) : dec((uint8_t)c);
        if (!isfinite(v)) continue;
        double d = fabs((double)a - v);
        if (d < best_d || (d == best_d && (c & 1) == 0)) { best_d = d; best = c; }
    }
    return best == cmax + 1 ? -1 : best;
}

/* Every midpoint between neighbouring positive values, one float either side
 * of it, and 20000 random floats over the type's range: the encoder agrees
 * with the search for both signs. */
static void check_against_search(const char *name, decode_fn dec, uint8_t (*enc)(float, bool), int ncodes,
                                 int signbit, uint8_t nan_or_inf, uint8_t satmax)
{
    float vals[256];
    int nv = 0;
    for (int c = 0; c < ncodes; c++) {
        if (c & signbit) continue;
        float v = dec((uint8_t)c);
        if (isfinite(v)) vals[nv++] = v;
    }
    float probes[4096];
    int np = 0;
    for (int i = 0; i + 1 < nv; i++) {
        float mid = (vals[i] + vals[i + 1]) / 2; /* exact: a few bits more than the type */
        probes[np++] = mid;
        probes[np++] = nextafterf(mid, 0);
        probes[np++] = nextafterf(mid, INFINITY);
        probes[np++] = vals[i];
    }
    float top = vals[nv - 1], over = top + (top - vals[nv - 2]) / 2; /* the overflow tie */
    probes[np++] = over;
    probes[np++] = nextafterf(over, 0);
    probes[np++] = nextafterf(over, INFINITY);
    probes[np++] = top * 4;
    uint64_t rng = 12345;
    int bad = 0;
    for (int i = 0; i < np + 20000 && bad < 5; i++) {
        float a;
        if (i < np) a = probes[i];
        else {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            a = ldexpf((float)(rng >> 40) / (float)(1 << 24), (int)((rng >> 20) % 40) - 25) * top;
        }
        for (int neg = 0; neg < 2; neg++) {
            float x = neg ? -a : a;
            int m = search_encode(a, dec, ncodes, signbit);
            uint8_t s = neg ? (uint8_t)signbit : 0;
            uint8_t want_sat = (uint8_t)(s | (m < 0 ? satmax : m));
            uint8_t want_nosat = (uint8_t)(s | (m < 0 ? nan_or_inf : m));
            if (enc(x, true) != want_sat || enc(x, false) != want_nosat) {
                CHECK_MSG(0, "%s encode %.9g: sat %02x want %02x, nosat %02x want %02x", name, (double)x, enc(x, true),
                          want_sat, enc(x, false), want_nosat);
                bad++;
            }
        }
    }
    CHECK(bad == 0);
}

static uint8_t e2m1_enc(float x, bool sat) { (void)sat; return ra_f32_to_e2m1(x); }

int main(void)
{
    /* 8.1 decode */
    const struct { uint8_t b; float v; } e4m3[] = {
        {0x00, 0.0f}, {0x80, -0.0f}, {0x01, 0.001953125f}, {0x07, 0.013671875f}, {0x08, 0.015625f},
        {0x22, 0.15625f}, {0x38, 1.0f}, {0x3c, 1.5f}, {0x40, 2.0f}, {0xb0, -0.5f}, {0x78, 256.0f},
        {0xf8, -256.0f}, {0x7e, 448.0f}, {0xfe, -448.0f}, {0x7f, NAN}, {0xff, NAN}};
    for (size_t i = 0; i < sizeof e4m3 / sizeof e4m3[0]; i++)
        CHECK_MSG(same_float(ra_e4m3_to_f32(e4m3[i].b), e4m3[i].v), "e4m3 %02x", e4m3[i].b);
    const struct { uint8_t b; float v; } e5m2[] = {
        {0x00, 0.0f}, {0x01, 1.52587890625e-05f}, {0x03, 4.57763671875e-05f}, {0x04, 6.103515625e-05f},
        {0x3c, 1.0f}, {0x3e, 1.5f}, {0xc0, -2.0f}, {0x7b, 57344.0f}, {0xfb, -57344.0f}, {0x7c, INFINITY},
        {0xfc, -INFINITY}, {0x7d, NAN}, {0x7e, NAN}, {0xff, NAN}};
    for (size_t i = 0; i < sizeof e5m2 / sizeof e5m2[0]; i++)
        CHECK_MSG(same_float(ra_e5m2_to_f32(e5m2[i].b), e5m2[i].v), "e5m2 %02x", e5m2[i].b);
    /* E5M2 is the upper byte of an IEEE half, for all 256 codes */
    for (int b = 0; b < 256; b++) CHECK_MSG(same_float(ra_e5m2_to_f32((uint8_t)b), ra_f16_to_f32((uint16_t)(b << 8))), "%02x", b);

    /* 8.1 encode: E4M3 nosat, E4M3 sat, E5M2 nosat, E5M2 sat */
    const struct { float x; uint8_t a, b, c, d; } enc[] = {
        {0.3f, 0x2a, 0x2a, 0x35, 0x35}, {-1.0625f, 0xb8, 0xb8, 0xbc, 0xbc}, {0x1p-10f, 0x00, 0x00, 0x14, 0x14},
        {1.5f * 0x1p-9f, 0x02, 0x02, 0x1a, 0x1a}, {1e-4f, 0x00, 0x00, 0x07, 0x07}, {240.0f, 0x77, 0x77, 0x5c, 0x5c},
        {464.0f, 0x7e, 0x7e, 0x5f, 0x5f}, {465.0f, 0x7f, 0x7e, 0x5f, 0x5f}, {480.0f, 0x7f, 0x7e, 0x60, 0x60},
        {1000.0f, 0x7f, 0x7e, 0x64, 0x64}, {57344.0f, 0x7f, 0x7e, 0x7b, 0x7b}, {59392.0f, 0x7f, 0x7e, 0x7b, 0x7b},
        {61440.0f, 0x7f, 0x7e, 0x7c, 0x7b}};
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        float x = enc[i].x;
        CHECK_MSG(ra_f32_to_e4m3(x, false) == enc[i].a && ra_f32_to_e4m3(x, true) == enc[i].b &&
                      ra_f32_to_e5m2(x, false) == enc[i].c && ra_f32_to_e5m2(x, true) == enc[i].d,
                  "encode %.9g -> %02x %02x %02x %02x", (double)x, ra_f32_to_e4m3(x, false), ra_f32_to_e4m3(x, true),
                  ra_f32_to_e5m2(x, false), ra_f32_to_e5m2(x, true));
    }

    /* 1.3: the E2M1 code table; 8.2: its ties */
    const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int c = 0; c < 16; c++) {
        CHECK_MSG(same_float(ra_e2m1_to_f32((uint8_t)c), e2m1[c]), "e2m1 %x", c);
        CHECK_MSG(ra_f32_to_e2m1(e2m1[c]) == c, "e2m1 round trip %x", c);
    }
    const struct { float x; uint8_t code; } ties[] = {{0.25f, 0x0}, {0.75f, 0x2}, {1.25f, 0x2}, {1.75f, 0x4}, {2.5f, 0x4},
                                                      {3.5f, 0x6}, {5.0f, 0x6}, {7.0f, 0x7}, {-0.25f, 0x8}};
    for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++)
        CHECK_MSG(ra_f32_to_e2m1(ties[i].x) == ties[i].code, "e2m1(%g) = %x", (double)ties[i].x, ra_f32_to_e2m1(ties[i].x));
    CHECK(ra_f32_to_e2m1(NAN) == 0x7 && ra_f32_to_e2m1(-NAN) == 0x7); /* NaN -> +MAXNORM */
    CHECK(ra_f32_to_e2m1(INFINITY) == 0x7 && ra_f32_to_e2m1(-INFINITY) == 0xf);

    /* every finite code round-trips, both signs of zero included; NaN and inf */
    for (int b = 0; b < 256; b++) {
        float v4 = ra_e4m3_to_f32((uint8_t)b), v5 = ra_e5m2_to_f32((uint8_t)b);
        if (!isnan(v4)) CHECK_MSG(ra_f32_to_e4m3(v4, false) == b && ra_f32_to_e4m3(v4, true) == b, "e4m3 %02x", b);
        if (isfinite(v5)) CHECK_MSG(ra_f32_to_e5m2(v5, false) == b && ra_f32_to_e5m2(v5, true) == b, "e5m2 %02x", b);
    }
    CHECK(ra_f32_to_e4m3(NAN, true) == 0x7f && ra_f32_to_e4m3(-NAN, false) == 0xff);
    CHECK(ra_f32_to_e4m3(INFINITY, true) == 0x7e && ra_f32_to_e4m3(-INFINITY, true) == 0xfe);
    CHECK(ra_f32_to_e4m3(INFINITY, false) == 0x7f && ra_f32_to_e4m3(-INFINITY, false) == 0xff);
    CHECK(ra_f32_to_e5m2(INFINITY, false) == 0x7c && ra_f32_to_e5m2(-INFINITY, true) == 0xfb);
    CHECK(ra_f32_to_e5m2(NAN, true) == 0x7e && isnan(ra_e5m2_to_f32(ra_f32_to_e5m2(NAN, false))));
    /* subnormal ties: 2^-10 (between 0 and the smallest) -> 0; 3*2^-10 (between codes 1 and 2) -> 2 */
    CHECK(ra_f32_to_e4m3(0x1p-10f, false) == 0x00 && ra_f32_to_e4m3(-0x1p-10f, false) == 0x80);
    CHECK(ra_f32_to_e4m3(3 * 0x1p-10f, false) == 0x02 && ra_f32_to_e4m3(0x1.000002p-10f, false) == 0x01);
    CHECK(ra_f32_to_e4m3(15 * 0x1p-10f, false) == 0x08); /* largest subnormal + half -> smallest normal (even) */
    CHECK(ra_f32_to_e4m3(0x1p-149f, true) == 0x00);        /* float subnormals underflow to zero */

    check_against_search("e4m3", ra_e4m3_to_f32, ra_f32_to_e4m3, 256, 0x80, 0x7f, 0x7e);
    check_against_search("e5m2", ra_e5m2_to_f32, ra_f32_to_e5m2, 256, 0x80, 0x7c, 0x7b);
    check_against_search("e2m1", ra_e2m1_to_f32, e2m1_enc, 16, 0x8, 0x7, 0x7);

    /* E8M0: 2^(b-127) for every byte but 0xFF (NaN); exponents clamp */
    for (int b = 0; b < 255; b++) CHECK_MSG(ra_e8m0_to_f32((uint8_t)b) == ldexpf(1.0f, b - 127), "e8m0 %02x", b);
    CHECK(isnan(ra_e8m0_to_f32(0xff)));
    CHECK(ra_e8m0_to_f32(0x00) == 0x1p-127f && ra_e8m0_to_f32(0xfe) == 0x1p127f);
    CHECK(ra_e8m0_from_exponent(0) == 0x7f && ra_e8m0_from_exponent(-127) == 0 && ra_e8m0_from_exponent(-500) == 0);
    CHECK(ra_e8m0_from_exponent(127) == 0xfe && ra_e8m0_from_exponent(128) == 0xfe);
    CHECK_DONE();
}
