/* check: the nightly gate (include/ra/check.h). The run's traces are pooled
 * with the baseline's, the baseline first, so every scenario verdict holds
 * them to the baseline's reference run; the policy then says what each
 * format@kernel x scenario must show. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/bundle.h"
#include "ra/check.h"
#include "ra/compare.h"
#include "ra/json.h"
#include "ra/text.h"
#include "ra/util.h"

/* ---- policy --------------------------------------------------------------- */

static const char *const expect_names[] = {"identical", "within", "different", "ignore"};

/* "*", or a format@kernel of lowercase names, then optionally ":scenario". */
static bool valid_key(const char *k)
{
    const char *colon = strchr(k, ':');
    size_t head = colon ? (size_t)(colon - k) : strlen(k);
    bool star = head == 1 && k[0] == '*';
    if (!star) {
        const char *at = memchr(k, '@', head);
        if (!at || at == k || at + 1 == k + head || strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_.-@") < head ||
            memchr(at + 1, '@', head - (size_t)(at + 1 - k)))
            return false;
    }
    if (!colon) return true;
    return colon[1] && strspn(colon + 1, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(colon + 1);
}

static ra_status bound(const char *name, const char *key, const cJSON *rule, const char *field, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rule, field);
    *out = NAN;
    if (!v) return RA_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return ra_fail(RA_ERR_FORMAT, "%s: rule \"%s\": \"%s\" must be a number in [%g, %g]", name, key, field, lo, hi);
    *out = v->valuedouble;
    return RA_OK;
}

static ra_status parse_rule(const char *name, const cJSON *item, ra_policy_rule *r)
{
    char key[64];
    ra_esc(key, sizeof key, item->string);
    if (strlen(item->string) >= sizeof r->key || !valid_key(item->string))
        return ra_fail(RA_ERR_FORMAT, "%s: rule key \"%s\" is not *, FORMAT@KERNEL, *:SCENARIO or FORMAT@KERNEL:SCENARIO", name, key);
    if (!cJSON_IsObject(item)) return ra_fail(RA_ERR_FORMAT, "%s: rule \"%s\" must be an object", name, key);
    for (const cJSON *f = item->child; f; f = f->next)
        if (strcmp(f->string, "expect") && strcmp(f->string, "kl_max") && strcmp(f->string, "max_abs_diff") &&
            strcmp(f->string, "top1_min")) {
            char fe[64];
            return ra_fail(RA_ERR_FORMAT, "%s: rule \"%s\": unknown field \"%s\" (expect, kl_max, max_abs_diff, top1_min)", name,
                           key, ra_esc(fe, sizeof fe, f->string));
        }
    snprintf(r->key, sizeof r->key, "%s", item->string);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(item, "expect");
    if (!cJSON_IsString(e)) return ra_fail(RA_ERR_FORMAT, "%s: rule \"%s\" needs \"expect\": identical, within, different or ignore", name, key);
    size_t i = 0;
    while (i < 4 && strcmp(e->valuestring, expect_names[i])) i++;
    if (i == 4) return ra_fail(RA_ERR_FORMAT, "%s: rule \"%s\": \"expect\" is identical, within, different or ignore", name, key);
    r->expect = (ra_policy_expect)i;
    RA_TRY(bound(name, key, item, "kl_max", 0, INFINITY, &r->kl_max));
    RA_TRY(bound(name, key, item, "max_abs_diff", 0, INFINITY, &r->max_abs));
    RA_TRY(bound(name, key, item, "top1_min", 0, 1, &r->top1_min));
    bool any = !isnan(r->kl_max) || !isnan(r->max_abs) || !isnan(r->top1_min);
    if (r->expect == RA_POLICY_WITHIN && !any)
        return ra_fail(RA_ERR_FORMAT, "%s: rule \"%s\": \"within\" needs kl_max, max_abs_diff or top1_min", name, key);
    if (r->expect != RA_POLICY_WITHIN && any)
        return ra_fail(RA_ERR_FORMAT, "%s: rule \"%s\": bounds belong to \"expect\": \"within\" only", name, key);
    return RA_OK;
}

