/* The formats and kernels tables. Each format row: name, how weights are
 * derived from the file, and the kernels that run it. The CPU kernels live
 * in src/backend/cpu/matmul.c, the CUDA ones in kernels/. */
#include "ra/format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ggml_types.h"
#include "ra/qformat.h"
#include "ra/util.h"

static const ra_kernel kernels[] = {
    {"cpu", RA_BACKEND_CPU, true, "CPU reference: fixed-order float32 dot products (8 lanes, no FMA), any thread count"},
    {"ggml-avx2", RA_BACKEND_CPU, true,
     "llama.cpp's CPU arithmetic as ggml computes it with AVX2 and FMA, one token per decode (int8 activation "
     "blocks with fp16 scales, fused multiply-adds, ggml's expf), in portable C; any thread count"},
    {"ra", RA_BACKEND_CUDA, true,
     "our CUDA kernels: f32 FMA dot products, bf16 tensor-core MMA with float32 accumulation, quantized weights "
     "decoded in registers from their checkpoint's packing (kernels/quant.cu); K slices reduced in fixed order, no "
     "atomics; batch-invariant by construction"},
    {"atomic", RA_BACKEND_CUDA, false,
     "the quantized formats' CUDA kernel with its K slices added by floating-point atomics, in the order the blocks "
     "finish, as split-K INT4 kernels in the field do (AutoAWQ, AutoGPTQ, Marlin's atomic-add mode)"},
    {"cublas", RA_BACKEND_CUDA, false, "cuBLAS GEMM (bf16 in, float32 out) with its default heuristics: the field's kernel"},
    {"cublas-bi", RA_BACKEND_CUDA, false,
     "cuBLASLt with one algorithm chosen per weight shape and kept for every batch size, split-K off"},
};

const ra_kernel *ra_kernel_find(const char *name)
{
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (!strcmp(kernels[i].name, name)) return &kernels[i];
    return NULL;
}

