/* compare, bundle and report on small hand-made bundles whose distances are
 * known in closed form. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "toy_manifest.h"
#include "ra/bundle.h"
#include "ra/compare.h"
#include "ra/trace.h"
#include "ra/util.h"

#define NV 4
static const double LN2 = 0.69314718055994530942;

/* Two distributions over 4 tokens: p = (1/2, 1/4, 1/8, 1/8), q swaps the first two. */
static const float P[NV] = {-0.69314718f, -1.38629436f, -2.07944154f, -2.07944154f};
static const float Q[NV] = {-1.38629436f, -0.69314718f, -2.07944154f, -2.07944154f};

typedef struct {
    const char *format;
    uint32_t repeat;
    bool full;
    bool part_at_end; /* seq 0 step 2 uses Q (and token 1) instead of P (token 0) */
    bool alt_seq1;    /* seq 1 step 1 uses Q: a run that differs only there */
} run_spec;

static const int32_t prompt0[] = {3, 1}, prompt1[] = {2};

/* Writes one trace; returns its digest and file SHA-256. */
static void write_run(const char *dir, const run_spec *r, uint8_t digest[32], uint8_t sha[32], char *rel, size_t nrel)
{
    snprintf(rel, nrel, "traces/%s@cpu.r%u.ratrace", r->format, r->repeat);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    ra_trace_meta meta = {.repeat = r->repeat, .n_vocab = NV, .top_k = 2};
    snprintf(meta.format, sizeof meta.format, "%s", r->format);
    snprintf(meta.kernel, sizeof meta.kernel, "cpu");
    snprintf(meta.mode, sizeof meta.mode, "generate");
    ra_trace_writer *w;
    CHECK_OK(ra_trace_writer_open(path, &meta, &w));
    CHECK_OK(ra_trace_begin_seq(w, 0, prompt0, 2));
    CHECK_OK(ra_trace_add_step(w, 0, P, r->full));
    CHECK_OK(ra_trace_add_step(w, 0, P, r->full));
    CHECK_OK(ra_trace_add_step(w, r->part_at_end ? 1 : 0, r->part_at_end ? Q : P, r->full));
    CHECK_OK(ra_trace_begin_seq(w, 1, prompt1, 1));
    CHECK_OK(ra_trace_add_step(w, 0, P, r->full));
    CHECK_OK(ra_trace_add_step(w, r->alt_seq1 ? 1 : 0, r->alt_seq1 ? Q : P, r->full));
    CHECK_OK(ra_trace_writer_finish(w, digest));
    CHECK_OK(ra_sha256_file(path, sha));
}

static void write_bundle(const char *dir, const run_spec *runs, size_t n, const char *prompts_sha)
{
    char sub[512];
    snprintf(sub, sizeof sub, "%s/traces", dir);
    CHECK_OK(ra_mkdirs(sub));
    cJSON *traces, *m = toy_manifest("toy", prompts_sha, &traces);
    for (size_t i = 0; i < n; i++) {
        uint8_t digest[32], sha[32];
        char rel[128];
        write_run(dir, &runs[i], digest, sha, rel, sizeof rel);
        toy_trace_entry(traces, runs[i].format, "cpu", runs[i].repeat, rel, sha, digest, runs[i].full);
    }
    char *text = cJSON_Print(m);
    snprintf(sub, sizeof sub, "%s/manifest.json", dir);
    CHECK_OK(ra_write_file_atomic(sub, text, strlen(text)));
    free(text);
    cJSON_Delete(m);
}

static const ra_group_verdict *group(const ra_comparison *c, const char *label)
{
    for (uint32_t g = 0; g < c->n_groups; g++)
        if (!strcmp(c->groups[g].label, label)) return &c->groups[g];
    return NULL;
}

static const ra_pair_stats *pair(const ra_comparison *c, const char *a, const char *b)
{
    for (uint32_t i = 0; i < c->n_pairs; i++)
        if (!strcmp(c->groups[c->pairs[i].a].label, a) && !strcmp(c->groups[c->pairs[i].b].label, b)) return &c->pairs[i];
    return NULL;
}

