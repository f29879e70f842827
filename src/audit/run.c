/* `run`: every format x repeat over the prompt set, traces hashed and written
 * into a bundle directory that appears only when complete. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "ra/audit.h"
#include "ra/compare.h"
#include "ra/cpu.h"
#include "ra/gguf.h"
#include "ra/json.h"
#include "ra/text.h"
#include "ra/trace.h"
#include "ra/util.h"
#include "ra/version.h"


typedef struct {
    const char *label;
    uint32_t repeat, repeats;
    double t0;
} progress_state;

static void show_progress(void *ctx, uint32_t step, uint32_t total)
{
    const progress_state *p = ctx;
    fprintf(stderr, "\r  %-12s repeat %u/%u  step %3u/%u  %5.1fs", p->label, p->repeat + 1, p->repeats, step, total,
            ra_now() - p->t0);
    fflush(stderr);
}

static void utc_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void cpu_model(char *buf, size_t n)
{
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ') v++;
        snprintf(buf, n, "%s", v);
        buf[strcspn(buf, "\n")] = 0;
        break;
    }
    fclose(f);
}

static void add_hex(cJSON *o, const char *key, const uint8_t *bytes, size_t n)
{
    char hex[2 * 64 + 1];
    ra_hex(bytes, n, hex);
    cJSON_AddStringToObject(o, key, hex);
}

static cJSON *host_json(uint32_t threads)
{
    cJSON *h = cJSON_CreateObject();
    char buf[256];
    if (gethostname(buf, sizeof buf) != 0) snprintf(buf, sizeof buf, "unknown");
    buf[sizeof buf - 1] = 0;
    cJSON_AddStringToObject(h, "hostname", buf);
    cpu_model(buf, sizeof buf);
    cJSON_AddStringToObject(h, "cpu", buf);
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s %s %s", u.sysname, u.release, u.machine);
        cJSON_AddStringToObject(h, "os", buf);
    }
    cJSON_AddStringToObject(h, "backend", "cpu");
    cJSON_AddNumberToObject(h, "threads", threads);
    return h;
}

/* Writes one trace: sequences in prompt order, steps in order. */
static ra_status write_trace(const char *path, const ra_trace_meta *meta, const ra_prompt_set *ps, const ra_gen_result *g,
                             bool store_full, uint8_t digest[32])
{
    ra_trace_writer *w;
    RA_TRY(ra_trace_writer_open(path, meta, &w));
    ra_status s = RA_OK;
    for (size_t i = 0; i < ps->n && s == RA_OK; i++) {
        s = ra_trace_begin_seq(w, (uint32_t)i, ps->items[i].ids, (uint32_t)ps->items[i].n_ids);
        for (uint32_t k = 0; k < g->n_steps[i] && s == RA_OK; k++)
            s = ra_trace_add_step(w, g->tokens[i][k], g->logprobs[i] + (size_t)k * meta->n_vocab, store_full);
    }
    if (s != RA_OK) {
        ra_trace_writer_abort(w);
        return s;
    }
    return ra_trace_writer_finish(w, digest);
}

/* Score mode without given continuations: greedy-generate them once with the
 * first format, then every format scores those same tokens. */
static ra_status fill_continuations(ra_model *m, ra_prompt_set *ps, uint32_t max_new, bool ignore_eos)
{
    ra_gen_result g;
    RA_TRY(ra_generate(m, ps, max_new, false, ignore_eos, NULL, NULL, &g));
    ra_status s = RA_OK;
    for (size_t i = 0; i < ps->n && s == RA_OK; i++) {
        if (ps->items[i].cont) continue;
        s = ra_calloc(&ps->items[i].cont, g.n_steps[i] ? g.n_steps[i] : 1, sizeof(int32_t));
        if (s != RA_OK) break;
        memcpy(ps->items[i].cont, g.tokens[i], g.n_steps[i] * sizeof(int32_t));
        ps->items[i].n_cont = g.n_steps[i];
    }
    ra_gen_result_free(&g);
    return s;
}

typedef struct {
    const ra_run_opts *o;
    ra_gguf *g;
    ra_tokenizer *tok;
    ra_prompt_set *ps;
    ra_pool *pool;
    const ra_format **formats;
    char *tmp;
    cJSON *traces;
    double decode_seconds;
    uint64_t decode_tokens;
} run_ctx;

