/* repro-audit quantize --format q4_k_m|q8_0|q4_0: a GGUF file requantized by
 * our ggml-rule quantizers, as llama.cpp's quantize tool would write it
 * (without an importance matrix). cmd_quantize.c hands these formats here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/format.h"
#include "ra/ggml_types.h"
#include "ra/gguf_write.h"
#include "ra/model.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit quantize --format q4_k_m|q8_0|q4_0 MODEL.gguf OUT.gguf\n"
    "\n"
    "Writes OUT.gguf (atomically): MODEL's metadata, with general.file_type set to\n"
    "llama.cpp's number for the format, and its tensors, every matrix (a 2-D\n"
    "tensor) stored in the GGML type the format picks for it (q4_k_m: llama.cpp's\n"
    "Q4_K_M rules) by dequantizing it exactly and quantizing it with ggml's\n"
    "reference rules, or copied where it already has that type. Other tensors\n"
    "(norm gains) are copied. The result loads in llama.cpp and in `run`.\n";

/* llama_ftype numbers (llama.h); UINT32_MAX for a format that is not a GGUF file type. */
uint32_t ra_gguf_file_type_of(const char *format)
{
    if (!strcmp(format, "q4_0")) return 2;
    if (!strcmp(format, "q8_0")) return 7;
    if (!strcmp(format, "q4_k_m")) return 15;
    return UINT32_MAX;
}

/* Tensor t of src in the format's type for it: new bytes in *out (the caller
 * frees), or *out NULL and the source bytes kept. */
static ra_status requantize(const ra_format *f, const ra_model_config *c, const ra_gguf_tensor *t,
                            ra_gguf_out_tensor *o, uint8_t **out)
{
    *out = NULL;
    *o = (ra_gguf_out_tensor){t->name, t->type, t->n_dims, {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}, t->data, t->nbytes};
    if (t->n_dims != 2) return RA_OK;
    const ra_tensor_role role = {t->name, c->n_layers, c->tied_embeddings};
    const uint32_t want = ra_format_tensor_type(f, &role, (uint32_t)t->ne[0]);
    if (want == t->type) return RA_OK;
    const uint64_t n = t->ne[0] * t->ne[1];
    uint64_t bytes;
    RA_TRY(ra_ggml_row_bytes(want, n, &bytes));
    float *x = NULL;
    ra_status s = ra_calloc(&x, n, sizeof *x);
    if (s == RA_OK) s = ra_calloc(out, bytes, 1);
    if (s == RA_OK) s = ra_ggml_dequantize(t->type, t->data, x, n);
    if (s == RA_OK) s = ra_ggml_quantize(want, x, *out, n);
    free(x);
    if (s != RA_OK) {
        free(*out);
        *out = NULL;
        return ra_wrap(s, "tensor %s", t->name);
    }
    o->type = want;
    o->data = *out;
    o->nbytes = bytes;
    return RA_OK;
}

int ra_cmd_quantize_gguf(int argc, char **argv)
{
    const char *format = NULL, *pos[2] = {0};
    int npos = 0;
    bool help;
    ra_status s = ra_cli_format_and_two(argc, argv, "quantize", &format, pos, &npos, &help);
    if (help) {
        fputs(usage, stdout);
        return RA_EXIT_OK;
    }
    if (s == RA_OK && (npos != 2 || !format))
        s = ra_fail(RA_ERR_USAGE, "quantize needs --format, MODEL and OUT (see quantize --help)");
    const ra_format *f = s == RA_OK ? ra_format_find(format) : NULL;
    if (s == RA_OK && (!f || ra_gguf_file_type_of(format) == UINT32_MAX))
        s = ra_fail(RA_ERR_USAGE, "quantize --format is q4_k_m, q8_0 or q4_0, not '%s'", format);
    ra_gguf *g = NULL;
    ra_model_desc *d = NULL;
    ra_model_config c;
    if (s == RA_OK) s = ra_desc_open(pos[0], RA_DESC_NO_TOKENIZER, &d);
    if (s == RA_OK) s = ra_config_from_desc(d, &c);
    ra_desc_close(d);
    if (s == RA_OK) s = ra_gguf_open(pos[0], &g);
    const size_t n = g ? ra_gguf_n_tensors(g) : 0;
    ra_gguf_out_tensor *o = NULL;
    uint8_t **owned = NULL;
    if (s == RA_OK) s = ra_calloc(&o, n ? n : 1, sizeof *o);
    if (s == RA_OK) s = ra_calloc(&owned, n ? n : 1, sizeof *owned);
    const double t0 = ra_now();
    for (size_t i = 0; s == RA_OK && i < n; i++) {
        s = requantize(f, &c, ra_gguf_tensor_at(g, i), &o[i], &owned[i]);
        if ((i + 1) % 32 == 0 || i + 1 == n)
            fprintf(stderr, "quantize: %zu/%zu tensors, %.1f s\n", i + 1, n, ra_now() - t0);
    }
    if (s == RA_OK) s = ra_gguf_write(pos[1], g, ra_gguf_file_type_of(format), o, n);
    if (s == RA_OK) printf("wrote %s: %s as %s (%zu tensors)\n", pos[1], pos[0], f->name, n);
    for (size_t i = 0; owned && i < n; i++) free(owned[i]);
    free(owned);
    free(o);
    ra_gguf_close(g);
    return ra_cli_report(s);
}
