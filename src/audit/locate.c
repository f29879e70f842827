/* locate (include/ra/locate.h): re-run the first divergent sequence of two
 * runs with per-op activation hashes and find the first op that differs. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/bundle.h"
#include "ra/compare.h"
#include "ra/cpu.h"
#include "ra/desc.h"
#include "ra/engine.h"
#include "ra/locate.h"
#include "ra/model.h"
#include "ra/quantize.h"
#include "ra/tokenizer.h"
#include "ra/trace.h"
#include "ra/util.h"

/* One op output seen by the probe: where, and the SHA-256 of its bytes. */
typedef struct {
    uint32_t pass;
    int32_t layer;
    const char *op;           /* the engine's static name */
    uint8_t hash[32];
} op_hash;

typedef struct {
    op_hash *ops;
    size_t n, cap;
    uint32_t pass;
    ra_status s;
} probe_log;

static void on_op(void *ctx, int32_t layer, const char *op, const float *rows, uint32_t n, uint32_t width)
{
    probe_log *log = ctx;
    if (log->s != RA_OK) return;
    if (log->n == log->cap) {
        size_t cap = log->cap ? 2 * log->cap : 1024;
        op_hash *grown = realloc(log->ops, cap * sizeof *grown);
        if (!grown) {
            log->s = ra_fail(RA_ERR_NOMEM, "locate: out of memory");
            return;
        }
        log->ops = grown;
        log->cap = cap;
    }
    op_hash *h = &log->ops[log->n++];
    h->pass = log->pass;
    h->layer = layer;
    h->op = op;
    ra_sha256_ctx *sha;
    if ((log->s = ra_sha256_new(&sha)) != RA_OK) return;
    ra_sha256_update(sha, rows, (size_t)n * width * sizeof(float)); /* little-endian hosts: the bytes as stored */
    ra_sha256_final(sha, h->hash);
}

/* The bundle's trace named "F@K" (first repeat) or "F@K:SCENARIO". */
static ra_status find_run(const ra_bundle *b, const char *spec, uint32_t *out)
{
    char label[96], scen[32] = "repeat";
    snprintf(label, sizeof label, "%s", spec);
    char *colon = strchr(label, ':');
    if (colon) {
        snprintf(scen, sizeof scen, "%s", colon + 1);
        *colon = 0;
    }
    int64_t best = -1;
    for (uint32_t i = 0; i < b->n_traces; i++) {
        const ra_bundle_trace *t = &b->traces[i];
        char fk[72];
        snprintf(fk, sizeof fk, "%s@%s", t->format, t->kernel);
        if (strcmp(fk, label) || strcmp(t->scenario, scen)) continue;
        if (best < 0 || t->repeat < b->traces[best].repeat) best = i;
    }
    if (best < 0)
        return ra_fail(RA_ERR_USAGE, "%s has no run '%s' (FORMAT@KERNEL or FORMAT@KERNEL:SCENARIO, e.g. q4_1@cpu:control-ulp)",
                       b->dir, spec);
    *out = (uint32_t)best;
    return RA_OK;
}

static const char *settings_str(const ra_bundle *b, const char *obj, const char *key)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(b->manifest, "settings");
    if (obj) st = cJSON_GetObjectItemCaseSensitive(st, obj);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The model must be the one the bundle ran: every file's SHA-256 among the manifest's. */
static ra_status same_model(const ra_bundle *b, const ra_model_desc *d)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b->manifest, "model"), "files");
    for (size_t i = 0; i < d->n_files; i++) {
        char hex[65];
        ra_hex(d->files[i].sha256, 32, hex);
        bool found = false;
        const cJSON *f;
        cJSON_ArrayForEach(f, files) {
            const cJSON *sha = cJSON_GetObjectItemCaseSensitive(f, "sha256");
            found |= cJSON_IsString(sha) && !strcmp(sha->valuestring, hex);
        }
        if (!found) return ra_fail(RA_ERR_USAGE, "%s is not the model %s ran (its SHA-256 is not in the manifest)", d->files[i].path, b->dir);
    }
    return RA_OK;
}

typedef struct {
    ra_deriver *dv;
    ra_pool *pool;
    const ra_bundle *b;
    bool progress;
} locate_ctx;