ra_status ra_policy_parse(const char *name, const char *text, size_t len, ra_policy **out)
{
    *out = NULL;
    cJSON *root;
    RA_TRY(ra_json_parse(name, text, len, 6 * RA_POLICY_MAX_RULES + 16, &root)); /* a rule: its object and up to 4 fields */
    ra_policy *p = NULL;
    ra_status s = RA_OK;
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (!cJSON_IsObject(root)) s = ra_fail(RA_ERR_FORMAT, "%s: a policy is a JSON object", name);
    else if (!cJSON_IsString(schema) || strcmp(schema->valuestring, "repro-audit.policy"))
        s = ra_fail(RA_ERR_FORMAT, "%s: \"schema\" must be \"repro-audit.policy\"", name);
    else if (!cJSON_IsNumber(version) || version->valuedouble != 1)
        s = ra_fail(RA_ERR_FORMAT, "%s: \"version\" must be 1 (the only policy version this tool reads)", name);
    else if (!cJSON_IsObject(rules)) s = ra_fail(RA_ERR_FORMAT, "%s: \"rules\" must be an object of KEY: rule", name);
    for (const cJSON *f = root->child; s == RA_OK && f; f = f->next)
        if (strcmp(f->string, "schema") && strcmp(f->string, "version") && strcmp(f->string, "rules")) {
            char fe[64];
            s = ra_fail(RA_ERR_FORMAT, "%s: unknown field \"%s\" (schema, version, rules)", name, ra_esc(fe, sizeof fe, f->string));
        }
    size_t n = s == RA_OK ? (size_t)cJSON_GetArraySize(rules) : 0;
    if (s == RA_OK && n > RA_POLICY_MAX_RULES) s = ra_fail(RA_ERR_FORMAT, "%s: more than %d rules", name, RA_POLICY_MAX_RULES);
    if (s == RA_OK) s = ra_calloc(&p, 1, sizeof *p);
    if (s == RA_OK && n) s = ra_calloc(&p->rules, n, sizeof *p->rules);
    for (const cJSON *r = s == RA_OK ? rules->child : NULL; r && s == RA_OK; r = r->next) s = parse_rule(name, r, &p->rules[p->n++]);
    cJSON_Delete(root);
    if (s != RA_OK) {
        ra_policy_free(p);
        return s;
    }
    *out = p;
    return RA_OK;
}

ra_status ra_policy_load(const char *path, ra_policy **out)
{
    uint8_t *data;
    size_t len;
    RA_TRY(ra_read_file_max(path, RA_POLICY_MAX_BYTES, &data, &len));
    ra_status s = ra_policy_parse(path, (const char *)data, len, out);
    free(data);
    return s;
}

void ra_policy_free(ra_policy *p)
{
    if (!p) return;
    free(p->rules);
    free(p);
}

static const ra_policy_rule *find_rule(const ra_policy *p, const char *key)
{
    for (uint32_t i = 0; p && i < p->n; i++)
        if (!strcmp(p->rules[i].key, key)) return &p->rules[i];
    return NULL;
}

/* The rule for a case, in the order check.h gives; NULL: the scenario's own. */
static const ra_policy_rule *rule_for(const ra_policy *p, const char *label, const char *scenario)
{
    char key[160];
    snprintf(key, sizeof key, "%s:%s", label, scenario);
    const ra_policy_rule *r = find_rule(p, key);
    snprintf(key, sizeof key, "*:%s", scenario);
    if (!r) r = find_rule(p, key);
    if (r || !strcmp(scenario, "kernel") || !strcmp(scenario, "control")) return r;
    r = find_rule(p, label);
    return r ? r : find_rule(p, "*");
}

/* ---- judging -------------------------------------------------------------- */

