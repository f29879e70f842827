/* `run`: every format x repeat over the prompt set, traces hashed and written
 * into a bundle directory that appears only when complete. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ra/audit.h"
#include "ra/bundle.h"
#include "ra/compare.h"
#include "ra/cpu.h"
#include "ra/desc.h"
#include "ra/engine.h"
#include "ra/json.h"
#include "ra/qformat.h"
#include "ra/quantize.h"
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

static cJSON *host_json(uint32_t threads, bool cuda)
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
    cJSON_AddStringToObject(h, "backend", cuda ? "cuda" : "cpu");
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
static ra_status fill_continuations(ra_engine *e, ra_prompt_set *ps, uint32_t max_new, bool ignore_eos)
{
    ra_gen_result g;
    RA_TRY(ra_generate(e, ps, max_new, false, ignore_eos, NULL, NULL, &g));
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

/* ---- batch compositions ------------------------------------------------------
 * A prompt's numbers must not depend on the batch it runs in. Arrangement 0
 * runs every prompt alone; arrangement (size S, rotation R) lays the prompts
 * out in cyclic order shifted by R and cuts it into batches of S, so prompt i
 * sits at position ((i + R) mod n) mod S with other neighbours for each R:
 * over R = 0..S-1 every position of the batch. Each arrangement reassembles
 * its results in prompt order, so its trace compares with the repeats digest
 * for digest. */
typedef struct {
    size_t size, rotation;    /* size 1: alone */
} batch_arrangement;

static void arrangement_name(batch_arrangement a, char *out, size_t n)
{
    if (a.size == 1) snprintf(out, n, "batch-alone");
    else snprintf(out, n, "batch-%u-%u", (unsigned)(a.size % 100), (unsigned)(a.rotation % 100)); /* sizes are at most 64 */
}

/* Batch b of arrangement a as prompt indices; returns its size (0: no more batches). */
static size_t arrangement_batch(batch_arrangement a, size_t n, size_t b, size_t *idx)
{
    size_t k = 0;
    for (size_t slot = b * a.size; slot < n && k < a.size; slot++) idx[k++] = (slot + n - a.rotation % n) % n;
    return k;
}

static ra_status run_arrangement(ra_engine *e, const ra_prompt_set *ps, batch_arrangement a, const ra_run_opts *o,
                                 ra_gen_result *out)
{
    const size_t n = ps->n;
    memset(out, 0, sizeof *out);
    size_t *idx = NULL;
    ra_prompt *items = NULL;
    ra_status s;
    if ((s = ra_calloc(&idx, n, sizeof *idx)) != RA_OK || (s = ra_calloc(&items, n, sizeof *items)) != RA_OK ||
        (s = ra_calloc(&out->n_steps, n, sizeof *out->n_steps)) != RA_OK ||
        (s = ra_calloc(&out->tokens, n, sizeof *out->tokens)) != RA_OK ||
        (s = ra_calloc(&out->logprobs, n, sizeof *out->logprobs)) != RA_OK)
        goto done;
    out->n_seqs = n;
    size_t k;
    for (size_t b = 0; s == RA_OK && (k = arrangement_batch(a, n, b, idx)) > 0; b++) {
        for (size_t i = 0; i < k; i++) items[i] = ps->items[idx[i]];
        ra_prompt_set sub = {.path = ps->path, .n = k, .items = items};
        ra_gen_result g;
        if ((s = ra_generate(e, &sub, o->max_new_tokens, o->score, o->ignore_eos, NULL, NULL, &g)) != RA_OK) break;
        for (size_t i = 0; i < k; i++) { /* move each sequence's arrays to its prompt's place */
            out->n_steps[idx[i]] = g.n_steps[i];
            out->tokens[idx[i]] = g.tokens[i];
            out->logprobs[idx[i]] = g.logprobs[i];
            g.tokens[i] = NULL;
            g.logprobs[i] = NULL;
        }
        out->decode_seconds += g.decode_seconds;
        out->decode_tokens += g.decode_tokens;
        ra_gen_result_free(&g);
    }
done:
    free(idx);
    free(items);
    if (s != RA_OK) ra_gen_result_free(out);
    return s;
}

