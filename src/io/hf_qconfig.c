/* config.json's quantization_config for the checkpoints we write, in the
 * shape each tool writes it (keys in sorted order, as transformers' config
 * writer sorts them): AutoAWQ's to_transformers_dict, GPTQModel's
 * QuantizeConfig.to_dict, compressed-tensors' QuantizationConfig with one
 * config group targeting Linear, as ModelCompressor.update_config writes it
 * (tools/ct_check.py compares ours with the one compressed-tensors builds
 * from its presets W4A16, FP8_DYNAMIC, FP8_BLOCK, NVFP4A16, MXFP4A16). */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "ra/qformat.h"
#include "ra/version.h"

static void add_awq(cJSON *o, const ra_qformat *f)
{
    cJSON_AddNumberToObject(o, "bits", f->bits);
    cJSON_AddNumberToObject(o, "group_size", f->group_size);
    cJSON_AddNullToObject(o, "modules_to_not_convert");
    cJSON_AddStringToObject(o, "quant_method", "awq");
    cJSON_AddStringToObject(o, "version", "gemm");
    cJSON_AddBoolToObject(o, "zero_point", !f->sym);
}

static void add_gptq(cJSON *o, const ra_qformat *f)
{
    cJSON_AddNumberToObject(o, "bits", f->bits);
    cJSON_AddStringToObject(o, "checkpoint_format", "gptq");
    cJSON_AddBoolToObject(o, "desc_act", f->act_order);
    cJSON_AddNumberToObject(o, "group_size", f->group_size);
    cJSON_AddBoolToObject(o, "lm_head", false);
    cJSON *meta = cJSON_AddObjectToObject(o, "meta");
    cJSON_AddNumberToObject(meta, "damp_percent", 0.01);
    cJSON_AddStringToObject(meta, "method", f->method == RA_QMETHOD_GPTQ ? "gptq" : "rtn");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(meta, "quantizer"), cJSON_CreateString("repro-audit:" RA_VERSION));
    cJSON_AddBoolToObject(meta, "static_groups", false);
    cJSON_AddBoolToObject(meta, "true_sequential", false);
    cJSON_AddStringToObject(o, "pack_dtype", "int32");
    cJSON_AddStringToObject(o, "quant_method", "gptq");
    cJSON_AddBoolToObject(o, "sym", f->sym);
}

/* compressed-tensors QuantizationArgs as its model_dump writes them: unset
 * optional fields (actorder, block_structure, scale_dtype, observer) left out. */
static cJSON *ct_args(uint32_t bits, const char *type, const char *strategy, int32_t group, bool block, bool dynamic,
                      const char *actorder, const char *scale_dtype)
{
    cJSON *a = cJSON_CreateObject();
    if (actorder) cJSON_AddStringToObject(a, "actorder", actorder);
    if (block) cJSON_AddItemToObject(a, "block_structure", cJSON_CreateIntArray((const int[]){128, 128}, 2));
    cJSON_AddBoolToObject(a, "dynamic", dynamic);
    if (group > 0) cJSON_AddNumberToObject(a, "group_size", group);
    else cJSON_AddNullToObject(a, "group_size");
    cJSON_AddNumberToObject(a, "num_bits", bits);
    if (scale_dtype) cJSON_AddStringToObject(a, "scale_dtype", scale_dtype);
    cJSON_AddStringToObject(a, "strategy", strategy);
    cJSON_AddBoolToObject(a, "symmetric", true);
    cJSON_AddStringToObject(a, "type", type);
    return a;
}

static void add_compressed(cJSON *o, const ra_qformat *f)
{
    const char *format = "pack-quantized";
    cJSON *w = NULL, *in = NULL;
    switch (f->family) {
    case RA_QF_W4A16:
        w = ct_args(f->bits, "int", f->group_size > 0 ? "group" : "channel", f->group_size, false, false,
                    f->act_order ? "group" : NULL, NULL);
        break;
    case RA_QF_FP8:
        format = "float-quantized";
        w = ct_args(8, "float", f->fp8_scheme == RA_FP8_BLOCK ? "block" : "channel", 0, f->fp8_scheme == RA_FP8_BLOCK,
                    false, NULL, NULL);
        if (f->fp8_act == RA_FP8_ACT_TOKEN) in = ct_args(8, "float", "token", 0, false, true, NULL, NULL);
        if (f->fp8_act == RA_FP8_ACT_GROUP) in = ct_args(8, "float", "group", 128, false, true, NULL, NULL);
        break;
    case RA_QF_NVFP4:
        format = "nvfp4-pack-quantized";
        w = ct_args(4, "float", "tensor_group", 16, false, false, NULL, "torch.float8_e4m3fn");
        break;
    case RA_QF_MXFP4:
        format = "mxfp4-pack-quantized";
        w = ct_args(4, "float", "group", 32, false, false, NULL, "torch.uint8");
        break;
    default: break;
    }
    cJSON *groups = cJSON_AddObjectToObject(o, "config_groups");
    cJSON *g = cJSON_AddObjectToObject(groups, "group_0");
    cJSON_AddStringToObject(g, "format", format);
    if (in) cJSON_AddItemToObject(g, "input_activations", in);
    else cJSON_AddNullToObject(g, "input_activations");
    cJSON_AddNullToObject(g, "output_activations");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(g, "targets"), cJSON_CreateString("Linear"));
    cJSON_AddItemToObject(g, "weights", w);
    cJSON_AddStringToObject(o, "format", format);
    cJSON_AddNullToObject(o, "global_compression_ratio");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "ignore"), cJSON_CreateString("lm_head"));
    cJSON_AddNullToObject(o, "kv_cache_scheme");
    cJSON_AddNullToObject(o, "moe_sparsity_config");
    cJSON_AddStringToObject(o, "quant_method", "compressed-tensors");
    cJSON_AddStringToObject(o, "quantization_status", "compressed");
    cJSON_AddObjectToObject(o, "sparsity_config");
    cJSON_AddObjectToObject(o, "transform_config");
    cJSON_AddStringToObject(o, "version", RA_CT_VERSION);
}

void *ra_hf_quant_config(const ra_qformat *f)
{
    cJSON *o = cJSON_CreateObject();
    if (f->family == RA_QF_AWQ) add_awq(o, f);
    else if (f->family == RA_QF_GPTQ || f->family == RA_QF_MARLIN) add_gptq(o, f);
    else add_compressed(o, f);
    return o;
}
