/* FP8: RTN per tensor, channel and 128x128 block (scales, codes, edge
 * blocks, zero scales), compressed-tensors and DeepSeek tensors and their
 * round trips, refusals, dynamic activation quantization per token and per
 * 128-group, and the W8A8 and weight-only matmul contracts. */
#include "quant_check.h"
#include "ra/fp8.h"
#include "ra/minifloat.h"

static void check_rtn(void)
{
    /* per tensor, bf16 scale: amax 896 -> s = 2; 896 -> 448 (0x7E), -448 -> -224
     * (0xF6), 1 -> 0.5 (0x30), 2^-7 -> 2^-8 = 2 * 2^-9 (subnormal 0x02) */
    const float w[4] = {896.0f, -448.0f, 1.0f, 0x1p-7f};
    ra_fp8_weight q;
    CHECK_OK(ra_fp8_quantize(w, 1, 4, RA_FP8_TENSOR, RA_SCALE_BF16, &q));
    CHECK(q.scales[0] == 2.0f && q.codes[0] == 0x7e && q.codes[1] == 0xf6 && q.codes[2] == 0x30 && q.codes[3] == 0x02);
    ra_fp8_free(&q);

    /* per channel: bf16(amax / 448) per row; an all-zero row gets bf16's eps and zero codes;
     * w / s just above 448 (bf16 rounded the scale down) clamps to 448 */
    float wc[3 * 5] = {1, 2, 3, 4, 6, 0, 0, 0, 0, 0, -0.3f, 0.1f, 0.2f, 0, 0};
    CHECK_OK(ra_fp8_quantize(wc, 3, 5, RA_FP8_CHANNEL, RA_SCALE_BF16, &q));
    CHECK(q.scale_rows == 3 && q.scale_cols == 1);
    CHECK(q.scales[0] == ra_bf16_to_f32(ra_f32_to_bf16(6.0f / 448)) && q.scales[1] == 0x1p-7f);
    CHECK(q.scales[2] == ra_bf16_to_f32(ra_f32_to_bf16(0.3f / 448)));
    CHECK(6.0f / q.scales[0] > 448.0f && q.codes[4] == 0x7e); /* clamped */
    for (int k = 0; k < 5; k++) CHECK(q.codes[5 + k] == 0);
    CHECK(q.codes[10] == ra_f32_to_e4m3(-0.3f / q.scales[2], true));
    ra_fp8_free(&q);

    /* blocks: N = 200, K = 300 -> 2 x 3 scales, edge blocks from the elements they have */
    float *wb = qc_random(200 * 300, 1.0f);
    wb[150 * 300 + 290] = 7.0f; /* the amax of block (1, 2) */
    CHECK_OK(ra_fp8_quantize(wb, 200, 300, RA_FP8_BLOCK, RA_SCALE_F32, &q));
    CHECK(q.scale_rows == 2 && q.scale_cols == 3 && q.scales[1 * 3 + 2] == 7.0f / 448);
    CHECK(ra_fp8_scale_at(&q, 150, 290) == 7.0f / 448 && q.codes[150 * 300 + 290] == 0x7e);
    int bad = 0;
    for (size_t i = 0; i < 200 * 300; i++) {
        float s = ra_fp8_scale_at(&q, (uint32_t)(i / 300), (uint32_t)(i % 300)), v = wb[i] / s;
        bad += q.codes[i] != ra_f32_to_e4m3(v, true);
    }
    CHECK_MSG(bad == 0, "block codes: %d differ from e4m3(w / s)", bad);
    float *d = NULL;
    CHECK_OK(ra_fp8_dequantize(&q, &d));
    for (size_t i = 0; i < 200 * 300; i++) /* relative error of E4M3 rounding: 2^-4 */
        bad += fabsf(d[i] - wb[i]) > 0x1p-4f * fabsf(wb[i]) + 0x1p-9f * ra_fp8_scale_at(&q, (uint32_t)(i / 300), 0);
    CHECK_MSG(bad == 0, "block dequantization: %d values further than E4M3 rounding", bad);
    free(d);
    ra_fp8_free(&q);
    wb[7] = INFINITY;
    CHECK_STATUS(ra_fp8_quantize(wb, 200, 300, RA_FP8_BLOCK, RA_SCALE_F32, &q), RA_ERR_USAGE);
    free(wb);
}

