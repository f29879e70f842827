/* Bundles: reading a manifest back and verifying every trace against it. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ra/bundle.h"
#include "ra/json.h"
#include "ra/text.h"
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

/* Optional string: empty when absent; cut to n bytes at a character boundary. */
static void opt_str(const cJSON *o, const char *key, char *out, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const char *str = cJSON_IsString(v) ? v->valuestring : "";
    ra_utf8_copy(out, n, str, strlen(str));
}

static ra_status get_sha(const cJSON *o, const char *key, char out[65], const char *where)
{
    RA_TRY(get_str(o, key, out, 65, where));
    uint8_t tmp[32];
    if (strlen(out) != 64 || ra_unhex(out, tmp, 32) != RA_OK)
        return ra_fail(RA_ERR_FORMAT, "%s: \"%s\" is not a 64-digit hex SHA-256", where, key);
    return RA_OK;
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
    if (strspn(out->scenario, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(out->scenario))
        return ra_fail(RA_ERR_FORMAT, "%s: \"scenario\" holds characters other than a-z, 0-9 and '-'", where);
    char scope[sizeof out->scope];
    describe_scope(cJSON_GetObjectItemCaseSensitive(t, "engine"), host, scope, sizeof scope);
    ra_esc(out->scope, sizeof out->scope, scope); /* names from the manifest reach terminals and reports */
    RA_TRY(get_str(t, "file", file, sizeof file, where));
    if (!ra_path_inside(file)) return ra_fail(RA_ERR_FORMAT, "%s: trace file \"%s\" is not a path inside the bundle", where, file);
    RA_TRY(get_sha(t, "sha256", hex, where));
    ra_unhex(hex, out->sha256, 32);
    RA_TRY(get_sha(t, "digest", hex, where));
    ra_unhex(hex, out->digest, 32);
    size_t n = strlen(dir) + strlen(file) + 2;
    RA_TRY(ra_strdup(&out->rel, file));
    RA_TRY(ra_calloc(&out->file, n, 1));
    snprintf(out->file, n, "%s/%s", dir, file);
    return RA_OK;
}

/* Traces in (format, kernel, repeat) order, to find one that appears twice in O(n log n). */
static int by_identity(const void *x, const void *y)
{
    const ra_bundle_trace *a = *(const ra_bundle_trace *const *)x, *b = *(const ra_bundle_trace *const *)y;
    int c = strcmp(a->format, b->format);
    if (!c) c = strcmp(a->kernel, b->kernel);
    return c ? c : (a->repeat > b->repeat) - (a->repeat < b->repeat);
}

static int by_file(const void *x, const void *y)
{
    return strcmp((*(const ra_bundle_trace *const *)x)->rel, (*(const ra_bundle_trace *const *)y)->rel);
}

/* No (format, kernel, repeat) twice, and no file twice: a manifest naming one
 * file 65,536 times would make verify and compare read it as often. */
static ra_status check_unique(const ra_bundle *b, const char *where)
{
    const ra_bundle_trace **sorted;
    RA_TRY(ra_calloc(&sorted, b->n_traces, sizeof *sorted));
    for (uint32_t i = 0; i < b->n_traces; i++) sorted[i] = &b->traces[i];
    qsort(sorted, b->n_traces, sizeof *sorted, by_identity);
    ra_status s = RA_OK;
    for (uint32_t i = 1; s == RA_OK && i < b->n_traces; i++)
        if (!by_identity(&sorted[i - 1], &sorted[i]))
            s = ra_fail(RA_ERR_FORMAT, "%s: %s@%s repeat %u appears twice", where, sorted[i]->format, sorted[i]->kernel,
                        sorted[i]->repeat);
    if (s == RA_OK) qsort(sorted, b->n_traces, sizeof *sorted, by_file);
    for (uint32_t i = 1; s == RA_OK && i < b->n_traces; i++)
        if (!by_file(&sorted[i - 1], &sorted[i]))
            s = ra_fail(RA_ERR_FORMAT, "%s: two traces name the file \"%s\"", where, sorted[i]->rel);
    free(sorted);
    return s;
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
    if (n > RA_BUNDLE_MAX_TRACES)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: %d traces; a bundle may hold at most %d", where, n, RA_BUNDLE_MAX_TRACES);
    RA_TRY(ra_calloc(&b->traces, (size_t)n, sizeof *b->traces));
    b->n_traces = (uint32_t)n;
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, traces) { /* not cJSON_GetArrayItem(i): that walks the list, O(n^2) */
        char w[1200];
        snprintf(w, sizeof w, "%.1000s: traces[%d]", where, i);
        RA_TRY(parse_trace(t, host, b->dir, w, &b->traces[i++]));
    }
    return check_unique(b, where);
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
        s = ra_read_file_inside(dir, "manifest.json", RA_MANIFEST_MAX_BYTES, &text, &len);
        if (s != RA_OK) s = ra_wrap(s, "%s is not a bundle", dir);
    }
    cJSON *m = NULL;
    if (s == RA_OK) s = ra_json_parse(path, (const char *)text, len, RA_MANIFEST_MAX_VALUES, &m);
    b->manifest = m;
    if (s == RA_OK && !cJSON_IsObject(m)) s = ra_fail(RA_ERR_FORMAT, "%s: not a JSON object", path);
    if (s == RA_OK) s = parse_manifest(b, m, path);
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
    for (uint32_t i = 0; b->traces && i < b->n_traces; i++) {
        free(b->traces[i].file);
        free(b->traces[i].rel);
    }
    free(b->traces);
    cJSON_Delete(b->manifest);
    free(b->dir);
    free(b);
}

