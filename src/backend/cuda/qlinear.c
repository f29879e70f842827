/* Quantized layers to the device (qlinear.h): the tensors a checkpoint holds,
 * as the writer packs them, uploaded as they are; only FP8's 16-bit scales are
 * widened to float32 (exactly) on the way. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"
#include "qlinear.h"
#include "ra/util.h"

/* Uploads n elements of size sz at host into d->buf[slot]. */
static ra_status put_raw(ra_cuda_qlayer *d, int slot, const void *host, size_t n, size_t sz, const char *what)
{
    RA_TRY(ra_cuda_alloc(&d->buf[slot], n, sz, what));
    CU_TRY(cudaMemcpy(d->buf[slot], host, n * sz, cudaMemcpyHostToDevice), what);
    d->bytes += n * sz;
    return RA_OK;
}

/* Uploads tensor `suffix` of t into d->buf[slot]; *dev gets the pointer. */
static ra_status put(ra_cuda_qlayer *d, int slot, const ra_qtensors *t, const char *suffix, const void **dev)
{
    const ra_qtensor *x = ra_qtensors_find(t, suffix);
    if (!x) return ra_fail(RA_ERR_INTERNAL, "quantized layer: tensor %s missing", suffix);
    RA_TRY(put_raw(d, slot, x->data, x->nbytes, 1, suffix));
    *dev = d->buf[slot];
    return RA_OK;
}

static bool has(const ra_qtensors *t, const char *suffix) { return ra_qtensors_find(t, suffix) != NULL; }

static ra_status upload_int4(const ra_qformat *f, const ra_qlayer *q, const ra_qtensors *t, ra_cuda_qlayer *d)
{
    ra_qweight *w = &d->w;
    const ra_intq *iq = &q->u.intq;
    if (iq->bits != 4) return ra_fail(RA_ERR_UNSUPPORTED, "GPU kernels take 4-bit integer layers, not %u-bit", iq->bits);
    w->group = (int)iq->group_size;
    const char *wn = f->family == RA_QF_W4A16 ? ".weight_packed" : ".qweight";
    const char *sn = f->family == RA_QF_W4A16 ? ".weight_scale" : ".scales";
    const char *zn = f->family == RA_QF_W4A16 ? ".weight_zero_point" : ".qzeros";
    const char *gn = f->family == RA_QF_W4A16 ? ".weight_g_idx" : ".g_idx";
    w->kind = f->family == RA_QF_GPTQ ? RA_Q_GPTQ : f->family == RA_QF_AWQ ? RA_Q_AWQ : RA_Q_W4A16;
    w->zero_offset = f->family == RA_QF_GPTQ; /* ra_qformat_pack writes GPTQ v1: zero - 1 */
    w->scale_bf16 = ra_qtensors_find(t, sn) && ra_qtensors_find(t, sn)->dtype == RA_QT_BF16;
    RA_TRY(put(d, 0, t, wn, (const void **)&w->qweight));
    RA_TRY(put(d, 1, t, sn, (const void **)&w->scales16));
    if (has(t, zn)) RA_TRY(put(d, 2, t, zn, (const void **)&w->qzeros));
    /* GPTQ always writes g_idx; without act-order it is k / group and the kernel computes it. */
    if (iq->g_idx && has(t, gn)) RA_TRY(put(d, 3, t, gn, (const void **)&w->g_idx));
    return RA_OK;
}

static ra_status upload_fp8(const ra_qformat *f, ra_fp8_act act, const ra_qtensors *t, ra_cuda_qlayer *d)
{
    ra_qweight *w = &d->w;
    const ra_qtensor *sc = ra_qtensors_find(t, ".weight_scale");
    if (!sc) return ra_fail(RA_ERR_INTERNAL, "fp8 layer: .weight_scale missing");
    ra_scale_dtype dt;
    RA_TRY(ra_scale_dtype_of(sc, "fp8", &dt));
    const size_t n = (size_t)(sc->nbytes / ra_qt_dtype_size(sc->dtype));
    float *host;
    RA_TRY(ra_calloc(&host, n, sizeof *host));
    for (size_t i = 0; i < n; i++) host[i] = ra_scale_load(sc->data, i, dt);
    ra_status s = ra_cuda_alloc(&d->buf[1], n, sizeof(float), "fp8 scales");
    if (s == RA_OK) s = ra_cuda_check(cudaMemcpy(d->buf[1], host, n * sizeof(float), cudaMemcpyHostToDevice), "fp8 scales");
    free(host);
    RA_TRY(s);
    d->bytes += n * sizeof(float);
    w->kind = RA_Q_FP8;
    w->fscales = d->buf[1];
    const int block = f->fp8_scheme == RA_FP8_BLOCK;
    w->block_rows = block ? RA_FP8_BLOCK_SIZE : f->fp8_scheme == RA_FP8_CHANNEL ? 1 : w->n;
    w->block_cols = block ? RA_FP8_BLOCK_SIZE : w->k;
    w->scale_cols = block ? (w->k + RA_FP8_BLOCK_SIZE - 1) / RA_FP8_BLOCK_SIZE : 1;
    w->act = act == RA_FP8_ACT_TOKEN ? RA_QACT_TOKEN : act == RA_FP8_ACT_GROUP ? RA_QACT_GROUP : RA_QACT_NONE;
    w->seg = act == RA_FP8_ACT_GROUP || block ? RA_FP8_BLOCK_SIZE : w->k; /* the CPU's segments (formats/fp8.c) */
    return put(d, 0, t, ".weight", (const void **)&w->codes);
}