typedef struct {
    const ra_run_opts *o;
    ra_model_desc *desc;
    ra_tokenizer *tok;
    ra_prompt_set *ps;
    ra_pool *pool;
    const ra_format **formats;
    const ra_kernel **kernels;
    bool used_cuda;
    double t_start;
    char *tmp;
    cJSON *traces;
    double decode_seconds;
    uint64_t decode_tokens;
    ra_deriver *deriver;        /* derived checkpoint formats */
} run_ctx;

/* Writes one run's trace and its manifest entry. */
static ra_status record_trace(run_ctx *r, ra_engine *e, const ra_format *f, const ra_kernel *k, uint32_t repeat,
                              const char *scenario, const ra_gen_result *gen, const char *perturbation)
{
    const ra_run_opts *o = r->o;
    r->decode_seconds += gen->decode_seconds;
    r->decode_tokens += gen->decode_tokens;
    ra_trace_meta meta = {0};
    snprintf(meta.format, sizeof meta.format, "%s", f->name);
    snprintf(meta.kernel, sizeof meta.kernel, "%s", k->name);
    snprintf(meta.mode, sizeof meta.mode, "%s", o->score ? "score" : "generate");
    meta.repeat = repeat;
    meta.n_vocab = ra_engine_config(e)->n_vocab;
    meta.top_k = o->top_k;
    bool full = o->store_full == RA_STORE_ALL || (o->store_full == RA_STORE_FIRST && repeat == 0);
    char rel[160], path[4096];
    if (!strcmp(scenario, "repeat")) snprintf(rel, sizeof rel, "traces/%s@%s.r%u.ratrace", f->name, k->name, repeat);
    else snprintf(rel, sizeof rel, "traces/%s@%s.%s.ratrace", f->name, k->name, scenario);
    snprintf(path, sizeof path, "%s/%s", r->tmp, rel);
    uint8_t digest[32], file_sha[32];
    RA_TRY(write_trace(path, &meta, r->ps, gen, full, digest));
    RA_TRY(ra_sha256_file(path, file_sha));
    uint64_t steps = 0;
    for (size_t i = 0; i < gen->n_seqs; i++) steps += gen->n_steps[i];

    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "format", f->name);
    cJSON_AddStringToObject(t, "kernel", k->name);
    cJSON_AddBoolToObject(t, "deterministic", k->deterministic);
    cJSON_AddNumberToObject(t, "repeat", repeat);
    cJSON_AddStringToObject(t, "scenario", scenario);
    if (perturbation) cJSON_AddStringToObject(t, "perturbation", perturbation);
    cJSON_AddStringToObject(t, "file", rel);
    add_hex(t, "sha256", file_sha, 32);
    add_hex(t, "digest", digest, 32);
    cJSON_AddNumberToObject(t, "steps", (double)steps);
    cJSON_AddBoolToObject(t, "full", full);
    cJSON_AddNumberToObject(t, "decode_tokens", (double)gen->decode_tokens);
    cJSON_AddNumberToObject(t, "decode_seconds", gen->decode_seconds);
    ra_engine_describe(e, cJSON_AddObjectToObject(t, "engine"));
    cJSON_AddItemToArray(r->traces, t);
    if (o->progress) {
        char hex[65];
        ra_hex(digest, 32, hex);
        fprintf(stderr, "  %s@%-10s %-14s digest %.16s  (%.1fs, %.1f tokens/s)\n", f->name, k->name, scenario, hex,
                ra_now() - r->t_start, gen->decode_seconds > 0 ? gen->decode_tokens / gen->decode_seconds : 0.0);
    }
    return RA_OK;
}

static ra_status open_model(run_ctx *r, const ra_format *f, ra_model **m)
{
    if (!r->deriver) {
        ra_derive_opts dop = {r->o->cache_dir, r->o->no_cache, r->o->calib_path, r->o->progress};
        RA_TRY(ra_deriver_open(r->desc, r->tok, r->pool, &dop, &r->deriver));
    }
    RA_TRY(ra_deriver_load(r->deriver, f, m));
    if (!r->o->plant) return RA_OK;
    ra_perturb p;
    char what[256];
    ra_status s = ra_perturb_parse(r->o->plant, &p);
    if (s == RA_OK) s = ra_model_perturb(*m, &p, what, sizeof what);
    if (s == RA_OK && r->o->progress) fprintf(stderr, "  planted: %s\n", what);
    if (s != RA_OK) {
        ra_model_free(*m);
        *m = NULL;
    }
    return s;
}

