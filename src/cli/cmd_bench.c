/* repro-audit bench */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/bench.h"
#include "ra/model.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit bench [--model MODEL] [options]\n"
    "\n"
    "Times every GPU matrix-product kernel at several batch sizes on Llama-3-8B\n"
    "shapes (synthetic random weights) and, with --model, on the model's own\n"
    "shapes, as weight bytes per second, as a ratio to a device copy measured in\n"
    "the same run and as a speed-up over the fastest cuBLAS kernel; then, with\n"
    "--model, end-to-end decode tokens/s at batch 1 and 10 (with and without\n"
    "CUDA graphs) and prompt-processing tokens/s for each kernel.\n"
    "\n"
    "options:\n"
    "  --model MODEL         GGUF file or HF checkpoint directory, for its shapes and the end-to-end runs\n"
    "  --kernels LIST        format@kernel list (default f32@ra,bf16@ra,bf16@cublas,bf16@cublas-bi); the\n"
    "                        quantized rows' kernels FORMAT@ra and FORMAT@atomic (gptq, gptq-act, awq,\n"
    "                        w4a16, fp8, fp8-block, nvfp4, mxfp4) time their products on synthetic\n"
    "                        packed weights, counting packed weights + scales + zeros as weight bytes\n"
    "  --m LIST              batch sizes of the matrix products (default 1,4,16,64)\n"
    "  --runs N              timed launches per point, median reported (default 50)\n"
    "  --decode-tokens N     new tokens per sequence in the decode runs (default 128)\n"
    "  --prompt-tokens N     tokens per prompt in the prompt-processing run (default 512)\n"
    "  --no-gemm             skip the matrix products\n"
    "  --no-e2e              skip the end-to-end runs\n"
    "  --json                print the results as JSON\n"
    "  --quiet               no progress on stderr\n";

/* Splits a comma list in place into at most max items. */
static ra_status split_list(char *list, const char **items, size_t max, size_t *n, const char *opt)
{
    *n = 0;
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        if (*n == max) return ra_fail(RA_ERR_USAGE, "%s: too many items", opt);
        items[(*n)++] = t;
    }
    if (*n == 0) return ra_fail(RA_ERR_USAGE, "%s: empty list", opt);
    return RA_OK;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void print_gemm(const cJSON *g)
{
    const cJSON *dev = cJSON_GetObjectItem(g, "device");
    printf("GPU %s, %d SMs, L2 %.0f MB\n", cJSON_GetObjectItem(dev, "gpu")->valuestring, (int)num(dev, "sm_count"),
           num(dev, "l2_bytes") / 1e6);
    printf("device copy: %.0f GB/s (1 GiB device to device, bytes read + written, median of 20)\n\n", num(g, "copy_GBps"));
    printf("Matrix products y = x . W^T: weight bytes moved per second (median of the timed launches)\n");
    printf("  %-16s %-13s %4s  %-16s %9s %9s %7s %10s\n", "shape", "N x K", "M", "kernel", "us", "GB/s", "x copy",
           "vs cuBLAS");
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(g, "gemm"))
    {
        char nk[32], vs[16] = "-";
        snprintf(nk, sizeof nk, "%d x %d", (int)num(r, "n"), (int)num(r, "k"));
        if (cJSON_GetObjectItem(r, "speedup_vs_best_cublas")) snprintf(vs, sizeof vs, "%.2fx", num(r, "speedup_vs_best_cublas"));
        printf("  %-16s %-13s %4d  %-16s %9.2f %9.1f %7.3f %10s\n", cJSON_GetObjectItem(r, "shape")->valuestring, nk,
               (int)num(r, "m"), cJSON_GetObjectItem(r, "kernel")->valuestring, num(r, "us_median"), num(r, "weight_GBps"),
               num(r, "copy_ratio"), vs);
    }
    printf("  (vs cuBLAS: the fastest of bf16@cublas and bf16@cublas-bi at the same shape and M, time over time)\n\n");
}

static void print_e2e(const cJSON *e)
{
    printf("End to end, %s: decode of %d new tokens per sequence; prompt processing of 10 x %d tokens in one pass\n",
           cJSON_GetObjectItem(e, "model")->valuestring, (int)num(e, "decode_tokens"), (int)num(e, "prompt_tokens"));
    printf("  %-16s %-22s %6s %12s\n", "kernel", "what", "batch", "tokens/s");
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(e, "e2e"))
    {
        const char *what = cJSON_GetObjectItem(r, "what")->valuestring;
        const char *kernel = cJSON_GetObjectItem(r, "kernel")->valuestring;
        if (!strcmp(what, "load_seconds")) {
            printf("  %-16s %-22s %6s %11.2fs\n", kernel, "load (engine open)", "", num(r, "seconds"));
            continue;
        }
        char label[40];
        snprintf(label, sizeof label, "%s%s", !strcmp(what, "decode") ? "decode" : "prompt processing",
                 !strcmp(what, "decode") ? (cJSON_IsTrue(cJSON_GetObjectItem(r, "graphs")) ? ", graphs" : ", no graphs") : "");
        printf("  %-16s %-22s %6d %12.1f\n", kernel, label, (int)num(r, "batch"), num(r, "tokens_per_s"));
    }
}