static const ra_format formats[] = {
    {"q4_1", "the GGUF file's own Q4_1 weights (Q8_0 embeddings as shipped); int8-activation block dot "
             "products in the style of ggml's CPU backend", RA_DERIVE_NATIVE, {"cpu", "ggml-avx2", NULL}, NULL},
    {"q8_0", "every weight in GGUF Q8_0: kept where the file has it, else quantized by ggml's reference rule "
             "(llama.cpp's quantize tool); int8-activation block dot products", RA_DERIVE_GGML, {"cpu", "ggml-avx2", NULL}, NULL},
    {"q4_0", "every weight in GGUF Q4_0: kept where the file has it, else quantized by ggml's reference rule; "
             "int8-activation block dot products", RA_DERIVE_GGML, {"cpu", NULL}, NULL},
    {"f32", "every weight dequantized exactly to float32; float32 dot products", RA_DERIVE_F32, {"cpu", "ra", NULL}, NULL},
    {"bf16", "dequantized, rounded to bfloat16 (nearest even); on the CPU float32 activations, on the GPU bfloat16 "
             "activations into the matrix products", RA_DERIVE_BF16, {"cpu", "ra", "cublas", "cublas-bi", NULL}, NULL},
    /* Checkpoint formats: the decoder blocks' linear layers quantized (RTN from the bf16 weights unless the row
     * says GPTQ), embeddings, norms and lm_head in bf16 as their checkpoints keep them (docs/formats.md). */
#define Q(...) RA_DERIVE_QUANT, {"cpu", NULL}, &(const ra_qformat){__VA_ARGS__}
    /* weight-only rows: the CUDA kernels too */
#define QG(...) RA_DERIVE_QUANT, {"cpu", "ra", "atomic", NULL}, &(const ra_qformat){__VA_ARGS__}
#define INT4(fam, how, sym_, act) QG(.family = fam, .method = how, .bits = 4, .group_size = 128, .sym = sym_, .act_order = act)
#define FP8(scheme, act) QG(.family = RA_QF_FP8, .bits = 8, .fp8_scheme = scheme, .fp8_act = act)
    {"awq", "AutoAWQ GEMM, 4-bit, group 128, zero points, f16 scales", INT4(RA_QF_AWQ, RA_QMETHOD_RTN, false, false)},
    {"gptq", "GPTQ v1, 4-bit, group 128, symmetric, f16 scales (RTN)", INT4(RA_QF_GPTQ, RA_QMETHOD_RTN, true, false)},
    {"gptq-act", "GPTQ with act-order (desc_act, g_idx from the calibration Hessian's diagonal), RTN",
     INT4(RA_QF_GPTQ, RA_QMETHOD_RTN, true, true)},
    {"gptq-cal", "GPTQ calibrated on the calibration text (Hessian, damping 0.01, error feedback)",
     INT4(RA_QF_GPTQ, RA_QMETHOD_GPTQ, true, false)},
    {"gptq-cal-act", "GPTQ calibrated, with act-order", INT4(RA_QF_GPTQ, RA_QMETHOD_GPTQ, true, true)},
    {"w4a16", "compressed-tensors pack-quantized W4A16: 4-bit, group 128, symmetric, bf16 scales",
     INT4(RA_QF_W4A16, RA_QMETHOD_RTN, true, false)},
    {"marlin", "GPTQ 4-bit group 128 symmetric, repacked into Marlin's tile layout; Marlin's reduction order",
     Q(.family = RA_QF_MARLIN, .method = RA_QMETHOD_RTN, .bits = 4, .group_size = 128, .sym = true)},
    {"fp8", "compressed-tensors float-quantized E4M3, per-channel bf16 scales, weight-only",
     QG(.family = RA_QF_FP8, .bits = 8, .fp8_scheme = RA_FP8_CHANNEL, .fp8_act = RA_FP8_ACT_NONE)},
    {"fp8-block", "FP8 E4M3, 128x128 block scales, activations quantized per 128-group (FP8_BLOCK, DeepSeek)",
     FP8(RA_FP8_BLOCK, RA_FP8_ACT_GROUP)},
    {"fp8-w8a8", "FP8 E4M3, per-channel scales, activations quantized per token (FP8_DYNAMIC)",
     FP8(RA_FP8_CHANNEL, RA_FP8_ACT_TOKEN)},
    {"nvfp4", "compressed-tensors nvfp4-pack-quantized: E2M1, E4M3 scale per 16, global scale; weight-only",
     QG(.family = RA_QF_NVFP4, .bits = 4, .group_size = 16)},
    {"mxfp4", "compressed-tensors mxfp4-pack-quantized: E2M1, E8M0 scale per 32; weight-only",
     QG(.family = RA_QF_MXFP4, .bits = 4, .group_size = 32)},
#undef FP8
#undef INT4
#undef QG
#undef Q
};

size_t ra_format_count(void) { return sizeof formats / sizeof formats[0]; }
const ra_format *ra_format_at(size_t i) { return i < ra_format_count() ? &formats[i] : NULL; }

const ra_format *ra_format_find(const char *name)
{
    for (size_t i = 0; i < ra_format_count(); i++)
        if (!strcmp(formats[i].name, name)) return &formats[i];
    return NULL;
}

bool ra_format_has_kernel(const ra_format *f, const ra_kernel *k)
{
    for (size_t i = 0; f->kernels[i]; i++)
        if (!strcmp(f->kernels[i], k->name)) return true;
    return false;
}

/* "a, b, c" of every format@kernel pair, for error messages. */
static void list_pairs(char *buf, size_t n)
{
    buf[0] = 0;
    for (size_t i = 0; i < ra_format_count(); i++)
        for (size_t j = 0; formats[i].kernels[j]; j++) {
            size_t used = strlen(buf);
            snprintf(buf + used, n - used, "%s%s@%s", used ? ", " : "", formats[i].name, formats[i].kernels[j]);
        }
}

