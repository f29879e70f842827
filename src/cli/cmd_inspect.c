/* repro-audit inspect: a GGUF file's header, metadata and tensor table, or the
 * model description (config, quantization, tokenizer, tensors) of an HF
 * checkpoint directory (or of a GGUF file, with --desc). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/desc.h"
#include "ra/ggml_types.h"
#include "ra/gguf.h"
#include "ra/text.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit inspect [--all] FILE.gguf\n"
    "       repro-audit inspect [--desc] MODEL\n"
    "\n"
    "For a GGUF file: the header (version, alignment, data offset, file size,\n"
    "counts), every metadata key as `key  type  value` (arrays are summarised;\n"
    "--all prints every array item, one per line), then the tensor table: index,\n"
    "name, type, dims, offset from the start of the data section, and bytes.\n"
    "For an HF checkpoint directory (or a GGUF file with --desc): the model\n"
    "description every command runs from: files, configuration, quantization,\n"
    "tokenizer, and the tensors under their HF names with dtype, shape (outermost\n"
    "first), file, byte offset in that file and bytes.\n"
    "Everything is validated first; malformed input exits with status 2.\n";

/* Items shown in an array summary. */
#define SUMMARY_ITEMS 5

static void print_type(const ra_gguf_kv *kv, char *out, size_t size)
{
    if (kv->type == RA_GGUF_ARRAY) snprintf(out, size, "array[%s]", ra_gguf_vtype_name(kv->elem_type));
    else snprintf(out, size, "%s", ra_gguf_vtype_name(kv->type));
}

/* Quoted, with the same escapes as ra_gguf_kv_to_text, never cut. */
static void print_quoted(const char *s, size_t len)
{
    ra_buf b = {0};
    if (ra_escape(&b, s, len, RA_ESC_QUOTE) == RA_OK) printf("\"%.*s\"", (int)b.len, b.data ? (const char *)b.data : "");
    else fputs("\"?\"", stdout);
    ra_buf_free(&b);
}

/* One array element on its own line (for --all). */
static ra_status print_item(const ra_gguf *g, const ra_gguf_kv *kv, uint64_t i)
{
    printf("    [%" PRIu64 "] ", i);
    switch (kv->elem_type) {
    case RA_GGUF_STRING: {
        const char *s;
        size_t len;
        RA_TRY(ra_gguf_arr_str(g, kv, i, &s, &len));
        print_quoted(s, len);
        break;
    }
    case RA_GGUF_BOOL: fputs(kv->data[i] ? "true" : "false", stdout); break;
    case RA_GGUF_UINT64: printf("%" PRIu64, ra_le64(kv->data + 8 * i)); break; /* may exceed int64 */
    case RA_GGUF_FLOAT32:
    case RA_GGUF_FLOAT64: {
        double v;
        RA_TRY(ra_gguf_arr_f64(kv, i, &v));
        printf(kv->elem_type == RA_GGUF_FLOAT32 ? "%.9g" : "%.17g", v);
        break;
    }
    default: {
        int64_t v;
        RA_TRY(ra_gguf_arr_i64(kv, i, &v));
        printf("%" PRId64, v);
        break;
    }
    }
    putchar('\n');
    return RA_OK;
}

static ra_status print_kvs(const ra_gguf *g, bool all)
{
    size_t key_width = 3;
    char text[1024], type[32], key[256]; /* keys and names are escaped: the file chose them */
    for (size_t i = 0; i < ra_gguf_n_kv(g); i++) {
        size_t n = strlen(ra_esc(key, sizeof key, ra_gguf_kv_at(g, i)->key));
        if (n > key_width) key_width = n;
    }
    if (key_width > 60) key_width = 60;
    printf("\nmetadata (%zu):\n", ra_gguf_n_kv(g));
    for (size_t i = 0; i < ra_gguf_n_kv(g); i++) {
        const ra_gguf_kv *kv = ra_gguf_kv_at(g, i);
        print_type(kv, type, sizeof type);
        RA_TRY(ra_gguf_kv_to_text(g, kv, text, sizeof text, all ? 0 : SUMMARY_ITEMS));
        printf("  %-*s  %-14s  %s\n", (int)key_width, ra_esc(key, sizeof key, kv->key), type, text);
        if (all && kv->type == RA_GGUF_ARRAY)
            for (uint64_t j = 0; j < kv->n; j++) RA_TRY(print_item(g, kv, j));
    }
    return RA_OK;
}