static ra_status upload_fp4(const ra_qformat *f, const ra_qlayer *q, const ra_qtensors *t, ra_cuda_qlayer *d)
{
    ra_qweight *w = &d->w;
    w->kind = f->family == RA_QF_NVFP4 ? RA_Q_NVFP4 : RA_Q_MXFP4;
    if (w->kind == RA_Q_NVFP4) w->global_scale = q->u.nvfp4.global_scale;
    RA_TRY(put(d, 0, t, ".weight_packed", (const void **)&w->codes));
    return put(d, 1, t, ".weight_scale", (const void **)&w->bscales);
}

/* Marlin: the repacked layer as it is in memory (vLLM's layout after its
 * repack at load), for kernels/marlin.cu. */
static ra_status upload_marlin(const ra_marlin *m, ra_cuda_qlayer *d)
{
    ra_qweight *w = &d->w;
    if (m->rows % 64 || m->cols % 16)
        return ra_fail(RA_ERR_UNSUPPORTED, "marlin@ra needs N %% 64 == 0 and K %% 16 == 0 (%u x %u)", m->rows, m->cols);
    for (uint32_t k = 0; m->g_idx && k < m->cols; k++) /* a 16-row tile never straddles two groups */
        if (m->g_idx[k] != m->g_idx[k - k % 16])
            return ra_fail(RA_ERR_UNSUPPORTED, "marlin@ra needs act-order groups of a multiple of 16 rows");
    w->kind = RA_Q_MARLIN;
    w->n = (int)m->rows, w->k = (int)m->cols;
    w->group = (int)m->group_size;
    w->scale_bf16 = m->scale_dtype == RA_SCALE_BF16;
    const size_t K = m->cols, N = m->rows;
    RA_TRY(put_raw(d, 0, m->qweight, K / 16 * 2 * N, 4, "marlin qweight"));
    w->qweight = d->buf[0];
    RA_TRY(put_raw(d, 1, m->scales, (size_t)m->n_groups * N, 2, "marlin scales"));
    w->scales16 = d->buf[1];
    if (m->zeros) RA_TRY(put_raw(d, 2, m->zeros, (size_t)m->n_groups * N / 8, 4, "marlin zeros"));
    w->qzeros = d->buf[2];
    if (m->g_idx) RA_TRY(put_raw(d, 3, m->g_idx, K, 4, "marlin g_idx"));
    w->g_idx = d->buf[3];
    if (m->perm) RA_TRY(put_raw(d, 4, m->perm, K, 4, "marlin perm"));
    w->perm = d->buf[4];
    return RA_OK;
}

ra_status ra_cuda_qlayer_upload(const ra_qformat *f, const ra_qlayer *q, ra_cuda_qlayer *out)
{
    memset(out, 0, sizeof *out);
    if (f->family == RA_QF_MARLIN) {
        if (q->kind != RA_QL_MARLIN) return ra_fail(RA_ERR_INTERNAL, "marlin row without a Marlin layer");
        ra_status s = upload_marlin(&q->u.marlin, out);
        if (s != RA_OK) ra_cuda_qlayer_free(out);
        return s;
    }
    out->w.n = (int)ra_qlayer_rows(q);
    out->w.k = (int)ra_qlayer_cols(q);
    if (out->w.n % 8 || out->w.k % 8)
        return ra_fail(RA_ERR_UNSUPPORTED, "GPU quantized kernels need N and K multiples of 8 (%d x %d)", out->w.n, out->w.k);
    ra_qtensors t = {0};
    RA_TRY(ra_qformat_pack(f, q, &t));
    ra_status s;
    switch (f->family) {
    case RA_QF_FP8: s = upload_fp8(f, q->act, &t, out); break;
    case RA_QF_NVFP4:
    case RA_QF_MXFP4: s = upload_fp4(f, q, &t, out); break;
    default: s = upload_int4(f, q, &t, out); break;
    }
    ra_qtensors_free(&t);
    if (s != RA_OK) ra_cuda_qlayer_free(out);
    return s;
}

void ra_cuda_qlayer_free(ra_cuda_qlayer *d)
{
    for (size_t i = 0; i < sizeof d->buf / sizeof d->buf[0]; i++) cudaFree(d->buf[i]);
    memset(d, 0, sizeof *d);
}
