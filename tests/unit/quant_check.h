/* Shared checks of the quantized-format tests: random data, words from hex
 * and the matmul contract every format's CPU reference must keep. */
#ifndef RA_TEST_QUANT_CHECK_H
#define RA_TEST_QUANT_CHECK_H

#include <stdlib.h>

#include "check.h"
#include "ra/cpu.h"
#include "ra/quant.h"
#include "ra/util.h"

static uint64_t qc_rng = 0x243f6a8885a308d3ull;
static inline float qc_frand(void) /* uniform in [-1, 1) */
{
    qc_rng = qc_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int32_t)(qc_rng >> 40) - (1 << 23)) / (float)(1 << 23);
}
static inline uint32_t qc_urand(uint32_t n)
{
    qc_rng = qc_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((qc_rng >> 33) % n);
}
static inline float *qc_random(size_t n, float amp)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = qc_frand() * amp;
    return v;
}
/* A random permutation of [0, n) (Fisher-Yates). */
static inline int32_t *qc_shuffled(uint32_t n)
{
    int32_t *p = malloc(n * sizeof *p);
    for (uint32_t i = 0; i < n; i++) p[i] = (int32_t)i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = qc_urand(i + 1);
        int32_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

static inline uint32_t qc_word(const ra_qtensor *t, size_t i) { return ra_le32(t->data + 4 * i); }
static inline int qc_same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }
static inline int qc_same_tensors(const ra_qtensors *a, const ra_qtensors *b)
{
    if (a->n != b->n) return 0;
    for (uint32_t i = 0; i < a->n; i++) {
        const ra_qtensor *x = &a->t[i], *y = ra_qtensors_find(b, x->suffix);
        if (!y || x->dtype != y->dtype || x->n_dims != y->n_dims || x->nbytes != y->nbytes ||
            memcmp(x->shape, y->shape, sizeof x->shape) || memcmp(x->data, y->data, x->nbytes))
            return 0;
    }
    return 1;
}

/* A borrowed view of t without the tensor `suffix`: a layer with one tensor missing. */
static inline ra_qtensors qc_without(const ra_qtensors *t, const char *suffix)
{
    ra_qtensors part = {0};
    for (uint32_t i = 0; i < t->n; i++)
        if (strcmp(t->t[i].suffix, suffix))
            CHECK_OK(ra_qtensors_borrow(&part, t->t[i].suffix, t->t[i].dtype, t->t[i].n_dims, t->t[i].shape, t->t[i].data,
                                        t->t[i].nbytes));
    return part;
}

typedef ra_status (*qc_matmul_fn)(ra_pool *p, const void *layer, const float *x, uint32_t n, float *y);

/* y = mm(x) for batch sizes 1..nt with 1, 2 and 5 threads, and each token
 * alone, is bitwise `want` ([nt][rows]). */
static inline void qc_check_batches(const char *name, qc_matmul_fn mm, const void *layer, const float *x, uint32_t nt,
                                    uint32_t rows, uint32_t cols, const float *want)
{
    float *y = malloc((size_t)nt * rows * 4);
    const uint32_t threads[3] = {1, 2, 5};
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        ra_pool *pool;
        CHECK_OK(ra_pool_new(threads[i], &pool));
        for (uint32_t n = 1; n <= nt; n++) {
            CHECK_OK(mm(pool, layer, x, n, y));
            bad += !qc_same_bits(y, want, (size_t)n * rows);
        }
        for (uint32_t t = 0; i == 1 && t < nt; t++) {
            CHECK_OK(mm(pool, layer, x + (size_t)t * cols, 1, y));
            bad += !qc_same_bits(y, want + (size_t)t * rows, rows);
        }
        ra_pool_free(pool);
    }
    CHECK_MSG(bad == 0, "%s %ux%u: %d runs differ from the documented order", name, rows, cols, bad);
    free(y);
}

/* The contract of a weight-only format's matmul, given wq [rows][cols]: the
 * layer dequantized in its reduction order, and xperm (or NULL) the gather of
 * the activations into that order.
 *  - bitwise equal to ra_cpu_matmul (the documented float order) over wq, for
 *    batch sizes 1..11, 1, 2 and 5 threads, and each token alone;
 *  - within the float error bound of a double-precision dot:
 *    |y - sum| <= (cols / 8 + 5) * 2^-24 * sum |x w|. */