static ra_status open_engine(run_ctx *r, const ra_format *f, const ra_kernel *k, ra_model **m, ra_engine **e)
{
    RA_TRY(open_model(r, f, m));
    ra_engine_opts eo = {.no_graphs = r->o->no_graphs};
    ra_status s = ra_engine_open(*m, k, &eo, e);
    if (s != RA_OK) {
        ra_model_free(*m);
        *m = NULL;
    }
    if (k->backend == RA_BACKEND_CUDA) r->used_cuda = true;
    return s;
}

/* ---- scenarios besides the repeats (docs/scenarios.md) ---------------------- */

static ra_status run_batches(run_ctx *r, ra_engine *e, const ra_format *f, const ra_kernel *k, uint32_t *run_no)
{
    const ra_run_opts *o = r->o;
    size_t max = o->batch_max ? o->batch_max : RA_DEFAULT_BATCH_MAX;
    ra_status s = RA_OK;
    for (size_t size = 1; size <= max && size <= r->ps->n && s == RA_OK; size++)
        for (size_t rot = 0; rot < (size == 1 ? 1 : size) && s == RA_OK; rot++) {
            batch_arrangement a = {size, rot};
            char name[24];
            arrangement_name(a, name, sizeof name);
            ra_gen_result gen;
            if ((s = run_arrangement(e, r->ps, a, o, &gen)) != RA_OK) break;
            s = record_trace(r, e, f, k, (*run_no)++, name, &gen, NULL);
            ra_gen_result_free(&gen);
        }
    return s;
}

/* Each generated sequence, teacher-forced in one prefill pass: the same
 * positions, computed many rows at a time instead of one step at a time. */
static ra_status run_prefill(run_ctx *r, ra_engine *e, const ra_format *f, const ra_kernel *k, const ra_gen_result *decoded,
                             uint32_t *run_no)
{
    const ra_prompt_set *ps = r->ps;
    ra_prompt *items;
    RA_TRY(ra_calloc(&items, ps->n ? ps->n : 1, sizeof *items));
    for (size_t i = 0; i < ps->n; i++) {
        items[i] = ps->items[i];
        items[i].cont = decoded->tokens[i];
        items[i].n_cont = decoded->n_steps[i];
    }
    ra_prompt_set sub = {.path = ps->path, .n = ps->n, .items = items};
    ra_gen_result gen;
    ra_status s = ra_generate(e, &sub, r->o->max_new_tokens, true, r->o->ignore_eos, NULL, NULL, &gen);
    free(items);
    if (s != RA_OK) return s;
    s = record_trace(r, e, f, k, (*run_no)++, "prefill-decode", &gen, NULL);
    ra_gen_result_free(&gen);
    return s;
}

/* The same engine on a pool of another size (the CPU engine reads m->pool at
 * every pass). */
static ra_status run_threads(run_ctx *r, ra_engine *e, ra_model *m, const ra_format *f, const ra_kernel *k, uint32_t *run_no)
{
    uint32_t n = ra_pool_threads(r->pool) == 1 ? 2 : 1;
    ra_pool *p;
    RA_TRY(ra_pool_new(n, &p));
    m->pool = p;
    ra_gen_result gen;
    ra_status s = ra_generate(e, r->ps, r->o->max_new_tokens, r->o->score, r->o->ignore_eos, NULL, NULL, &gen);
    if (s == RA_OK) {
        char name[24];
        snprintf(name, sizeof name, "threads-%u", n);
        s = record_trace(r, e, f, k, (*run_no)++, name, &gen, NULL);
        ra_gen_result_free(&gen);
    }
    m->pool = r->pool;
    ra_pool_free(p);
    return s;
}

