/* repro-audit quantize: a base model into a quantized checkpoint directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/model.h"
#include "ra/quantize.h"
#include "ra/textset.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit quantize --model MODEL --format F --out DIR [options]\n"
    "       repro-audit quantize --format q4_k_m|q8_0|q4_0 MODEL.gguf OUT.gguf\n"
    "\n"
    "The second form writes a GGUF file requantized as llama.cpp's quantize tool\n"
    "would (see quantize --format q4_k_m --help). The first:\n"
    "Writes DIR as a quantized HF checkpoint: model.safetensors with the format's\n"
    "tensors (names, dtypes, shapes and packing of the real checkpoints), config.json\n"
    "with its quantization_config as AutoAWQ, GPTQModel or compressed-tensors write it,\n"
    "tokenizer.json and tokenizer_config.json. `run --model DIR` audits it as itself.\n"
    "The decoder blocks' linear layers are quantized from the bf16 weights, one block\n"
    "at a time; embeddings, norms and lm_head are kept in bf16. The same inputs give\n"
    "the same bytes on any thread count.\n"
    "\n"
    "options:\n"
    "  --model MODEL        an unquantized GGUF file or HF checkpoint directory\n"
    "  --format F           awq, gptq, w4a16, marlin (written as GPTQ), fp8, fp8-block,\n"
    "                       fp8-w8a8, nvfp4, mxfp4 (or a row such as gptq-cal-act)\n"
    "  --method rtn|gptq|awq  round to nearest (default: the row's), GPTQ calibrated on the\n"
    "                       calibration text (gptq and marlin), or AWQ's activation-aware\n"
    "                       scales and clipping from it (awq)\n"
    "  --group-size G       columns per group of the integer formats (default 128; -1: per row)\n"
    "  --act-order          GPTQ act-order: columns by descending calibration Hessian diagonal\n"
    "  --calib FILE         calibration text (default " RA_DEFAULT_TEXT ", `make text`);\n"
    "                       sequences come from its first half\n"
    "  --samples N          calibration sequences (default 8)\n"
    "  --seq-len L          tokens per calibration sequence (default 256)\n"
    "  --threads N          CPU threads (default: all); the output does not depend on it\n"
    "  --out DIR            the checkpoint directory to create (must not exist)\n"
    "  --quiet              no progress on stderr\n";

static void print_stats(const ra_quantize_stats *st, bool calibrated)
{
    printf("  %.1f s, peak resident memory %.1f MB", st->seconds, st->peak_rss_bytes / 1e6);
    if (calibrated)
        printf(" (one block's calibration activations %.1f MB, Hessians %.1f MB)", st->calib_bytes / 1e6,
               st->hessian_bytes / 1e6);
    putchar('\n');
}

int ra_cmd_quantize(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++) /* GGUF file types go to the GGUF writer */
        if (!strcmp(argv[i], "--format") && ra_gguf_file_type_of(argv[i + 1]) != UINT32_MAX)
            return ra_cmd_quantize_gguf(argc, argv);
    const char *model = NULL, *format = NULL, *method = NULL, *out = NULL, *calib = RA_DEFAULT_TEXT;
    uint32_t samples = 8, seq_len = 256, threads = 0, group = 0;
    bool act_order = false, group_set = false, progress = isatty(2);
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i], *v = NULL;
        if (ra_cli_is_help(a)) { fputs(usage, stdout); return RA_EXIT_OK; }
        else if (!strcmp(a, "--act-order")) act_order = true;
        else if (!strcmp(a, "--quiet")) progress = false;
        else if (strncmp(a, "--", 2) != 0) s = ra_fail(RA_ERR_USAGE, "unexpected argument '%s' (see quantize --help)", a);
        else if (!(v = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--format")) format = v;
        else if (!strcmp(a, "--method")) method = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--calib")) calib = v;
        else if (!strcmp(a, "--samples")) s = ra_cli_u32(a, v, 1, 4096, &samples);
        else if (!strcmp(a, "--seq-len")) s = ra_cli_u32(a, v, 2, 1 << 16, &seq_len);
        else if (!strcmp(a, "--threads")) s = ra_cli_u32(a, v, 1, 256, &threads);
        else if (!strcmp(a, "--group-size")) {
            group_set = true;
            if (!strcmp(v, "-1")) group = UINT32_MAX;
            else s = ra_cli_u32(a, v, 1, 1 << 20, &group);
        } else s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see quantize --help)", a);
    }
    if (s == RA_OK && (!model || !format || !out))
        s = ra_fail(RA_ERR_USAGE, "quantize needs --model, --format and --out (see quantize --help)");
    const ra_format *f = s == RA_OK ? ra_format_find(format) : NULL;
    if (s == RA_OK && (!f || !f->quant))
        s = ra_fail(RA_ERR_USAGE, "--format %s is not a quantized format (see `repro-audit formats`)", format);
    ra_qformat qf;
    if (s == RA_OK) {
        qf = *f->quant;
        bool integer = qf.family == RA_QF_AWQ || qf.family == RA_QF_GPTQ || qf.family == RA_QF_W4A16 ||
                       qf.family == RA_QF_MARLIN;
        bool gptq_rule = qf.family == RA_QF_GPTQ || qf.family == RA_QF_MARLIN;
        if (method && !strcmp(method, "gptq")) qf.method = RA_QMETHOD_GPTQ;
        else if (method && !strcmp(method, "awq")) qf.method = RA_QMETHOD_AWQ;
        else if (method && !strcmp(method, "rtn")) qf.method = RA_QMETHOD_RTN;
        else if (method) s = ra_fail(RA_ERR_USAGE, "--method is rtn, gptq or awq, not '%s'", method);
        if (s == RA_OK && qf.method == RA_QMETHOD_GPTQ && !gptq_rule)
            s = ra_fail(RA_ERR_USAGE, "--method gptq quantizes with GPTQ's rule: formats gptq and marlin, not %s", format);
        if (s == RA_OK && qf.method == RA_QMETHOD_AWQ && qf.family != RA_QF_AWQ)
            s = ra_fail(RA_ERR_USAGE, "--method awq quantizes with AutoAWQ's rule: format awq, not %s", format);
        if (s == RA_OK && group_set && !integer) s = ra_fail(RA_ERR_USAGE, "--group-size applies to the integer formats");
        if (s == RA_OK && group_set) qf.group_size = group == UINT32_MAX ? -1 : (int32_t)group;
        if (s == RA_OK && act_order && qf.family != RA_QF_GPTQ && qf.family != RA_QF_MARLIN && qf.family != RA_QF_W4A16)
            s = ra_fail(RA_ERR_USAGE, "--act-order applies to gptq, marlin and w4a16");
        if (act_order) qf.act_order = true;
    }
    ra_model_desc *d = NULL;
    ra_tokenizer *tok = NULL;
    ra_pool *pool = NULL;
    ra_text text = {0};
    int32_t *ids = NULL;
    ra_calib_tokens ct = {0};
    bool calibrated = s == RA_OK && ra_qformat_calibrated(&qf);
    if (s == RA_OK) s = ra_desc_open(model, 0, &d);
    if (s == RA_OK) s = ra_pool_new(threads, &pool);
    ra_model_config cfg;
    if (s == RA_OK) s = ra_config_from_desc(d, &cfg);
    if (s == RA_OK && !group_set) ra_qformat_fit_group(&qf, cfg.dim, cfg.n_heads * cfg.head_dim, cfg.ffn_dim);
    if (s == RA_OK && calibrated) {
        s = ra_tokenizer_from_desc(d, &tok);
        if (s == RA_OK) s = ra_text_load(calib, tok, &text);
        if (s == RA_OK) s = ra_text_slices(&text, false, samples, seq_len, &ids);
        ct = (ra_calib_tokens){ids, samples, seq_len, {0}};
        memcpy(ct.sha256, text.sha256, 32);
    }
    ra_quantize_stats st;
    ra_quantize_opts o = {&qf, format, calibrated ? &ct : NULL, pool, progress};
    if (s == RA_OK) s = ra_quantize_model(d, &o, out, &st);
    if (s == RA_OK) {
        printf("quantized %s as %s (%s%s) into %s\n", model, format, qf.method == RA_QMETHOD_GPTQ ? "GPTQ" : qf.method == RA_QMETHOD_AWQ ? "AWQ" : "RTN",
               qf.act_order ? ", act-order" : "", out);
        print_stats(&st, calibrated);
    }
    free(ids);
    ra_text_free(&text);
    ra_tokenizer_free(tok);
    ra_pool_free(pool);
    ra_desc_close(d);
    return ra_cli_report(s);
}