static inline void qc_check_matmul(const char *name, qc_matmul_fn mm, const void *layer, const float *wq, uint32_t rows,
                                   uint32_t cols, const int32_t *xperm)
{
    enum { NT = 11 };
    float *x = qc_random((size_t)NT * cols, 1.0f), *xg = malloc((size_t)NT * cols * 4);
    float *want = malloc((size_t)NT * rows * 4);
    for (uint32_t t = 0; t < NT; t++)
        for (uint32_t k = 0; k < cols; k++) xg[(size_t)t * cols + k] = x[(size_t)t * cols + (xperm ? (uint32_t)xperm[k] : k)];
    ra_weight w = {.type = RA_W_F32, .rows = rows, .cols = cols, .row_bytes = (size_t)cols * 4, .data = (uint8_t *)wq,
                   .borrowed = true};
    CHECK_OK(ra_cpu_matmul(NULL, &w, xg, NT, want));
    qc_check_batches(name, mm, layer, x, NT, rows, cols, want);
    double worst = 0;
    for (uint32_t t = 0; t < NT; t++)
        for (uint32_t r = 0; r < rows; r++) {
            double sum = 0, mag = 0;
            for (uint32_t k = 0; k < cols; k++) {
                double p = (double)xg[(size_t)t * cols + k] * wq[(size_t)r * cols + k];
                sum += p;
                mag += fabs(p);
            }
            double err = fabs(want[(size_t)t * rows + r] - sum), tol = (cols / 8 + 5) * 0x1p-24 * mag + 1e-30;
            if (err / tol > worst) worst = err / tol;
        }
    CHECK_MSG(worst <= 1.0, "%s %ux%u: error %.3g of the float bound", name, rows, cols, worst);
    free(x); free(xg); free(want);
}

/* A format's checkpoint entry points over an opaque layer and config. */
typedef struct {
    ra_status (*pack)(const void *cfg, const void *layer, ra_qtensors *out);
    ra_status (*unpack)(const void *cfg, const ra_qtensors *t, void *layer);
    ra_status (*dequantize)(const void *layer, float **out);
    void (*free)(void *layer);
} qc_format;

/* pack, unpack, dequantize == dequantize (n values, bitwise); packing the
 * unpacked layer again gives the same tensors. back: room for one layer. */
static inline void qc_check_round_trip(const char *name, const qc_format *f, const void *cfg, const void *layer, void *back,
                                       size_t n)
{
    ra_qtensors t = {0}, t2 = {0};
    float *a = NULL, *b = NULL;
    CHECK_OK(f->pack(cfg, layer, &t));
    CHECK_OK(f->unpack(cfg, &t, back));
    CHECK_OK(f->dequantize(layer, &a));
    CHECK_OK(f->dequantize(back, &b));
    CHECK_MSG(a && b && qc_same_bits(a, b, n), "%s: round trip changed the dequantized weights", name);
    CHECK_OK(f->pack(cfg, back, &t2));
    CHECK_MSG(qc_same_tensors(&t, &t2), "%s: packing the unpacked layer changed the tensors", name);
    f->free(back);
    ra_qtensors_free(&t);
    ra_qtensors_free(&t2);
    free(a);
    free(b);
}

static inline ra_status qc_intq_dequantize(const void *q, float **out) { return ra_intq_dequantize(q, out); }
static inline void qc_intq_free(void *q) { ra_intq_free(q); }

static inline ra_status qc_intq_matmul(ra_pool *p, const void *layer, const float *x, uint32_t n, float *y)
{
    return ra_intq_matmul(p, layer, x, n, y);
}

/* The intq contract: dequantize, then qc_check_matmul in column order. */
static inline void qc_check_intq_matmul(const char *name, const ra_intq *q)
{
    float *wq = NULL;
    CHECK_OK(ra_intq_dequantize(q, &wq));
    qc_check_matmul(name, qc_intq_matmul, q, wq, q->rows, q->cols, NULL);
    free(wq);
}

#endif
