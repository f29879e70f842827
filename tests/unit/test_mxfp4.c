/* MXFP4: the formats-fp.md 8.4 block (scale byte by each rule, codes,
 * gpt-oss bytes, decoded values, squared error), the scale rules on edge
 * cases, both tensor namings and their round trips, refusals and the matmul
 * contract. */
#include "quant_check.h"
#include "ra/minifloat.h"
#include "ra/mxfp4.h"

static const float V[32] = {0, .25f, -.375f, .5f, .8125f, -1, 1.25f, 1.5f, -1.75f, 2, 2.5f, -3, 3.5f, 4, -4.5f, 5,
                            5.5f, -6, 7, .125f, -.0625f, .6875f, 1.125f, -2.25f, 2.75f, 3.25f, -3.75f, 4.25f, .03125f,
                            -.9375f, 1.875f, -5.25f};

static void check_reference_block(void)
{
    CHECK(ra_mxfp4_scale_byte(7.0f, RA_MX_SCALE_OCP) == 0x7F);
    CHECK(ra_mxfp4_scale_byte(7.0f, RA_MX_SCALE_EVEN) == 0x80 && ra_mxfp4_scale_byte(7.0f, RA_MX_SCALE_CEIL) == 0x80);
    ra_mxfp4_weight q;
    CHECK_OK(ra_mxfp4_quantize(V, 1, 32, RA_MX_SCALE_OCP, &q));
    const uint8_t codes[32] = {0x0, 0x0, 0x9, 0x1, 0x2, 0xA, 0x2, 0x3, 0xC, 0x4, 0x4, 0xD, 0x6, 0x6, 0xE, 0x6,
                               0x7, 0xF, 0x7, 0x0, 0x8, 0x1, 0x2, 0xC, 0x5, 0x5, 0xE, 0x6, 0x0, 0xA, 0x4, 0xF};
    CHECK(q.scales[0] == 0x7F && !memcmp(q.codes, codes, 32));
    ra_qtensors t = {0};
    CHECK_OK(ra_mxfp4_pack(&q, RA_MXFP4_NAMES_GPT_OSS, &t));
    const uint8_t blocks[16] = {0x00, 0x19, 0xA2, 0x32, 0x4C, 0xD4, 0x66, 0x6E, 0xF7, 0x07, 0x18, 0xC2, 0x55, 0x6E, 0xA0, 0xF4};
    const ra_qtensor *b = ra_qtensors_find(&t, "_blocks"), *s = ra_qtensors_find(&t, "_scales");
    CHECK(b && b->n_dims == 3 && b->shape[0] == 1 && b->shape[1] == 1 && b->shape[2] == 16 && !memcmp(b->data, blocks, 16));
    CHECK(s && s->n_dims == 2 && s->shape[1] == 1 && s->data[0] == 0x7F);
    const float dec[32] = {0, 0, -.5f, .5f, 1, -1, 1, 1.5f, -2, 2, 2, -3, 4, 4, -4, 4,
                           6, -6, 6, 0, -0.0f, .5f, 1, -2, 3, 3, -4, 4, 0, -1, 2, -6};
    float *d = NULL;
    CHECK_OK(ra_mxfp4_dequantize(&q, &d));
    double sse = 0;
    for (int i = 0; i < 32; i++) {
        CHECK_MSG(ra_f32_bits(d[i]) == ra_f32_bits(dec[i]), "decoded[%d] = %g", i, (double)d[i]);
        sse += ((double)V[i] - d[i]) * ((double)V[i] - d[i]);
    }
    CHECK(sse == 4.2041015625);
    free(d);
    ra_mxfp4_free(&q);
    /* with X = 2 (the even and ceil rules) the error is 4.8916015625 */
    CHECK_OK(ra_mxfp4_quantize(V, 1, 32, RA_MX_SCALE_CEIL, &q));
    CHECK_OK(ra_mxfp4_dequantize(&q, &d));
    sse = 0;
    for (int i = 0; i < 32; i++) sse += ((double)V[i] - d[i]) * ((double)V[i] - d[i]);
    CHECK(q.scales[0] == 0x80 && sse == 4.8916015625);
    free(d);
    ra_mxfp4_free(&q);
    ra_qtensors_free(&t);
}

static void check_scale_rules(void)
{
    /* OCP: floor(log2 amax) - 2; even: round up at mantissa >= 1.75; ceil: ceil(log2(amax / 6)) */
    const struct { float amax; uint8_t ocp, even, ceil; } c[] = {
        {6.0f, 0x7F, 0x7F, 0x7F},  {4.0f, 0x7F, 0x7F, 0x7F},   {6.5f, 0x7F, 0x7F, 0x80}, {7.99f, 0x7F, 0x80, 0x80},
        {1.0f, 0x7D, 0x7D, 0x7D},  {1.5f, 0x7D, 0x7D, 0x7D},   {1.75f, 0x7D, 0x7E, 0x7E}, {0x1p-130f, 0x00, 0x00, 0x00},
        {0.0f, 0x00, 0x00, 0x00},  {0x1p127f, 0xFC, 0xFC, 0xFC}, {3e38f, 0xFC, 0xFD, 0xFD}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint8_t o = ra_mxfp4_scale_byte(c[i].amax, RA_MX_SCALE_OCP), e = ra_mxfp4_scale_byte(c[i].amax, RA_MX_SCALE_EVEN),
                l = ra_mxfp4_scale_byte(c[i].amax, RA_MX_SCALE_CEIL);
        CHECK_MSG(o == c[i].ocp && e == c[i].even && l == c[i].ceil, "amax %g: %02x %02x %02x", (double)c[i].amax, o, e, l);
    }
}