/* Re-runs sequence seq of trace t (bundle entry bt) up to step `last`, fed
 * the tokens `feed`; logs every op; says whether the step hashes reproduce. */
static ra_status rerun(locate_ctx *x, const ra_bundle_trace *bt, const ra_trace *t, uint32_t seq, uint32_t last,
                       const int32_t *feed, probe_log *log, bool *reproduced, char *name, size_t name_len)
{
    const ra_format *f = ra_format_find(bt->format);
    const ra_kernel *k = ra_kernel_find(bt->kernel);
    if (!f || !k || !ra_format_has_kernel(f, k))
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: %s@%s is not a format@kernel of this build", x->b->dir, bt->format, bt->kernel);
    if (k->backend != RA_BACKEND_CPU)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s@%s runs on a GPU; locate re-runs CPU kernels only (its probe)", bt->format, bt->kernel);
    ra_model *m;
    RA_TRY(ra_deriver_load(x->dv, f, &m));
    /* What the run applied to its weights: the bundle's planted difference, a control's perturbation. */
    const char *specs[2] = {settings_str(x->b, NULL, "planted_difference"),
                            strncmp(bt->scenario, "control", 7) ? NULL : settings_str(x->b, "scenario_settings", "perturb")};
    size_t used = (size_t)snprintf(name, name_len, "%s@%s %s", bt->format, bt->kernel, bt->scenario);
    ra_status s = RA_OK;
    for (int i = 0; i < 2 && s == RA_OK; i++) {
        if (!specs[i]) continue;
        ra_perturb p;
        char what[256];
        s = ra_perturb_parse(specs[i], &p);
        if (s == RA_OK) s = ra_model_perturb(m, &p, what, sizeof what);
        if (s == RA_OK && used < name_len) used += (size_t)snprintf(name + used, name_len - used, " (%s one ulp off)", specs[i]);
    }
    ra_engine *e = NULL;
    if (s == RA_OK) s = ra_engine_open(m, k, NULL, &e);
    if (s == RA_OK) s = ra_engine_set_probe(e, on_op, log);
    const ra_trace_seq *ts = &t->seqs[seq];
    uint32_t n_prompt = ts->n_prompt, V = t->meta.n_vocab;
    uint32_t cap = n_prompt + last + 1;
    float *lp = NULL;
    uint32_t *seqs = NULL;
    bool *want = NULL;
    if (s == RA_OK) s = ra_engine_begin(e, 1, &cap);
    if (s == RA_OK) s = ra_calloc(&lp, V, sizeof *lp);
    if (s == RA_OK) s = ra_calloc(&seqs, n_prompt, sizeof *seqs);
    if (s == RA_OK) s = ra_calloc(&want, n_prompt, sizeof *want);
    *reproduced = true;
    for (uint32_t pass = 0; s == RA_OK && pass <= last; pass++) {
        log->pass = pass;
        if (pass == 0) {
            want[n_prompt - 1] = true;
            s = ra_engine_forward(e, seqs, ts->prompt_ids, want, n_prompt, lp, NULL);
        } else {
            bool w = true;
            s = ra_engine_forward(e, seqs, &feed[pass - 1], &w, 1, lp, NULL);
        }
        if (s == RA_OK) s = log->s;
        if (s == RA_OK && pass < ts->n_steps) {
            uint8_t h[32];
            ra_step_hash(ts->steps[pass].token, lp, V, h);
            *reproduced &= memcmp(h, ts->steps[pass].hash, 32) == 0;
        }
        if (x->progress) fprintf(stderr, "\r  locate: %-40.40s pass %u/%u", name, pass + 1, last + 1);
    }
    if (x->progress) fputc('\n', stderr);
    free(lp);
    free(seqs);
    free(want);
    ra_engine_close(e);
    ra_model_free(m);
    return s;
}