typedef struct {
    ra_fp8_names names;
    ra_fp8_scheme scheme;
} fp8_cfg;
static ra_status f8_pack(const void *c, const void *w, ra_qtensors *out) { return ra_fp8_pack(w, ((const fp8_cfg *)c)->names, out); }
static ra_status f8_unpack(const void *c, const ra_qtensors *t, void *w)
{
    return ra_fp8_unpack(t, ((const fp8_cfg *)c)->names, ((const fp8_cfg *)c)->scheme, w);
}
static ra_status f8_dequantize(const void *w, float **out) { return ra_fp8_dequantize(w, out); }
static void f8_free(void *w) { ra_fp8_free(w); }
static const qc_format FP8 = {f8_pack, f8_unpack, f8_dequantize, f8_free};

static void round_trip(ra_fp8_scheme scheme, ra_scale_dtype dt, ra_fp8_names names, uint32_t N, uint32_t K)
{
    float *w = qc_random((size_t)N * K, 0.2f);
    ra_fp8_weight q, back;
    CHECK_OK(ra_fp8_quantize(w, N, K, scheme, dt, &q));
    ra_qtensors t = {0};
    CHECK_OK(ra_fp8_pack(&q, names, &t));
    const ra_qtensor *s = ra_qtensors_find(&t, names == RA_FP8_NAMES_DEEPSEEK ? ".weight_scale_inv" : ".weight_scale");
    CHECK(s && ra_qtensors_find(&t, ".weight")->dtype == RA_QT_F8_E4M3);
    if (s && scheme == RA_FP8_TENSOR) CHECK(s->n_dims == 1 && s->shape[0] == 1);
    if (s && scheme == RA_FP8_CHANNEL) CHECK(s->n_dims == 2 && s->shape[0] == N && s->shape[1] == 1);
    if (s && scheme == RA_FP8_BLOCK) CHECK(s->shape[0] == (N + 127) / 128 && s->shape[1] == (K + 127) / 128);
    fp8_cfg c = {names, scheme};
    qc_check_round_trip("fp8", &FP8, &c, &q, &back, (size_t)N * K);
    free(w);
    ra_qtensors_free(&t);
    ra_fp8_free(&q);
}

static void check_refusals(void)
{
    float *w = qc_random(64 * 64, 1.0f);
    ra_fp8_weight q, back;
    ra_qtensors t = {0};
    CHECK_OK(ra_fp8_quantize(w, 64, 64, RA_FP8_CHANNEL, RA_SCALE_F32, &q));
    CHECK_STATUS(ra_fp8_pack(&q, RA_FP8_NAMES_DEEPSEEK, &t), RA_ERR_UNSUPPORTED);
    CHECK_OK(ra_fp8_pack(&q, RA_FP8_NAMES_CT, &t));
    CHECK_STATUS(ra_fp8_unpack(&t, RA_FP8_NAMES_CT, RA_FP8_BLOCK, &back), RA_ERR_FORMAT);  /* [64, 1] is not [1, 1] */
    CHECK_STATUS(ra_fp8_unpack(&t, RA_FP8_NAMES_CT, RA_FP8_TENSOR, &back), RA_ERR_FORMAT); /* nor [1] */
    CHECK_STATUS(ra_fp8_unpack(&t, RA_FP8_NAMES_DEEPSEEK, RA_FP8_BLOCK, &back), RA_ERR_FORMAT); /* no weight_scale_inv */
    t.t[0].dtype = RA_QT_U8;
    CHECK_STATUS(ra_fp8_unpack(&t, RA_FP8_NAMES_CT, RA_FP8_CHANNEL, &back), RA_ERR_FORMAT);
    t.t[0].dtype = RA_QT_F8_E4M3;
    t.t[0].shape[1] = 65; /* a shape that needs more bytes than the tensor holds */
    CHECK_STATUS(ra_fp8_unpack(&t, RA_FP8_NAMES_CT, RA_FP8_CHANNEL, &back), RA_ERR_FORMAT);
    CHECK(strstr(ra_errmsg(), "bytes") != NULL);
    t.t[0].shape[1] = 64;
    t.t[0].dtype = RA_QT_F8_E4M3;
    ra_put_le32(t.t[1].data + 4, 0x7fc00000); /* a NaN scale */
    CHECK_STATUS(ra_fp8_unpack(&t, RA_FP8_NAMES_CT, RA_FP8_CHANNEL, &back), RA_ERR_FORMAT);
    ra_qtensors_free(&t);
    ra_fp8_free(&q);
    /* a per-tensor scale stored as a scalar (older files) is read */
    CHECK_OK(ra_fp8_quantize(w, 64, 64, RA_FP8_TENSOR, RA_SCALE_F32, &q));
    CHECK_OK(ra_fp8_pack(&q, RA_FP8_NAMES_CT, &t));
    t.t[1].n_dims = 0;
    CHECK_OK(ra_fp8_unpack(&t, RA_FP8_NAMES_CT, RA_FP8_TENSOR, &back));
    CHECK(back.scales[0] == q.scales[0]);
    ra_fp8_free(&back);
    ra_qtensors_free(&t);
    ra_fp8_free(&q);
    free(w);
}