ra_status ra_format_resolve(const char *spec, bool gpu, const ra_format **f, const ra_kernel **k)
{
    char name[64], known[512];
    const char *at = strchr(spec, '@');
    size_t len = at ? (size_t)(at - spec) : strlen(spec);
    list_pairs(known, sizeof known);
    if (len == 0 || len >= sizeof name) return ra_fail(RA_ERR_USAGE, "bad format '%s' (known: %s)", spec, known);
    memcpy(name, spec, len);
    name[len] = 0;
    *f = ra_format_find(name);
    if (!*f) return ra_fail(RA_ERR_USAGE, "unknown format '%s' (known: %s)", name, known);
    if (at) {
        *k = ra_kernel_find(at + 1);
        if (!*k || !ra_format_has_kernel(*f, *k))
            return ra_fail(RA_ERR_USAGE, "format %s has no kernel '%s' (known: %s)", name, at + 1, known);
        return RA_OK;
    }
    *k = ra_kernel_find((*f)->kernels[0]);
    for (size_t j = 0; gpu && (*f)->kernels[j]; j++) {
        const ra_kernel *c = ra_kernel_find((*f)->kernels[j]);
        if (c->backend == RA_BACKEND_CUDA) { *k = c; break; }
    }
    return RA_OK;
}

const char *ra_wtype_name(ra_wtype t)
{
    switch (t) {
    case RA_W_F32: return "f32";
    case RA_W_BF16: return "bf16";
    case RA_W_Q4_1: return "q4_1";
    case RA_W_Q8_0: return "q8_0";
    case RA_W_Q4_0: return "q4_0";
    case RA_W_QUANT: return "quantized layer";
    }
    return "?";
}

ra_status ra_wtype_row_bytes(ra_wtype t, uint32_t cols, size_t *bytes)
{
    switch (t) {
    case RA_W_F32: *bytes = (size_t)cols * 4; return RA_OK;
    case RA_W_BF16: *bytes = (size_t)cols * 2; return RA_OK;
    case RA_W_Q4_1:
    case RA_W_Q8_0:
    case RA_W_Q4_0:
        if (cols % 32) return ra_fail(RA_ERR_FORMAT, "%s row of %u is not a multiple of 32", ra_wtype_name(t), cols);
        *bytes = (size_t)cols / 32 *
                 (t == RA_W_Q4_1 ? sizeof(ra_block_q4_1) : t == RA_W_Q8_0 ? sizeof(ra_block_q8_0) : sizeof(ra_block_q4_0));
        return RA_OK;
    case RA_W_QUANT: break; /* not stored in rows */
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown weight type %d", (int)t);
}

static ra_status alloc_weight(ra_weight *w, ra_wtype t, uint32_t rows, uint32_t cols)
{
    memset(w, 0, sizeof *w);
    w->type = t;
    w->rows = rows;
    w->cols = cols;
    RA_TRY(ra_wtype_row_bytes(t, cols, &w->row_bytes));
    return ra_calloc(&w->data, rows, w->row_bytes);
}

/* The weight type that holds a GGML type's blocks unchanged, if any. */
static bool wtype_of_ggml(uint32_t ggml_type, ra_wtype *t)
{
    switch (ggml_type) {
    case RA_GGML_Q4_1: *t = RA_W_Q4_1; return true;
    case RA_GGML_Q8_0: *t = RA_W_Q8_0; return true;
    case RA_GGML_Q4_0: *t = RA_W_Q4_0; return true;
    default: return false;
    }
}

/* A RA_DERIVE_GGML format's GGML type: the one of the same name. */
static uint32_t quant_target(const ra_format *f)
{
    static const uint32_t types[] = {RA_GGML_Q8_0, RA_GGML_Q4_0, RA_GGML_Q4_1};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(ra_ggml_type_info_of(types[i])->name, f->name)) return types[i];
    return UINT32_MAX;
}

