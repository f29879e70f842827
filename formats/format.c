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
     "decoded in registers from their checkpoint's packing (kernels/quant.cu), Marlin's tile layout on f16/bf16 "
     "tensor cores (kernels/marlin.cu), FP8 W8A8 on the FP8 tensor cores (kernels/fp8_mma.cu); K slices reduced in fixed order, no atomics; batch-invariant by construction"},
    {"atomic", RA_BACKEND_CUDA, false,
     "the quantized formats' CUDA kernel with its K slices added by floating-point atomics, in the order the blocks "
     "finish, as split-K INT4 kernels in the field do (AutoAWQ, AutoGPTQ, Marlin's atomic-add mode)"},
    {"cublas", RA_BACKEND_CUDA, false, "cuBLAS GEMM (bf16 in, float32 out) with its default heuristics: the field's kernel"},
    {"cublas-bi", RA_BACKEND_CUDA, false,
     "cuBLASLt with one algorithm chosen per weight shape and kept for every batch size, split-K off"},
    {"cublaslt", RA_BACKEND_CUDA, false,
     "cuBLASLt's FP8 GEMM (E4M3 x E4M3, float32 out) on activations quantized as the CPU does, the scales applied by "
     "cuBLASLt (per token x per channel, or 128 / 128x128 blocks), its heuristic's algorithm per shape and batch size: "
     "the field's FP8 path"},
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
    {"q4_k_m", "llama.cpp's Q4_K_M mix: per tensor Q4_K or Q6_K as its quantize tool chooses (Q5_0 / Q8_0 where a "
               "row is not a multiple of 256), kept where the file has that type, else quantized by ggml's "
               "reference rules; int8-activation dot products", RA_DERIVE_MIX, {"cpu", "ggml-avx2", NULL}, NULL},
    {"f32", "every weight dequantized exactly to float32; float32 dot products", RA_DERIVE_F32, {"cpu", "ra", NULL}, NULL},
    {"bf16", "dequantized, rounded to bfloat16 (nearest even); on the CPU float32 activations, on the GPU bfloat16 "
             "activations into the matrix products", RA_DERIVE_BF16, {"cpu", "ra", "cublas", "cublas-bi", NULL}, NULL},
    /* Checkpoint formats: the decoder blocks' linear layers quantized (RTN from the bf16 weights unless the row
     * says GPTQ), embeddings, norms and lm_head in bf16 as their checkpoints keep them (docs/formats.md). */
    /* every row: the CPU reference and the CUDA kernels */
#define QG(...) RA_DERIVE_QUANT, {"cpu", "ra", "atomic", NULL}, &(const ra_qformat){__VA_ARGS__}
#define INT4(fam, how, sym_, act) QG(.family = fam, .method = how, .bits = 4, .group_size = 128, .sym = sym_, .act_order = act)
#define FP8(scheme, act)                                                                                              \
    RA_DERIVE_QUANT, {"cpu", "ra", "atomic", "cublaslt", NULL},                                                        \
        &(const ra_qformat){.family = RA_QF_FP8, .bits = 8, .fp8_scheme = scheme, .fp8_act = act}
    {"awq", "AutoAWQ GEMM, 4-bit, group 128, zero points, f16 scales", INT4(RA_QF_AWQ, RA_QMETHOD_RTN, false, false)},
    {"awq-cal", "AutoAWQ GEMM as above, calibrated: per-channel activation-aware scales folded into the norms and "
                "up_proj, weights clipped per group (src/quant/awq_calib.c)", INT4(RA_QF_AWQ, RA_QMETHOD_AWQ, false, false)},
    {"gptq", "GPTQ v1, 4-bit, group 128, symmetric, f16 scales (RTN)", INT4(RA_QF_GPTQ, RA_QMETHOD_RTN, true, false)},
    {"gptq-act", "GPTQ with act-order (desc_act, g_idx from the calibration Hessian's diagonal), RTN",
     INT4(RA_QF_GPTQ, RA_QMETHOD_RTN, true, true)},
    {"gptq-cal", "GPTQ calibrated on the calibration text (Hessian, damping 0.01, error feedback)",
     INT4(RA_QF_GPTQ, RA_QMETHOD_GPTQ, true, false)},
    {"gptq-cal-act", "GPTQ calibrated, with act-order", INT4(RA_QF_GPTQ, RA_QMETHOD_GPTQ, true, true)},
    {"w4a16", "compressed-tensors pack-quantized W4A16: 4-bit, group 128, symmetric, bf16 scales",
     INT4(RA_QF_W4A16, RA_QMETHOD_RTN, true, false)},
    {"marlin", "GPTQ 4-bit group 128 symmetric, repacked into Marlin's tile layout; Marlin's reduction order",
     QG(.family = RA_QF_MARLIN, .method = RA_QMETHOD_RTN, .bits = 4, .group_size = 128, .sym = true)},
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
    case RA_W_Q5_0: return "q5_0";
    case RA_W_Q4_K: return "q4_k";
    case RA_W_Q6_K: return "q6_k";
    case RA_W_QUANT: return "quantized layer";
    }
    return "?";
}

/* The GGML type whose blocks a weight type holds unchanged (floats: none). */
static uint32_t ggml_of_wtype(ra_wtype t)
{
    switch (t) {
    case RA_W_Q4_1: return RA_GGML_Q4_1;
    case RA_W_Q8_0: return RA_GGML_Q8_0;
    case RA_W_Q4_0: return RA_GGML_Q4_0;
    case RA_W_Q5_0: return RA_GGML_Q5_0;
    case RA_W_Q4_K: return RA_GGML_Q4_K;
    case RA_W_Q6_K: return RA_GGML_Q6_K;
    case RA_W_F32:
    case RA_W_BF16:
    case RA_W_QUANT: break;
    }
    return UINT32_MAX;
}