static void check_activations(void)
{
    /* per token: amax 4.48 -> s = 4.48 / 448 in float32; an all-zero row takes the floor 1 / (448 * 512) */
    float x[2 * 4] = {4.48f, -1.0f, 0.001f, 2.24f, 0, 0, 0, 0};
    uint8_t q[8];
    float s[2];
    ra_fp8_quantize_activations(x, 2, 4, RA_FP8_ACT_TOKEN, q, s);
    CHECK(s[0] == 4.48f / 448.0f && s[1] == 1.0f / (448.0f * 512.0f));
    for (int k = 0; k < 4; k++) CHECK(q[k] == ra_f32_to_e4m3(x[k] / s[0], true) && q[4 + k] == 0);
    CHECK(q[0] == 0x7e || q[0] == 0x7d); /* 4.48 / s rounds to 448 (or just under, by float division) */
    /* per group of 128: 300 columns -> 3 groups, the last of 44; a zero group's scale is 1e-10 / 448 */
    float *xg = qc_random(300, 3.0f);
    for (int k = 128; k < 256; k++) xg[k] = 0;
    uint8_t *qg = malloc(300);
    float sg[3];
    CHECK(ra_fp8_act_groups(RA_FP8_ACT_GROUP, 300) == 3);
    ra_fp8_quantize_activations(xg, 1, 300, RA_FP8_ACT_GROUP, qg, sg);
    float amax0 = 0, amax2 = 0;
    for (int k = 0; k < 128; k++) amax0 = fmaxf(amax0, fabsf(xg[k]));
    for (int k = 256; k < 300; k++) amax2 = fmaxf(amax2, fabsf(xg[k]));
    CHECK(sg[0] == amax0 / 448.0f && sg[1] == 1e-10f / 448.0f && sg[2] == amax2 / 448.0f);
    int bad = 0;
    for (int k = 0; k < 300; k++) bad += qg[k] != ra_f32_to_e4m3(xg[k] / sg[k / 128], true);
    CHECK(bad == 0);
    free(qg);
    free(xg);
}

/* The W8A8 order written out once more, independently: segments, lanes, (dot * sa) * sw. */
static float ref_w8a8(const ra_fp8_weight *w, const uint8_t *qa, const float *sa, uint32_t groups, uint32_t r, uint32_t seg)
{
    const uint32_t K = w->cols;
    float acc = 0;
    for (uint32_t k0 = 0; k0 < K; k0 += seg) {
        uint32_t len = K - k0 < seg ? K - k0 : seg, n8 = len & ~7u;
        float l[8] = {0};
        for (uint32_t i = 0; i < len; i++) {
            float p = ra_e4m3_to_f32(qa[k0 + i]) * ra_e4m3_to_f32(w->codes[(size_t)r * K + k0 + i]);
            uint32_t lane = i < n8 ? i % 8 : i - n8;
            l[lane] = l[lane] + p;
        }
        float dot = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
        acc = acc + (dot * sa[groups > 1 ? k0 / 128 : 0]) * ra_fp8_scale_at(w, r, k0);
    }
    return acc;
}

typedef struct {
    const ra_fp8_weight *w;
    ra_fp8_act act;
} w8a8_layer;
static ra_status w8a8_mm(ra_pool *p, const void *l, const float *x, uint32_t n, float *y)
{
    return ra_fp8_matmul(p, ((const w8a8_layer *)l)->w, ((const w8a8_layer *)l)->act, x, n, y);
}