/* The negative control: a fresh model with one weight one ulp off. */
static ra_status run_control(run_ctx *r, const ra_format *f, const ra_kernel *k, uint32_t *run_no)
{
    ra_perturb p;
    RA_TRY(ra_perturb_parse(r->o->perturb ? r->o->perturb : RA_DEFAULT_PERTURB, &p));
    ra_model *m;
    RA_TRY(open_model(r, f, &m));
    char what[256];
    ra_engine *e = NULL;
    ra_status s = ra_model_perturb(m, &p, what, sizeof what);
    ra_engine_opts eo = {.no_graphs = r->o->no_graphs};
    if (s == RA_OK) s = ra_engine_open(m, k, &eo, &e);
    ra_gen_result gen;
    if (s == RA_OK) s = ra_generate(e, r->ps, r->o->max_new_tokens, r->o->score, r->o->ignore_eos, NULL, NULL, &gen);
    if (s == RA_OK) {
        s = record_trace(r, e, f, k, (*run_no)++, "control-ulp", &gen, what);
        ra_gen_result_free(&gen);
    }
    ra_engine_close(e);
    ra_model_free(m);
    return s;
}

/* The prompt set as token ids (and continuations), so a child process runs
 * exactly the sequences this one does. */
static ra_status write_prompt_ids(const ra_prompt_set *ps, const char *path)
{
    ra_buf b = {0};
    ra_status s = RA_OK;
    for (size_t i = 0; i < ps->n && s == RA_OK; i++) {
        const ra_prompt *p = &ps->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", p->id);
        cJSON_AddItemToObject(o, "ids", cJSON_CreateIntArray(p->ids, (int)p->n_ids));
        if (p->cont) cJSON_AddItemToObject(o, "continuation_ids", cJSON_CreateIntArray(p->cont, (int)p->n_cont));
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!line) return ra_buf_free(&b), ra_fail(RA_ERR_NOMEM, "out of memory");
        s = ra_buf_printf(&b, "%s\n", line);
        free(line);
    }
    if (s == RA_OK) s = ra_write_file_atomic(path, b.data ? (const void *)b.data : "", b.len);
    ra_buf_free(&b);
    return s;
}

/* One child: `repro-audit run` of this format@kernel, one run numbered
 * run_no, into dir/bundle; waits for it. */
