/* A small checkpoint with one layer of every format, written with
 * ra_safetensors_write: the header read back holds each tensor's name,
 * dtype, shape and offsets, the bytes are the packed ones, and the layers read
 * back from the file's bytes dequantize bit for bit as before writing. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "quant_check.h"
#include "ra/awq.h"
#include "ra/fp8.h"
#include "ra/gptq.h"
#include "ra/mxfp4.h"
#include "ra/nvfp4.h"
#include "ra/safetensors.h"
#include "ra/w4a16.h"

enum { L_AWQ, L_GPTQ, L_W4A16, L_FP8, L_FP8_DS, L_NVFP4, L_MXFP4, N_LAYERS };
static const char *const MODULES[N_LAYERS] = {
    "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.mlp.up_proj",
    "model.layers.0.mlp.down_proj",    "model.layers.1.mlp.down_proj",    "model.layers.0.mlp.gate_proj",
    "model.layers.0.mlp.experts.gate_up_proj"};

typedef struct {
    ra_intq q[3];            /* awq, gptq, w4a16 */
    ra_fp8_weight fp8[2];    /* compressed-tensors block, DeepSeek block */
    ra_nvfp4_weight nv;
    ra_mxfp4_weight mx;
} layers;

static void quantize_all(layers *l, ra_qtensors sets[N_LAYERS])
{
    const uint32_t N = 64, K = 256;
    float *w = qc_random((size_t)N * K, 0.1f);
    int32_t *perm = qc_shuffled(K);
    ra_gptq_config gc = {.bits = 4, .group_size = 64, .sym = false, .zeros = RA_GPTQ_V2};
    ra_w4a16_config wc = {.bits = 4, .group_size = 128, .symmetric = false, .scale_dtype = RA_SCALE_BF16};
    CHECK_OK(ra_awq_quantize(w, N, K, 128, &l->q[0]));
    CHECK_OK(ra_gptq_quantize(w, N, K, &gc, perm, &l->q[1]));
    CHECK_OK(ra_w4a16_quantize(w, N, K, &wc, NULL, &l->q[2]));
    CHECK_OK(ra_fp8_quantize(w, N, K, RA_FP8_BLOCK, RA_SCALE_BF16, &l->fp8[0]));
    CHECK_OK(ra_fp8_quantize(w, N, K, RA_FP8_BLOCK, RA_SCALE_F32, &l->fp8[1]));
    CHECK_OK(ra_nvfp4_quantize(w, N, K, &l->nv));
    CHECK_OK(ra_mxfp4_quantize(w, N, K, RA_MX_SCALE_OCP, &l->mx));
    CHECK_OK(ra_awq_pack(&l->q[0], &sets[L_AWQ]));
    CHECK_OK(ra_gptq_pack(&l->q[1], RA_GPTQ_V2, &sets[L_GPTQ]));
    CHECK_OK(ra_w4a16_pack(&l->q[2], false, &sets[L_W4A16]));
    CHECK_OK(ra_fp8_pack(&l->fp8[0], RA_FP8_NAMES_CT, &sets[L_FP8]));
    CHECK_OK(ra_fp8_pack(&l->fp8[1], RA_FP8_NAMES_DEEPSEEK, &sets[L_FP8_DS]));
    CHECK_OK(ra_nvfp4_pack(&l->nv, &sets[L_NVFP4]));
    CHECK_OK(ra_mxfp4_pack(&l->mx, RA_MXFP4_NAMES_GPT_OSS, &sets[L_MXFP4]));
    free(w);
    free(perm);
}

/* The dequantization of layer i read back from `sets`, compared with the one before writing. */
static void check_layer(int i, const layers *l, const ra_qtensors *t)
{
    float *before = NULL, *after = NULL;
    size_t n = 64 * 256;
    ra_status s = RA_ERR_INTERNAL;
    ra_intq q = {0};
    ra_fp8_weight f = {0};
    ra_nvfp4_weight nv = {0};
    ra_mxfp4_weight mx = {0};
    ra_gptq_config gc = {.bits = 4, .group_size = 64, .zeros = RA_GPTQ_V2};
    ra_w4a16_config wc = {.bits = 4, .group_size = 128, .symmetric = false};
    switch (i) {
    case L_AWQ: s = ra_awq_unpack(t, 128, &q); break;
    case L_GPTQ: s = ra_gptq_unpack(t, &gc, &q); break;
    case L_W4A16: s = ra_w4a16_unpack(t, &wc, &q); break;
    case L_FP8: s = ra_fp8_unpack(t, RA_FP8_NAMES_CT, RA_FP8_BLOCK, &f); break;
    case L_FP8_DS: s = ra_fp8_unpack(t, RA_FP8_NAMES_DEEPSEEK, RA_FP8_BLOCK, &f); break;
    case L_NVFP4: s = ra_nvfp4_unpack(t, &nv); break;
    case L_MXFP4: s = ra_mxfp4_unpack(t, RA_MXFP4_NAMES_GPT_OSS, &mx); break;
    }
    CHECK_MSG(s == RA_OK, "%s: %s", MODULES[i], ra_errmsg());
    if (s != RA_OK) return;
    if (i <= L_W4A16) {
        CHECK_OK(ra_intq_dequantize(&l->q[i], &before));
        CHECK_OK(ra_intq_dequantize(&q, &after));
    } else if (i <= L_FP8_DS) {
        CHECK_OK(ra_fp8_dequantize(&l->fp8[i - L_FP8], &before));
        CHECK_OK(ra_fp8_dequantize(&f, &after));
    } else if (i == L_NVFP4) {
        CHECK_OK(ra_nvfp4_dequantize(&l->nv, &before));
        CHECK_OK(ra_nvfp4_dequantize(&nv, &after));
    } else {
        CHECK_OK(ra_mxfp4_dequantize(&l->mx, &before));
        CHECK_OK(ra_mxfp4_dequantize(&mx, &after));
    }
    CHECK_MSG(before && after && qc_same_bits(before, after, n), "%s: read back differs", MODULES[i]);
    free(before);
    free(after);
    ra_intq_free(&q);
    ra_fp8_free(&f);
    ra_nvfp4_free(&nv);
    ra_mxfp4_free(&mx);
}