/* One problem: a line on log (escaped, when there is one) and the error
 * message. Returns `strict`: whether the caller stops at this first problem. */
static bool __attribute__((format(printf, 4, 5))) problem(FILE *log, bool strict, uint32_t *n_bad, const char *fmt, ...)
{
    char line[1024], esc[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    (*n_bad)++;
    ra_fail(RA_ERR_FORMAT, "%s", line);
    if (log) fprintf(log, "%s\n", ra_esc(esc, sizeof esc, line));
    return strict;
}

/* Holds trace i's bytes to its manifest entry: the file's SHA-256 first,
 * then everything the trace reader recomputes, its digest, format, kernel,
 * repeat and mode. Limits exceeded are errors; mismatches are problems. */
static ra_status check_trace(const ra_bundle *b, uint32_t i, const uint8_t *file, size_t len, FILE *log, bool strict,
                             uint32_t *n_bad, ra_trace **out)
{
    const ra_bundle_trace *bt = &b->traces[i];
    uint8_t sha[32];
    ra_sha256(file, len, sha);
    if (memcmp(sha, bt->sha256, 32) != 0 &&
        problem(log, strict, n_bad, "%s: file SHA-256 differs from the manifest (changed or swapped)", bt->file))
        return RA_ERR_FORMAT;
    ra_trace *t;
    ra_status s = ra_trace_parse(bt->file, file, len, &t);
    if (s == RA_ERR_FORMAT) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ra_errmsg());
        return problem(log, strict, n_bad, "%s", msg) ? RA_ERR_FORMAT : RA_OK;
    }
    RA_TRY(s);
    bool stop = false;
    if (memcmp(t->digest, bt->digest, 32) != 0)
        stop = problem(log, strict, n_bad, "%s: trace digest differs from the manifest", bt->file);
    if (!stop && (strcmp(t->meta.format, bt->format) || strcmp(t->meta.kernel, bt->kernel) || t->meta.repeat != bt->repeat))
        stop = problem(log, strict, n_bad, "%s: holds %s@%s repeat %u, the manifest says %s@%s repeat %u", bt->file, t->meta.format,
                       t->meta.kernel, t->meta.repeat, bt->format, bt->kernel, bt->repeat);
    if (!stop && strcmp(t->meta.mode, b->mode) != 0) stop = problem(log, strict, n_bad, "%s: mode differs from the manifest", bt->file);
    if (stop || !out) {
        ra_trace_free(t);
        return stop ? RA_ERR_FORMAT : RA_OK;
    }
    *out = t;
    return RA_OK;
}