static ra_status spawn_child(run_ctx *r, const ra_format *f, const ra_kernel *k, const char *dir, uint32_t run_no)
{
    const ra_run_opts *o = r->o;
    char exe[4096], prompts[4096], out[4096], fk[80], threads[16], maxnew[16], topk[16], first[16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return ra_fail(RA_ERR_IO, "process scenario: cannot find this program (/proc/self/exe): %s", strerror(errno));
    exe[n] = 0;
    snprintf(prompts, sizeof prompts, "%s/prompts.jsonl", dir);
    snprintf(out, sizeof out, "%s/run%u", dir, run_no);
    snprintf(fk, sizeof fk, "%s@%s", f->name, k->name);
    snprintf(threads, sizeof threads, "%u", ra_pool_threads(r->pool));
    snprintf(maxnew, sizeof maxnew, "%u", o->max_new_tokens);
    snprintf(topk, sizeof topk, "%u", o->top_k);
    snprintf(first, sizeof first, "%u", run_no);
    const char *argv[40] = {exe, "run", "--model", o->model_path, "--prompts", prompts, "--out", out, "--formats", fk,
                            "--repeats", "1", "--threads", threads, "--max-new-tokens", maxnew, "--top-k", topk,
                            "--first-repeat", first, "--mode", o->score ? "score" : "generate", "--quiet",
                            "--store-full", o->store_full == RA_STORE_ALL ? "all" : "none"};
    size_t c = 24;
    if (o->ignore_eos) argv[c++] = "--ignore-eos";
    if (o->no_graphs) argv[c++] = "--no-graphs";
    if (o->no_cache) argv[c++] = "--no-cache";
    if (o->cache_dir) argv[c++] = "--cache-dir", argv[c++] = o->cache_dir;
    if (o->calib_path) argv[c++] = "--calib", argv[c++] = o->calib_path;
    if (o->plant) argv[c++] = "--plant", argv[c++] = o->plant;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return ra_fail(RA_ERR_IO, "process scenario: fork: %s", strerror(errno));
    if (pid == 0) {
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return ra_fail(RA_ERR_IO, "process scenario: waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return ra_fail(RA_ERR_INTERNAL, "process scenario: the child run of %s failed (status %d)", fk, status);
    return RA_OK;
}

/* Folds the child's one trace into this bundle: the file as it wrote it, its
 * manifest entry with this bundle's name and scenario. */
static ra_status fold_child(run_ctx *r, const char *child_dir, const char *scenario)
{
    ra_bundle *b;
    RA_TRY(ra_bundle_open(child_dir, &b));
    ra_trace *t = NULL;
    ra_status s = b->n_traces == 1 ? ra_bundle_read_trace(b, 0, &t)
                                   : ra_fail(RA_ERR_FORMAT, "%s: the child run wrote %u traces, not 1", child_dir, b->n_traces);
    uint8_t *data = NULL;
    size_t len = 0;
    if (s == RA_OK) s = ra_read_file_inside(child_dir, b->traces[0].rel, RA_TRACE_MAX_FILE, &data, &len);
    char rel[160], path[4096];
    const ra_bundle_trace *bt = &b->traces[0];
    snprintf(rel, sizeof rel, "traces/%s@%s.%s.ratrace", bt->format, bt->kernel, scenario);
    snprintf(path, sizeof path, "%s/%s", r->tmp, rel);
    if (s == RA_OK) s = ra_write_file_atomic(path, data, len);
    if (s == RA_OK) {
        cJSON *entry = cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItem(b->manifest, "traces"), 0), true);
        cJSON_ReplaceItemInObject(entry, "scenario", cJSON_CreateString(scenario));
        cJSON_ReplaceItemInObject(entry, "file", cJSON_CreateString(rel));
        cJSON_AddItemToArray(r->traces, entry);
        cJSON *dt = cJSON_GetObjectItem(entry, "decode_tokens"), *ds = cJSON_GetObjectItem(entry, "decode_seconds");
        if (cJSON_IsNumber(dt) && cJSON_IsNumber(ds)) r->decode_tokens += (uint64_t)dt->valuedouble, r->decode_seconds += ds->valuedouble;
        if (r->o->progress) {
            char hex[65];
            ra_hex(t->digest, 32, hex);
            fprintf(stderr, "  %s@%-10s %-14s digest %.16s  (%.1fs, own process)\n", bt->format, bt->kernel, scenario, hex,
                    ra_now() - r->t_start);
        }
    }
    free(data);
    ra_trace_free(t);
    ra_bundle_close(b);
    return s;
}

static ra_status run_processes(run_ctx *r, const ra_format *f, const ra_kernel *k, uint32_t *run_no)
{
    const char *tmpdir = getenv("TMPDIR");
    char prefix[4096], prompts[4200];
    snprintf(prefix, sizeof prefix, "%s/repro-audit-process-", tmpdir && *tmpdir ? tmpdir : "/tmp");
    char *dir;
    RA_TRY(ra_create_unique(prefix, true, &dir, NULL));
    snprintf(prompts, sizeof prompts, "%s/prompts.jsonl", dir);
    ra_status s = write_prompt_ids(r->ps, prompts);
    uint32_t n = r->o->processes ? r->o->processes : RA_DEFAULT_PROCESSES;
    for (uint32_t i = 0; i < n && s == RA_OK; i++) {
        if (r->o->progress) fprintf(stderr, "  %s@%s: process %u/%u\n", f->name, k->name, i + 1, n);
        char child[4200], scenario[24];
        snprintf(child, sizeof child, "%s/run%u", dir, *run_no);
        snprintf(scenario, sizeof scenario, "process-%u", i + 1);
        s = spawn_child(r, f, k, dir, *run_no);
        if (s == RA_OK) s = fold_child(r, child, scenario);
        (*run_no)++;
    }
    ra_remove_tree(dir);
    free(dir);
    return s;
}

static ra_status run_format(run_ctx *r, const ra_format *f, const ra_kernel *k)
{
    const ra_run_opts *o = r->o;
    ra_model *m;
    ra_engine *e;
    double t_load = ra_now();
    RA_TRY(open_engine(r, f, k, &m, &e));
    char label[80];
    snprintf(label, sizeof label, "%s@%s", f->name, k->name);
    if (o->progress) fprintf(stderr, "  %-12s loaded in %.1fs\n", label, ra_now() - t_load);

    ra_status s = RA_OK;
    uint32_t run_no = o->first_repeat;
    ra_gen_result first = {0}; /* repeat 0, kept for prefill-decode */
    for (uint32_t rep = 0; rep < o->repeats && s == RA_OK; rep++) {
        progress_state ps = {label, rep, o->repeats, ra_now()};
        ra_gen_result gen;
        s = ra_generate(e, r->ps, o->max_new_tokens, o->score, o->ignore_eos, o->progress ? show_progress : NULL, &ps, &gen);
        if (s != RA_OK) break;
        if (o->progress) fputc('\n', stderr);
        s = record_trace(r, e, f, k, run_no++, "repeat", &gen, NULL);
        if (rep == 0 && o->prefill_decode_scenario) first = gen;
        else ra_gen_result_free(&gen);
    }
    if (s == RA_OK && o->batch_scenario) s = run_batches(r, e, f, k, &run_no);
    if (s == RA_OK && o->prefill_decode_scenario) s = run_prefill(r, e, f, k, &first, &run_no);
    ra_gen_result_free(&first);
    if (s == RA_OK && o->threads_scenario && k->backend == RA_BACKEND_CPU) s = run_threads(r, e, m, f, k, &run_no);
    ra_engine_close(e);
    ra_model_free(m);
    if (s == RA_OK && o->control_scenario) s = run_control(r, f, k, &run_no);
    if (s == RA_OK && o->process_scenario) s = run_processes(r, f, k, &run_no);
    return s;
}

/* The model's files with their SHA-256s. The first entry is the model's
 * identity: the GGUF file itself, or for a checkpoint directory the directory,
 * hashed as the SHA-256 over each file's name, size and SHA-256 in name order. */
static ra_status add_model_files(cJSON *files, const ra_model_desc *d)
{
    cJSON *dir = NULL;
    ra_sha256_ctx *tree = NULL;
    uint64_t total = 0;
    if (strcmp(d->container, "gguf") != 0) {
        RA_TRY(ra_sha256_new(&tree));
        dir = cJSON_CreateObject();
        cJSON_AddItemToArray(files, dir);
        cJSON_AddStringToObject(dir, "path", d->path);
        cJSON_AddStringToObject(dir, "kind", "directory");
    }
    ra_status s = RA_OK;
    for (size_t i = 0; i < d->n_files && s == RA_OK; i++) {
        const uint8_t *sha = d->files[i].sha256; /* the bytes that ran, not whatever the path names now */
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", d->files[i].path);
        cJSON_AddNumberToObject(f, "bytes", (double)d->files[i].bytes);
        add_hex(f, "sha256", sha, 32);
        cJSON_AddItemToArray(files, f);
        total += d->files[i].bytes;
        if (tree) {
            const char *base = strrchr(d->files[i].path, '/');
            base = base ? base + 1 : d->files[i].path;
            uint8_t len[8];
            ra_put_le64(len, strlen(base));
            ra_sha256_update(tree, len, 8);
            ra_sha256_update(tree, base, strlen(base));
            ra_put_le64(len, d->files[i].bytes);
            ra_sha256_update(tree, len, 8);
            ra_sha256_update(tree, sha, 32);
        }
    }
    if (tree) {
        uint8_t sha[32];
        ra_sha256_final(tree, sha);
        cJSON_AddNumberToObject(dir, "bytes", (double)total);
        add_hex(dir, "sha256", sha, 32);
    }
    return s;
}

/* settings.scenarios and what each was run with (docs/scenarios.md). */
static void add_scenarios(cJSON *st, const ra_run_opts *o)
{
    cJSON *sc = cJSON_AddArrayToObject(st, "scenarios");
    cJSON_AddItemToArray(sc, cJSON_CreateString("repeat"));
    cJSON *opt = cJSON_AddObjectToObject(st, "scenario_settings");
    if (o->process_scenario) {
        cJSON_AddItemToArray(sc, cJSON_CreateString("process"));
        cJSON_AddNumberToObject(opt, "processes", o->processes ? o->processes : RA_DEFAULT_PROCESSES);
    }
    if (o->batch_scenario) {
        cJSON_AddItemToArray(sc, cJSON_CreateString("batch"));
        cJSON_AddNumberToObject(opt, "batch_max", o->batch_max ? o->batch_max : RA_DEFAULT_BATCH_MAX);
    }
    if (o->prefill_decode_scenario) cJSON_AddItemToArray(sc, cJSON_CreateString("prefill-decode"));
    if (o->threads_scenario) cJSON_AddItemToArray(sc, cJSON_CreateString("threads"));
    if (o->control_scenario) {
        cJSON_AddItemToArray(sc, cJSON_CreateString("control"));
        cJSON_AddStringToObject(opt, "perturb", o->perturb ? o->perturb : RA_DEFAULT_PERTURB);
    }
    if (o->first_repeat) cJSON_AddNumberToObject(opt, "first_repeat", o->first_repeat);
    if (o->plant) cJSON_AddStringToObject(st, "planted_difference", o->plant); /* every run: one weight one ulp off */
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
    cJSON_AddItemToObject(root, "host", host_json(ra_pool_threads(r->pool), r->used_cuda));

    ra_model_config c;
    ra_status s = ra_config_from_desc(r->desc, &c);
    if (s != RA_OK) { cJSON_Delete(root); return s; }
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "path", o->model_path);
    cJSON_AddStringToObject(model, "container", r->desc->container);
    cJSON_AddStringToObject(model, "architecture", c.arch);
    cJSON_AddStringToObject(model, "name", c.name);
    s = add_model_files(cJSON_AddArrayToObject(model, "files"), r->desc);
    if (s != RA_OK) { cJSON_Delete(root); return s; }
    uint8_t sha[32];
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
    for (size_t i = 0; i < o->n_formats; i++) {
        char pair[80];
        snprintf(pair, sizeof pair, "%s@%s", r->formats[i]->name, r->kernels[i]->name);
        cJSON_AddItemToArray(fl, cJSON_CreateString(pair));
    }
    if (r->deriver && ra_deriver_n(r->deriver) > 0) {
        cJSON *dc = cJSON_AddObjectToObject(st, "derived_checkpoints");
        for (size_t i = 0; i < ra_deriver_n(r->deriver); i++) {
            const char *name, *dir;
            ra_deriver_at(r->deriver, i, &name, &dir);
            cJSON_AddStringToObject(dc, name, dir);
        }
    }
    add_scenarios(st, o);

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
        char json[4096], md[4096], html[4096];
        snprintf(json, sizeof json, "%s/report.json", tmp);
        snprintf(md, sizeof md, "%s/report.md", tmp);
        snprintf(html, sizeof html, "%s/report.html", tmp);
        s = ra_report_write_all(c, json, md, html);
    }
    if (s == RA_OK && print) fprintf(stderr, "%s\n", c->ok ? "every expectation held" : "a determinism expectation FAILED");
    ra_comparison_free(c);
    return s;
}

