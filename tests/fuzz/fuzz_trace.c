/* libFuzzer target for the trace reader: any input must either fail cleanly or
 * read into a trace that holds everything a successful ra_trace_read promises
 * (ids in range, top-k in ranking order and distinct, step hashes and top-k of
 * full vectors, sequence and trace digests); a trace that stores every full
 * vector must also be exactly what the writer makes of the same data.
 *
 * The reader takes a path: each input is rewritten into one mkstemp file per
 * process. The content SHA-256 covers every byte a mutation could usefully
 * change, so each input of at least a header is read twice: as is, then with
 * its payload-size field and content hash made to agree with its bytes. An
 * input whose magic is "RAWTRACE" carries its payload uncompressed: the harness
 * packs bytes [224, end) into a zstd frame and sets the raw size as well, so
 * mutations reach the payload structure directly (the seed corpus,
 * tests/fuzz/corpus/fuzz_trace, made by tools/gen_trace_corpus.c, has one).
 *
 * Until the whole library links, build it alone:
 *   clang -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined tests/fuzz/fuzz_trace.c src/audit/trace.c \
 *     src/util/util.c src/util/status.c -lzstd -lcrypto -lm -o /tmp/fuzz_trace
 *   mkdir -p /tmp/corpus && /tmp/fuzz_trace -max_total_time=60 /tmp/corpus tests/fuzz/corpus/fuzz_trace */
#include "ra/trace.h"
#include "ra/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#define HDR 224
#define HASHED 192
#define O_PAYLOAD 144
#define O_RAW 152
#define O_CONTENT 192

static char path[200], wpath[240];
static volatile float fsink; /* every value read goes through it */
static int fd = -1;

static void cleanup(void)
{
    if (fd >= 0) unlink(path);
    unlink(wpath);
}

static void setup(void)
{
    const char *t = getenv("TMPDIR"); /* a tmpfs there keeps the fuzzer off the disk */
    snprintf(path, sizeof path, "%s/fuzz_trace-XXXXXX", t && *t ? t : "/tmp"); /* mkstemp fills in the Xs */
    fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); abort(); }
    snprintf(wpath, sizeof wpath, "%s.w", path);
    atexit(cleanup);
}

static void put(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
}

static void rehash(uint8_t *file, size_t len)
{
    ra_sha256_ctx *c;
    if (ra_sha256_new(&c) != RA_OK) abort();
    ra_sha256_update(c, file, HASHED);
    ra_sha256_update(c, file + HDR, len - HDR);
    ra_sha256_final(c, file + O_CONTENT);
}

/* The ranking, restated: larger first, NaN last, ties by smaller id. */
static bool before(float va, int32_t ia, float vb, int32_t ib)
{
    if (isnan(va) || isnan(vb)) return isnan(va) && isnan(vb) ? ia < ib : isnan(vb);
    return va != vb ? va > vb : ia < ib;
}

static bool same_bits(float a, float b) { return !memcmp(&a, &b, 4); }

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The uncompressed payload of a file the reader accepted (so it is one frame of exactly raw bytes). */
static uint8_t *payload_of(const uint8_t *file, size_t len)
{
    uint64_t raw = ra_le64(file + O_RAW);
    uint8_t *p = malloc(raw ? raw : 1);
    if (!p || ZSTD_decompress(p, raw, file + HDR, len - HDR) != raw) abort();
    return p;
}

/* A trace with every full vector must come out of the writer unchanged. */
static void rewrite(const ra_trace *t, const uint8_t *file, size_t len)
{
    ra_trace_writer *w;
    if (ra_trace_writer_open(wpath, &t->meta, &w) != RA_OK) abort();
    for (uint32_t i = 0; i < t->n_seqs; i++) {
        const ra_trace_seq *q = &t->seqs[i];
        if (ra_trace_begin_seq(w, q->prompt_index, q->prompt_ids, q->n_prompt) != RA_OK) abort();
        for (uint32_t j = 0; j < q->n_steps; j++)
            if (ra_trace_add_step(w, q->steps[j].token, q->steps[j].full, true) != RA_OK) abort();
    }
    uint8_t digest[32];
    if (ra_trace_writer_finish(w, digest) != RA_OK || memcmp(digest, t->digest, 32)) abort();
    uint8_t *again;
    size_t again_len;
    if (ra_read_file(wpath, &again, &again_len) != RA_OK || again_len < HDR) abort();
    /* Same header except the compressed size and the content hash; same payload. */
    if (memcmp(again, file, O_PAYLOAD) || memcmp(again + O_RAW, file + O_RAW, O_CONTENT - O_RAW)) abort();
    uint8_t *a = payload_of(file, len), *b = payload_of(again, again_len);
    if (memcmp(a, b, ra_le64(file + O_RAW))) abort();
    free(a);
    free(b);
    free(again);
}

