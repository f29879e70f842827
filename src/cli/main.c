/* repro-audit: command dispatch. Each command lives in src/cli/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/engine.h"
#include "ra/format.h"
#include "ra/version.h"


static int cmd_formats(int argc, char **argv)
{
    if (argc > 1 && ra_cli_is_help(argv[1])) {
        puts("usage: repro-audit formats\n\nLists every format, the kernels that run it (format@kernel, the name every\n"
             "result is keyed by), where each runs, whether it promises bit-identical\n"
             "results run to run and across batch compositions, and whether this machine\n"
             "has a GPU the CUDA kernels can use.");
        return RA_EXIT_OK;
    }
    if (argc > 1) return ra_cli_report(ra_fail(RA_ERR_USAGE, "formats takes no arguments (see formats --help)"));
    char why[256];
    bool gpu = ra_cuda_available(why, sizeof why);
    printf("%-18s %-7s %-14s %s\n", "format@kernel", "runs on", "deterministic", "description");
    for (size_t i = 0; i < ra_format_count(); i++) {
        const ra_format *f = ra_format_at(i);
        printf("%-18s %-7s %-14s %s\n", f->name, "", "", f->description);
        for (size_t j = 0; f->kernels[j]; j++) {
            const ra_kernel *k = ra_kernel_find(f->kernels[j]);
            char label[64];
            snprintf(label, sizeof label, "  %s@%s", f->name, k->name);
            printf("%-18s %-7s %-14s %s\n", label, k->backend == RA_BACKEND_CPU ? "cpu" : "gpu",
                   k->deterministic ? "yes" : "not promised", k->description);
        }
    }
    printf("\nGPU: %s%s\n", gpu ? "" : "none: ", why);
    return RA_EXIT_OK;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"run", ra_cmd_run, "run prompts through the model in several formats; write a hashed bundle"},
    {"compare", ra_cmd_compare, "verdicts and distance tables for one or more bundles"},
    {"verify", ra_cmd_verify, "re-hash a bundle and check every digest"},
    {"dump", ra_cmd_dump, "a trace or bundle, step by step, as JSON lines or CSV"},
    {"identify", ra_cmd_identify, "which format@kernel of some bundles most likely produced a trace"},
    {"locate", ra_cmd_locate, "the first (step, layer, op) where two runs of a bundle part"},
    {"check", ra_cmd_check, "the nightly gate: a run held to a baseline bundle under a policy; JUnit XML"},
    {"inspect", ra_cmd_inspect, "a GGUF file's metadata and tensors, or an HF checkpoint's description"},
    {"tokenize", ra_cmd_tokenize, "show the token ids of a text or a prompt set"},
    {"export-hf", ra_cmd_export_hf, "write the model as an HF checkpoint (safetensors, config, tokenizer)"},
    {"quantize", ra_cmd_quantize, "quantize a model into an AWQ, GPTQ, compressed-tensors, FP8 or FP4 checkpoint, or a GGUF (q4_k_m, q8_0, q4_0)"},
    {"ppl", ra_cmd_ppl, "perplexity per format over the evaluation text"},
    {"formats", cmd_formats, "list the weight formats and their kernels"},
    {"bench", ra_cmd_bench, "time the GPU kernels against ceilings measured in the same run"},
};

static void usage(FILE *f)
{
    fprintf(f, "repro-audit %s: determinism and reproducibility audits of LLM inference\n\n"
               "usage: repro-audit COMMAND [options]   (repro-audit COMMAND --help for more)\n\ncommands:\n",
            RA_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit codes: 0 ok, 1 a determinism expectation failed, 2 bad input or usage\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return RA_EXIT_USAGE;
    }
    if (ra_cli_is_help(argv[1]) || !strcmp(argv[1], "help")) {
        usage(stdout);
        return RA_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("repro-audit %s (%s)\n", RA_VERSION, RA_GIT_COMMIT);
        return RA_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "repro-audit: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return RA_EXIT_USAGE;
}
