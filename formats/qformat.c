/* The quantized rows of the traits table tied to their checkpoint layouts
 * (include/ra/qformat.h). Derived checkpoints are bf16 models: scales stored
 * "in the model's dtype" (compressed-tensors) are bf16; AutoAWQ and GPTQ
 * store f16 scales whatever the model. */
#include "ra/qformat.h"

#include <string.h>

#include "ra/format.h"

#include "ra/awq.h"
#include "ra/gptq.h"
#include "ra/w4a16.h"

static const char *const family_names[] = {"awq", "gptq", "w4a16", "marlin", "fp8", "nvfp4", "mxfp4"};

const char *ra_qfamily_name(ra_qfamily f) { return (unsigned)f <= RA_QF_MXFP4 ? family_names[f] : "?"; }

int32_t ra_qformat_fit_group(ra_qformat *f, uint32_t dim, uint32_t q_dim, uint32_t ffn_dim)
{
    bool integer = f->family == RA_QF_AWQ || f->family == RA_QF_GPTQ || f->family == RA_QF_W4A16 || f->family == RA_QF_MARLIN;
    if (!integer || f->group_size <= 0) return integer ? f->group_size : 0;
    uint32_t g = (uint32_t)f->group_size;
    while (g > 16 && g % 2 == 0 && (dim % g || q_dim % g || ffn_dim % g)) g /= 2;
    f->group_size = (int32_t)g;
    return f->group_size;
}

static ra_gptq_config gptq_config(const ra_qformat *f, ra_gptq_zeros zeros)
{
    return (ra_gptq_config){f->bits, f->group_size, f->sym, zeros};
}

ra_status ra_qformat_from_intq(const ra_qformat *f, ra_intq *q, ra_qlayer *out)
{
    memset(out, 0, sizeof *out);
    if (f->family != RA_QF_MARLIN) {
        out->kind = RA_QL_INTQ;
        out->u.intq = *q;
        memset(q, 0, sizeof *q);
        return RA_OK;
    }
    out->kind = RA_QL_MARLIN;
    ra_status s = ra_marlin_from_intq(q, &out->u.marlin);
    ra_intq_free(q);
    return s;
}

