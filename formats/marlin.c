/* Marlin repack (include/ra/marlin.h). Everything goes through three index
 * functions -- where a code, a scale and a zero point of the source layer sit
 * in Marlin's arrays -- so the repack, its inverse and the dequantizer cannot
 * disagree. */
#include "ra/marlin.h"

#include <stdlib.h>
#include <string.h>

#include "ra/util.h"

static const char FMT[] = "marlin";

/* Inverse of the 0,2,4,6,1,3,5,7 interleave: value i of a thread's eight sits in nibble NIBBLE_OF[i]. */
static const uint8_t NIBBLE_OF[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* The word and nibble of Marlin row k (in Marlin's order), column n. Inside a
 * 16 x 64 tile, thread t = 4 (c % 8) + (r % 8) / 2 of warp w = c / 16 holds
 * rows r0 + {0, 1, 8, 9} of columns c0 and c0 + 8 as values 0-3 and 4-7. */
static void code_position(uint32_t N, uint32_t k, uint32_t n, size_t *word, uint32_t *nibble)
{
    uint32_t r = k % 16, c = n % 64, cc = c % 16;
    uint32_t t = 4 * (cc % 8) + (r % 8) / 2, w = c / 16;
    uint32_t value = 4 * (cc / 8) + r % 2 + 2 * (r / 8);
    *word = (size_t)(k / 16) * 2 * N + (size_t)(n / 64) * 128 + 4 * t + w;
    *nibble = NIBBLE_OF[value];
}

/* Index in the permuted scale array of group g, column n. */
static size_t scale_position(uint32_t N, uint32_t n_groups, uint32_t g, uint32_t n)
{
    size_t f = (size_t)g * N + n;
    if (n_groups > 1) { /* out[8i + j] = in[i + 8j] in each 64 */
        uint32_t p = f % 64;
        return f - p + 8 * (p % 8) + p / 8;
    }
    /* out[8i + t] = in[2i + J[t]], J = 0,1,8,9,16,17,24,25, in each 32 */
    uint32_t p = f % 32, i = (p % 8) / 2, j = p - 2 * i, t = 2 * (j / 8) + j % 8;
    return f - p + 8 * i + t;
}

/* Word and nibble of the zero point of group g, column n: the grouped scale
 * permutation (always, as marlin_zero_points does), then the AWQ interleave of
 * each 8, packed in natural order. */
static void zero_position(uint32_t N, uint32_t g, uint32_t n, size_t *word, uint32_t *nibble)
{
    size_t f = (size_t)g * N + n;
    uint32_t p = f % 64;
    size_t m = f - p + 8 * (p % 8) + p / 8; /* position after the 64-block transpose */
    *word = m / 8;
    *nibble = NIBBLE_OF[m % 8]; /* out[8b + i] = in[8b + ORDER[i]] */
}

static uint32_t marlin_group(const ra_marlin *m, uint32_t k) { return m->g_idx ? (uint32_t)m->g_idx[k] : k / m->group_size; }
static uint32_t source_row(const ra_marlin *m, uint32_t k) { return m->perm ? (uint32_t)m->perm[k] : k; }

static uint32_t code_at(const ra_marlin *m, uint32_t k, uint32_t n)
{
    size_t w;
    uint32_t nib;
    code_position(m->rows, k, n, &w, &nib);
    return (m->qweight[w] >> (4 * nib)) & 15;
}

static uint32_t zero_at(const ra_marlin *m, uint32_t g, uint32_t n)
{
    if (!m->zeros) return 8;
    size_t w;
    uint32_t nib;
    zero_position(m->rows, g, n, &w, &nib);
    return (m->zeros[w] >> (4 * nib)) & 15;
}

static float scale_at(const ra_marlin *m, uint32_t g, uint32_t n)
{
    uint16_t h = m->scales[scale_position(m->rows, m->n_groups, g, n)];
    return m->scale_dtype == RA_SCALE_F16 ? ra_f16_to_f32(h) : ra_bf16_to_f32(h);
}

void ra_marlin_free(ra_marlin *m)
{
    free(m->qweight);
    free(m->scales);
    free(m->zeros);
    free(m->perm);
    free(m->g_idx);
    memset(m, 0, sizeof *m);
}

static ra_status check_geometry(uint32_t N, uint32_t K, uint32_t G, uint32_t n_groups)
{
    if (K % 16 || N % 64) return ra_fail(RA_ERR_FORMAT, "marlin: needs K %% 16 == 0 and N %% 64 == 0, not K=%u N=%u", K, N);
    if (!G || K % G || (G != K && G % 16) || n_groups != K / G)
        return ra_fail(RA_ERR_FORMAT, "marlin: groups of %u columns (%u groups) do not tile K=%u in multiples of 16", G,
                       n_groups, K);
    return RA_OK;
}

static ra_status alloc_marlin(ra_marlin *m, uint32_t N, uint32_t K, uint32_t G, bool zeros, bool act_order)
{
    *m = (ra_marlin){.rows = N, .cols = K, .group_size = G, .n_groups = K / G};
    ra_status s = ra_calloc(&m->qweight, (size_t)K / 16 * 2 * N, sizeof *m->qweight);
    if (s == RA_OK) s = ra_calloc(&m->scales, (size_t)m->n_groups * N, sizeof *m->scales);
    if (s == RA_OK && zeros) s = ra_calloc(&m->zeros, (size_t)m->n_groups * N / 8, sizeof *m->zeros);
    if (s == RA_OK && act_order) s = ra_calloc(&m->perm, K, sizeof *m->perm);
    if (s == RA_OK && act_order) s = ra_calloc(&m->g_idx, K, sizeof *m->g_idx);
    if (s != RA_OK) ra_marlin_free(m);
    return s;
}

ra_status ra_marlin_from_intq(const ra_intq *q, ra_marlin *out)
{
    memset(out, 0, sizeof *out);
    if (q->bits != 4) return ra_fail(RA_ERR_UNSUPPORTED, "marlin: only 4-bit layers are repacked, not %u-bit", q->bits);
    if (q->scale_dtype == RA_SCALE_F32) return ra_fail(RA_ERR_UNSUPPORTED, "marlin: needs f16 or bf16 scales, not f32");
    RA_TRY(check_geometry(q->rows, q->cols, q->group_size, q->n_groups));
    RA_TRY(ra_intq_check(q, FMT));
    const uint32_t N = q->rows, K = q->cols, NG = q->n_groups;
    bool zeros = false;
    for (size_t i = 0; i < (size_t)N * NG; i++) {
        if (q->zeros[i] > 15) return ra_fail(RA_ERR_UNSUPPORTED, "marlin: zero point %u does not fit in 4 bits", q->zeros[i]);
        zeros |= q->zeros[i] != 8;
    }
    RA_TRY(alloc_marlin(out, N, K, q->group_size, zeros, q->g_idx != NULL));
    out->scale_dtype = q->scale_dtype;
    if (q->g_idx) { /* stable argsort: counting sort by group keeps each group's rows in source order */
        uint32_t *start = NULL;
        ra_status s = ra_calloc(&start, NG + 1, sizeof *start);
        if (s != RA_OK) {
            ra_marlin_free(out);
            return s;
        }
        for (uint32_t k = 0; k < K; k++) start[q->g_idx[k] + 1]++;
        for (uint32_t g = 0; g < NG; g++) start[g + 1] += start[g];
        for (uint32_t k = 0; k < K; k++) {
            uint32_t pos = start[q->g_idx[k]]++;
            out->perm[pos] = (int32_t)k;
            out->g_idx[pos] = q->g_idx[k];
        }
        free(start);
    }
    for (uint32_t n = 0; n < N; n++) {
        for (uint32_t k = 0; k < K; k++) {
            size_t w;
            uint32_t nib;
            code_position(N, k, n, &w, &nib);
            out->qweight[w] |= (uint32_t)q->codes[(size_t)n * K + source_row(out, k)] << (4 * nib);
        }
        for (uint32_t g = 0; g < NG; g++) {
            float s = q->scales[(size_t)n * NG + g];
            out->scales[scale_position(N, NG, g, n)] = q->scale_dtype == RA_SCALE_F16 ? ra_f32_to_f16(s) : ra_f32_to_bf16(s);
            if (!zeros) continue;
            size_t w;
            uint32_t nib;
            zero_position(N, g, n, &w, &nib);
            out->zeros[w] |= (uint32_t)q->zeros[(size_t)n * NG + g] << (4 * nib);
        }
    }
    return RA_OK;
}

ra_status ra_marlin_to_intq(const ra_marlin *m, ra_intq *out)
{
    const uint32_t N = m->rows, K = m->cols, NG = m->n_groups;
    RA_TRY(ra_intq_alloc(out, N, K, 4, m->group_size, NG, m->g_idx != NULL));
    out->scale_dtype = m->scale_dtype;
    for (uint32_t k = 0; m->g_idx && k < K; k++) out->g_idx[source_row(m, k)] = m->g_idx[k];
    for (uint32_t n = 0; n < N; n++) {
        for (uint32_t k = 0; k < K; k++) out->codes[(size_t)n * K + source_row(m, k)] = (uint8_t)code_at(m, k, n);
        for (uint32_t g = 0; g < NG; g++) {
            out->scales[(size_t)n * NG + g] = scale_at(m, g, n);
            out->zeros[(size_t)n * NG + g] = (uint16_t)zero_at(m, g, n);
        }
    }
    return RA_OK;
}

void ra_marlin_dequantize_rows(const ra_marlin *m, uint32_t r0, uint32_t r1, float *out)
{
    for (uint32_t n = r0; n < r1; n++)
        for (uint32_t k = 0; k < m->cols; k++) {
            uint32_t g = marlin_group(m, k);
            out[(size_t)(n - r0) * m->cols + k] = (float)((int32_t)code_at(m, k, n) - (int32_t)zero_at(m, g, n)) * scale_at(m, g, n);
        }
}

ra_status ra_marlin_dequantize(const ra_marlin *m, float **out)
{
    float *rows = NULL;
    RA_TRY(ra_calloc(&rows, (size_t)m->rows * m->cols, sizeof *rows));
    ra_status s = ra_calloc(out, (size_t)m->rows * m->cols, sizeof **out);
    if (s == RA_OK) {
        ra_marlin_dequantize_rows(m, 0, m->rows, rows);
        for (uint32_t n = 0; n < m->rows; n++)
            for (uint32_t k = 0; k < m->cols; k++)
                (*out)[(size_t)n * m->cols + source_row(m, k)] = rows[(size_t)n * m->cols + k];
    }
    free(rows);
    return s;
}

static void marlin_rows(const void *layer, uint32_t r0, uint32_t r1, float *out) { ra_marlin_dequantize_rows(layer, r0, r1, out); }

ra_status ra_marlin_matmul(ra_pool *p, const ra_marlin *m, const float *x, uint32_t n, float *y)
{
    if (!m->perm) return ra_qlinear_matmul(p, m, m->rows, m->cols, marlin_rows, x, n, y);
    float *xg = NULL;
    RA_TRY(ra_calloc(&xg, (size_t)n * m->cols, sizeof *xg));
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t k = 0; k < m->cols; k++) xg[(size_t)t * m->cols + k] = x[(size_t)t * m->cols + m->perm[k]];
    ra_status s = ra_qlinear_matmul(p, m, m->rows, m->cols, marlin_rows, xg, n, y);
    free(xg);
    return s;
}

/* Tensor names of each naming. */
static const char *name_of(ra_marlin_names names, int which)
{
    static const char *const vllm[] = {".qweight", ".scales", ".qzeros", ".g_idx", ".g_idx_sort_indices"};
    static const char *const daslab[] = {".B", ".s", NULL, NULL, NULL};
    return names == RA_MARLIN_NAMES_DASLAB ? daslab[which] : vllm[which];
}
enum { T_QWEIGHT, T_SCALES, T_ZEROS, T_G_IDX, T_PERM };

static void put_words(uint8_t *dst, const uint32_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) ra_put_le32(dst + 4 * i, (uint32_t)src[i]);
}

