/* Bundles: reading a manifest back and verifying every trace against it. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ra/bundle.h"
#include "ra/trace.h"
#include "ra/util.h"

/* A required string member, copied into a fixed buffer. */
static ra_status get_str(const cJSON *o, const char *key, char *out, size_t n, const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) return ra_fail(RA_ERR_FORMAT, "%s: \"%s\" is missing or not a string", where, key);
    if (strlen(v->valuestring) >= n) return ra_fail(RA_ERR_FORMAT, "%s: \"%s\" is too long", where, key);
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return RA_OK;
}

/* A required non-negative integer member. */
static ra_status get_u32(const cJSON *o, const char *key, uint32_t *out, const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4294967295.0 ||
        v->valuedouble != (double)(uint32_t)v->valuedouble)
        return ra_fail(RA_ERR_FORMAT, "%s: \"%s\" is missing or not a non-negative integer", where, key);
    *out = (uint32_t)v->valuedouble;
    return RA_OK;
}

/* Optional string: empty when absent. */
static void opt_str(const cJSON *o, const char *key, char *out, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(out, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static ra_status get_sha(const cJSON *o, const char *key, char out[65], const char *where)
{
    RA_TRY(get_str(o, key, out, 65, where));
    uint8_t tmp[32];
    if (strlen(out) != 64 || ra_unhex(out, tmp, 32) != RA_OK)
        return ra_fail(RA_ERR_FORMAT, "%s: \"%s\" is not a 64-digit hex SHA-256", where, key);
    return RA_OK;
}

/* Trace files must stay inside the bundle: a relative path without "..". */
static bool safe_relative(const char *p)
{
    if (!*p || p[0] == '/') return false;
    for (const char *s = p; *s; s++)
        if (s[0] == '.' && s[1] == '.' && (s == p || s[-1] == '/') && (s[2] == '/' || s[2] == 0)) return false;
    return true;
}

/* One line saying what a trace's numbers are scoped to (docs/bundle-format.md). */
static void describe_scope(const cJSON *engine, const cJSON *host, char *out, size_t n)
{
    char a[128], b[128], c[64], d[64], e[64], f[64], g[80];
    opt_str(engine, "backend", a, sizeof a);
    if (!strcmp(a, "cuda")) {
        const cJSON *sms = cJSON_GetObjectItemCaseSensitive(engine, "sm_count");
        opt_str(engine, "gpu", b, sizeof b);
        opt_str(engine, "compute_capability", c, sizeof c);
        opt_str(engine, "driver", d, sizeof d);
        opt_str(engine, "cuda_runtime", e, sizeof e);
        opt_str(engine, "cublas", f, sizeof f);
        opt_str(engine, "kernels_build", g, sizeof g);
        snprintf(out, n, "GPU %.80s (cc %.8s, %d SMs), driver %.24s, CUDA %.16s, cuBLAS %.24s, kernels %.12s", b, c,
                 cJSON_IsNumber(sms) ? sms->valueint : 0, d, e, f, g);
    } else {
        opt_str(host, "cpu", b, sizeof b);
        opt_str(host, "hostname", c, sizeof c);
        snprintf(out, n, "CPU %.120s (host %.60s)", b, c);
    }
}

static ra_status parse_trace(const cJSON *t, const cJSON *host, const char *dir, const char *where, ra_bundle_trace *out)
{
    char file[1024], hex[65];
    RA_TRY(get_str(t, "format", out->format, sizeof out->format, where));
    RA_TRY(get_str(t, "kernel", out->kernel, sizeof out->kernel, where));
    RA_TRY(get_u32(t, "repeat", &out->repeat, where));
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(t, "deterministic");
    if (!cJSON_IsBool(det)) return ra_fail(RA_ERR_FORMAT, "%s: \"deterministic\" is missing or not a boolean", where);
    out->deterministic = cJSON_IsTrue(det);
    out->full = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "full"));
    opt_str(t, "scenario", out->scenario, sizeof out->scenario);
    if (!out->scenario[0]) snprintf(out->scenario, sizeof out->scenario, "repeat");
    describe_scope(cJSON_GetObjectItemCaseSensitive(t, "engine"), host, out->scope, sizeof out->scope);
    RA_TRY(get_str(t, "file", file, sizeof file, where));
    if (!safe_relative(file)) return ra_fail(RA_ERR_FORMAT, "%s: trace file \"%s\" is not a path inside the bundle", where, file);
    RA_TRY(get_sha(t, "sha256", hex, where));
    ra_unhex(hex, out->sha256, 32);
    RA_TRY(get_sha(t, "digest", hex, where));
    ra_unhex(hex, out->digest, 32);
    size_t n = strlen(dir) + strlen(file) + 2;
    RA_TRY(ra_calloc(&out->file, n, 1));
    snprintf(out->file, n, "%s/%s", dir, file);
    return RA_OK;
}