static void check_w8a8(ra_fp8_scheme scheme, ra_fp8_act act, uint32_t N, uint32_t K)
{
    enum { NT = 11 };
    float *w = qc_random((size_t)N * K, 0.3f), *x = qc_random((size_t)NT * K, 2.0f);
    ra_fp8_weight q;
    CHECK_OK(ra_fp8_quantize(w, N, K, scheme, RA_SCALE_BF16, &q));
    const uint32_t groups = ra_fp8_act_groups(act, K), seg = act == RA_FP8_ACT_GROUP || scheme == RA_FP8_BLOCK ? 128 : K;
    uint8_t *qa = malloc((size_t)NT * K);
    float *sa = malloc((size_t)NT * groups * 4), *want = malloc((size_t)NT * N * 4);
    ra_fp8_quantize_activations(x, NT, K, act, qa, sa);
    double worst = 0;
    for (uint32_t t = 0; t < NT; t++)
        for (uint32_t r = 0; r < N; r++) {
            want[(size_t)t * N + r] = ref_w8a8(&q, qa + (size_t)t * K, sa + (size_t)t * groups, groups, r, seg);
            double sum = 0, mag = 0;
            for (uint32_t k = 0; k < K; k++) {
                double p = (double)ra_e4m3_to_f32(qa[(size_t)t * K + k]) * sa[(size_t)t * groups + (groups > 1 ? k / 128 : 0)] *
                           ra_e4m3_to_f32(q.codes[(size_t)r * K + k]) * ra_fp8_scale_at(&q, r, k);
                sum += p;
                mag += fabs(p);
            }
            double tol = (seg / 8 + 8 + (K + seg - 1) / seg) * 0x1p-24 * mag + 1e-30;
            double e = fabs(want[(size_t)t * N + r] - sum) / tol;
            worst = e > worst ? e : worst;
        }
    CHECK_MSG(worst <= 1.0, "w8a8 scheme %d act %d: error %.3g of the bound", scheme, act, worst);
    w8a8_layer layer = {&q, act};
    qc_check_batches("w8a8", w8a8_mm, &layer, x, NT, N, K, want);
    free(w); free(x); free(qa); free(sa); free(want);
    ra_fp8_free(&q);
}

static ra_status fp8_weight_only(ra_pool *p, const void *w, const float *x, uint32_t n, float *y)
{
    return ra_fp8_matmul(p, w, RA_FP8_ACT_NONE, x, n, y);
}

int main(void)
{
    check_rtn();
    const ra_fp8_scheme schemes[3] = {RA_FP8_TENSOR, RA_FP8_CHANNEL, RA_FP8_BLOCK};
    const ra_scale_dtype dts[3] = {RA_SCALE_F32, RA_SCALE_BF16, RA_SCALE_F16};
    for (int s = 0; s < 3; s++)
        for (int d = 0; d < 3; d++) round_trip(schemes[s], dts[d], RA_FP8_NAMES_CT, 70, 300);
    round_trip(RA_FP8_BLOCK, RA_SCALE_F32, RA_FP8_NAMES_DEEPSEEK, 260, 130);
    check_refusals();
    check_activations();
    check_w8a8(RA_FP8_CHANNEL, RA_FP8_ACT_TOKEN, 37, 300);
    check_w8a8(RA_FP8_TENSOR, RA_FP8_ACT_TOKEN, 37, 300);
    check_w8a8(RA_FP8_BLOCK, RA_FP8_ACT_GROUP, 150, 300);
    check_w8a8(RA_FP8_BLOCK, RA_FP8_ACT_TOKEN, 37, 300);
    check_w8a8(RA_FP8_CHANNEL, RA_FP8_ACT_GROUP, 37, 256);
    float *w = qc_random(37 * 300, 0.3f), *wq = NULL;
    ra_fp8_weight q;
    CHECK_OK(ra_fp8_quantize(w, 37, 300, RA_FP8_BLOCK, RA_SCALE_F32, &q));
    CHECK_OK(ra_fp8_dequantize(&q, &wq));
    qc_check_matmul("fp8 weight-only", fp8_weight_only, &q, wq, 37, 300, NULL);
    free(w); free(wq);
    ra_fp8_free(&q);
    CHECK_DONE();
}