ra_status ra_marlin_pack(const ra_marlin *m, ra_marlin_names names, ra_qtensors *out)
{
    const uint32_t N = m->rows, K = m->cols, NG = m->n_groups;
    if (names == RA_MARLIN_NAMES_DASLAB && (m->zeros || m->perm || m->g_idx || m->scale_dtype != RA_SCALE_F16))
        return ra_fail(RA_ERR_UNSUPPORTED, "marlin: IST-DASLab checkpoints hold only symmetric f16 layers without act-order");
    uint8_t *qw, *sc, *zp = NULL, *gi = NULL, *pm = NULL;
    ra_status s = ra_qtensors_add(out, name_of(names, T_QWEIGHT), RA_QT_I32, 2, (uint64_t[]){K / 16, 2 * N}, &qw);
    if (s == RA_OK) s = ra_qtensors_add(out, name_of(names, T_SCALES), ra_scale_qt(m->scale_dtype), 2, (uint64_t[]){NG, N}, &sc);
    if (s == RA_OK && m->zeros) s = ra_qtensors_add(out, name_of(names, T_ZEROS), RA_QT_I32, 2, (uint64_t[]){NG, N / 8}, &zp);
    if (s == RA_OK && m->g_idx) s = ra_qtensors_add(out, name_of(names, T_G_IDX), RA_QT_I32, 1, (uint64_t[]){K}, &gi);
    if (s == RA_OK && m->perm) s = ra_qtensors_add(out, name_of(names, T_PERM), RA_QT_I32, 1, (uint64_t[]){K}, &pm);
    if (s != RA_OK) {
        ra_qtensors_free(out);
        return s;
    }
    put_words(qw, m->qweight, (size_t)K / 16 * 2 * N);
    for (size_t i = 0; i < (size_t)NG * N; i++) {
        sc[2 * i] = (uint8_t)m->scales[i];
        sc[2 * i + 1] = (uint8_t)(m->scales[i] >> 8);
    }
    if (zp) put_words(zp, m->zeros, (size_t)NG * N / 8);
    if (gi) put_words(gi, (const uint32_t *)m->g_idx, K);
    if (pm) put_words(pm, (const uint32_t *)m->perm, K);
    return RA_OK;
}