ra_status ra_qformat_quantize(const ra_qformat *f, const float *w, uint32_t rows, uint32_t cols, const int32_t *perm,
                              ra_qlayer *out)
{
    memset(out, 0, sizeof *out);
    ra_intq q;
    switch (f->family) {
    case RA_QF_AWQ:
        if (f->group_size <= 0) return ra_fail(RA_ERR_USAGE, "awq needs a positive group size");
        RA_TRY(ra_awq_quantize(w, rows, cols, (uint32_t)f->group_size, &q));
        return ra_qformat_from_intq(f, &q, out);
    case RA_QF_GPTQ:
    case RA_QF_MARLIN: {
        ra_gptq_config c = gptq_config(f, RA_GPTQ_V1);
        RA_TRY(ra_gptq_quantize(w, rows, cols, &c, perm, &q));
        return ra_qformat_from_intq(f, &q, out);
    }
    case RA_QF_W4A16: {
        ra_w4a16_config c = {f->bits, f->group_size, f->sym, RA_SCALE_BF16};
        RA_TRY(ra_w4a16_quantize(w, rows, cols, &c, perm, &q));
        return ra_qformat_from_intq(f, &q, out);
    }
    case RA_QF_FP8:
        out->kind = RA_QL_FP8;
        out->act = f->fp8_act;
        return ra_fp8_quantize(w, rows, cols, f->fp8_scheme, RA_SCALE_BF16, &out->u.fp8);
    case RA_QF_NVFP4:
        out->kind = RA_QL_NVFP4;
        return ra_nvfp4_quantize(w, rows, cols, &out->u.nvfp4);
    case RA_QF_MXFP4:
        out->kind = RA_QL_MXFP4;
        return ra_mxfp4_quantize(w, rows, cols, RA_MX_SCALE_EVEN, &out->u.mxfp4);
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown quantized family %d", (int)f->family);
}

ra_status ra_qformat_pack(const ra_qformat *f, const ra_qlayer *q, ra_qtensors *out)
{
    switch (f->family) {
    case RA_QF_AWQ: return ra_awq_pack(&q->u.intq, out);
    case RA_QF_GPTQ: return ra_gptq_pack(&q->u.intq, RA_GPTQ_V1, out);
    case RA_QF_W4A16: return ra_w4a16_pack(&q->u.intq, f->sym, out);
    case RA_QF_MARLIN: {
        ra_intq src;
        RA_TRY(ra_marlin_to_intq(&q->u.marlin, &src));
        ra_status s = ra_gptq_pack(&src, RA_GPTQ_V1, out);
        ra_intq_free(&src);
        return s;
    }
    case RA_QF_FP8: return ra_fp8_pack(&q->u.fp8, RA_FP8_NAMES_CT, out);
    case RA_QF_NVFP4: return ra_nvfp4_pack(&q->u.nvfp4, out);
    case RA_QF_MXFP4: return ra_mxfp4_pack(&q->u.mxfp4, RA_MXFP4_NAMES_CT, out);
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown quantized family %d", (int)f->family);
}

/* compressed-tensors' strategy names as ours. */
static ra_status fp8_of(const ra_quant_config *qc, ra_qformat *out)
{
    const ra_quant_args *w = &qc->weights, *in = &qc->input;
    if (!strcmp(w->strategy, "channel")) out->fp8_scheme = RA_FP8_CHANNEL;
    else if (!strcmp(w->strategy, "block") && w->block[0] == RA_FP8_BLOCK_SIZE && w->block[1] == RA_FP8_BLOCK_SIZE)
        out->fp8_scheme = RA_FP8_BLOCK;
    else if (!strcmp(w->strategy, "tensor")) out->fp8_scheme = RA_FP8_TENSOR;
    else return ra_fail(RA_ERR_UNSUPPORTED, "FP8 weights with strategy %s (blocks %ux%u) are not supported", w->strategy,
                        w->block[0], w->block[1]);
    out->fp8_act = RA_FP8_ACT_NONE;
    if (in->present) {
        if (!in->dynamic) return ra_fail(RA_ERR_UNSUPPORTED, "FP8 with static activation scales is not supported");
        if (!strcmp(in->strategy, "token")) out->fp8_act = RA_FP8_ACT_TOKEN;
        else if (!strcmp(in->strategy, "group") && (in->group_size == RA_FP8_BLOCK_SIZE || qc->method == RA_QUANT_FP8))
            out->fp8_act = RA_FP8_ACT_GROUP;
        else return ra_fail(RA_ERR_UNSUPPORTED, "FP8 activations with strategy %s are not supported", in->strategy);
    }
    return RA_OK;
}

ra_status ra_qformat_of_checkpoint(const ra_quant_config *qc, ra_qformat *out)
{
    memset(out, 0, sizeof *out);
    const ra_quant_args *w = &qc->weights;
    out->bits = w->num_bits;
    out->group_size = w->group_size;
    out->sym = w->symmetric;
    const char *f = qc->format;
    if (!strcmp(f, "awq")) {
        out->family = RA_QF_AWQ;
        out->sym = !qc->zero_point;
    } else if (!strcmp(f, "gptq")) {
        out->family = RA_QF_GPTQ;
        out->act_order = qc->desc_act;
    } else if (!strcmp(f, "w4a16")) {
        out->family = RA_QF_W4A16;
        if (!strcmp(w->strategy, "channel")) out->group_size = -1;
        else if (strcmp(w->strategy, "group"))
            return ra_fail(RA_ERR_UNSUPPORTED, "pack-quantized weights with strategy %s are not supported", w->strategy);
        out->act_order = !strcmp(w->actorder, "group");
    } else if (!strcmp(f, "fp8")) {
        out->family = RA_QF_FP8;
        if (qc->method == RA_QUANT_FP8 && !w->block[0])
            return ra_fail(RA_ERR_UNSUPPORTED, "fine-grained FP8 without weight_block_size is not supported");
        RA_TRY(fp8_of(qc, out));
    } else if (!strcmp(f, "nvfp4") && qc->method == RA_QUANT_COMPRESSED) {
        out->family = RA_QF_NVFP4;
    } else if (!strcmp(f, "mxfp4") && qc->method == RA_QUANT_COMPRESSED) {
        out->family = RA_QF_MXFP4;
    } else {
        return ra_fail(RA_ERR_UNSUPPORTED, "no format of ours holds this checkpoint (%s)", qc->summary);
    }
    return RA_OK;
}

bool ra_qformat_can_load(const ra_qformat *f, const ra_qformat *ck)
{
    if (f->family == RA_QF_MARLIN)
        return ck->bits == 4 && (ck->family == RA_QF_AWQ || ck->family == RA_QF_GPTQ || ck->family == RA_QF_W4A16);
    if (f->family != ck->family) return false;
    return f->family != RA_QF_FP8 || (f->fp8_scheme == ck->fp8_scheme && f->fp8_act == ck->fp8_act);
}

const ra_format *ra_qformat_row_for(const ra_qformat *ck)
{
    for (size_t i = 0; i < ra_format_count(); i++) {
        const ra_format *f = ra_format_at(i);
        if (f->quant && f->quant->family == ck->family && ra_qformat_can_load(f->quant, ck) &&
            f->quant->act_order == ck->act_order)
            return f;
    }
    return NULL;
}

const char *const *ra_qformat_suffixes(ra_qfamily f)
{
    static const char *const gptq[] = {".qweight", ".qzeros", ".scales", ".g_idx", NULL};
    static const char *const w4a16[] = {".weight_packed", ".weight_scale", ".weight_zero_point", ".weight_g_idx",
                                        ".weight_shape", NULL};
    static const char *const fp8[] = {".weight", ".weight_scale", ".weight_scale_inv", NULL};
    static const char *const nvfp4[] = {".weight_packed", ".weight_scale", ".weight_global_scale", NULL};
    switch (f) {
    case RA_QF_AWQ:
    case RA_QF_GPTQ:
    case RA_QF_MARLIN: return gptq; /* AWQ has no g_idx: absent, never looked at */
    case RA_QF_W4A16: return w4a16;
    case RA_QF_FP8: return fp8;
    case RA_QF_NVFP4:
    case RA_QF_MXFP4: return nvfp4;
    }
    return gptq;
}

ra_status ra_qformat_unpack(const ra_qformat *f, const ra_qformat *ck, const ra_quant_config *qc, const ra_qtensors *t,
                            ra_qlayer *out)
{
    memset(out, 0, sizeof *out);
    ra_intq q;
    switch (ck->family) {
    case RA_QF_AWQ:
        if (ck->group_size <= 0) return ra_fail(RA_ERR_UNSUPPORTED, "awq: group_size %d", ck->group_size);
        RA_TRY(ra_awq_unpack(t, (uint32_t)ck->group_size, &q));
        return ra_qformat_from_intq(f, &q, out);
    case RA_QF_GPTQ:
    case RA_QF_MARLIN: {
        ra_gptq_config c = gptq_config(ck, !strcmp(qc->layout, "gptq_v2") ? RA_GPTQ_V2 : RA_GPTQ_V1);
        RA_TRY(ra_gptq_unpack(t, &c, &q));
        return ra_qformat_from_intq(f, &q, out);
    }
    case RA_QF_W4A16: {
        ra_w4a16_config c = {ck->bits, ck->group_size, ck->sym, RA_SCALE_BF16};
        RA_TRY(ra_w4a16_unpack(t, &c, &q));
        return ra_qformat_from_intq(f, &q, out);
    }
    case RA_QF_FP8:
        out->kind = RA_QL_FP8;
        out->act = ck->fp8_act;
        return ra_fp8_unpack(t, qc->method == RA_QUANT_FP8 ? RA_FP8_NAMES_DEEPSEEK : RA_FP8_NAMES_CT, ck->fp8_scheme,
                             &out->u.fp8);
    case RA_QF_NVFP4:
        out->kind = RA_QL_NVFP4;
        return ra_nvfp4_unpack(t, &out->u.nvfp4);
    case RA_QF_MXFP4:
        out->kind = RA_QL_MXFP4;
        return ra_mxfp4_unpack(t, RA_MXFP4_NAMES_CT, &out->u.mxfp4);
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown quantized family %d", (int)ck->family);
}