static ra_status add_case(ra_check_result *r, size_t cap, const char *label, const char *scenario, ra_check_case **out)
{
    if (r->n == cap) return ra_fail(RA_ERR_INTERNAL, "check: more cases than counted");
    ra_check_case *c = &r->cases[r->n++];
    snprintf(c->label, sizeof c->label, "%s", label);
    snprintf(c->scenario, sizeof c->scenario, "%s", scenario);
    *out = c;
    return RA_OK;
}

/* "KL 1.2e-03 <= 1e-02, max|diff| 0.5 > 0.1, ..." for the bounds a rule sets; false if one fails. */
static bool within(const ra_policy_rule *rule, const ra_scenario_verdict *sv, char *out, size_t n)
{
    bool ok = true;
    size_t len = 0;
    out[0] = 0;
    if (!isnan(rule->kl_max)) {
        bool b = !isnan(sv->kl_max) && sv->kl_max <= rule->kl_max;
        ok &= b;
        if (isnan(sv->kl_max)) len += (size_t)snprintf(out + len, n - len, "KL unknown (no full vectors) > %g", rule->kl_max);
        else len += (size_t)snprintf(out + len, n - len, "KL %.3e %s %g", sv->kl_max, b ? "<=" : ">", rule->kl_max);
    }
    if (!isnan(rule->max_abs) && len < n) {
        bool b = sv->max_abs <= rule->max_abs;
        ok &= b;
        len += (size_t)snprintf(out + len, n - len, "%smax|diff| %.4g %s %g", len ? ", " : "", sv->max_abs, b ? "<=" : ">", rule->max_abs);
    }
    if (!isnan(rule->top1_min) && len < n) {
        bool b = sv->top1_min >= rule->top1_min;
        ok &= b;
        snprintf(out + len, n - len, "%stop-1 %.4f %s %g", len ? ", " : "", sv->top1_min, b ? ">=" : "<", rule->top1_min);
    }
    return ok;
}

static void judge(const ra_policy *pol, const ra_group_verdict *v, const ra_scenario_verdict *sv, ra_check_case *c)
{
    const ra_policy_rule *rule = rule_for(pol, v->label, sv->scenario);
    ra_policy_expect e = rule ? rule->expect
                       : sv->expect == RA_EXPECT_IDENTICAL ? RA_POLICY_IDENTICAL
                       : sv->expect == RA_EXPECT_DIFFERENT ? RA_POLICY_DIFFERENT : RA_POLICY_IGNORE;
    char verdict[512], bounds[256] = "";
    ra_scenario_verdict_text(sv, verdict, sizeof verdict);
    if (rule) snprintf(c->expectation, sizeof c->expectation, "%s (policy rule \"%s\")", expect_names[e], rule->key);
    else snprintf(c->expectation, sizeof c->expectation, "%s (%s)", expect_names[e],
                  sv->expect == RA_EXPECT_DIFFERENT ? "a negative control must differ"
                  : sv->expect == RA_EXPECT_IDENTICAL ? "the kernel promises it" : "no promise");
    switch (e) {
    case RA_POLICY_IDENTICAL: c->pass = sv->identical; break;
    case RA_POLICY_DIFFERENT: c->pass = !sv->identical && sv->n_runs > 0; break;
    case RA_POLICY_WITHIN: c->pass = within(rule, sv, bounds, sizeof bounds); break;
    case RA_POLICY_IGNORE: c->pass = true; break;
    }
    snprintf(c->message, sizeof c->message, "%s %s against %s: %s%s%s", v->label, sv->scenario, sv->against, verdict,
             bounds[0] ? "; " : "", bounds);
}

/* The format@kernel labels of a bundle's traces. */
static bool has_label(const ra_bundle *b, const char *label)
{
    for (uint32_t i = 0; i < b->n_traces; i++) {
        char l[72];
        snprintf(l, sizeof l, "%s@%s", b->traces[i].format, b->traces[i].kernel);
        if (!strcmp(l, label)) return true;
    }
    return false;
}