int main(void)
{
    layers l;
    ra_qtensors sets[N_LAYERS];
    memset(sets, 0, sizeof sets);
    quantize_all(&l, sets);

    ra_st_tensor st[N_LAYERS * RA_QT_MAX];
    static char names[N_LAYERS * RA_QT_MAX][RA_QT_NAME_MAX];
    size_t n = 0;
    for (int i = 0; i < N_LAYERS; i++) {
        CHECK_OK(ra_qtensors_to_st(&sets[i], MODULES[i], st + n, names + n));
        n += sets[i].n;
    }
    char dir[] = "/tmp/ra-quant-writer-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    CHECK_OK(ra_safetensors_write(path, st, n, mk, mv, 1));

    uint8_t *file = NULL;
    size_t len = 0;
    CHECK_OK(ra_read_file(path, &file, &len));
    uint64_t hlen = len >= 8 ? ra_le64(file) : 0;
    CHECK(hlen % 8 == 0 && 8 + hlen <= len);
    cJSON *h = cJSON_ParseWithLength((const char *)file + 8, hlen);
    CHECK(h != NULL);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    CHECK(meta && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "format")), "pt"));
    CHECK((size_t)cJSON_GetArraySize(h) == n + 1);
    const uint8_t *data = file + 8 + hlen;
    uint64_t end = 0;
    for (int i = 0; i < N_LAYERS; i++) {
        ra_qtensors back = {0};
        for (uint32_t j = 0; j < sets[i].n; j++) {
            const ra_qtensor *t = &sets[i].t[j];
            char name[RA_QT_NAME_MAX];
            snprintf(name, sizeof name, "%s%s", MODULES[i], t->suffix);
            cJSON *e = cJSON_GetObjectItemCaseSensitive(h, name), *shape = cJSON_GetObjectItemCaseSensitive(e, "shape"),
                  *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
            CHECK_MSG(e && shape && offs, "%s missing from the header", name);
            if (!e || !shape || !offs) continue;
            ra_qt_dtype dt;
            CHECK_OK(ra_qt_dtype_parse(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "dtype")), &dt));
            CHECK_MSG(dt == t->dtype, "%s: dtype", name);
            uint64_t sh[4] = {0}, o0 = (uint64_t)cJSON_GetArrayItem(offs, 0)->valuedouble,
                              o1 = (uint64_t)cJSON_GetArrayItem(offs, 1)->valuedouble;
            uint32_t nd = (uint32_t)cJSON_GetArraySize(shape);
            for (uint32_t d = 0; d < nd && d < 4; d++) sh[d] = (uint64_t)cJSON_GetArrayItem(shape, (int)d)->valuedouble;
            CHECK_MSG(nd == t->n_dims && !memcmp(sh, t->shape, nd * sizeof *sh), "%s: shape", name);
            CHECK_MSG(o1 - o0 == t->nbytes && 8 + hlen + o1 <= len && !memcmp(data + o0, t->data, t->nbytes), "%s: bytes", name);
            end = o1 > end ? o1 : end;
            CHECK_OK(ra_qtensors_borrow(&back, t->suffix, dt, nd, sh, data + o0, o1 - o0));
        }
        check_layer(i, &l, &back);
        ra_qtensors_free(&back);
    }
    CHECK(8 + hlen + end == len);
    /* the names real checkpoints use */
    const char *expect[] = {"model.layers.0.self_attn.q_proj.qzeros", "model.layers.0.self_attn.k_proj.g_idx",
                            "model.layers.0.mlp.up_proj.weight_zero_point", "model.layers.0.mlp.up_proj.weight_shape",
                            "model.layers.0.mlp.down_proj.weight_scale", "model.layers.1.mlp.down_proj.weight_scale_inv",
                            "model.layers.0.mlp.gate_proj.weight_global_scale",
                            "model.layers.0.mlp.experts.gate_up_proj_blocks", "model.layers.0.mlp.experts.gate_up_proj_scales"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) CHECK_MSG(cJSON_GetObjectItemCaseSensitive(h, expect[i]), "%s", expect[i]);
    cJSON_Delete(h);
    free(file);
    unlink(path);
    rmdir(dir);
    for (int i = 0; i < N_LAYERS; i++) ra_qtensors_free(&sets[i]);
    for (int i = 0; i < 3; i++) ra_intq_free(&l.q[i]);
    ra_fp8_free(&l.fp8[0]);
    ra_fp8_free(&l.fp8[1]);
    ra_nvfp4_free(&l.nv);
    ra_mxfp4_free(&l.mx);
    CHECK_DONE();
}