/* A permutation of [0, K) whose g_idx is sorted: what the kernel relies on. */
static ra_status check_act_order(const ra_marlin *m)
{
    uint8_t *seen = NULL;
    RA_TRY(ra_calloc(&seen, m->cols, 1));
    ra_status s = RA_OK;
    for (uint32_t k = 0; k < m->cols && s == RA_OK; k++) {
        int32_t p = m->perm[k], g = m->g_idx[k];
        if (p < 0 || (uint32_t)p >= m->cols || seen[p]) s = ra_fail(RA_ERR_FORMAT, "marlin: g_idx_sort_indices[%u] = %d", k, p);
        else if (g < 0 || (uint32_t)g >= m->n_groups || (k && g < m->g_idx[k - 1]))
            s = ra_fail(RA_ERR_FORMAT, "marlin: g_idx[%u] = %d is out of range or not sorted", k, g);
        else seen[p] = 1;
    }
    free(seen);
    return s;
}

static ra_status read_marlin(const ra_qtensors *t, ra_marlin_names names, int32_t group_size, ra_marlin *m)
{
    const ra_qtensor *qw = ra_qtensors_find(t, name_of(names, T_QWEIGHT)), *sc = ra_qtensors_find(t, name_of(names, T_SCALES));
    const ra_qtensor *zp = NULL, *gi = NULL, *pm = NULL;
    if (!qw || !sc) return ra_fail(RA_ERR_FORMAT, "marlin: tensor %s missing", name_of(names, qw ? T_SCALES : T_QWEIGHT));
    if (qw->dtype != RA_QT_I32 || qw->n_dims != 2 || !qw->shape[0] || qw->shape[0] > UINT32_MAX / 16 ||
        qw->shape[1] % 2 || !qw->shape[1] || qw->shape[1] > UINT32_MAX)
        return ra_fail(RA_ERR_FORMAT, "marlin: %s must be a 2-D I32 tensor [K/16, 2N]", qw->suffix);
    const uint32_t K = (uint32_t)qw->shape[0] * 16, N = (uint32_t)qw->shape[1] / 2;
    const uint32_t G = group_size <= 0 || (uint32_t)group_size > K ? K : (uint32_t)group_size;
    RA_TRY(check_geometry(N, K, G, K % G ? 0 : K / G));
    ra_scale_dtype dt;
    RA_TRY(ra_scale_dtype_of(sc, FMT, &dt));
    if (dt == RA_SCALE_F32) return ra_fail(RA_ERR_FORMAT, "marlin: %s must be F16 or BF16", sc->suffix);
    RA_TRY(ra_qtensors_expect(t, FMT, sc->suffix, sc->dtype, 2, (uint64_t[]){K / G, N}, &sc));
    RA_TRY(ra_qtensors_expect(t, FMT, qw->suffix, RA_QT_I32, 2, (uint64_t[]){K / 16, 2 * N}, &qw));
    if (names == RA_MARLIN_NAMES_VLLM) {
        if (ra_qtensors_find(t, ".qzeros")) RA_TRY(ra_qtensors_expect(t, FMT, ".qzeros", RA_QT_I32, 2, (uint64_t[]){K / G, N / 8}, &zp));
        if (ra_qtensors_find(t, ".g_idx")) RA_TRY(ra_qtensors_expect(t, FMT, ".g_idx", RA_QT_I32, 1, (uint64_t[]){K}, &gi));
        if (ra_qtensors_find(t, ".g_idx_sort_indices"))
            RA_TRY(ra_qtensors_expect(t, FMT, ".g_idx_sort_indices", RA_QT_I32, 1, (uint64_t[]){K}, &pm));
        if (!gi != !pm) return ra_fail(RA_ERR_FORMAT, "marlin: g_idx and g_idx_sort_indices come together");
    }
    RA_TRY(alloc_marlin(m, N, K, G, zp != NULL, gi != NULL));
    m->scale_dtype = dt;
    for (size_t i = 0; i < (size_t)K / 16 * 2 * N; i++) m->qweight[i] = ra_le32(qw->data + 4 * i);
    for (size_t i = 0; i < (size_t)m->n_groups * N; i++) m->scales[i] = ra_le16(sc->data + 2 * i);
    for (size_t i = 0; zp && i < (size_t)m->n_groups * N / 8; i++) m->zeros[i] = ra_le32(zp->data + 4 * i);
    for (uint32_t k = 0; gi && k < K; k++) {
        m->g_idx[k] = (int32_t)ra_le32(gi->data + 4 * k);
        m->perm[k] = (int32_t)ra_le32(pm->data + 4 * k);
    }
    if (gi) RA_TRY(check_act_order(m));
    for (size_t i = 0; i < (size_t)m->n_groups * N; i++)
        if (!isfinite(scale_at(m, (uint32_t)(i / N), (uint32_t)(i % N))))
            return ra_fail(RA_ERR_FORMAT, "marlin: scale %zu is not finite", i);
    return RA_OK;
}

ra_status ra_marlin_unpack(const ra_qtensors *t, ra_marlin_names names, int32_t group_size, ra_marlin *out)
{
    memset(out, 0, sizeof *out);
    ra_status s = read_marlin(t, names, group_size, out);
    if (s != RA_OK) ra_marlin_free(out);
    return s;
}