static void format_dims(const ra_gguf_tensor *t, char *out, size_t size)
{
    size_t len = 0;
    out[0] = 0;
    for (uint32_t d = 0; d < t->n_dims && len < size; d++) {
        int n = snprintf(out + len, size - len, d ? " x %" PRIu64 : "%" PRIu64, t->ne[d]);
        if (n < 0) break;
        len += (size_t)n;
    }
}

static void print_tensors(const ra_gguf *g)
{
    size_t name_width = 4;
    char name[256];
    for (size_t i = 0; i < ra_gguf_n_tensors(g); i++) {
        size_t n = strlen(ra_esc(name, sizeof name, ra_gguf_tensor_at(g, i)->name));
        if (n > name_width) name_width = n;
    }
    if (name_width > 60) name_width = 60;
    printf("\ntensors (%zu; offsets are from the start of the data section):\n", ra_gguf_n_tensors(g));
    printf("  %5s  %-*s  %-5s  %-16s  %12s  %12s\n", "index", (int)name_width, "name", "type", "dims", "offset", "bytes");
    char dims[96];
    for (size_t i = 0; i < ra_gguf_n_tensors(g); i++) {
        const ra_gguf_tensor *t = ra_gguf_tensor_at(g, i);
        format_dims(t, dims, sizeof dims);
        printf("  %5zu  %-*s  %-5s  %-16s  %12" PRIu64 "  %12" PRIu64 "\n", i, (int)name_width, ra_esc(name, sizeof name, t->name),
               ra_ggml_type_info_of(t->type)->name, dims, t->offset, t->nbytes);
    }
}

static ra_status inspect(const char *path, bool all)
{
    ra_gguf *g;
    RA_TRY(ra_gguf_open(path, &g));
    char esc[512];
    printf("file:         %s\n", ra_esc(esc, sizeof esc, ra_gguf_path(g)));
    printf("version:      %u\n", ra_gguf_version(g));
    printf("alignment:    %" PRIu64 "\n", ra_gguf_alignment(g));
    printf("data offset:  %" PRIu64 "\n", ra_gguf_data_offset(g));
    printf("file size:    %zu\n", ra_gguf_file_size(g));
    printf("kv count:     %zu\n", ra_gguf_n_kv(g));
    printf("tensor count: %zu\n", ra_gguf_n_tensors(g));
    ra_status s = print_kvs(g, all);
    if (s == RA_OK) print_tensors(g);
    ra_gguf_close(g);
    if (s != RA_OK) return ra_wrap(s, "inspect %s", path);
    return RA_OK;
}

static void print_config(const ra_model_config *c)
{
    printf("\nconfig:\n");
    printf("  architecture     %s\n  name             %s\n", c->arch, c->name);
    printf("  layers %u, dim %u, ffn %u, heads %u, kv heads %u, head_dim %u%s\n", c->n_layers, c->dim, c->ffn_dim, c->n_heads,
           c->n_kv_heads, c->head_dim, c->head_dim ? "" : " (dim / heads)");
    printf("  vocab %u, context %u, rope_theta %g, rms_eps %g, tied embeddings %s\n", c->n_vocab, c->max_seq,
           (double)c->rope_theta, (double)c->rms_eps, c->tied_embeddings ? "yes" : "no");
    static const char *const rope[] = {"default", "linear", "llama3"};
    printf("  rope scaling %s", rope[c->rope.kind]);
    if (c->rope.kind != RA_ROPE_DEFAULT) printf(" (factor %g)", (double)c->rope.factor);
    printf(", q/k/v bias %s, QK-norm %s, sliding window %u\n", c->attn_bias ? "yes" : "no", c->qk_norm ? "yes" : "no",
           c->sliding_window);
    printf("  bos %d, eos", c->bos_id);
    for (uint32_t i = 0; i < c->n_eos; i++) printf(" %d", c->eos_ids[i]);
    printf("%s%s%s\n", c->n_eos ? "" : " none", c->dtype[0] ? ", dtype " : "", c->dtype);
}

