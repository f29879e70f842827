/* AWQ calibrated (calib.h): AutoAWQ's two searches on one decoder block's
 * float weights, before they are rounded to nearest by AutoAWQ's rule.
 *
 * 1. Scales. For each group of linears that share an input (q/k/v, gate/up,
 *    down) and a per-channel activation magnitude m_k (the RMS over the
 *    calibration tokens), s_k = m_k^a normalized by sqrt(max s * min s), for
 *    a = 0, 1/20, ..., 19/20; the a whose quantized W diag(s), multiplied back
 *    by diag(1/s), is nearest W wins. The 1/s goes into the op before: the
 *    RMSNorm weights (rounded to bf16 as the checkpoint stores them, W scaled
 *    by what that rounding left) and up_proj's rows for down_proj. o_proj is
 *    not scaled: its input comes from v_proj only through attention, and
 *    with grouped KV heads the shapes do not match (AutoAWQ skips it too).
 * 2. Clipping. Per row and group of v, o, gate, up and down (AutoAWQ leaves
 *    q and k alone), the largest |w| is shrunk by 1, 0.95, ..., 0.55 and the
 *    weights clamped to it; the shrink that quantizes nearest wins.
 *
 * "Nearest" weighs each input channel by its mean square activation, the
 * diagonal of the calibration Hessian: sum_n sum_k h_k (W'_nk - W_nk)^2, the
 * expected squared output error when channels are uncorrelated. AutoAWQ
 * measures the block's actual outputs instead; this keeps memory at the
 * Hessian diagonals and time at a few quantizations per layer. a = 0 and a
 * shrink of 1 are plain RTN, so the loss is never above RTN's. Every loop
 * runs in a fixed order on one thread: the same bytes on any thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "ra/awq.h"
#include "ra/util.h"

#define ALPHA_STEPS 20
#define CLIP_STEPS 10

static ra_intq_params awq_params(const ra_qformat *f)
{
    return (ra_intq_params){.bits = 4, .group_size = (uint32_t)f->group_size, .scale_dtype = RA_SCALE_F16};
}

/* sum_k h_k (deq(W diag(s))_nk / s_k - W_nk)^2 over the linears ws. */
static ra_status scaled_loss(const ra_qformat *f, ra_weight *const *ws, int nw, const double *h, const float *s,
                             double *loss)
{
    *loss = 0;
    for (int i = 0; i < nw; i++) {
        const ra_weight *w = ws[i];
        const float *src = (const float *)w->data;
        const size_t R = w->rows, K = w->cols;
        float *tmp = NULL, *deq = NULL;
        ra_intq q = {0};
        ra_status st = ra_calloc(&tmp, R * K, sizeof *tmp);
        for (size_t j = 0; st == RA_OK && j < R * K; j++) tmp[j] = src[j] * s[j % K];
        if (st == RA_OK) st = ra_awq_quantize(tmp, (uint32_t)R, (uint32_t)K, (uint32_t)f->group_size, &q);
        if (st == RA_OK) st = ra_intq_dequantize(&q, &deq);
        for (size_t j = 0; st == RA_OK && j < R * K; j++) {
            double e = (double)(deq[j] / s[j % K]) - src[j];
            *loss += h[j % K] * e * e;
        }
        ra_intq_free(&q);
        free(tmp);
        free(deq);
        RA_TRY(st);
    }
    return RA_OK;
}