int ra_cmd_bench(int argc, char **argv)
{
    const char *model = NULL, *kernels = "f32@ra,bf16@ra,bf16@cublas,bf16@cublas-bi", *ms = "1,4,16,64";
    uint32_t runs = 50, decode_tokens = 128, prompt_tokens = 512;
    bool json = false, gemm = true, e2e = true, progress = isatty(2);
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i], *v = NULL;
        if (ra_cli_is_help(a)) { fputs(usage, stdout); return RA_EXIT_OK; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--no-gemm")) gemm = false;
        else if (!strcmp(a, "--no-e2e")) e2e = false;
        else if (!strcmp(a, "--quiet")) progress = false;
        else if (strncmp(a, "--", 2) != 0) s = ra_fail(RA_ERR_USAGE, "unexpected argument '%s' (see bench --help)", a);
        else if (!(v = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--kernels")) kernels = v;
        else if (!strcmp(a, "--m")) ms = v;
        else if (!strcmp(a, "--runs")) s = ra_cli_u32(a, v, 3, 100000, &runs);
        else if (!strcmp(a, "--decode-tokens")) s = ra_cli_u32(a, v, 1, 100000, &decode_tokens);
        else if (!strcmp(a, "--prompt-tokens")) s = ra_cli_u32(a, v, 1, 1000000, &prompt_tokens);
        else s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see bench --help)", a);
    }
    char *klist = NULL, *mlist = NULL;
    const char *kitems[32], *mitems[16];
    size_t nk = 0, nm = 0;
    uint32_t mvals[16];
    if (s == RA_OK) s = ra_strdup(&klist, kernels);
    if (s == RA_OK) s = ra_strdup(&mlist, ms);
    if (s == RA_OK) s = split_list(klist, kitems, 32, &nk, "--kernels");
    if (s == RA_OK) s = split_list(mlist, mitems, 16, &nm, "--m");
    for (size_t i = 0; s == RA_OK && i < nm; i++) s = ra_cli_u32("--m", mitems[i], 1, 65536, &mvals[i]);

    ra_bench_shape shapes[9] = {{"llama3-8b qkv", 6144, 4096}, {"llama3-8b o", 4096, 4096},
                                {"llama3-8b gate_up", 28672, 4096}, {"llama3-8b down", 4096, 14336}};
    size_t n_shapes = 4;
    if (s == RA_OK && model) { /* the model's own shapes, as the engine runs them */
        ra_model_desc *d = NULL;
        ra_model_config c;
        s = ra_desc_open(model, RA_DESC_NO_TOKENIZER, &d);
        if (s == RA_OK) s = ra_config_from_desc(d, &c);
        ra_desc_close(d);
        if (s == RA_OK) {
            const uint32_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
            const ra_bench_shape own[5] = {{"model qkv", q + 2 * kv, c.dim}, {"model o", c.dim, q},
                                           {"model gate_up", 2 * c.ffn_dim, c.dim}, {"model down", c.dim, c.ffn_dim},
                                           {"model lm_head", c.n_vocab, c.dim}};
            memcpy(shapes + n_shapes, own, sizeof own);
            n_shapes += 5;
        }
    }
    cJSON *out = cJSON_CreateObject();
    if (s == RA_OK && gemm) {
        void *j = NULL;
        ra_gemm_bench_opts o = {kitems, nk, shapes, n_shapes, mvals, nm, runs, progress};
        s = ra_bench_gemm(&o, &j);
        if (s == RA_OK) {
            if (!json) print_gemm(j);
            cJSON_AddItemToObject(out, "matrix_products", j);
        }
    }
    if (s == RA_OK && e2e && model) {
        void *j = NULL;
        ra_e2e_bench_opts o = {model, kitems, nk, decode_tokens, prompt_tokens, progress};
        s = ra_bench_e2e(&o, &j);
        if (s == RA_OK) {
            if (!json) print_e2e(j);
            cJSON_AddItemToObject(out, "end_to_end", j);
        }
    }
    if (s == RA_OK && json) {
        char *text = cJSON_Print(out);
        if (text) puts(text);
        free(text);
    }
    cJSON_Delete(out);
    free(klist);
    free(mlist);
    return ra_cli_report(s);
}