ra_status ra_weight_from_ggml(const ra_format *f, uint32_t ggml_type, const uint8_t *data, uint32_t rows,
                              uint32_t cols, ra_weight *out)
{
    const uint32_t target = f->derive == RA_DERIVE_GGML ? quant_target(f) : UINT32_MAX;
    const ra_ggml_type_info *ti = ra_ggml_type_info_of(ggml_type);
    if (!ti) return ra_fail(RA_ERR_UNSUPPORTED, "unknown GGML type %u", ggml_type);
    uint64_t src_row;
    RA_TRY(ra_ggml_row_bytes(ggml_type, cols, &src_row));

    /* Native: keep the stored blocks when we have a kernel for them; a derived
     * quantized format keeps the blocks already in its type. */
    ra_wtype kept;
    if ((f->derive == RA_DERIVE_NATIVE || ggml_type == target) &&
        wtype_of_ggml(ggml_type, &kept)) {
        RA_TRY(alloc_weight(out, kept, rows, cols));
        memcpy(out->data, data, (size_t)rows * out->row_bytes);
        return RA_OK;
    }
    if (f->derive == RA_DERIVE_NATIVE && ggml_type != RA_GGML_F32)
        return ra_fail(RA_ERR_UNSUPPORTED, "format %s has no kernel for %s weights", f->name, ti->name);

    ra_wtype t = f->derive == RA_DERIVE_BF16 ? RA_W_BF16 : RA_W_F32;
    if (f->derive == RA_DERIVE_GGML && !wtype_of_ggml(target, &t))
        return ra_fail(RA_ERR_INTERNAL, "format %s: no weight type for its ggml type", f->name);
    RA_TRY(alloc_weight(out, t, rows, cols));
    float *row = NULL;
    ra_status s = ra_calloc(&row, cols, sizeof *row);
    for (uint32_t r = 0; s == RA_OK && r < rows; r++) {
        s = ra_ggml_dequantize(ggml_type, data + (size_t)r * src_row, row, cols);
        if (s != RA_OK) break;
        if (f->derive == RA_DERIVE_GGML) {
            s = ra_ggml_quantize(target, row, out->data + (size_t)r * out->row_bytes, cols);
        } else if (t == RA_W_F32) {
            memcpy(out->data + (size_t)r * out->row_bytes, row, (size_t)cols * 4);
        } else {
            uint16_t *dst = (uint16_t *)(out->data + (size_t)r * out->row_bytes);
            for (uint32_t c = 0; c < cols; c++) dst[c] = ra_f32_to_bf16(row[c]);
        }
    }
    free(row);
    if (s != RA_OK) ra_weight_free(out);
    return s;
}

void ra_weight_free(ra_weight *w)
{
    if (!w->borrowed) free(w->data);
    w->data = NULL;
    if (w->q && !w->borrowed) ra_qlayer_free(w->q), free(w->q);
    w->q = NULL;
}

ra_status ra_weight_row_f32(const ra_weight *w, uint32_t r, float *out)
{
    if (w->type == RA_W_QUANT) return ra_qlayer_row_f32(w->q, r, out);
    const uint8_t *row = w->data + (size_t)r * w->row_bytes;
    switch (w->type) {
    case RA_W_F32: memcpy(out, row, (size_t)w->cols * 4); return RA_OK;
    case RA_W_BF16:
        for (uint32_t c = 0; c < w->cols; c++) out[c] = ra_bf16_to_f32(ra_le16(row + 2 * c));
        return RA_OK;
    case RA_W_Q4_1: return ra_ggml_dequantize(RA_GGML_Q4_1, row, out, w->cols);
    case RA_W_Q8_0: return ra_ggml_dequantize(RA_GGML_Q8_0, row, out, w->cols);
    case RA_W_Q4_0: return ra_ggml_dequantize(RA_GGML_Q4_0, row, out, w->cols);
    case RA_W_QUANT: break;
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown weight type");
}

ra_status ra_weight_to_f32(const ra_weight *w, float **out)
{
    RA_TRY(ra_calloc(out, (size_t)w->rows * w->cols, sizeof(float)));
    for (uint32_t r = 0; r < w->rows; r++) {
        ra_status s = ra_weight_row_f32(w, r, *out + (size_t)r * w->cols);
        if (s != RA_OK) { free(*out); *out = NULL; return s; }
    }
    return RA_OK;
}
