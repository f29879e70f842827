/* repro-audit locate (include/ra/locate.h) */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/locate.h"
#include "ra/text.h"

static const char usage[] =
    "usage: repro-audit locate BUNDLE --pair A,B [--model MODEL] [--threads N]\n"
    "\n"
    "Where two runs of a bundle first part, down to the op: the first sequence on\n"
    "which their traces differ is re-run for each, the prompt and then its tokens\n"
    "one step at a time (teacher-forced on A's tokens), hashing the output of every\n"
    "op of every layer; prints the first (step, layer, op) whose hashes differ,\n"
    "e.g. \"step 3, layer 0, mlp.down_proj output\", and whether each re-run\n"
    "reproduced its trace's step hashes (it should: else the locating is moot).\n"
    "A run is FORMAT@KERNEL (its first repeat) or FORMAT@KERNEL:SCENARIO (e.g.\n"
    "q4_1@cpu:control-ulp, q4_1@cpu:batch-2-1). A control run, and every run of a\n"
    "bundle made with --plant, is re-run with the same weight one ulp off.\n"
    "CPU kernels only (the engine's activation probe).\n"
    "\n"
    "ops, in order: embed; per layer input_layernorm, self_attn.{q,k,v}_proj,\n"
    "self_attn.attention, self_attn.o_proj, attn_residual,\n"
    "post_attention_layernorm, mlp.gate_proj, mlp.up_proj, mlp.act (silu(gate)*up),\n"
    "mlp.down_proj, mlp_residual; then norm, lm_head.log_softmax.\n"
    "\n"
    "options:\n"
    "  --pair A,B       the two runs (required)\n"
    "  --model MODEL    the model (default: the manifest's path; its SHA-256 must match)\n"
    "  --cache-dir DIR  where derived checkpoint formats are cached\n"
    "  --threads N      CPU threads (default: all)\n"
    "  --quiet          no progress on stderr\n"
    "\n"
    "exit: 0 located (or the runs are bit-identical), 1 the re-runs do not part or\n"
    "do not reproduce their traces, 2 bad input\n";

int ra_cmd_locate(int argc, char **argv)
{
    ra_locate_opts o = {.progress = isatty(2)};
    char pair[200] = "";
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i], *v = NULL;
        if (ra_cli_is_help(a)) { fputs(usage, stdout); return RA_EXIT_OK; }
        else if (!strcmp(a, "--quiet")) o.progress = false;
        else if (strncmp(a, "--", 2) != 0) {
            if (o.bundle) s = ra_fail(RA_ERR_USAGE, "locate takes one BUNDLE; '%s' is a second (see locate --help)", a);
            o.bundle = a;
        } else if (!(v = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        else if (!strcmp(a, "--pair")) {
            if (strlen(v) >= sizeof pair || !strchr(v, ',') || strchr(strchr(v, ',') + 1, ','))
                s = ra_fail(RA_ERR_USAGE, "--pair is A,B: two runs, e.g. q4_1@cpu,q4_1@cpu:control-ulp");
            else snprintf(pair, sizeof pair, "%s", v);
        } else if (!strcmp(a, "--model")) o.model_path = v;
        else if (!strcmp(a, "--cache-dir")) o.cache_dir = v;
        else if (!strcmp(a, "--threads")) s = ra_cli_u32(a, v, 1, 256, &o.threads);
        else s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see locate --help)", a);
    }
    if (s == RA_OK && (!o.bundle || !pair[0])) s = ra_fail(RA_ERR_USAGE, "locate needs BUNDLE and --pair A,B (see locate --help)");
    if (s == RA_OK) {
        char *comma = strchr(pair, ',');
        *comma = 0;
        o.a = pair;
        o.b = comma + 1;
    }
    ra_locate_result r;
    if (s == RA_OK) s = ra_locate(&o, &r);
    if (s != RA_OK) return ra_cli_report(s);
    char e1[256], e2[256];
    printf("repro-audit locate: %s, %s against %s\n", ra_esc(e1, sizeof e1, o.bundle), ra_esc(e2, sizeof e2, o.b), o.a);
    if (r.identical) {
        printf("  the two runs are bit-identical: nothing to locate\n");
        return RA_EXIT_OK;
    }
    printf("  traces first differ: sequence %lld, step %lld\n", (long long)r.seq, (long long)r.step);
    printf("  re-run A: %s, reproduces its trace: %s\n", ra_esc(e1, sizeof e1, r.run_a), r.reproduced_a ? "yes" : "NO");
    printf("  re-run B: %s, reproduces its trace: %s\n", ra_esc(e1, sizeof e1, r.run_b), r.reproduced_b ? "yes" : "NO");
    if (!r.found) {
        printf("  the re-runs do not part at any op (the difference is not in this engine's computation)\n");
        return RA_EXIT_FAIL;
    }
    char layer[32];
    if (r.layer < 0) snprintf(layer, sizeof layer, "%s", r.pass == 0 && !strcmp(r.op, "embed") ? "before layer 0" : "after the last layer");
    else snprintf(layer, sizeof layer, "layer %d", r.layer);
    printf("first difference: step %u%s, %s, %s output (%llu op outputs identical before it)\n", r.pass,
           r.pass == 0 ? " (the prompt pass)" : "", layer, r.op, (unsigned long long)r.ops_equal);
    return r.reproduced_a && r.reproduced_b ? RA_EXIT_OK : RA_EXIT_FAIL;
}