static ra_status trace_bytes(const ra_bundle *b, uint32_t i, uint8_t **file, size_t *len)
{
    return ra_read_file_inside(b->dir, b->traces[i].rel, RA_TRACE_MAX_FILE, file, len);
}

/* What was checked for one trace that passed: its file's SHA-256, its digest,
 * and how many step hashes were recomputed from stored vectors. */
static void checked_line(FILE *log, const ra_bundle_trace *bt, const ra_trace *t)
{
    uint64_t steps = 0, recomputed = 0;
    for (uint32_t i = 0; i < t->n_seqs; i++)
        for (uint32_t k = 0; k < t->seqs[i].n_steps; k++) {
            steps++;
            recomputed += t->seqs[i].steps[k].full != NULL;
        }
    char sha[65], dig[65], e1[512], e2[160], label[72], e3[300];
    snprintf(label, sizeof label, "%s@%s", bt->format, bt->kernel);
    ra_hex(bt->sha256, 32, sha);
    ra_hex(bt->digest, 32, dig);
    fprintf(log, "ok  %s  %s repeat %u, scenario %s\n    file sha256 %s\n    trace digest %s\n"
                 "    %llu steps in %u sequences; %llu step hashes recomputed from stored log-prob vectors, every Merkle root recomputed\n",
            ra_esc(e1, sizeof e1, bt->rel), ra_esc(e3, sizeof e3, label), bt->repeat, ra_esc(e2, sizeof e2, bt->scenario), sha, dig,
            (unsigned long long)steps, t->n_seqs, (unsigned long long)recomputed);
}

ra_status ra_bundle_verify(const ra_bundle *b, FILE *log, uint32_t *n_bad)
{
    *n_bad = 0;
    for (uint32_t i = 0; i < b->n_traces; i++) {
        uint8_t *file;
        size_t len;
        ra_status s = trace_bytes(b, i, &file, &len);
        if (s == RA_ERR_NOTFOUND) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", ra_errmsg());
            problem(log, false, n_bad, "%s", msg);
            continue;
        }
        RA_TRY(s);
        uint32_t before = *n_bad;
        ra_trace *t = NULL;
        s = check_trace(b, i, file, len, log, false, n_bad, log ? &t : NULL);
        free(file);
        if (s == RA_OK && t && *n_bad == before) checked_line(log, &b->traces[i], t);
        ra_trace_free(t);
        RA_TRY(s);
    }
    return RA_OK;
}

ra_status ra_bundle_read_trace(const ra_bundle *b, uint32_t i, ra_trace **out)
{
    *out = NULL;
    uint8_t *file;
    size_t len;
    RA_TRY(trace_bytes(b, i, &file, &len));
    uint32_t n_bad = 0;
    ra_status s = check_trace(b, i, file, len, NULL, true, &n_bad, out);
    free(file);
    return s;
}

ra_status ra_bundle_create_partial(const char *out_dir, char **tmp)
{
    char prefix[4096], traces[4200];
    if (snprintf(prefix, sizeof prefix, "%s.partial-", out_dir) >= (int)sizeof prefix)
        return ra_fail(RA_ERR_USAGE, "%s: path too long", out_dir);
    RA_TRY(ra_create_unique(prefix, true, tmp, NULL));
    snprintf(traces, sizeof traces, "%s/traces", *tmp);
    if (mkdir(traces, 0755) == 0) return RA_OK;
    ra_status s = ra_fail(RA_ERR_IO, "%s: cannot create directory: %s", traces, strerror(errno));
    rmdir(*tmp);
    free(*tmp);
    *tmp = NULL;
    return s;
}

void ra_bundle_discard(const char *dir)
{
    static const char *const files[] = {"manifest.json", "report.json", "report.md", "report.html"};
    char path[4096];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/traces", dir);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 8 && !strcmp(e->d_name + n - 8, ".ratrace")) unlinkat(dirfd(d), e->d_name, 0); /* never a directory */
    }
    if (d) closedir(d);
    rmdir(path);
    rmdir(dir);
}