static ra_status run_format(run_ctx *r, const ra_format *f)
{
    const ra_run_opts *o = r->o;
    ra_model *m;
    double t_load = ra_now();
    RA_TRY(ra_model_load_gguf(r->g, f, r->pool, &m));
    char label[80];
    snprintf(label, sizeof label, "%s@%s", f->name, f->kernel);
    if (o->progress) fprintf(stderr, "  %-12s loaded in %.1fs\n", label, ra_now() - t_load);

    ra_status s = RA_OK;
    for (uint32_t rep = 0; rep < o->repeats && s == RA_OK; rep++) {
        progress_state ps = {label, rep, o->repeats, ra_now()};
        ra_gen_result gen;
        s = ra_generate(m, r->ps, o->max_new_tokens, o->score, o->ignore_eos, o->progress ? show_progress : NULL, &ps, &gen);
        if (s != RA_OK) break;
        if (o->progress) fputc('\n', stderr);
        double decode_seconds = gen.decode_seconds;
        uint64_t decode_tokens = gen.decode_tokens;
        r->decode_seconds += decode_seconds;
        r->decode_tokens += decode_tokens;

        ra_trace_meta meta = {0};
        snprintf(meta.format, sizeof meta.format, "%s", f->name);
        snprintf(meta.kernel, sizeof meta.kernel, "%s", f->kernel);
        snprintf(meta.mode, sizeof meta.mode, "%s", o->score ? "score" : "generate");
        meta.repeat = rep;
        meta.n_vocab = m->cfg.n_vocab;
        meta.top_k = o->top_k;
        bool full = o->store_full == RA_STORE_ALL || (o->store_full == RA_STORE_FIRST && rep == 0);
        char rel[160], path[4096];
        snprintf(rel, sizeof rel, "traces/%s.r%u.ratrace", label, rep);
        snprintf(path, sizeof path, "%s/%s", r->tmp, rel);
        uint8_t digest[32], file_sha[32];
        s = write_trace(path, &meta, r->ps, &gen, full, digest);
        if (s == RA_OK) s = ra_sha256_file(path, file_sha);
        uint64_t steps = 0;
        for (size_t i = 0; i < gen.n_seqs; i++) steps += gen.n_steps[i];
        ra_gen_result_free(&gen);
        if (s != RA_OK) break;

        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "format", f->name);
        cJSON_AddStringToObject(t, "kernel", f->kernel);
        cJSON_AddBoolToObject(t, "deterministic", f->deterministic);
        cJSON_AddNumberToObject(t, "repeat", rep);
        cJSON_AddStringToObject(t, "file", rel);
        add_hex(t, "sha256", file_sha, 32);
        add_hex(t, "digest", digest, 32);
        cJSON_AddNumberToObject(t, "steps", (double)steps);
        cJSON_AddBoolToObject(t, "full", full);
        cJSON_AddNumberToObject(t, "decode_tokens", (double)decode_tokens);
        cJSON_AddNumberToObject(t, "decode_seconds", decode_seconds);
        cJSON_AddItemToArray(r->traces, t);
        if (o->progress) {
            char hex[65];
            ra_hex(digest, 32, hex);
            fprintf(stderr, "  %-12s repeat %u digest %.16s\n", label, rep + 1, hex);
        }
    }
    ra_model_free(m);
    return s;
}