ra_status ra_check(const char *baseline, const char *run, const ra_policy *pol, bool progress, ra_check_result **out)
{
    *out = NULL;
    const char *dirs[2] = {baseline, run};
    double t0 = ra_now();
    if (progress) fprintf(stderr, "check: reading and comparing %s and %s\n", baseline, run);
    ra_comparison *cmp = NULL;
    ra_bundle *bb = NULL, *rb = NULL;
    ra_check_result *r = NULL;
    ra_status s = ra_compare_bundles(dirs, 2, &cmp);
    if (s == RA_OK) s = ra_bundle_open(baseline, &bb);
    if (s == RA_OK) s = ra_bundle_open(run, &rb);
    if (s == RA_OK) s = ra_calloc(&r, 1, sizeof *r);
    if (s == RA_OK) s = ra_strdup(&r->baseline, baseline);
    if (s == RA_OK) s = ra_strdup(&r->run, run);
    size_t cap = 0;
    for (uint32_t g = 0; s == RA_OK && g < cmp->n_groups; g++) cap += cmp->groups[g].n_scenario_verdicts + 1;
    if (s == RA_OK) s = ra_calloc(&r->cases, cap ? cap : 1, sizeof *r->cases);
    for (uint32_t g = 0; s == RA_OK && g < cmp->n_groups; g++) {
        const ra_group_verdict *v = &cmp->groups[g];
        bool in_base = has_label(bb, v->label), in_run = has_label(rb, v->label);
        ra_check_case *c = NULL;
        if (!in_base || !in_run) { /* nothing to hold to, or nothing held */
            if ((s = add_case(r, cap, v->label, "coverage", &c)) != RA_OK) break;
            snprintf(c->expectation, sizeof c->expectation, "present in baseline and run");
            snprintf(c->message, sizeof c->message, "%s: %s", v->label,
                     in_base ? "in the baseline but missing from the run" : "in the run but not in the baseline");
            c->pass = false;
            continue;
        }
        for (uint32_t i = 0; i < v->n_scenario_verdicts && s == RA_OK; i++) {
            if ((s = add_case(r, cap, v->label, v->scenarios[i].scenario, &c)) != RA_OK) break;
            judge(pol, v, &v->scenarios[i], c);
        }
    }
    for (uint32_t i = 0; s == RA_OK && i < r->n; i++) r->failures += !r->cases[i].pass;
    if (s == RA_OK && progress)
        fprintf(stderr, "check: %u test cases, %u failed (%.1fs)\n", r->n, r->failures, ra_now() - t0);
    ra_comparison_free(cmp);
    ra_bundle_close(bb);
    ra_bundle_close(rb);
    if (s != RA_OK) {
        ra_check_free(r);
        return s;
    }
    *out = r;
    return RA_OK;
}

void ra_check_free(ra_check_result *r)
{
    if (!r) return;
    free(r->baseline);
    free(r->run);
    free(r->cases);
    free(r);
}

/* ---- output --------------------------------------------------------------- */

/* XML 1.0 character data or attribute value: markup characters as entities;
 * what XML cannot hold (C0 controls but tab and newline, U+FFFE/U+FFFF, bytes
 * that are not UTF-8) as U+FFFD. */
static ra_status xml_text(ra_buf *b, const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s);
    ra_status st = RA_OK;
    while (n && st == RA_OK) {
        uint32_t cp;
        size_t len = ra_utf8_decode(p, n, &cp);
        if (len == 0 || (cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xfffe || cp == 0xffff) {
            st = ra_buf_printf(b, "\xef\xbf\xbd");
            len = len ? len : 1;
        } else if (cp == '&') st = ra_buf_printf(b, "&amp;");
        else if (cp == '<') st = ra_buf_printf(b, "&lt;");
        else if (cp == '>') st = ra_buf_printf(b, "&gt;");
        else if (cp == '"') st = ra_buf_printf(b, "&quot;");
        else if (cp == '\'') st = ra_buf_printf(b, "&apos;");
        else if (cp == '\n') st = ra_buf_printf(b, "&#10;");
        else st = ra_buf_append(b, p, len);
        p += len;
        n -= len;
    }
    return st;
}