ra_status ra_run(const ra_run_opts *o)
{
    if (o->repeats == 0 || o->repeats > 1000) return ra_fail(RA_ERR_USAGE, "--repeats must be 1..1000");
    if (o->top_k == 0) return ra_fail(RA_ERR_USAGE, "--top-k must be at least 1");
    if (o->prefill_decode_scenario && o->score)
        return ra_fail(RA_ERR_USAGE, "the prefill-decode scenario needs --mode generate (score mode is the prefill side already)");
    ra_perturb p;
    if (o->control_scenario) RA_TRY(ra_perturb_parse(o->perturb ? o->perturb : RA_DEFAULT_PERTURB, &p));
    if (o->plant) RA_TRY(ra_perturb_parse(o->plant, &p));
    if (ra_path_exists(o->out_dir)) return ra_fail(RA_ERR_USAGE, "%s already exists; choose another --out or remove it", o->out_dir);

    run_ctx r = {.o = o};
    char why[256] = "";
    bool gpu = o->device != RA_DEVICE_CPU && ra_cuda_available(why, sizeof why);
    ra_status s = RA_OK;
    if (o->device == RA_DEVICE_GPU && !gpu) s = ra_fail(RA_ERR_UNSUPPORTED, "--device gpu: no CUDA GPU can be used: %s", why);
    char started[32];
    utc_now(started, sizeof started);
    double t0 = ra_now();
    r.t_start = t0;
    if (s == RA_OK) s = ra_desc_open(o->model_path, 0, &r.desc);
    /* Without --formats: a quantized checkpoint runs as itself. */
    ra_run_opts defaults = *o;
    const char *own[1];
    char *list = NULL;
    const char *names[8];
    if (s == RA_OK && o->n_formats == 0) {
        ra_qformat ck;
        const ra_format *f = NULL;
        if (r.desc->quant.method != RA_QUANT_NONE) {
            s = ra_qformat_of_checkpoint(&r.desc->quant, &ck);
            if (s == RA_OK && !(f = ra_qformat_row_for(&ck)))
                s = ra_fail(RA_ERR_UNSUPPORTED, "%s: no format runs this checkpoint (%s)", o->model_path, r.desc->quant.summary);
            if (s == RA_OK) own[0] = f->name, defaults.formats = own, defaults.n_formats = 1;
        } else if ((s = ra_strdup(&list, RA_DEFAULT_FORMATS)) == RA_OK) {
            for (char *tok = strtok(list, ","); tok && defaults.n_formats < 8; tok = strtok(NULL, ","))
                names[defaults.n_formats++] = tok;
            defaults.formats = names;
        }
        o = &defaults;
        r.o = o;
    }
    if (s == RA_OK) s = ra_calloc(&r.formats, o->n_formats, sizeof *r.formats);
    if (s == RA_OK) s = ra_calloc(&r.kernels, o->n_formats, sizeof *r.kernels);
    for (size_t i = 0; s == RA_OK && i < o->n_formats; i++) {
        s = ra_format_resolve(o->formats[i], gpu, &r.formats[i], &r.kernels[i]);
        if (s == RA_OK && o->device == RA_DEVICE_CPU && r.kernels[i]->backend != RA_BACKEND_CPU)
            s = ra_fail(RA_ERR_USAGE, "%s runs on a GPU, but --device cpu was given", o->formats[i]);
        for (size_t j = 0; s == RA_OK && j < i; j++)
            if (r.formats[j] == r.formats[i] && r.kernels[j] == r.kernels[i])
                s = ra_fail(RA_ERR_USAGE, "%s@%s is listed twice in --formats", r.formats[i]->name, r.kernels[i]->name);
    }
    if (s == RA_OK) s = ra_tokenizer_from_desc(r.desc, &r.tok);
    ra_model_config cfg;
    if (s == RA_OK) s = ra_config_from_desc(r.desc, &cfg);
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
            ra_engine *e;
            s = open_engine(&r, r.formats[0], r.kernels[0], &m, &e);
            if (s == RA_OK) {
                if (o->progress)
                    fprintf(stderr, "  generating continuations to score with %s@%s\n", r.formats[0]->name, r.kernels[0]->name);
                s = fill_continuations(e, r.ps, o->max_new_tokens, o->ignore_eos);
                ra_engine_close(e);
                ra_model_free(m);
            }
        }
    }
    for (size_t i = 0; s == RA_OK && i < o->n_formats; i++) s = run_format(&r, r.formats[i], r.kernels[i]);
    if (s == RA_OK) s = write_manifest(&r, started, ra_now() - t0);
    if (s == RA_OK && o->progress) fprintf(stderr, "  manifest written (%.1fs); comparing\n", ra_now() - t0);
    if (s == RA_OK) s = write_report(r.tmp, o->out_dir, o->progress);
    if (s == RA_OK) s = ra_rename_noreplace(r.tmp, o->out_dir);
    if (s != RA_OK && r.tmp) ra_bundle_discard(r.tmp); /* only what a run writes */
    if (s == RA_OK && o->progress) fprintf(stderr, "bundle written: %s (%.1fs)\n", o->out_dir, ra_now() - t0);
    cJSON_Delete(r.traces);
    ra_deriver_close(r.deriver);
    free(list);
    free(r.tmp);
    ra_pool_free(r.pool);
    ra_prompts_free(r.ps);
    ra_tokenizer_free(r.tok);
    ra_desc_close(r.desc);
    free(r.formats);
    free(r.kernels);
    return s;
}