static void check(const ra_trace *t, const uint8_t *file, size_t len)
{
    const ra_trace_meta *m = &t->meta;
    if (!memchr(m->format, 0, sizeof m->format) || !memchr(m->kernel, 0, sizeof m->kernel) ||
        !memchr(m->mode, 0, sizeof m->mode))
        abort();
    uint32_t nv = m->n_vocab, k = m->top_k;
    if (nv == 0 || nv > INT32_MAX || k > nv) abort();
    size_t total = 0;
    for (uint32_t i = 0; i < t->n_seqs; i++) total += t->seqs[i].n_steps;
    uint8_t (*all)[32] = malloc((total ? total : 1) * 32);
    int32_t *ids = malloc((k ? k : 1) * sizeof *ids), *re_id = malloc((k ? k : 1) * sizeof *re_id);
    float *re_lp = malloc((k ? k : 1) * sizeof *re_lp);
    if (!all || !ids || !re_id || !re_lp) abort();
    size_t n = 0;
    bool every_full = true;
    for (uint32_t i = 0; i < t->n_seqs; i++) {
        const ra_trace_seq *q = &t->seqs[i];
        for (uint32_t j = 0; j < q->n_prompt; j++)
            if (q->prompt_ids[j] < 0 || (uint32_t)q->prompt_ids[j] >= nv) abort();
        size_t first = n;
        for (uint32_t j = 0; j < q->n_steps; j++) {
            const ra_trace_step *st = &q->steps[j];
            if (st->token < 0 || (uint32_t)st->token >= nv) abort();
            for (uint32_t e = 0; e < k; e++) {
                if (st->topk_id[e] < 0 || (uint32_t)st->topk_id[e] >= nv) abort();
                if (e && !before(st->topk_lp[e - 1], st->topk_id[e - 1], st->topk_lp[e], st->topk_id[e])) abort();
                if (st->topk_id[e] == st->token && !same_bits(st->topk_lp[e], st->logprob)) abort();
                fsink += st->topk_lp[e];
            }
            memcpy(ids, st->topk_id, (size_t)k * sizeof *ids);
            qsort(ids, k, sizeof *ids, cmp_i32);
            for (uint32_t e = 1; e < k; e++)
                if (ids[e] == ids[e - 1]) abort();
            if (st->full) {
                for (uint32_t e = 0; e < nv; e++) fsink += st->full[e];
                uint8_t h[32];
                ra_step_hash(st->token, st->full, nv, h);
                if (memcmp(h, st->hash, 32) || !same_bits(st->full[st->token], st->logprob)) abort();
                ra_topk(st->full, nv, k, re_id, re_lp);
                if (memcmp(re_id, st->topk_id, (size_t)k * 4) || memcmp(re_lp, st->topk_lp, (size_t)k * 4)) abort();
            } else {
                every_full = false;
            }
            memcpy(all[n++], st->hash, 32);
        }
        uint8_t d[32];
        ra_merkle_root(n > first ? (const uint8_t (*)[32])(all + first) : NULL, n - first, d);
        if (memcmp(d, q->digest, 32)) abort();
    }
    uint8_t d[32];
    ra_merkle_root((const uint8_t (*)[32])all, n, d);
    if (memcmp(d, t->digest, 32)) abort();
    free(all);
    free(ids);
    free(re_id);
    free(re_lp);
    if (every_full) rewrite(t, file, len);
}

static void exercise(const uint8_t *data, size_t size)
{
    put(data, size);
    ra_trace *t = NULL;
    ra_status s = ra_trace_read(path, &t);
    if (s != RA_OK) {
        if (t || (s != RA_ERR_FORMAT && s != RA_ERR_UNSUPPORTED && s != RA_ERR_NOMEM)) abort(); /* UNSUPPORTED: over the size limits */
        return;
    }
    check(t, data, size);
    ra_trace_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) setup();
    exercise(data, size);
    if (size < HDR) return 0;

    uint8_t *buf;
    size_t n;
    if (!memcmp(data, "RAWTRACE", 8)) {
        size_t raw = size - HDR, bound = ZSTD_compressBound(raw);
        if (!(buf = malloc(HDR + bound))) abort();
        memcpy(buf, data, HDR);
        memcpy(buf, "RATRACE\0", 8);
        size_t c = ZSTD_compress(buf + HDR, bound, data + HDR, raw, 1);
        if (ZSTD_isError(c)) abort();
        n = HDR + c;
        ra_put_le64(buf + O_RAW, raw);
    } else {
        if (!(buf = malloc(size))) abort();
        memcpy(buf, data, size);
        n = size;
    }
    ra_put_le64(buf + O_PAYLOAD, n - HDR);
    rehash(buf, n);
    if (n != size || memcmp(buf, data, n)) exercise(buf, n);
    free(buf);
    return 0;
}