static const char *SHA_A = "3333333333333333333333333333333333333333333333333333333333333333";

int main(void)
{
    char root[] = "/tmp/ra-test-compare-XXXXXX";
    if (!mkdtemp(root)) return 1;
    char d1[600], d2[600], d3[600];
    snprintf(d1, sizeof d1, "%s/one", root);
    snprintf(d2, sizeof d2, "%s/two", root);
    snprintf(d3, sizeof d3, "%s/three", root);

    /* x: 2 identical repeats; y: parts from x at seq 0 step 2; z: its repeat 1 differs at seq 1 step 1;
     * t: like x but without full vectors (distances from top-k). */
    run_spec one[] = {
        {"x", 0, true, false, false}, {"x", 1, false, false, false}, {"y", 0, true, true, false},
        {"z", 0, true, false, false}, {"z", 1, false, false, true}, {"t", 0, false, true, false},
    };
    write_bundle(d1, one, sizeof one / sizeof one[0], SHA_A);

    ra_bundle *b;
    CHECK_OK(ra_bundle_open(d1, &b));
    if (b) {
        CHECK(b->n_traces == 6);
        CHECK(!strcmp(b->mode, "generate"));
        uint32_t bad = 99;
        CHECK_OK(ra_bundle_verify(b, NULL, &bad));
        CHECK(bad == 0);
        b->traces[1].digest[0] ^= 1; /* as if the manifest were edited */
        CHECK_OK(ra_bundle_verify(b, NULL, &bad));
        CHECK(bad == 1);
        ra_bundle_close(b);
    }

    const char *dirs[3] = {d1, d2, d3};
    ra_comparison *c = NULL;
    CHECK_OK(ra_compare_bundles(dirs, 1, &c));
    if (c) {
        CHECK(c->n_groups == 4);
        CHECK(c->n_pairs == 6);
        CHECK(!c->ok); /* z is deterministic yet its repeats differ */
        const ra_group_verdict *x = group(c, "x@cpu"), *z = group(c, "z@cpu");
        CHECK(x && x->identical && x->pass && x->n_runs == 2 && x->steps == 5);
        CHECK(z && !z->identical && !z->pass && z->n_differing == 1);
        if (z) {
            CHECK(z->divergence.seq == 1 && z->divergence.step == 1);
            CHECK(!strcmp(z->first_differing_run, "r1") && !strcmp(z->ref_run, "r0"));
        }

        /* x vs y: seq 0 parts at step 2 (p vs q), seq 1 equal: 5 steps compared. */
        const ra_pair_stats *xy = pair(c, "x@cpu", "y@cpu");
        CHECK(xy != NULL);
        if (xy) {
            CHECK(!xy->identical && xy->full && xy->steps == 5);
            CHECK_NEAR(xy->l2_mean, sqrt(2.0) * LN2 / 5, 1e-6);
            CHECK_NEAR(xy->max_abs, LN2, 1e-6);
            CHECK_NEAR(xy->kl_mean, 0.25 * LN2 / 5, 1e-6); /* KL(p||q) = ln2/2 - ln2/4 */
            CHECK_NEAR(xy->top1_agree, 4.0 / 5, 1e-12);
            CHECK(xy->seqs_same_tokens == 1 && xy->n_seqs == 2);
            CHECK(xy->divergence.seq == 0 && xy->divergence.step == 2);
        }
        /* llama.cpp's statistics, x the base (no f32/f16/bf16: the first group): per-step KL
         * 0,0,ln2/4 (seq 0) and 0,0 (seq 1); dp = p_y(0) - p_x(0) = 1/4 - 1/2 at the parting step. */
        CHECK(c->base == 0 && !strcmp(c->groups[c->base].label, "x@cpu"));
        if (xy) {
            CHECK(xy->with_base && xy->bit_exact_steps == 4);
            CHECK_NEAR(xy->kl_q[0], 0.25 * LN2, 1e-6);          /* max */
            CHECK_NEAR(xy->kl_q[2], 0.96 * 0.25 * LN2, 1e-6);   /* 99%: 0.99 x 4 = 3.96 between 0 and ln2/4 */
            CHECK(xy->kl_q[5] == 0 && xy->kl_q[10] == 0);       /* median, min */
            CHECK_NEAR(xy->dp_mean, -0.25 / 5, 1e-6);
            CHECK_NEAR(xy->dp_rms, 0.25 / sqrt(5.0), 1e-6);
            CHECK_NEAR(xy->dp_q[12], -0.25, 1e-6);              /* min */
            CHECK(xy->dp_steps == 5 && isnan(xy->ppl_a));        /* no perplexity in generate mode */
            CHECK(xy->n_curve == 3 && xy->seq_divergence && xy->seq_divergence[0] == 2 && xy->seq_divergence[1] == -1);
            if (xy->n_curve == 3) {
                CHECK(xy->kl_curve[0] == 0 && xy->kl_curve[1] == 0);
                CHECK_NEAR(xy->kl_curve[2], 0.25 * LN2, 1e-6); /* only seq 0 reaches step 2 */
            }
        }
        /* x vs z (reference runs): identical. Pairs with the base first, full before top-k, by mean KL. */
        const ra_pair_stats *xz = pair(c, "x@cpu", "z@cpu");
        CHECK(xz && xz->identical && xz->l2_mean == 0 && xz->divergence.seq == -1 && xz->bit_exact_steps == 5);
        CHECK(c->pairs[0].identical && c->pairs[0].with_base);
        for (uint32_t i = 1; i < c->n_pairs; i++) {
            const ra_pair_stats *p = &c->pairs[i - 1], *q = &c->pairs[i];
            CHECK(p->with_base > q->with_base ||
                  (p->with_base == q->with_base && (p->full > q->full || (p->full == q->full && (!p->full || p->kl_mean <= q->kl_mean)))));
            CHECK(p->a == c->base || !p->with_base);
        }
        /* x vs t: t has only top-2; entries {0,1} are shared at the parting step. */
        const ra_pair_stats *xt = pair(c, "x@cpu", "t@cpu");
        CHECK(xt && !xt->full && isnan(xt->kl_mean));
        if (xt) CHECK_NEAR(xt->l2_mean, sqrt(2.0) * LN2 / 5, 1e-6);

        /* report.json round trip and the markdown */
        char *json = NULL, *md = NULL;
        CHECK_OK(ra_report_json(c, &json));
        cJSON *r = json ? cJSON_Parse(json) : NULL;
        CHECK(r != NULL);
        if (r) {
            CHECK(!strcmp(cJSON_GetObjectItem(r, "schema")->valuestring, "repro-audit.report"));
            CHECK(cJSON_GetObjectItem(r, "version")->valuedouble == 2);
            CHECK(!strcmp(cJSON_GetObjectItem(r, "base")->valuestring, "x@cpu"));
            cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "pairs"), 0);
            CHECK(cJSON_IsObject(cJSON_GetObjectItem(p0, "kl_quantiles")) && cJSON_IsArray(cJSON_GetObjectItem(p0, "kl_by_step")));
            CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")));
            CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "groups")) == 4);
            CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "pairs")) == 6);
            cJSON_Delete(r);
        }
        CHECK_OK(ra_report_markdown(c, &md));
        CHECK(md && strstr(md, "| z@cpu | 2 | r0 | identical: FAILED |"));
        char *html = NULL;
        CHECK_OK(ra_report_html(c, &html));
        CHECK(html && !strncmp(html, "<!DOCTYPE html>", 15) && strstr(html, "</html>") && !strstr(html, "<script"));
        CHECK(html && strstr(html, "<svg") && strstr(html, "z@cpu") && strstr(html, ">repeat</text>")); /* the scenario grid */
        free(html);
        free(json);
        free(md);
        ra_comparison_free(c);
    }
    /* --base: y as the base turns the pair around; a base that is not there is refused. */
    ra_compare_opts o = {.base = "y@cpu"};
    CHECK_OK(ra_compare_bundles_opts(dirs, 1, &o, &c));
    if (c) {
        const ra_pair_stats *yx = pair(c, "y@cpu", "x@cpu");
        CHECK(yx && yx->with_base && c->pairs[0].a == c->base);
        if (yx) CHECK_NEAR(yx->kl_mean, 0.25 * LN2 / 5, 1e-6); /* KL(q||p) = ln2/2 - ln2/4 as well */
        if (yx) CHECK_NEAR(yx->dp_mean, -0.25 / 5, 1e-6);      /* y's token 1: p_x(1) - p_y(1) = 1/4 - 1/2 */
        ra_comparison_free(c);
    }
    o.base = "nope";
    CHECK_STATUS(ra_compare_bundles_opts(dirs, 1, &o, &c), RA_ERR_USAGE);
    CHECK(strstr(ra_errmsg(), "--base 'nope'") && strstr(ra_errmsg(), "x@cpu"));
    o.base = "y"; /* a bare format names its first kernel */
    CHECK_OK(ra_compare_bundles_opts(dirs, 1, &o, &c));
    if (c) CHECK(!strcmp(c->groups[c->base].label, "y@cpu"));
    ra_comparison_free(c);

    /* Pooling bundles: a second bundle whose x matches pools into 3 runs. */
    run_spec two[] = {{"x", 0, true, false, false}, {"y", 0, true, true, false}};
    write_bundle(d2, two, 2, SHA_A);
    CHECK_OK(ra_compare_bundles(dirs, 2, &c));
    if (c) {
        const ra_group_verdict *x = group(c, "x@cpu");
        CHECK(x && x->n_runs == 3 && x->identical);
        CHECK(x && !strcmp(x->ref_run, "B1:r0"));
        ra_comparison_free(c);
    }
    /* Bundles of other inputs are refused. */
    write_bundle(d3, two, 2, "4444444444444444444444444444444444444444444444444444444444444444");
    const char *d13[2] = {d1, d3};
    CHECK_STATUS(ra_compare_bundles(d13, 2, &c), RA_ERR_USAGE);
    CHECK(strstr(ra_errmsg(), "prompt set") != NULL);

    /* Malformed manifests */
    char path[700];
    snprintf(path, sizeof path, "%s/manifest.json", d3);
    const char *bad[] = {
        "not json", "[]", "{\"schema\": \"other\", \"version\": 1}", "{\"schema\": \"repro-audit.manifest\", \"version\": 2}",
        "{\"schema\": \"repro-audit.manifest\", \"version\": 1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_OK(ra_write_file_atomic(path, bad[i], strlen(bad[i])));
        ra_status s = ra_bundle_open(d3, &b);
        CHECK_MSG(s == RA_ERR_FORMAT || s == RA_ERR_UNSUPPORTED, "manifest %zu accepted", i);
        if (s == RA_OK) ra_bundle_close(b);
    }
    /* A trace path that escapes the bundle is refused. */
    uint8_t *text;
    size_t len;
    snprintf(path, sizeof path, "%s/manifest.json", d2);
    CHECK_OK(ra_read_file(path, &text, &len));
    cJSON *m = cJSON_Parse((char *)text);
    free(text);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "traces"), 0), "file",
                              cJSON_CreateString("../one/traces/x@cpu.r0.ratrace"));
    char *out = cJSON_Print(m);
    CHECK_OK(ra_write_file_atomic(path, out, strlen(out)));
    free(out);
    cJSON_Delete(m);
    CHECK_STATUS(ra_bundle_open(d2, &b), RA_ERR_FORMAT);

    ra_remove_tree(root);
    CHECK_DONE();
}