ra_status ra_wtype_row_bytes(ra_wtype t, uint32_t cols, size_t *bytes)
{
    switch (t) {
    case RA_W_F32: *bytes = (size_t)cols * 4; return RA_OK;
    case RA_W_BF16: *bytes = (size_t)cols * 2; return RA_OK;
    case RA_W_QUANT: break; /* not stored in rows */
    default: {
        uint64_t b;
        RA_TRY(ra_ggml_row_bytes(ggml_of_wtype(t), cols, &b));
        *bytes = (size_t)b;
        return RA_OK;
    }
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
    static const ra_wtype quantized[] = {RA_W_Q4_1, RA_W_Q8_0, RA_W_Q4_0, RA_W_Q5_0, RA_W_Q4_K, RA_W_Q6_K};
    for (size_t i = 0; i < sizeof quantized / sizeof quantized[0]; i++)
        if (ggml_of_wtype(quantized[i]) == ggml_type) {
            *t = quantized[i];
            return true;
        }
    return false;
}

/* llama.cpp's tensor_type_fallback: a 256-block type on a row it does not divide. */
static uint32_t fallback(uint32_t type, uint32_t cols)
{
    if (cols % ra_ggml_type_info_of(type)->block_elems == 0) return type;
    switch (type) {
    case RA_GGML_Q4_K: return RA_GGML_Q5_0;
    case RA_GGML_Q5_K: return RA_GGML_Q5_1;
    case RA_GGML_Q6_K: return RA_GGML_Q8_0;
    default: return type; /* refused later: the row does not fit its block */
    }
}

/* llama.cpp's use_more_bits (llama-quant.cpp): the first and last eighth of
 * the layers and every third one between get the larger type. */
static bool more_bits(uint32_t layer, uint32_t n)
{
    return layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2;
}

/* llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M on a dense Llama
 * without an importance matrix: the output matrix (or the embedding tied to
 * it) Q6_K, or Q8_0 when its rows are not a multiple of 256; attn_v and
 * ffn_down (v_proj, down_proj) Q6_K in use_more_bits layers; everything else
 * Q4_K. Names canonical (a model loading) or GGUF (quantize writing a file). */
static uint32_t q4_k_m_type(const ra_tensor_role *r, uint32_t cols)
{
    unsigned layer;
    int at = 0;
    const char *n = r->name;
    if (!strcmp(n, "lm_head.weight") || !strcmp(n, "output.weight") ||
        (r->tied && (!strcmp(n, "model.embed_tokens.weight") || !strcmp(n, "token_embd.weight"))))
        return cols % 256 ? RA_GGML_Q8_0 : RA_GGML_Q6_K;
    const bool hf = sscanf(n, "model.layers.%u.%n", &layer, &at) == 1 && at > 0;
    if (!hf && !(sscanf(n, "blk.%u.%n", &layer, &at) == 1 && at > 0)) return fallback(RA_GGML_Q4_K, cols);
    const bool v_or_down = hf ? !strcmp(n + at, "self_attn.v_proj.weight") || !strcmp(n + at, "mlp.down_proj.weight")
                              : !strcmp(n + at, "attn_v.weight") || !strcmp(n + at, "ffn_down.weight");
    return fallback(v_or_down && more_bits(layer, r->n_layers) ? RA_GGML_Q6_K : RA_GGML_Q4_K, cols);
}

uint32_t ra_format_tensor_type(const ra_format *f, const ra_tensor_role *role, uint32_t cols)
{
    if (f->derive == RA_DERIVE_MIX) return role ? q4_k_m_type(role, cols) : UINT32_MAX;
    if (f->derive != RA_DERIVE_GGML) return UINT32_MAX;
    static const uint32_t types[] = {RA_GGML_Q8_0, RA_GGML_Q4_0, RA_GGML_Q4_1};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(ra_ggml_type_info_of(types[i])->name, f->name)) return types[i];
    return UINT32_MAX;
}

ra_status ra_weight_from_ggml(const ra_format *f, const ra_tensor_role *role, uint32_t ggml_type, const uint8_t *data,
                              uint32_t rows, uint32_t cols, ra_weight *out)
{
    const uint32_t target = ra_format_tensor_type(f, role, cols);
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

    const bool quant = target != UINT32_MAX;
    ra_wtype t = f->derive == RA_DERIVE_BF16 ? RA_W_BF16 : RA_W_F32;
    if (quant && !wtype_of_ggml(target, &t))
        return ra_fail(RA_ERR_UNSUPPORTED, "format %s: no kernel for %s weights", f->name,
                       ra_ggml_type_info_of(target)->name);
    RA_TRY(alloc_weight(out, t, rows, cols));
    float *row = NULL;
    ra_status s = ra_calloc(&row, cols, sizeof *row);
    for (uint32_t r = 0; s == RA_OK && r < rows; r++) {
        s = ra_ggml_dequantize(ggml_type, data + (size_t)r * src_row, row, cols);
        if (s != RA_OK) break;
        if (quant) {
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
    default: return ra_ggml_dequantize(ggml_of_wtype(w->type), row, out, w->cols);
    }
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