/* The best scales for the linears ws sharing an input of mean squares h[K]. */
static ra_status search_scales(const ra_qformat *f, ra_weight *const *ws, int nw, const double *h, uint32_t K, float *best)
{
    float *s = NULL;
    RA_TRY(ra_calloc(&s, K, sizeof *s));
    double best_loss = INFINITY;
    ra_status st = RA_OK;
    for (int a = 0; a < ALPHA_STEPS && st == RA_OK; a++) {
        const double alpha = (double)a / ALPHA_STEPS;
        double lo = INFINITY, hi = 0;
        for (uint32_t k = 0; k < K; k++) {
            double v = pow(sqrt(h[k]), alpha);
            v = v < 1e-4 ? 1e-4 : v;
            s[k] = (float)v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        const double norm = sqrt(lo * hi);
        for (uint32_t k = 0; k < K; k++) s[k] = (float)(s[k] / norm);
        double loss;
        st = scaled_loss(f, ws, nw, h, s, &loss);
        if (st == RA_OK && loss < best_loss) {
            best_loss = loss;
            memcpy(best, s, K * sizeof *s);
        }
    }
    free(s);
    return st;
}

static void scale_columns(ra_weight *w, const float *s)
{
    float *d = (float *)w->data;
    for (size_t j = 0; j < (size_t)w->rows * w->cols; j++) d[j] *= s[j % w->cols];
}

/* 1/s into the RMSNorm weight g (bf16, as stored); s becomes what the rounding left, g / g'. */
static void fold_into_norm(float *g, float *s, uint32_t K)
{
    for (uint32_t k = 0; k < K; k++) {
        float g2 = ra_bf16_to_f32(ra_f32_to_bf16(g[k] / s[k]));
        if (g2 == 0 || !isfinite(g2) || !isfinite(g[k] / g2)) {
            s[k] = 1;
            continue;
        }
        s[k] = g[k] / g2;
        g[k] = g2;
    }
}

/* Clamps each row-group of w to the shrink of its largest |w| that quantizes
 * nearest, for an input of mean squares h (divided by s^2 when w was scaled by s). */
static ra_status clip(const ra_qformat *f, ra_weight *w, const double *h, const float *s)
{
    const ra_intq_params p = awq_params(f);
    const uint32_t K = w->cols, G = p.group_size;
    float vals[G], cut[G];
    uint8_t codes[G];
    for (uint32_t n = 0; n < w->rows; n++) {
        float *row = (float *)w->data + (size_t)n * K;
        for (uint32_t g0 = 0; g0 < K; g0 += G) {
            memcpy(vals, row + g0, G * sizeof *vals);
            float amax = 0;
            for (uint32_t i = 0; i < G; i++) amax = fabsf(vals[i]) > amax ? fabsf(vals[i]) : amax;
            double best = INFINITY;
            float best_m = amax;
            for (int c = 0; c < CLIP_STEPS; c++) {
                const float m = amax * (1.0f - 0.05f * (float)c);
                for (uint32_t i = 0; i < G; i++) cut[i] = vals[i] > m ? m : vals[i] < -m ? -m : vals[i];
                float scale;
                uint16_t zero;
                RA_TRY(ra_awq_group(cut, G, &p, codes, &scale, &zero));
                double err = 0;
                for (uint32_t i = 0; i < G; i++) {
                    const uint32_t k = g0 + i;
                    double e = (double)(((float)codes[i] - (float)zero) * scale) - vals[i];
                    err += h[k] / (s ? (double)s[k] * s[k] : 1.0) * e * e;
                }
                if (err < best) best = err, best_m = m;
            }
            for (uint32_t i = 0; i < G; i++) row[g0 + i] = vals[i] > best_m ? best_m : vals[i] < -best_m ? -best_m : vals[i];
        }
    }
    return RA_OK;
}

ra_status ra_awq_calibrate_block(ra_calib *cb, const ra_qformat *f, ra_layer *L)
{
    const double *h[7];
    uint32_t K[7];
    for (int i = 0; i < 7; i++) RA_TRY(ra_calib_mean_squares(cb, (uint32_t)i, &h[i], &K[i]));
    if (f->group_size <= 0) return ra_fail(RA_ERR_UNSUPPORTED, "awq: group_size %d", f->group_size);
    float *s_qkv = NULL, *s_gu = NULL, *s_down = NULL;
    ra_status st = ra_calloc(&s_qkv, K[0], sizeof(float));
    if (st == RA_OK) st = ra_calloc(&s_gu, K[4], sizeof(float));
    if (st == RA_OK) st = ra_calloc(&s_down, K[6], sizeof(float));
    ra_weight *qkv[3] = {&L->wq, &L->wk, &L->wv}, *gu[2] = {&L->w_gate, &L->w_up};
    if (st == RA_OK) st = search_scales(f, qkv, 3, h[0], K[0], s_qkv);
    if (st == RA_OK) st = search_scales(f, gu, 2, h[4], K[4], s_gu);
    if (st == RA_OK) st = search_scales(f, &(ra_weight *){&L->w_down}, 1, h[6], K[6], s_down);
    if (st == RA_OK) {
        fold_into_norm((float *)L->attn_norm.data, s_qkv, K[0]);
        for (int i = 0; i < 3; i++) scale_columns(qkv[i], s_qkv);
        fold_into_norm((float *)L->ffn_norm.data, s_gu, K[4]);
        for (int i = 0; i < 2; i++) scale_columns(gu[i], s_gu);
        float *up = (float *)L->w_up.data; /* up_proj's row k feeds down_proj's column k */
        for (size_t j = 0; j < (size_t)L->w_up.rows * L->w_up.cols; j++) up[j] /= s_down[j / L->w_up.cols];
        scale_columns(&L->w_down, s_down);
    }
    if (st == RA_OK) st = clip(f, &L->wv, h[2], s_qkv);
    if (st == RA_OK) st = clip(f, &L->wo, h[3], NULL);
    if (st == RA_OK) st = clip(f, &L->w_gate, h[4], s_gu);
    if (st == RA_OK) st = clip(f, &L->w_up, h[5], s_gu);
    if (st == RA_OK) st = clip(f, &L->w_down, h[6], s_down);
    free(s_qkv), free(s_gu), free(s_down);
    return st;
}