ra_status ra_check_junit(const ra_check_result *r, char **xml)
{
    ra_buf b = {0};
    ra_status s = ra_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
                                    "  <testsuite name=\"repro-audit check\" tests=\"%u\" failures=\"%u\" errors=\"0\" skipped=\"0\">\n",
                                r->n, r->failures);
    if (s == RA_OK) s = ra_buf_printf(&b, "    <properties>\n      <property name=\"baseline\" value=\"");
    if (s == RA_OK) s = xml_text(&b, r->baseline);
    if (s == RA_OK) s = ra_buf_printf(&b, "\"/>\n      <property name=\"run\" value=\"");
    if (s == RA_OK) s = xml_text(&b, r->run);
    if (s == RA_OK) s = ra_buf_printf(&b, "\"/>\n    </properties>\n");
    for (uint32_t i = 0; s == RA_OK && i < r->n; i++) {
        const ra_check_case *c = &r->cases[i];
        s = ra_buf_printf(&b, "    <testcase classname=\"repro-audit.");
        if (s == RA_OK) s = xml_text(&b, c->label);
        if (s == RA_OK) s = ra_buf_printf(&b, "\" name=\"");
        if (s == RA_OK) s = xml_text(&b, c->scenario);
        if (s == RA_OK) s = ra_buf_printf(&b, "\" time=\"0\">\n");
        if (s == RA_OK && !c->pass) {
            s = ra_buf_printf(&b, "      <failure type=\"reproducibility\" message=\"");
            if (s == RA_OK) s = xml_text(&b, c->message);
            if (s == RA_OK) s = ra_buf_printf(&b, "\">expected: ");
            if (s == RA_OK) s = xml_text(&b, c->expectation);
            if (s == RA_OK) s = ra_buf_printf(&b, "\n");
            if (s == RA_OK) s = xml_text(&b, c->message);
            if (s == RA_OK) s = ra_buf_printf(&b, "</failure>\n");
        } else if (s == RA_OK) {
            s = ra_buf_printf(&b, "      <system-out>");
            if (s == RA_OK) s = xml_text(&b, c->message);
            if (s == RA_OK) s = ra_buf_printf(&b, "</system-out>\n");
        }
        if (s == RA_OK) s = ra_buf_printf(&b, "    </testcase>\n");
    }
    if (s == RA_OK) s = ra_buf_printf(&b, "  </testsuite>\n</testsuites>\n");
    if (s == RA_OK) s = ra_buf_append(&b, "", 1); /* a C string */
    if (s != RA_OK) {
        ra_buf_free(&b);
        return s;
    }
    *xml = (char *)b.data;
    return RA_OK;
}

ra_status ra_check_json(const ra_check_result *r, char **text)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "repro-audit.check");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "baseline", r->baseline);
    cJSON_AddStringToObject(root, "run", r->run);
    cJSON_AddNumberToObject(root, "tests", r->n);
    cJSON_AddNumberToObject(root, "failures", r->failures);
    cJSON_AddBoolToObject(root, "pass", r->failures == 0);
    cJSON *cases = cJSON_AddArrayToObject(root, "cases");
    for (uint32_t i = 0; i < r->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "format_kernel", r->cases[i].label);
        cJSON_AddStringToObject(o, "scenario", r->cases[i].scenario);
        cJSON_AddStringToObject(o, "expectation", r->cases[i].expectation);
        cJSON_AddBoolToObject(o, "pass", r->cases[i].pass);
        cJSON_AddStringToObject(o, "message", r->cases[i].message);
        cJSON_AddItemToArray(cases, o);
    }
    ra_status s = ra_json_print(root, true, text);
    cJSON_Delete(root);
    return s;
}