static ra_status write_manifest(run_ctx *r, const char *started, double seconds)
{
    const ra_run_opts *o = r->o;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "repro-audit.manifest");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON *tool = cJSON_AddObjectToObject(root, "tool");
    cJSON_AddStringToObject(tool, "name", "repro-audit");
    cJSON_AddStringToObject(tool, "version", RA_VERSION);
    cJSON_AddStringToObject(tool, "git_commit", RA_GIT_COMMIT);
    cJSON_AddStringToObject(root, "created_utc", started);
    cJSON_AddItemToObject(root, "host", host_json(ra_pool_threads(r->pool)));

    ra_model_config c;
    ra_status s = ra_config_from_gguf(r->g, &c);
    if (s != RA_OK) { cJSON_Delete(root); return s; }
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "path", o->model_path);
    cJSON_AddStringToObject(model, "architecture", c.arch);
    cJSON_AddStringToObject(model, "name", c.name);
    cJSON *files = cJSON_AddArrayToObject(model, "files");
    cJSON *file = cJSON_CreateObject();
    uint8_t sha[32];
    ra_gguf_sha256(r->g, sha); /* the mapped bytes that ran, not whatever the path names now */
    cJSON_AddStringToObject(file, "path", o->model_path);
    cJSON_AddNumberToObject(file, "bytes", (double)ra_gguf_file_size(r->g));
    add_hex(file, "sha256", sha, 32);
    cJSON_AddItemToArray(files, file);
    cJSON *config = cJSON_AddObjectToObject(model, "config");
    cJSON_AddNumberToObject(config, "n_layers", c.n_layers);
    cJSON_AddNumberToObject(config, "dim", c.dim);
    cJSON_AddNumberToObject(config, "n_heads", c.n_heads);
    cJSON_AddNumberToObject(config, "n_kv_heads", c.n_kv_heads);
    cJSON_AddNumberToObject(config, "ffn_dim", c.ffn_dim);
    cJSON_AddNumberToObject(config, "n_vocab", c.n_vocab);

    cJSON *tk = cJSON_AddObjectToObject(root, "tokenizer");
    ra_tokenizer_digest(r->tok, sha);
    add_hex(tk, "sha256", sha, 32);
    cJSON *pr = cJSON_AddObjectToObject(root, "prompts");
    cJSON_AddStringToObject(pr, "path", r->ps->path);
    add_hex(pr, "sha256", r->ps->sha256, 32);
    cJSON_AddNumberToObject(pr, "count", (double)r->ps->n);

    cJSON *st = cJSON_AddObjectToObject(root, "settings");
    cJSON_AddStringToObject(st, "mode", o->score ? "score" : "generate");
    cJSON_AddNumberToObject(st, "max_new_tokens", o->max_new_tokens);
    cJSON_AddNumberToObject(st, "repeats", o->repeats);
    cJSON_AddNumberToObject(st, "top_k", o->top_k);
    cJSON_AddBoolToObject(st, "ignore_eos", o->ignore_eos);
    static const char *store_names[] = {"none", "first", "all"};
    cJSON_AddStringToObject(st, "store_full", store_names[o->store_full]);
    cJSON *fl = cJSON_AddArrayToObject(st, "formats");
    for (size_t i = 0; i < o->n_formats; i++) cJSON_AddItemToArray(fl, cJSON_CreateString(o->formats[i]));

    cJSON_AddItemReferenceToObject(root, "traces", r->traces);
    cJSON *times = cJSON_AddObjectToObject(root, "times");
    cJSON_AddStringToObject(times, "started_utc", started);
    cJSON_AddNumberToObject(times, "seconds", seconds);
    cJSON_AddNumberToObject(times, "decode_tokens", (double)r->decode_tokens);
    cJSON_AddNumberToObject(times, "decode_tokens_per_second",
                            r->decode_seconds > 0 ? (double)r->decode_tokens / r->decode_seconds : 0);

    char *text;
    s = ra_json_print(root, true, &text);
    cJSON_Delete(root);
    if (s != RA_OK) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", r->tmp);
    s = ra_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}

/* The bundle's own report, computed from the traces just written (the same
 * as `repro-audit compare DIR` will print). */
static ra_status write_report(const char *tmp, const char *out_dir, bool print)
{
    const char *dirs[1] = {tmp};
    ra_comparison *c;
    RA_TRY(ra_compare_bundles(dirs, 1, &c));
    char *name = NULL;
    ra_status s = ra_strdup(&name, out_dir);
    if (s == RA_OK) {
        free(c->bundle_dirs[0]);
        c->bundle_dirs[0] = name; /* report the final name, not the temporary one */
        char json[4096], md[4096];
        snprintf(json, sizeof json, "%s/report.json", tmp);
        snprintf(md, sizeof md, "%s/report.md", tmp);
        s = ra_report_write(c, json, md);
    }
    if (s == RA_OK && print) fprintf(stderr, "%s\n", c->ok ? "every expectation held" : "a determinism expectation FAILED");
    ra_comparison_free(c);
    return s;
}

