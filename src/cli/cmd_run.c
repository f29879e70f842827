/* repro-audit run */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/audit.h"
#include "ra/textset.h"
#include "ra/trace.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit run --model MODEL --out DIR [options]\n"
    "\n"
    "Runs every prompt through the model in each format@kernel, REPEATS times,\n"
    "and writes a bundle: manifest.json, one hashed trace per (format@kernel,\n"
    "run), report.json and report.md. DIR appears only when the run is complete.\n"
    "\n"
    "options:\n"
    "  --model MODEL         a GGUF file or an HF checkpoint directory (config.json,\n"
    "                        tokenizer.json, *.safetensors); llama, mistral, qwen2, qwen3\n"
    "  --out DIR             bundle directory to create (must not exist)\n"
    "  --formats A,B,...     formats to run, each FORMAT or FORMAT@KERNEL (default\n"
    "                        q4_1,f32,bf16, or a quantized checkpoint's own format; see\n"
    "                        `repro-audit formats`). A bare FORMAT runs on its default\n"
    "                        kernel: on the GPU when there is one and the format has a\n"
    "                        GPU kernel, else on the CPU. Checkpoint formats (awq, gptq,\n"
    "                        w4a16, marlin, fp8, nvfp4, mxfp4, ...) of an unquantized\n"
    "                        model are derived as `quantize` writes them, and cached\n"
    "  --cache-dir DIR       where derived checkpoints are cached (default\n"
    "                        $REPRO_AUDIT_CACHE, $XDG_CACHE_HOME/repro-audit or\n"
    "                        ~/.cache/repro-audit), by the SHA-256 of model, format,\n"
    "                        parameters, calibration text and tool version\n"
    "  --no-cache            derive into a temporary directory, removed afterwards\n"
    "  --calib FILE          calibration text of gptq-cal*, gptq-act (default\n"
    "                        " RA_DEFAULT_TEXT ", `make text`)\n"
    "  --device auto|cpu|gpu where bare formats run (default auto); gpu fails\n"
    "                        when no CUDA GPU can be used\n"
    "  --prompts FILE.jsonl  prompt set (default: the 10 prompts of data/prompts.jsonl,\n"
    "                        built into the binary)\n"
    "  --max-new-tokens N    tokens to generate per prompt (default 32)\n"
    "  --repeats R           runs of each format in this process (default 3)\n"
    "  --mode generate|score greedy generation, or teacher-forced scoring of each\n"
    "                        prompt's continuation (default generate)\n"
    "  --top-k K             top-k log-probs stored per step (default 20)\n"
    "  --store-full first|all|none  full log-prob vectors stored: in repeat 0 only\n"
    "                        (default), in every repeat, or never\n"
    "  --scenarios LIST      comma list; each scenario's runs are held to repeat 0 and\n"
    "                        get their own verdict (docs/scenarios.md):\n"
    "                          repeat          REPEATS runs in this process (always)\n"
    "                          process         --processes fresh processes, one run each\n"
    "                          batch           every prompt alone, then in batches of\n"
    "                                          2..--batch-max at every position\n"
    "                          prefill-decode  each generated sequence re-scored in one\n"
    "                                          prefill pass (generate mode)\n"
    "                          threads         CPU kernels: on 1 thread (2 if running on 1)\n"
    "                          control         negative control: --perturb's weight one\n"
    "                                          ulp off; must come out DIFFERENT\n"
    "                          kernel          (compare) every kernel of a format held\n"
    "                                          to its first: list them in --formats\n"
    "                          all             every one of the above\n"
    "  --processes N         process scenario: fresh processes (default 2)\n"
    "  --batch-max N         batch scenario: largest batch size (default 3)\n"
    "  --perturb L:TENSOR    control: the weight to move, TENSOR one of q_proj k_proj\n"
    "                        v_proj o_proj gate_proj up_proj down_proj (default 0:down_proj)\n"
    "  --plant L:TENSOR      every run with that weight one ulp off: a planted difference\n"
    "                        that `check` and `locate` must find (recorded in the manifest)\n"
    "  --ignore-eos          keep generating after the end-of-sequence token\n"
    "  --no-graphs           CUDA: launch each kernel instead of replaying graphs\n"
    "  --threads N           CPU threads (default: all); results do not depend on it\n"
    "  --quiet               no progress on stderr\n";

static ra_status parse_scenarios(const char *list, ra_run_opts *o)
{
    bool always; /* repeat runs anyway; kernel is judged by compare from --formats */
    const struct { const char *name; bool *on; } known[] = {
        {"repeat", &always}, {"kernel", &always}, {"process", &o->process_scenario}, {"batch", &o->batch_scenario},
        {"prefill-decode", &o->prefill_decode_scenario}, {"threads", &o->threads_scenario}, {"control", &o->control_scenario}};
    const size_t n_known = sizeof known / sizeof *known;
    for (size_t i = 0; i < n_known; i++) *known[i].on = false;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ","), hits = 0;
        bool all = n == 3 && !strncmp(p, "all", 3);
        for (size_t i = 0; i < n_known; i++)
            if (all || (n == strlen(known[i].name) && !strncmp(p, known[i].name, n))) *known[i].on = true, hits++;
        if (!hits)
            return ra_fail(RA_ERR_USAGE, "unknown scenario '%.*s' (known: repeat, process, batch, prefill-decode, threads, "
                           "kernel, control, all)", (int)n, p);
        p += n + (p[n] == ',');
    }
    return RA_OK;
}

