/* The nightly gate: a run held to a baseline bundle under a policy, with
 * JUnit XML for CI (src/compare/check.c, docs/fleet.md).
 *
 * Policy (JSON, read by ra_json_parse: strict, no duplicate keys):
 *   {"schema": "repro-audit.policy", "version": 1,
 *    "rules": {"KEY": {"expect": "identical" | "within" | "different" | "ignore",
 *                      "kl_max": X, "max_abs_diff": Y, "top1_min": Z}}}
 * KEY is "*", "FORMAT@KERNEL", "*:SCENARIO" or "FORMAT@KERNEL:SCENARIO". A
 * test case (format@kernel x scenario) takes the first rule of: F@K:S, *:S,
 * then (not for the kernel and control scenarios, which differ by design)
 * F@K and *; without one, the scenario's own expectation (the kernel's
 * promise; a control must differ). "within" needs at least one bound: the
 * farthest run's mean KL(baseline || run) <= kl_max, max |diff| <=
 * max_abs_diff, top-1 agreement >= top1_min. */
#ifndef RA_CHECK_H
#define RA_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

#define RA_POLICY_MAX_BYTES ((size_t)1 << 20)
#define RA_POLICY_MAX_RULES 1024

typedef enum { RA_POLICY_IDENTICAL, RA_POLICY_WITHIN, RA_POLICY_DIFFERENT, RA_POLICY_IGNORE } ra_policy_expect;

typedef struct {
    char key[100];
    ra_policy_expect expect;
    double kl_max, max_abs, top1_min; /* NaN: no bound */
} ra_policy_rule;

typedef struct {
    uint32_t n;
    ra_policy_rule *rules;
} ra_policy;

/* name is for messages. Any problem is RA_ERR_FORMAT naming name and the rule. */
ra_status ra_policy_parse(const char *name, const char *text, size_t len, ra_policy **out);
ra_status ra_policy_load(const char *path, ra_policy **out);
void ra_policy_free(ra_policy *p);

typedef struct {
    char label[72];          /* "q4_1@cpu" */
    char scenario[32];       /* "repeat", "batch", ...; "coverage" for a format@kernel one bundle lacks */
    char expectation[128];   /* what was expected and by which rule */
    bool pass;
    char message[1024];      /* the verdict; on failure the first divergence */
} ra_check_case;

typedef struct {
    char *baseline, *run;
    uint32_t n;
    ra_check_case *cases;
    uint32_t failures;
} ra_check_result;

/* Compares run against baseline (ra_compare_bundles: same model, tokenizer,
 * prompts and settings, else RA_ERR_USAGE) and judges every format@kernel x
 * scenario. pol may be NULL. progress: lines on stderr. */
ra_status ra_check(const char *baseline, const char *run, const ra_policy *pol, bool progress, ra_check_result **out);
void ra_check_free(ra_check_result *r);
/* JUnit XML: one <testsuite>, one <testcase> per case, <failure> with the message. */
ra_status ra_check_junit(const ra_check_result *r, char **xml);
ra_status ra_check_json(const ra_check_result *r, char **text);

#endif
