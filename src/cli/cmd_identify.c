/* repro-audit identify: which format@kernel of some bundles most likely
 * produced a trace. A bit-exact digest match settles it; otherwise the
 * nearest by mean KL(candidate || trace) over the steps both have, with the
 * margin to the runner-up. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/bundle.h"
#include "ra/compare.h"
#include "ra/text.h"
#include "ra/trace.h"
#include "ra/util.h"

static const char identify_usage[] =
    "usage: repro-audit identify TRACE --against BUNDLE [BUNDLE ...]\n"
    "\n"
    "Names the format@kernel that most likely produced TRACE (a .ratrace file).\n"
    "First by its digest: a run of the bundles with the same trace digest gave the\n"
    "same tokens and log-prob bits at every step (read and held to its manifest\n"
    "before it counts). Otherwise every format@kernel's reference run (the first that\n"
    "stored full vectors) is compared with TRACE as compare compares two runs (generate\n"
    "mode: each sequence up to its first token divergence) and ranked by mean\n"
    "KL(candidate || TRACE) over those steps; candidates with top-k entries only (no\n"
    "KL) come after, by same top p. The margin is the runner-up's mean KL minus the\n"
    "best one's. TRACE must hold the same prompts (token ids) and vocabulary as the\n"
    "bundles; the bundles must share model, prompt set and mode.\n"
    "\n"
    "exit: 0 a candidate was named, 2 bad input (unreadable files, other prompts or\n"
    "model, no candidates)\n";

typedef struct {
    char label[72], run[300];
    bool ref_full;  /* the run compared stored full vectors */
    ra_pair_stats p;
} candidate;

static int by_distance(const void *x, const void *y)
{
    const ra_pair_stats *a = &((const candidate *)x)->p, *b = &((const candidate *)y)->p;
    if (a->identical != b->identical) return a->identical ? -1 : 1;
    if (a->full != b->full) return a->full ? -1 : 1;
    double da = a->full ? a->kl_mean : 1 - a->top1_agree, db = b->full ? b->kl_mean : 1 - b->top1_agree;
    return (da > db) - (da < db);
}

static ra_status check_same_inputs(ra_bundle *const *b, uint32_t n, const ra_trace *t)
{
    for (uint32_t i = 0; i < n; i++) {
        const char *what = strcmp(b[i]->mode, t->meta.mode) ? "mode"
                           : i && strcmp(b[i]->model_sha256, b[0]->model_sha256) ? "model file"
                           : i && strcmp(b[i]->prompts_sha256, b[0]->prompts_sha256) ? "prompt set"
                                                                                      : NULL;
        if (what) return ra_fail(RA_ERR_USAGE, "%s differs in %s from the trace or the first bundle; identify needs the same inputs", b[i]->dir, what);
    }
    return RA_OK;
}

/* Every format@kernel of the bundles: its reference run compared with t. */
static ra_status rank(ra_bundle *const *b, uint32_t nb, const ra_trace *t, candidate **out, uint32_t *n_out, uint32_t *exact)
{
    candidate *c = NULL;
    uint32_t n = 0;
    size_t total = 0;
    for (uint32_t i = 0; i < nb; i++) total += b[i]->n_traces;
    bool generate = !strcmp(t->meta.mode, "generate");
    ra_status s = ra_calloc(&c, total ? total : 1, sizeof *c);
    *exact = 0;
    for (uint32_t i = 0; s == RA_OK && i < nb; i++)
        for (uint32_t k = 0; s == RA_OK && k < b[i]->n_traces; k++) {
            const ra_bundle_trace *bt = &b[i]->traces[k];
            char label[72];
            snprintf(label, sizeof label, "%s@%s", bt->format, bt->kernel);
            bool match = memcmp(bt->digest, t->digest, 32) == 0;
            uint32_t j = 0;
            while (j < n && strcmp(c[j].label, label)) j++;
            /* a group's candidate: its first run with full vectors, or a run that matches exactly */
            bool take = j == n || (match && !c[j].p.identical) || (!c[j].p.identical && bt->full && !c[j].ref_full);
            if (!take) continue;
            ra_trace *r;
            if ((s = ra_bundle_read_trace(b[i], k, &r)) != RA_OK) break;
            if (ra_cli_progress()) fprintf(stderr, "\ridentify: reading %u of %u runs   ", k + 1, b[i]->n_traces);
            if (j == n) n++;
            else ra_pair_stats_free(&c[j].p);
            memset(&c[j], 0, sizeof c[j]);
            c[j].ref_full = bt->full;
            snprintf(c[j].label, sizeof c[j].label, "%s", label);
            snprintf(c[j].run, sizeof c[j].run, "%s/%s", b[i]->dir, bt->rel);
            s = ra_compare_traces(r, t, generate, false, &c[j].p);
            ra_trace_free(r);
        }
    if (ra_cli_progress()) fputc('\n', stderr);
    for (uint32_t j = 0; j < n; j++) *exact += c[j].p.identical;
    if (s == RA_OK && n == 0) s = ra_fail(RA_ERR_USAGE, "the bundles hold no runs to compare with");
    if (s == RA_OK && n > 1) qsort(c, n, sizeof *c, by_distance);
    if (s != RA_OK) {
        for (uint32_t j = 0; j < n; j++) ra_pair_stats_free(&c[j].p);
        free(c);
        return s;
    }
    *out = c;
    *n_out = n;
    return RA_OK;
}