ra_status ra_run(const ra_run_opts *o)
{
    if (o->repeats == 0 || o->repeats > 1000) return ra_fail(RA_ERR_USAGE, "--repeats must be 1..1000");
    if (o->n_formats == 0) return ra_fail(RA_ERR_USAGE, "no formats given");
    if (o->top_k == 0) return ra_fail(RA_ERR_USAGE, "--top-k must be at least 1");
    if (ra_path_exists(o->out_dir)) return ra_fail(RA_ERR_USAGE, "%s already exists; choose another --out or remove it", o->out_dir);

    run_ctx r = {.o = o};
    ra_status s = ra_calloc(&r.formats, o->n_formats, sizeof *r.formats);
    for (size_t i = 0; s == RA_OK && i < o->n_formats; i++) {
        r.formats[i] = ra_format_find(o->formats[i]);
        if (!r.formats[i]) {
            char known[256] = "";
            for (size_t k = 0; k < ra_format_count(); k++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "", ra_format_at(k)->name);
            s = ra_fail(RA_ERR_USAGE, "unknown format '%s' (known: %s)", o->formats[i], known);
        }
    }
    char started[32];
    utc_now(started, sizeof started);
    double t0 = ra_now();
    if (s == RA_OK) s = ra_gguf_open(o->model_path, &r.g);
    if (s == RA_OK) s = ra_tokenizer_from_gguf(r.g, &r.tok);
    ra_model_config cfg;
    if (s == RA_OK) s = ra_config_from_gguf(r.g, &cfg);
    if (s == RA_OK) s = ra_prompts_load(o->prompts_path, r.tok, cfg.n_vocab, cfg.max_seq, &r.ps);
    if (s == RA_OK) s = ra_prompts_fit(r.ps, cfg.max_seq, o->max_new_tokens, o->score);
    if (s == RA_OK && o->top_k > cfg.n_vocab) s = ra_fail(RA_ERR_USAGE, "--top-k %u exceeds the vocabulary", o->top_k);
    if (s == RA_OK) s = ra_pool_new(o->threads, &r.pool);
    if (s == RA_OK) s = ra_bundle_create_partial(o->out_dir, &r.tmp);
    r.traces = cJSON_CreateArray();
    char name[256]; /* the GGUF chose it: escaped */
    if (s == RA_OK && o->progress)
        fprintf(stderr, "repro-audit run: %s, %zu prompts, %zu formats x %u repeats, %s, %u threads\n", ra_esc(name, sizeof name, cfg.name), r.ps->n,
                o->n_formats, o->repeats, o->score ? "score" : "generate", ra_pool_threads(r.pool));

    if (s == RA_OK && o->score) {
        bool missing = false;
        for (size_t i = 0; i < r.ps->n; i++) missing |= r.ps->items[i].cont == NULL;
        if (missing) {
            ra_model *m;
            s = ra_model_load_gguf(r.g, r.formats[0], r.pool, &m);
            if (s == RA_OK) {
                if (o->progress) fprintf(stderr, "  generating continuations to score with %s\n", r.formats[0]->name);
                s = fill_continuations(m, r.ps, o->max_new_tokens, o->ignore_eos);
                ra_model_free(m);
            }
        }
    }
    for (size_t i = 0; s == RA_OK && i < o->n_formats; i++) s = run_format(&r, r.formats[i]);
    if (s == RA_OK) s = write_manifest(&r, started, ra_now() - t0);
    if (s == RA_OK) s = write_report(r.tmp, o->out_dir, o->progress);
    if (s == RA_OK) s = ra_rename_noreplace(r.tmp, o->out_dir);
    if (s != RA_OK && r.tmp) ra_bundle_discard(r.tmp); /* only what a run writes */
    if (s == RA_OK && o->progress) fprintf(stderr, "bundle written: %s (%.1fs)\n", o->out_dir, ra_now() - t0);
    cJSON_Delete(r.traces);
    free(r.tmp);
    ra_pool_free(r.pool);
    ra_prompts_free(r.ps);
    ra_tokenizer_free(r.tok);
    ra_gguf_close(r.g);
    free(r.formats);
    return s;
}
