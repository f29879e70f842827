/* repro-audit check: the nightly gate (include/ra/check.h, docs/fleet.md) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/check.h"
#include "ra/text.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit check --baseline BUNDLE RUN [--policy FILE] [--junit FILE] [--json FILE]\n"
    "\n"
    "The nightly gate: holds every run of the bundle RUN to the baseline bundle's\n"
    "reference run of the same format@kernel, scenario by scenario, and judges\n"
    "each format@kernel x scenario as the policy says. Both bundles must come from\n"
    "the same model, tokenizer, prompts and settings. A format@kernel that only one\n"
    "of them has fails (\"coverage\").\n"
    "\n"
    "Without a policy each scenario keeps its own expectation: bit-identical where\n"
    "the kernel promises determinism, different for a negative control, nothing\n"
    "otherwise. A policy (JSON) sets it per format@kernel and scenario:\n"
    "  {\"schema\": \"repro-audit.policy\", \"version\": 1,\n"
    "   \"rules\": {\"*\": {\"expect\": \"identical\"},\n"
    "             \"bf16@cublas\": {\"expect\": \"within\", \"kl_max\": 1e-4,\n"
    "                             \"max_abs_diff\": 0.05, \"top1_min\": 0.99},\n"
    "             \"q4_1@ggml-avx2:kernel\": {\"expect\": \"ignore\"}}}\n"
    "  expect: identical | within | different | ignore. Keys: \"F@K:SCENARIO\", then\n"
    "  \"*:SCENARIO\", then (not for kernel and control) \"F@K\" and \"*\". kl_max bounds\n"
    "  the farthest run's mean KL(baseline || run) in nats, max_abs_diff its largest\n"
    "  log-prob |difference|, top1_min its share of steps with the same top token.\n"
    "\n"
    "options:\n"
    "  --baseline BUNDLE  the bundle to hold RUN to (required)\n"
    "  --policy FILE      expectations (above); a malformed policy exits 2\n"
    "  --junit FILE       JUnit XML, one testcase per format@kernel x scenario, the\n"
    "                     first divergence in each failure (written atomically)\n"
    "  --json FILE        the result as JSON (\"-\": stdout instead of the text)\n"
    "  --quiet            no progress on stderr\n"
    "\n"
    "exit: 0 every case passed, 1 a case failed, 2 bad input (unreadable or\n"
    "incomparable bundles, a malformed policy, an unwritable output path)\n";

int ra_cmd_check(int argc, char **argv)
{
    const char *baseline = NULL, *run = NULL, *policy_path = NULL, *junit = NULL, *json = NULL;
    bool progress = isatty(2);
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        const char *a = argv[i], *v = NULL;
        if (ra_cli_is_help(a)) { fputs(usage, stdout); return RA_EXIT_OK; }
        else if (!strcmp(a, "--quiet")) progress = false;
        else if (!strcmp(a, "--progress")) progress = true;
        else if (strncmp(a, "--", 2) != 0) {
            if (run) s = ra_fail(RA_ERR_USAGE, "check takes one RUN bundle; '%s' is a second (see check --help)", a);
            run = a;
        } else if (!(v = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        else if (!strcmp(a, "--baseline")) baseline = v;
        else if (!strcmp(a, "--policy")) policy_path = v;
        else if (!strcmp(a, "--junit")) junit = v;
        else if (!strcmp(a, "--json")) json = v;
        else s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see check --help)", a);
    }
    if (s == RA_OK && (!baseline || !run)) s = ra_fail(RA_ERR_USAGE, "check needs --baseline BUNDLE and a RUN bundle (see check --help)");
    ra_policy *pol = NULL;
    ra_check_result *r = NULL;
    char *xml = NULL, *jtext = NULL;
    if (s == RA_OK && policy_path) s = ra_policy_load(policy_path, &pol);
    if (s == RA_OK) s = ra_check(baseline, run, pol, progress, &r);
    if (s == RA_OK && junit) s = ra_check_junit(r, &xml);
    if (s == RA_OK && junit) s = ra_write_file_atomic(junit, xml, strlen(xml));
    if (s == RA_OK && json) s = ra_check_json(r, &jtext);
    if (s == RA_OK && json && strcmp(json, "-")) s = ra_write_file_atomic(json, jtext, strlen(jtext));
    if (s == RA_OK && json && !strcmp(json, "-")) fputs(jtext, stdout);
    if (s == RA_OK && !(json && !strcmp(json, "-"))) {
        char e1[256], e2[256], e3[1400];
        printf("repro-audit check: %s against baseline %s\n", ra_esc(e1, sizeof e1, run), ra_esc(e2, sizeof e2, baseline));
        for (uint32_t i = 0; i < r->n; i++) {
            const ra_check_case *c = &r->cases[i];
            printf("  %-4s %-18s %-15s expected %s\n", c->pass ? "ok" : "FAIL", ra_esc(e1, sizeof e1, c->label),
                   ra_esc(e2, sizeof e2, c->scenario), ra_esc(e3, sizeof e3, c->expectation));
            if (!c->pass) printf("       %s\n", ra_esc(e3, sizeof e3, c->message));
        }
        printf("%u test cases, %u failed%s%s\n", r->n, r->failures, junit ? "; JUnit: " : "", junit ? ra_esc(e1, sizeof e1, junit) : "");
    }
    int rc = s != RA_OK ? ra_cli_report(s) : r->failures ? RA_EXIT_FAIL : RA_EXIT_OK;
    free(xml);
    free(jtext);
    ra_check_free(r);
    ra_policy_free(pol);
    return rc;
}