static ra_status mxfp4_mm(ra_pool *p, const void *w, const float *x, uint32_t n, float *y)
{
    return ra_mxfp4_matmul(p, w, x, n, y);
}

static ra_status mx_pack(const void *names, const void *w, ra_qtensors *out)
{
    return ra_mxfp4_pack(w, *(const ra_mxfp4_names *)names, out);
}
static ra_status mx_unpack(const void *names, const ra_qtensors *t, void *w)
{
    return ra_mxfp4_unpack(t, *(const ra_mxfp4_names *)names, w);
}
static ra_status mx_dequantize(const void *w, float **out) { return ra_mxfp4_dequantize(w, out); }
static void mx_free(void *w) { ra_mxfp4_free(w); }
static const qc_format MXFP4 = {mx_pack, mx_unpack, mx_dequantize, mx_free};

int main(void)
{
    check_reference_block();
    check_scale_rules();
    const uint32_t N = 21, K = 320;
    float *w = qc_random((size_t)N * K, 2.0f);
    for (int rule = 0; rule < 3; rule++)
        for (int names = 0; names < 2; names++) {
            ra_mxfp4_weight q, back;
            CHECK_OK(ra_mxfp4_quantize(w, N, K, (ra_mx_scale_rule)rule, &q));
            ra_mxfp4_names nm = (ra_mxfp4_names)names;
            qc_check_round_trip("mxfp4", &MXFP4, &nm, &q, &back, (size_t)N * K);
            ra_mxfp4_free(&q);
        }
    {
        ra_mxfp4_weight q, back;
        float *a = NULL;
        ra_qtensors t = {0}, ct = {0};
        CHECK_OK(ra_mxfp4_quantize(w, N, K, RA_MX_SCALE_OCP, &q));
        CHECK_OK(ra_mxfp4_dequantize(&q, &a));
        qc_check_matmul("mxfp4", mxfp4_mm, &q, a, N, K, NULL);
        /* the two namings hold the same bytes */
        CHECK_OK(ra_mxfp4_pack(&q, RA_MXFP4_NAMES_GPT_OSS, &t));
        CHECK_OK(ra_mxfp4_pack(&q, RA_MXFP4_NAMES_CT, &ct));
        CHECK(!memcmp(ct.t[0].data, t.t[0].data, t.t[0].nbytes) && !memcmp(ct.t[1].data, t.t[1].data, t.t[1].nbytes));
        CHECK(ct.t[0].n_dims == 2 && ct.t[0].shape[1] == K / 2 && !strcmp(ct.t[0].suffix, ".weight_packed"));
        /* refusals */
        CHECK_STATUS(ra_mxfp4_unpack(&t, RA_MXFP4_NAMES_CT, &back), RA_ERR_FORMAT); /* no weight_packed */
        t.t[1].shape[1] = 9;
        CHECK_STATUS(ra_mxfp4_unpack(&t, RA_MXFP4_NAMES_GPT_OSS, &back), RA_ERR_FORMAT);
        t.t[1].shape[1] = 10;
        t.t[0].shape[2] = 32;
        CHECK_STATUS(ra_mxfp4_unpack(&t, RA_MXFP4_NAMES_GPT_OSS, &back), RA_ERR_FORMAT);
        free(a);
        ra_qtensors_free(&t); ra_qtensors_free(&ct);
        ra_mxfp4_free(&q);
    }
    ra_mxfp4_weight q;
    CHECK_STATUS(ra_mxfp4_quantize(w, 3, 48, RA_MX_SCALE_OCP, &q), RA_ERR_FORMAT); /* K % 32 */
    w[5] = -INFINITY;
    CHECK_STATUS(ra_mxfp4_quantize(w, N, K, RA_MX_SCALE_OCP, &q), RA_ERR_USAGE);
    /* E8M0 0xFF decodes to NaN (OCP), not 2^128 (gpt-oss) */
    w[5] = 0;
    CHECK_OK(ra_mxfp4_quantize(w, 1, 32, RA_MX_SCALE_OCP, &q));
    q.scales[0] = 0xFF;
    float d[32];
    ra_mxfp4_dequantize_rows(&q, 0, 1, d);
    CHECK(isnan(d[1]));
    ra_mxfp4_free(&q);
    free(w);
    CHECK_DONE();
}