static ra_status parse_manifest(ra_bundle *b, const cJSON *m, const char *where)
{
    char schema[64];
    uint32_t version;
    RA_TRY(get_str(m, "schema", schema, sizeof schema, where));
    if (strcmp(schema, "repro-audit.manifest") != 0)
        return ra_fail(RA_ERR_FORMAT, "%s: schema is \"%s\", not repro-audit.manifest", where, schema);
    RA_TRY(get_u32(m, "version", &version, where));
    if (version != 1) return ra_fail(RA_ERR_UNSUPPORTED, "%s: manifest version %u (this build reads version 1)", where, version);

    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(m, "settings");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(m, "model");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(m, "tokenizer");
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(m, "prompts");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(model, "files");
    if (!cJSON_IsObject(settings) || !cJSON_IsObject(model) || !cJSON_IsObject(tok) || !cJSON_IsObject(prompts) ||
        !cJSON_IsArray(files) || cJSON_GetArraySize(files) < 1)
        return ra_fail(RA_ERR_FORMAT, "%s: settings, model.files, tokenizer or prompts is missing", where);
    RA_TRY(get_str(settings, "mode", b->mode, sizeof b->mode, where));
    if (strcmp(b->mode, "generate") && strcmp(b->mode, "score"))
        return ra_fail(RA_ERR_FORMAT, "%s: mode \"%s\" is neither generate nor score", where, b->mode);
    RA_TRY(get_u32(settings, "max_new_tokens", &b->max_new_tokens, where));
    RA_TRY(get_sha(cJSON_GetArrayItem(files, 0), "sha256", b->model_sha256, where));
    RA_TRY(get_sha(tok, "sha256", b->tokenizer_sha256, where));
    RA_TRY(get_sha(prompts, "sha256", b->prompts_sha256, where));
    RA_TRY(get_u32(prompts, "count", &b->n_prompts, where));
    opt_str(model, "name", b->model_name, sizeof b->model_name);
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(m, "host");
    opt_str(host, "hostname", b->host, sizeof b->host);
    opt_str(host, "backend", b->backend, sizeof b->backend);

    const cJSON *traces = cJSON_GetObjectItemCaseSensitive(m, "traces");
    if (!cJSON_IsArray(traces)) return ra_fail(RA_ERR_FORMAT, "%s: \"traces\" is missing or not an array", where);
    int n = cJSON_GetArraySize(traces);
    if (n < 1) return ra_fail(RA_ERR_FORMAT, "%s: the bundle has no traces", where);
    RA_TRY(ra_calloc(&b->traces, (size_t)n, sizeof *b->traces));
    b->n_traces = (uint32_t)n;
    for (int i = 0; i < n; i++) {
        char w[1200];
        snprintf(w, sizeof w, "%.1000s: traces[%d]", where, i);
        RA_TRY(parse_trace(cJSON_GetArrayItem(traces, i), host, b->dir, w, &b->traces[i]));
        for (int k = 0; k < i; k++)
            if (!strcmp(b->traces[k].format, b->traces[i].format) && !strcmp(b->traces[k].kernel, b->traces[i].kernel) &&
                b->traces[k].repeat == b->traces[i].repeat)
                return ra_fail(RA_ERR_FORMAT, "%s: %s@%s repeat %u appears twice", where, b->traces[i].format,
                               b->traces[i].kernel, b->traces[i].repeat);
    }
    return RA_OK;
}

ra_status ra_bundle_open(const char *dir, ra_bundle **out)
{
    *out = NULL;
    ra_bundle *b;
    RA_TRY(ra_calloc(&b, 1, sizeof *b));
    ra_status s = ra_strdup(&b->dir, dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    uint8_t *text = NULL;
    size_t len;
    if (s == RA_OK) {
        s = ra_read_file(path, &text, &len);
        if (s != RA_OK) s = ra_wrap(s, "%s is not a bundle", dir);
    }
    if (s == RA_OK) {
        cJSON *m = cJSON_ParseWithLength((const char *)text, len);
        if (!m) s = ra_fail(RA_ERR_FORMAT, "%s: not valid JSON", path);
        else if (!cJSON_IsObject(m)) s = ra_fail(RA_ERR_FORMAT, "%s: not a JSON object", path);
        b->manifest = m;
        if (s == RA_OK) s = parse_manifest(b, m, path);
    }
    free(text);
    if (s != RA_OK) {
        ra_bundle_close(b);
        return s;
    }
    *out = b;
    return RA_OK;
}

void ra_bundle_close(ra_bundle *b)
{
    if (!b) return;
    for (uint32_t i = 0; i < b->n_traces; i++) free(b->traces[i].file);
    free(b->traces);
    cJSON_Delete(b->manifest);
    free(b->dir);
    free(b);
}

static void __attribute__((format(printf, 3, 4))) problem(FILE *log, uint32_t *n_bad, const char *fmt, ...)
{
    (*n_bad)++;
    if (!log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log, fmt, ap);
    va_end(ap);
    fputc('\n', log);
}

ra_status ra_bundle_verify(const ra_bundle *b, FILE *log, uint32_t *n_bad)
{
    *n_bad = 0;
    for (uint32_t i = 0; i < b->n_traces; i++) {
        const ra_bundle_trace *bt = &b->traces[i];
        uint8_t sha[32];
        if (ra_sha256_file(bt->file, sha) != RA_OK) {
            problem(log, n_bad, "%s: %s", bt->file, ra_errmsg());
            continue;
        }
        if (memcmp(sha, bt->sha256, 32) != 0) problem(log, n_bad, "%s: file SHA-256 differs from the manifest", bt->file);
        ra_trace *t;
        if (ra_trace_read(bt->file, &t) != RA_OK) {
            problem(log, n_bad, "%s", ra_errmsg());
            continue;
        }
        if (memcmp(t->digest, bt->digest, 32) != 0)
            problem(log, n_bad, "%s: trace digest differs from the manifest", bt->file);
        if (strcmp(t->meta.format, bt->format) || strcmp(t->meta.kernel, bt->kernel) || t->meta.repeat != bt->repeat)
            problem(log, n_bad, "%s: format, kernel or repeat differs from the manifest", bt->file);
        if (strcmp(t->meta.mode, b->mode) != 0) problem(log, n_bad, "%s: mode differs from the manifest", bt->file);
        ra_trace_free(t);
    }
    return RA_OK;
}