static ra_status inspect_desc(const char *path)
{
    ra_model_desc *d;
    char why[512] = ""; /* a tokenizer we cannot reproduce does not hide the rest */
    ra_status s = ra_desc_open(path, 0, &d);
    if (s == RA_ERR_UNSUPPORTED) {
        snprintf(why, sizeof why, "%s", ra_errmsg());
        s = ra_desc_open(path, RA_DESC_NO_TOKENIZER, &d);
    }
    RA_TRY(s);
    printf("model:        %s (%s)\nfiles:\n", d->path, d->container);
    for (size_t i = 0; i < d->n_files; i++) printf("  %12" PRIu64 "  %s\n", d->files[i].bytes, d->files[i].path);
    print_config(&d->config);
    const ra_quant_config *q = &d->quant;
    if (q->method == RA_QUANT_NONE) printf("\nquantization: none\n");
    else printf("\nquantization: %s (format %s): %s\n", q->method_name, q->format[0] ? q->format : "none of ours", q->summary);
    const ra_tokenizer_spec *t = &d->tokenizer;
    if (d->has_tokenizer)
        printf("tokenizer:    %s/%s, %zu tokens, %zu merges, bos %d, eos %d, unk %d, pad %d, add_bos %s\n", t->model, t->pre,
               t->n_tokens, t->n_merges, t->bos_id, t->eos_id, t->unk_id, t->pad_id, t->add_bos ? "yes" : "no");
    else printf("tokenizer:    %s\n", why[0] ? why : "none");
    size_t w = 4;
    for (size_t i = 0; i < d->n_tensors; i++) w = strlen(d->tensors[i].name) > w ? strlen(d->tensors[i].name) : w;
    if (w > 60) w = 60;
    printf("\ntensors (%zu):\n  %5s  %-*s  %-7s  %-18s  %12s  %12s  %s\n", d->n_tensors, "index", (int)w, "name", "dtype",
           "shape", "offset", "bytes", "file");
    for (size_t i = 0; i < d->n_tensors; i++) {
        const ra_tensor_desc *x = &d->tensors[i];
        char shape[96] = "";
        for (uint32_t k = 0, n = 0; k < x->n_dims && n < sizeof shape; k++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, k ? " x %" PRIu64 : "%" PRIu64, x->shape[k]);
        const char *type = x->type == RA_ST_GGML ? ra_ggml_type_info_of(x->ggml_type)->name : ra_stype_name(x->type);
        const char *file = strrchr(x->file, '/') ? strrchr(x->file, '/') + 1 : x->file;
        printf("  %5zu  %-*s  %-7s  %-18s  %12" PRIu64 "  %12" PRIu64 "  %s\n", i, (int)w, x->name, type, shape, x->offset,
               x->nbytes, file);
    }
    ra_desc_close(d);
    return RA_OK;
}

int ra_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool all = false, desc = false;
    for (int i = 1; i < argc; i++) {
        if (ra_cli_is_help(argv[i])) { fputs(usage, stdout); return RA_EXIT_OK; }
        if (!strcmp(argv[i], "--all")) all = true;
        else if (!strcmp(argv[i], "--desc")) desc = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return ra_cli_report(ra_fail(RA_ERR_USAGE, "inspect: unknown option '%s' (see inspect --help)", argv[i]));
        else if (!path) path = argv[i];
        else return ra_cli_report(ra_fail(RA_ERR_USAGE, "inspect: too many arguments (see inspect --help)"));
    }
    if (!path) return ra_cli_report(ra_fail(RA_ERR_USAGE, "inspect needs a FILE (see inspect --help)"));
    if (desc || ra_is_dir(path)) return ra_cli_report(inspect_desc(path));
    return ra_cli_report(inspect(path, all));
}