static void report(const candidate *c, uint32_t n, uint32_t exact, const char *trace_path, const ra_trace *t)
{
    char e1[512], e2[512], dig[65];
    ra_hex(t->digest, 32, dig);
    printf("identify %s (digest %.16s, %u sequences, mode %s)\n\n", ra_esc(e1, sizeof e1, trace_path), dig, t->n_seqs,
           !strcmp(t->meta.mode, "score") ? "score" : "generate");
    printf("  %-16s %6s %9s %11s %10s  %-16s %s\n", "format@kernel", "steps", "bit-exact", "mean KL", "same top p", "first divergence",
           "run compared");
    for (uint32_t j = 0; j < n; j++) {
        const ra_pair_stats *p = &c[j].p;
        char kl[32], div[48];
        if (p->full) snprintf(kl, sizeof kl, "%.3e", p->kl_mean);
        else snprintf(kl, sizeof kl, "n/a (top-k)");
        if (p->divergence.seq < 0) snprintf(div, sizeof div, "-");
        else snprintf(div, sizeof div, "seq %lld step %lld", (long long)p->divergence.seq, (long long)p->divergence.step);
        printf("  %-16s %6llu %8.1f%% %11s %9.2f%%  %-16s %s\n", ra_esc(e1, sizeof e1, c[j].label), (unsigned long long)p->steps,
               p->steps ? 100.0 * (double)p->bit_exact_steps / (double)p->steps : 100.0, kl, 100 * p->top1_agree, div,
               ra_esc(e2, sizeof e2, c[j].run));
    }
    if (exact) {
        printf("\nbit-exact: the trace digest equals that of ");
        for (uint32_t j = 0, k = 0; j < n; j++)
            if (c[j].p.identical) printf("%s%s (%s)", k++ ? ", " : "", ra_esc(e1, sizeof e1, c[j].label), ra_esc(e2, sizeof e2, c[j].run));
        printf(exact > 1 ? "\n(these format@kernel gave the same bits; the trace cannot tell them apart)\n" : "\n");
        return;
    }
    printf("\nmost likely: %s, mean KL %s", ra_esc(e1, sizeof e1, c[0].label), c[0].p.full ? "" : "n/a (top-k only)");
    if (c[0].p.full) printf("%.3e", c[0].p.kl_mean);
    if (n > 1 && c[0].p.full && c[1].p.full)
        printf("; runner-up %s at %.3e, margin %.3e (%.1fx)\n", ra_esc(e2, sizeof e2, c[1].label), c[1].p.kl_mean,
               c[1].p.kl_mean - c[0].p.kl_mean, c[0].p.kl_mean > 0 ? c[1].p.kl_mean / c[0].p.kl_mean : INFINITY);
    else if (n > 1)
        printf("; runner-up %s (same top p %.2f%% vs %.2f%%)\n", ra_esc(e2, sizeof e2, c[1].label), 100 * c[1].p.top1_agree,
               100 * c[0].p.top1_agree);
    else printf("; no runner-up (one candidate)\n");
    printf("no run is bit-exact: this names the nearest, it does not prove which produced the trace\n");
}

int ra_cmd_identify(int argc, char **argv)
{
    const char *trace_path = NULL;
    const char **dirs = calloc((size_t)argc, sizeof *dirs);
    uint32_t nd = 0;
    bool against = false;
    ra_status s = dirs ? RA_OK : ra_fail(RA_ERR_NOMEM, "out of memory");
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i];
        if (ra_cli_is_help(a)) {
            fputs(identify_usage, stdout);
            free(dirs);
            return RA_EXIT_OK;
        } else if (!strcmp(a, "--against")) against = true;
        else if (!strncmp(a, "--", 2)) s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see identify --help)", a);
        else if (against) dirs[nd++] = a;
        else if (!trace_path) trace_path = a;
        else s = ra_fail(RA_ERR_USAGE, "one trace at a time (see identify --help)");
    }
    if (s == RA_OK && (!trace_path || nd == 0)) s = ra_fail(RA_ERR_USAGE, "identify needs TRACE --against BUNDLE... (see identify --help)");
    if (s == RA_OK && ra_is_dir(trace_path)) s = ra_fail(RA_ERR_USAGE, "%s is a directory; identify takes one trace file", trace_path);
    ra_trace *t = NULL;
    ra_bundle **b = NULL;
    if (s == RA_OK) s = ra_trace_read(trace_path, &t);
    if (s == RA_OK) s = ra_calloc(&b, nd, sizeof *b);
    uint32_t opened = 0;
    for (; s == RA_OK && opened < nd; opened++) s = ra_bundle_open(dirs[opened], &b[opened]);
    if (s == RA_OK) s = check_same_inputs(b, nd, t);
    candidate *c = NULL;
    uint32_t n = 0, exact = 0;
    if (s == RA_OK) s = rank(b, nd, t, &c, &n, &exact);
    if (s == RA_OK) report(c, n, exact, trace_path, t);
    for (uint32_t j = 0; j < n; j++) ra_pair_stats_free(&c[j].p);
    free(c);
    for (uint32_t i = 0; b && i < nd; i++) ra_bundle_close(b[i]);
    free(b);
    ra_trace_free(t);
    free(dirs);
    return ra_cli_report(s);
}