int ra_cmd_run(int argc, char **argv)
{
    ra_run_opts o = {.prompts_path = NULL, .max_new_tokens = 32, .repeats = 3, .top_k = 20,
                     .store_full = RA_STORE_FIRST, .progress = isatty(2)};
    const char *formats = NULL;
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i], *v = NULL;
        if (ra_cli_is_help(a)) { fputs(usage, stdout); return RA_EXIT_OK; }
        else if (!strcmp(a, "--ignore-eos")) o.ignore_eos = true;
        else if (!strcmp(a, "--quiet")) o.progress = false;
        else if (!strcmp(a, "--no-graphs")) o.no_graphs = true;
        else if (!strcmp(a, "--progress")) o.progress = true;
        else if (!strcmp(a, "--no-cache")) o.no_cache = true;
        else if (strncmp(a, "--", 2) != 0) s = ra_fail(RA_ERR_USAGE, "unexpected argument '%s' (see run --help)", a);
        else if (!(v = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        else if (!strcmp(a, "--model")) o.model_path = v;
        else if (!strcmp(a, "--out")) o.out_dir = v;
        else if (!strcmp(a, "--formats")) formats = v;
        else if (!strcmp(a, "--cache-dir")) o.cache_dir = v;
        else if (!strcmp(a, "--calib")) o.calib_path = v;
        else if (!strcmp(a, "--prompts")) o.prompts_path = v;
        else if (!strcmp(a, "--max-new-tokens")) s = ra_cli_u32(a, v, 1, 100000, &o.max_new_tokens);
        else if (!strcmp(a, "--repeats")) s = ra_cli_u32(a, v, 1, 1000, &o.repeats);
        else if (!strcmp(a, "--top-k")) s = ra_cli_u32(a, v, 1, RA_TRACE_MAX_TOP_K, &o.top_k);
        else if (!strcmp(a, "--threads")) s = ra_cli_u32(a, v, 1, 256, &o.threads);
        else if (!strcmp(a, "--processes")) s = ra_cli_u32(a, v, 1, 100, &o.processes);
        else if (!strcmp(a, "--batch-max")) s = ra_cli_u32(a, v, 1, 64, &o.batch_max);
        else if (!strcmp(a, "--perturb")) o.perturb = v;
        else if (!strcmp(a, "--plant")) o.plant = v;
        else if (!strcmp(a, "--first-repeat")) s = ra_cli_u32(a, v, 0, 1000000, &o.first_repeat); /* internal: process scenario */
        else if (!strcmp(a, "--device")) {
            if (!strcmp(v, "auto")) o.device = RA_DEVICE_AUTO;
            else if (!strcmp(v, "cpu")) o.device = RA_DEVICE_CPU;
            else if (!strcmp(v, "gpu")) o.device = RA_DEVICE_GPU;
            else s = ra_fail(RA_ERR_USAGE, "--device is auto, cpu or gpu, not '%s'", v);
        } else if (!strcmp(a, "--scenarios")) s = parse_scenarios(v, &o);
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "generate")) o.score = false;
            else if (!strcmp(v, "score")) o.score = true;
            else s = ra_fail(RA_ERR_USAGE, "--mode is generate or score, not '%s'", v);
        } else if (!strcmp(a, "--store-full")) {
            if (!strcmp(v, "first")) o.store_full = RA_STORE_FIRST;
            else if (!strcmp(v, "all")) o.store_full = RA_STORE_ALL;
            else if (!strcmp(v, "none")) o.store_full = RA_STORE_NONE;
            else s = ra_fail(RA_ERR_USAGE, "--store-full is first, all or none, not '%s'", v);
        } else s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see run --help)", a);
    }
    if (s == RA_OK && (!o.model_path || !o.out_dir)) s = ra_fail(RA_ERR_USAGE, "run needs --model and --out (see run --help)");

    /* Split the comma list in place. */
    char *list = NULL;
    const char *names[64];
    if (s == RA_OK && formats) s = ra_strdup(&list, formats);
    if (s == RA_OK && formats) {
        for (char *tok = strtok(list, ","); tok && s == RA_OK; tok = strtok(NULL, ",")) {
            if (o.n_formats == 64) s = ra_fail(RA_ERR_USAGE, "too many formats");
            else names[o.n_formats++] = tok;
        }
        o.formats = names;
    }
    if (s == RA_OK) s = ra_run(&o);
    free(list);
    if (s != RA_OK) return ra_cli_report(s);
    return RA_EXIT_OK;
}
