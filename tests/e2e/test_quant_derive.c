/* Our quantizers against llama.cpp's quantize tool: every tensor that
 * tools/llamacpp_quant_digests.py saw llama.cpp write (from this model file,
 * for each file type) is derived here with ra_ggml_dequantize and
 * ra_ggml_quantize to the same GGML type, and its SHA-256 must be llama.cpp's.
 * For a mix format of the file type's name (q4_k_m) the type it picks for each
 * matrix must also be the one llama.cpp picked. (Our uniform q4_0 quantizes
 * the tied embedding too, where llama.cpp keeps it in Q8_0.)
 * Usage: test_quant_derive MODEL.gguf DIGESTS.json */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture_json.h"
#include "ra/format.h"
#include "ra/ggml_types.h"
#include "ra/gguf.h"
#include "ra/util.h"

static uint32_t type_named(const char *name)
{
    for (uint32_t t = 0; t < 64; t++) {
        const ra_ggml_type_info *i = ra_ggml_type_info_of(t);
        if (i && !strcmp(i->name, name)) return t;
    }
    return UINT32_MAX;
}

/* The tensor's bytes in type `want`: its own where it already has that type. */
static ra_status derive_digest(const ra_gguf_tensor *t, uint32_t want, char hex[65])
{
    uint8_t d[32];
    if (t->type == want) {
        ra_sha256(t->data, t->nbytes, d);
        ra_hex(d, 32, hex);
        return RA_OK;
    }
    const uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    uint64_t bytes;
    RA_TRY(ra_ggml_row_bytes(want, n, &bytes));
    float *f = NULL;
    uint8_t *q = NULL;
    ra_status s = ra_calloc(&f, n, sizeof *f);
    if (s == RA_OK) s = ra_calloc(&q, bytes, 1);
    if (s == RA_OK) s = ra_ggml_dequantize(t->type, t->data, f, n);
    if (s == RA_OK) s = ra_ggml_quantize(want, f, q, n);
    if (s == RA_OK) {
        ra_sha256(q, bytes, d);
        ra_hex(d, 32, hex);
    }
    free(f);
    free(q);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf DIGESTS.json\n", argv[0]);
        return 2;
    }
    ra_gguf *g = NULL;
    cJSON *fx = NULL;
    CHECK_OK(ra_gguf_open(argv[1], &g));
    CHECK_OK(load_json(argv[2], &fx));
    if (!g || !fx) CHECK_DONE();
    uint32_t n_layers = 0;
    bool tied = true;
    CHECK_OK(ra_gguf_get_u32(g, "llama.block_count", &n_layers));
    for (size_t i = 0; i < ra_gguf_n_tensors(g); i++) tied &= strcmp(ra_gguf_tensor_at(g, i)->name, "output.weight") != 0;
    const cJSON *file;
    cJSON_ArrayForEach(file, cJSON_GetObjectItem(fx, "files")) {
        const ra_format *f = ra_format_find(file->string);
        if (f && f->derive != RA_DERIVE_MIX) f = NULL;
        unsigned same = 0, total = 0, typed = 0;
        const cJSON *ent;
        cJSON_ArrayForEach(ent, file) {
            const ra_gguf_tensor *t = ra_gguf_find_tensor(g, ent->string);
            const uint32_t want = type_named(cJSON_GetArrayItem(ent, 0)->valuestring);
            CHECK_MSG(t && want != UINT32_MAX, "%s: tensor %s of type %s", file->string, ent->string,
                      cJSON_GetArrayItem(ent, 0)->valuestring);
            if (!t || want == UINT32_MAX) continue;
            if (f && t->n_dims == 2) {
                const ra_tensor_role role = {t->name, n_layers, tied};
                const uint32_t ours = ra_format_tensor_type(f, &role, (uint32_t)t->ne[0]);
                CHECK_MSG(ours == want, "%s: format %s picks type %u for %s, llama.cpp %u", file->string, f->name, ours,
                          t->name, want);
                typed += ours == want;
            }
            char hex[65];
            CHECK_OK(derive_digest(t, want, hex));
            const bool eq = !strcmp(hex, cJSON_GetArrayItem(ent, 1)->valuestring);
            CHECK_MSG(eq, "%s: %s as %s differs from llama.cpp's", file->string, ent->string,
                      cJSON_GetArrayItem(ent, 0)->valuestring);
            same += eq;
            total++;
        }
        printf("quantizer vs llama.cpp, %s: %u/%u tensors bit-identical", file->string, same, total);
        if (f) printf(", format %s picks llama.cpp's type for %u matrices", f->name, typed);
        printf("\n");
    }
    cJSON_Delete(fx);
    ra_gguf_close(g);
    CHECK_DONE();
}