ra_status ra_locate(const ra_locate_opts *o, ra_locate_result *r)
{
    memset(r, 0, sizeof *r);
    r->seq = r->step = -1;
    locate_ctx x = {.progress = o->progress};
    ra_bundle *b = NULL;
    ra_trace *ta = NULL, *tb = NULL;
    ra_model_desc *d = NULL;
    ra_tokenizer *tok = NULL;
    probe_log la = {0}, lb = {0};
    int32_t *feed = NULL;
    uint32_t ia = 0, ib = 0;
    ra_status s = ra_bundle_open(o->bundle, &b);
    x.b = b;
    if (s == RA_OK) s = find_run(b, o->a, &ia);
    if (s == RA_OK) s = find_run(b, o->b, &ib);
    if (s == RA_OK) s = ra_bundle_read_trace(b, ia, &ta);
    if (s == RA_OK) s = ra_bundle_read_trace(b, ib, &tb);
    if (s == RA_OK && ta->n_seqs != tb->n_seqs) s = ra_fail(RA_ERR_FORMAT, "%s: the two runs hold different sequences", o->bundle);
    ra_step_ref dv = {-1, -1};
    if (s == RA_OK) dv = ra_first_difference(ta, tb);
    r->seq = dv.seq;
    r->step = dv.step;
    r->identical = s == RA_OK && dv.seq < 0;
    if (s != RA_OK || r->identical) goto done;
    if ((uint32_t)dv.seq >= ta->n_seqs) {
        s = ra_fail(RA_ERR_FORMAT, "%s: the runs differ in their number of sequences", o->bundle);
        goto done;
    }
    const ra_trace_seq *sa = &ta->seqs[dv.seq];
    if (memcmp(sa->prompt_ids, tb->seqs[dv.seq].prompt_ids, sa->n_prompt * sizeof(int32_t)) || sa->n_prompt == 0) {
        s = ra_fail(RA_ERR_FORMAT, "%s: the runs hold different prompts at sequence %lld", o->bundle, (long long)dv.seq);
        goto done;
    }
    /* Teacher-forced on A's tokens: both runs chose them up to the divergence. */
    uint32_t last = (uint32_t)dv.step;
    if (last > sa->n_steps) last = sa->n_steps;
    if ((s = ra_calloc(&feed, last ? last : 1, sizeof *feed)) != RA_OK) goto done;
    for (uint32_t k = 0; k < last; k++) feed[k] = sa->steps[k].token;
    const char *model = o->model_path;
    if (!model) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b->manifest, "model"), "path");
        model = cJSON_IsString(p) ? p->valuestring : NULL;
    }
    if (!model) {
        s = ra_fail(RA_ERR_FORMAT, "%s: the manifest names no model path; give --model", o->bundle);
        goto done;
    }
    if ((s = ra_desc_open(model, 0, &d)) != RA_OK || (s = same_model(b, d)) != RA_OK || (s = ra_tokenizer_from_desc(d, &tok)) != RA_OK ||
        (s = ra_pool_new(o->threads, &x.pool)) != RA_OK)
        goto done;
    ra_derive_opts dop = {o->cache_dir, false, NULL, o->progress};
    if ((s = ra_deriver_open(d, tok, x.pool, &dop, &x.dv)) != RA_OK) goto done;
    if ((s = rerun(&x, &b->traces[ia], ta, (uint32_t)dv.seq, last, feed, &la, &r->reproduced_a, r->run_a, sizeof r->run_a)) != RA_OK ||
        (s = rerun(&x, &b->traces[ib], tb, (uint32_t)dv.seq, last, feed, &lb, &r->reproduced_b, r->run_b, sizeof r->run_b)) != RA_OK)
        goto done;
    size_t n = la.n < lb.n ? la.n : lb.n;
    for (size_t i = 0; i < n; i++) {
        const op_hash *p = &la.ops[i], *q = &lb.ops[i];
        if (p->pass != q->pass || p->layer != q->layer || strcmp(p->op, q->op)) {
            s = ra_fail(RA_ERR_INTERNAL, "locate: the two re-runs took different paths at op %zu", i);
            break;
        }
        if (memcmp(p->hash, q->hash, 32) == 0) continue;
        r->found = true;
        r->pass = p->pass;
        r->layer = p->layer;
        snprintf(r->op, sizeof r->op, "%s", p->op);
        r->ops_equal = i;
        break;
    }
done:
    free(la.ops);
    free(lb.ops);
    free(feed);
    ra_deriver_close(x.dv);
    ra_pool_free(x.pool);
    ra_tokenizer_free(tok);
    ra_desc_close(d);
    ra_trace_free(ta);
    ra_trace_free(tb);
    ra_bundle_close(b);
    return s;
}
