/* Traces: step hashes, RFC 6962 Merkle digests, top-k selection, and the
 * version-1 trace file (fixed header + one zstd frame). The byte layout and
 * every check the reader makes are documented in docs/trace-format.md. */
#include "ra/trace.h"
#include "ra/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

/* ---- layout constants (docs/trace-format.md) ---- */

#define MAGIC "RATRACE\0"
#define HDR_SIZE 224u
#define HDR_HASHED 192u        /* header bytes covered by the content hash */
#define SEQ_FIXED 44u          /* prompt_index, n_prompt, n_steps, digest */
#define STEP_FIXED 41u         /* token, logprob, has_full, hash */
#define ZSTD_LEVEL 3 /* full log-prob vectors are nearly incompressible: level 9 took seconds per trace for 1% less */

enum {
    OFF_VERSION = 8, OFF_HDR_SIZE = 12, OFF_FORMAT = 16, OFF_KERNEL = 48, OFF_MODE = 80,
    OFF_REPEAT = 96, OFF_N_VOCAB = 100, OFF_TOP_K = 104, OFF_N_SEQS = 108, OFF_FLAGS = 112,
    OFF_RESERVED = 116, OFF_N_STEPS = 120, OFF_N_PROMPT = 128, OFF_N_FULL = 136,
    OFF_PAYLOAD = 144, OFF_RAW = 152, OFF_DIGEST = 160, OFF_CONTENT = 192
};

/* ---- float bytes: explicit little-endian, whatever the host ---- */

/* Little-endian bytes of n floats; CHUNK floats at a time through a stack buffer. */
#define CHUNK 1024
static void f32s_to_le(const float *v, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) ra_put_le32(out + 4 * i, ra_f32_bits(v[i]));
}

/* ---- step hash ---- */

static ra_status step_hash(int32_t token, const float *lp, uint32_t n_vocab, uint8_t out[32])
{
    ra_sha256_ctx *c;
    RA_TRY(ra_sha256_new(&c));
    uint8_t buf[4 * CHUNK];
    ra_put_le32(buf, (uint32_t)token);
    ra_sha256_update(c, buf, 4);
    for (size_t i = 0; i < n_vocab; i += CHUNK) {
        size_t n = n_vocab - i < CHUNK ? n_vocab - i : CHUNK;
        f32s_to_le(lp + i, n, buf);
        ra_sha256_update(c, buf, 4 * n);
    }
    ra_sha256_final(c, out);
    return RA_OK;
}

void ra_step_hash(int32_t token, const float *logprobs, uint32_t n_vocab, uint8_t out[32])
{
    /* Only an OpenSSL allocation failure can stop us; a wrong hash would be
     * worse than stopping, and this signature has no way to report it. */
    if (step_hash(token, logprobs, n_vocab, out) != RA_OK) {
        fprintf(stderr, "ra_step_hash: %s\n", ra_errmsg());
        abort();
    }
}

/* ---- RFC 6962 Merkle tree hash ---- */

static void merkle(const uint8_t (*d)[32], size_t n, uint8_t out[32])
{
    uint8_t buf[65];
    if (n == 1) {
        buf[0] = 0x00;
        memcpy(buf + 1, d[0], 32);
        ra_sha256(buf, 33, out);
        return;
    }
    size_t k = 1;
    while (k * 2 < n) k *= 2; /* largest power of two < n */
    buf[0] = 0x01;
    merkle(d, k, buf + 1);
    merkle(d + k, n - k, buf + 33);
    ra_sha256(buf, 65, out);
}

void ra_merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t root[32])
{
    if (n == 0) ra_sha256("", 0, root);
    else merkle(leaves, n, root);
}

/* ---- top-k ---- */

/* The ranking: larger value first, NaN below everything, ties by smaller id.
 * It is a strict total order over (value, id) pairs with distinct ids. */
static bool ranks_before(float va, int32_t ia, float vb, int32_t ib)
{
    bool na = isnan(va), nb = isnan(vb);
    if (na != nb) return nb;
    if (!na && va != vb) return va > vb;
    return ia < ib;
}

/* Heap with the lowest-ranked kept element at the root. */
static void sift_down(int32_t *ids, float *vals, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t lo = i, l = 2 * i + 1, r = l + 1;
        if (l < n && ranks_before(vals[lo], ids[lo], vals[l], ids[l])) lo = l;
        if (r < n && ranks_before(vals[lo], ids[lo], vals[r], ids[r])) lo = r;
        if (lo == i) return;
        int32_t ti = ids[i]; ids[i] = ids[lo]; ids[lo] = ti;
        float tv = vals[i]; vals[i] = vals[lo]; vals[lo] = tv;
        i = lo;
    }
}

void ra_topk(const float *lp, uint32_t n_vocab, uint32_t k, int32_t *ids, float *vals)
{
    if (k > n_vocab) k = n_vocab;
    if (k == 0) return;
    for (uint32_t i = 0; i < k; i++) { ids[i] = (int32_t)i; vals[i] = lp[i]; }
    for (uint32_t i = k / 2; i-- > 0;) sift_down(ids, vals, k, i);
    for (uint32_t i = k; i < n_vocab; i++) {
        if (!ranks_before(lp[i], (int32_t)i, vals[0], ids[0])) continue;
        ids[0] = (int32_t)i;
        vals[0] = lp[i];
        sift_down(ids, vals, k, 0);
    }
    /* Heap sort: move the lowest-ranked to the end, so the array ends up best first. */
    for (uint32_t end = k - 1; end > 0; end--) {
        int32_t ti = ids[0]; ids[0] = ids[end]; ids[end] = ti;
        float tv = vals[0]; vals[0] = vals[end]; vals[end] = tv;
        sift_down(ids, vals, end, 0);
    }
}

/* ---- writer ---- */

struct ra_trace_writer {
    char *path;
    ra_trace_meta meta;
    ra_buf payload;          /* the uncompressed payload, built as steps arrive */
    uint8_t (*hashes)[32];   /* every step hash so far, in order */
    size_t n_hashes, cap_hashes;
    bool in_seq;
    size_t seq_slot;         /* payload offset of the open sequence's n_steps + digest */
    size_t seq_first;        /* index in hashes of its first step */
    uint32_t n_seqs;
    uint64_t n_prompt, n_full;
    int32_t *topk_id;
    float *topk_lp;
    uint8_t *scratch;        /* 8 * top_k bytes, or a CHUNK of floats */
    bool failed;             /* an append failed midway: the payload is unusable */
};

static bool str_field_ok(const char *s, size_t cap) { return memchr(s, 0, cap) != NULL; }

ra_status ra_trace_writer_open(const char *path, const ra_trace_meta *meta, ra_trace_writer **out)
{
    *out = NULL;
    if (!path || !meta) return ra_fail(RA_ERR_USAGE, "trace writer: path and meta are required");
    if (!str_field_ok(meta->format, sizeof meta->format) || !str_field_ok(meta->kernel, sizeof meta->kernel) ||
        !str_field_ok(meta->mode, sizeof meta->mode))
        return ra_fail(RA_ERR_USAGE, "%s: trace meta strings must be NUL-terminated", path);
    if (meta->n_vocab == 0 || meta->n_vocab > RA_TRACE_MAX_VOCAB)
        return ra_fail(RA_ERR_USAGE, "%s: n_vocab %u out of range 1..%u", path, meta->n_vocab, RA_TRACE_MAX_VOCAB);
    if (meta->top_k > meta->n_vocab || meta->top_k > RA_TRACE_MAX_TOP_K)
        return ra_fail(RA_ERR_USAGE, "%s: top_k %u exceeds n_vocab %u or %u", path, meta->top_k, meta->n_vocab,
                       RA_TRACE_MAX_TOP_K);
    ra_trace_writer *w;
    RA_TRY(ra_calloc(&w, 1, sizeof *w));
    /* Zero the string tails so the file has one canonical byte form. */
    strncpy(w->meta.format, meta->format, sizeof w->meta.format);
    strncpy(w->meta.kernel, meta->kernel, sizeof w->meta.kernel);
    strncpy(w->meta.mode, meta->mode, sizeof w->meta.mode);
    w->meta.repeat = meta->repeat;
    w->meta.n_vocab = meta->n_vocab;
    w->meta.top_k = meta->top_k;
    size_t scratch = 8 * (size_t)meta->top_k > 4 * CHUNK ? 8 * (size_t)meta->top_k : 4 * CHUNK;
    ra_status s = ra_strdup(&w->path, path);
    if (s == RA_OK) s = ra_calloc(&w->topk_id, meta->top_k, sizeof *w->topk_id);
    if (s == RA_OK) s = ra_calloc(&w->topk_lp, meta->top_k, sizeof *w->topk_lp);
    if (s == RA_OK) s = ra_calloc(&w->scratch, scratch, 1);
    if (s != RA_OK) {
        ra_trace_writer_abort(w);
        return s;
    }
    *out = w;
    return RA_OK;
}

void ra_trace_writer_abort(ra_trace_writer *w)
{
    if (!w) return;
    free(w->path);
    ra_buf_free(&w->payload);
    free(w->hashes);
    free(w->topk_id);
    free(w->topk_lp);
    free(w->scratch);
    free(w);
}

static ra_status put_u32(ra_buf *b, uint32_t v)
{
    uint8_t x[4];
    ra_put_le32(x, v);
    return ra_buf_append(b, x, 4);
}

/* Fills in the open sequence's n_steps and digest, reserved at begin_seq. */
static void close_seq(ra_trace_writer *w)
{
    if (!w->in_seq) return;
    size_t n = w->n_hashes - w->seq_first;
    uint8_t *slot = w->payload.data + w->seq_slot;
    ra_put_le32(slot, (uint32_t)n);
    /* hashes is NULL until the first step: no pointer arithmetic on it then (UB). */
    ra_merkle_root(n ? (const uint8_t (*)[32])(w->hashes + w->seq_first) : NULL, n, slot + 4);
    w->in_seq = false;
}

static ra_status writer_usable(const ra_trace_writer *w)
{
    if (!w) return ra_fail(RA_ERR_USAGE, "trace writer is NULL");
    if (w->failed) return ra_fail(RA_ERR_USAGE, "%s: trace writer already failed", w->path);
    return RA_OK;
}

ra_status ra_trace_begin_seq(ra_trace_writer *w, uint32_t prompt_index, const int32_t *prompt_ids, uint32_t n_prompt)
{
    RA_TRY(writer_usable(w));
    if (n_prompt && !prompt_ids) return ra_fail(RA_ERR_USAGE, "%s: prompt ids are NULL", w->path);
    if (w->n_seqs == UINT32_MAX) return ra_fail(RA_ERR_USAGE, "%s: too many sequences", w->path);
    for (uint32_t i = 0; i < n_prompt; i++)
        if (prompt_ids[i] < 0 || (uint32_t)prompt_ids[i] >= w->meta.n_vocab)
            return ra_fail(RA_ERR_USAGE, "%s: sequence %u: prompt token %u is %d, outside [0, %u)", w->path,
                           w->n_seqs, i, prompt_ids[i], w->meta.n_vocab);
    close_seq(w);
    ra_buf *b = &w->payload;
    ra_status s = put_u32(b, prompt_index);
    if (s == RA_OK) s = put_u32(b, n_prompt);
    for (uint32_t i = 0; i < n_prompt && s == RA_OK; i++) s = put_u32(b, (uint32_t)prompt_ids[i]);
    uint8_t slot[36] = {0};
    size_t at = b->len;
    if (s == RA_OK) s = ra_buf_append(b, slot, sizeof slot);
    if (s != RA_OK) {
        w->failed = true;
        return s;
    }
    w->seq_slot = at;
    w->seq_first = w->n_hashes;
    w->in_seq = true;
    w->n_seqs++;
    w->n_prompt += n_prompt;
    return RA_OK;
}

static ra_status push_hash(ra_trace_writer *w, const uint8_t h[32])
{
    if (w->n_hashes == w->cap_hashes) {
        size_t cap = w->cap_hashes ? 2 * w->cap_hashes : 256;
        void *p = cap <= SIZE_MAX / 32 ? realloc(w->hashes, cap * 32) : NULL;
        if (!p) return ra_fail(RA_ERR_NOMEM, "%s: out of memory for %zu step hashes", w->path, cap);
        w->hashes = p;
        w->cap_hashes = cap;
    }
    memcpy(w->hashes[w->n_hashes++], h, 32);
    return RA_OK;
}

/* Appends n floats as little-endian bytes, a chunk at a time. */
static ra_status put_f32s(ra_buf *b, const float *v, size_t n, uint8_t *scratch)
{
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        f32s_to_le(v + i, m, scratch);
        RA_TRY(ra_buf_append(b, scratch, 4 * m));
    }
    return RA_OK;
}

ra_status ra_trace_add_step(ra_trace_writer *w, int32_t token, const float *logprobs, bool store_full)
{
    RA_TRY(writer_usable(w));
    if (!w->in_seq) return ra_fail(RA_ERR_USAGE, "%s: step added before any sequence", w->path);
    if (!logprobs) return ra_fail(RA_ERR_USAGE, "%s: step logprobs are NULL", w->path);
    uint32_t nv = w->meta.n_vocab, k = w->meta.top_k;
    uint32_t seq = w->n_seqs - 1, step = (uint32_t)(w->n_hashes - w->seq_first);
    if (token < 0 || (uint32_t)token >= nv)
        return ra_fail(RA_ERR_USAGE, "%s: sequence %u step %u: token %d outside [0, %u)", w->path, seq, step, token, nv);
    if (step == UINT32_MAX) return ra_fail(RA_ERR_USAGE, "%s: sequence %u: too many steps", w->path, seq);

    uint8_t fixed[STEP_FIXED];
    ra_put_le32(fixed, (uint32_t)token);
    ra_put_le32(fixed + 4, ra_f32_bits(logprobs[token]));
    fixed[8] = store_full ? 1 : 0;
    RA_TRY(step_hash(token, logprobs, nv, fixed + 9));
    ra_topk(logprobs, nv, k, w->topk_id, w->topk_lp);
    for (uint32_t i = 0; i < k; i++) {
        ra_put_le32(w->scratch + 4 * i, (uint32_t)w->topk_id[i]);
        ra_put_le32(w->scratch + 4 * ((size_t)k + i), ra_f32_bits(w->topk_lp[i]));
    }
    ra_status s = push_hash(w, fixed + 9);
    if (s == RA_OK) s = ra_buf_append(&w->payload, fixed, sizeof fixed);
    if (s == RA_OK) s = ra_buf_append(&w->payload, w->scratch, 8 * (size_t)k);
    if (s == RA_OK && store_full) s = put_f32s(&w->payload, logprobs, nv, w->scratch);
    if (s != RA_OK) {
        w->failed = true;
        return s;
    }
    w->n_full += store_full;
    return RA_OK;
}

static void put_str(uint8_t *dst, const char *s, size_t cap)
{
    memset(dst, 0, cap);
    memcpy(dst, s, strnlen(s, cap - 1));
}

static void build_header(const ra_trace_writer *w, size_t comp_len, uint8_t hdr[HDR_SIZE])
{
    memset(hdr, 0, HDR_SIZE);
    memcpy(hdr, MAGIC, 8);
    ra_put_le32(hdr + OFF_VERSION, RA_TRACE_VERSION);
    ra_put_le32(hdr + OFF_HDR_SIZE, HDR_SIZE);
    put_str(hdr + OFF_FORMAT, w->meta.format, 32);
    put_str(hdr + OFF_KERNEL, w->meta.kernel, 32);
    put_str(hdr + OFF_MODE, w->meta.mode, 16);
    ra_put_le32(hdr + OFF_REPEAT, w->meta.repeat);
    ra_put_le32(hdr + OFF_N_VOCAB, w->meta.n_vocab);
    ra_put_le32(hdr + OFF_TOP_K, w->meta.top_k);
    ra_put_le32(hdr + OFF_N_SEQS, w->n_seqs);
    ra_put_le64(hdr + OFF_N_STEPS, w->n_hashes);
    ra_put_le64(hdr + OFF_N_PROMPT, w->n_prompt);
    ra_put_le64(hdr + OFF_N_FULL, w->n_full);
    ra_put_le64(hdr + OFF_PAYLOAD, comp_len);
    ra_put_le64(hdr + OFF_RAW, w->payload.len);
    ra_merkle_root((const uint8_t (*)[32])w->hashes, w->n_hashes, hdr + OFF_DIGEST);
}

/* SHA-256 of header bytes [0, 192) followed by the compressed payload. */
static ra_status content_hash(const uint8_t *hdr, const uint8_t *payload, size_t n, uint8_t out[32])
{
    ra_sha256_ctx *c;
    RA_TRY(ra_sha256_new(&c));
    ra_sha256_update(c, hdr, HDR_HASHED);
    ra_sha256_update(c, payload, n);
    ra_sha256_final(c, out);
    return RA_OK;
}

/* The size limits of trace.h, shared by the writer and the reader. */
static ra_status size_ok(const char *path, uint64_t raw, uint64_t comp)
{
    if (raw > RA_TRACE_MAX_RAW)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: uncompressed size %llu is over the %llu-byte limit (store fewer full vectors)",
                       path, (unsigned long long)raw, (unsigned long long)RA_TRACE_MAX_RAW);
    if (raw > RA_TRACE_RATIO_FLOOR && raw / RA_TRACE_MAX_RATIO > comp)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: %llu bytes would expand to %llu, more than %dx (refused as a decompression bomb)",
                       path, (unsigned long long)comp, (unsigned long long)raw, RA_TRACE_MAX_RATIO);
    return RA_OK;
}

static ra_status finish(ra_trace_writer *w, uint8_t digest[32])
{
    RA_TRY(writer_usable(w));
    close_seq(w);
    RA_TRY(size_ok(w->path, w->payload.len, w->payload.len));
    size_t bound = ZSTD_compressBound(w->payload.len);
    uint8_t *file;
    RA_TRY(ra_calloc(&file, HDR_SIZE + bound, 1));
    size_t n = ZSTD_compress(file + HDR_SIZE, bound, w->payload.data, w->payload.len, ZSTD_LEVEL);
    if (ZSTD_isError(n)) {
        free(file);
        return ra_fail(RA_ERR_INTERNAL, "%s: zstd compression failed: %s", w->path, ZSTD_getErrorName(n));
    }
    build_header(w, n, file);
    ra_status s = size_ok(w->path, w->payload.len, n);
    if (s == RA_OK) s = content_hash(file, file + HDR_SIZE, n, file + OFF_CONTENT);
    if (s == RA_OK) s = ra_write_file_atomic(w->path, file, HDR_SIZE + n);
    if (s == RA_OK && digest) memcpy(digest, file + OFF_DIGEST, 32);
    free(file);
    return s;
}

ra_status ra_trace_writer_finish(ra_trace_writer *w, uint8_t digest[32])
{
    ra_status s = finish(w, digest);
    ra_trace_writer_abort(w);
    return s;
}

/* ---- reader ---- */

void ra_trace_free(ra_trace *t)
{
    if (!t) return;
    for (uint32_t i = 0; t->seqs && i < t->n_seqs; i++) {
        ra_trace_seq *q = &t->seqs[i];
        free(q->prompt_ids);
        for (uint32_t j = 0; q->steps && j < q->n_steps; j++) {
            free(q->steps[j].topk_id);
            free(q->steps[j].topk_lp);
            free(q->steps[j].full);
        }
        free(q->steps);
    }
    free(t->seqs);
    free(t);
}

typedef struct {
    const char *path;
    const uint8_t *p;       /* next unread payload byte */
    size_t left;            /* payload bytes after p */
    uint32_t n_vocab, top_k;
    uint8_t (*hashes)[32];  /* every step hash, for the trace digest */
    size_t n_hashes;
    uint64_t n_prompt, n_full;
    int32_t *ids_sorted;    /* scratch: top_k ids, for the duplicate check */
    int32_t *re_id;         /* scratch: top-k recomputed from a full vector */
    float *re_lp;
} reader;

static uint32_t take_u32(reader *r) { uint32_t v = ra_le32(r->p); r->p += 4; r->left -= 4; return v; }

static ra_status fmt_err(const reader *r, uint32_t seq, const char *what)
{
    return ra_fail(RA_ERR_FORMAT, "%s: sequence %u: %s", r->path, seq, what);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Without the full vector, top-k can still be checked for shape: ids in
 * range, distinct, in ranking order, and the chosen token's logprob agrees. */
static const char *check_topk_shape(reader *r, const ra_trace_step *st)
{
    uint32_t k = r->top_k;
    for (uint32_t i = 0; i < k; i++) {
        if (st->topk_id[i] < 0 || (uint32_t)st->topk_id[i] >= r->n_vocab) return "top-k id out of range";
        if (i && !ranks_before(st->topk_lp[i - 1], st->topk_id[i - 1], st->topk_lp[i], st->topk_id[i]))
            return "top-k entries are not in ranking order";
        if (st->topk_id[i] == st->token && ra_f32_bits(st->topk_lp[i]) != ra_f32_bits(st->logprob))
            return "logprob differs from the token's top-k entry";
    }
    memcpy(r->ids_sorted, st->topk_id, (size_t)k * 4);
    qsort(r->ids_sorted, k, 4, cmp_i32);
    for (uint32_t i = 1; i < k; i++)
        if (r->ids_sorted[i] == r->ids_sorted[i - 1]) return "top-k ids repeat";
    return NULL;
}

/* With the full vector, everything else is derived from it and must agree. */
static ra_status check_full(reader *r, const ra_trace_step *st, const char **what)
{
    uint8_t h[32];
    RA_TRY(step_hash(st->token, st->full, r->n_vocab, h));
    if (memcmp(h, st->hash, 32)) { *what = "step hash does not match its logprobs"; return RA_OK; }
    if (ra_f32_bits(st->full[st->token]) != ra_f32_bits(st->logprob)) { *what = "logprob differs from the full vector"; return RA_OK; }
    ra_topk(st->full, r->n_vocab, r->top_k, r->re_id, r->re_lp);
    if (memcmp(r->re_id, st->topk_id, (size_t)r->top_k * 4) || memcmp(r->re_lp, st->topk_lp, (size_t)r->top_k * 4))
        *what = "top-k does not match the full vector";
    return RA_OK;
}

static void take_f32s(reader *r, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = ra_bits_f32(ra_le32(r->p + 4 * i));
    r->p += 4 * n;
    r->left -= 4 * n;
}

static ra_status read_step(reader *r, uint32_t seq, uint32_t j, ra_trace_step *st)
{
    char where[64];
    snprintf(where, sizeof where, "step %u: ", j);
    uint32_t k = r->top_k;
    /* The sequence already checked that STEP_FIXED + 8k bytes remain for each step. */
    st->token = (int32_t)take_u32(r);
    st->logprob = ra_bits_f32(take_u32(r));
    uint8_t has_full = *r->p++;
    r->left--;
    memcpy(st->hash, r->p, 32);
    r->p += 32;
    r->left -= 32;
    RA_TRY(ra_calloc(&st->topk_id, k, sizeof *st->topk_id));
    RA_TRY(ra_calloc(&st->topk_lp, k, sizeof *st->topk_lp));
    for (uint32_t i = 0; i < k; i++) st->topk_id[i] = (int32_t)take_u32(r);
    take_f32s(r, st->topk_lp, k);

    const char *what = NULL;
    if (st->token < 0 || (uint32_t)st->token >= r->n_vocab) what = "token id out of range";
    else if (has_full > 1) what = "has_full is neither 0 nor 1";
    else what = check_topk_shape(r, st);
    if (!what && has_full) {
        if (r->left < 4 * (uint64_t)r->n_vocab) what = "full vector runs past the end of the payload";
        else {
            RA_TRY(ra_calloc(&st->full, r->n_vocab, sizeof *st->full));
            take_f32s(r, st->full, r->n_vocab);
            RA_TRY(check_full(r, st, &what));
            r->n_full++;
        }
    }
    if (what) return ra_fail(RA_ERR_FORMAT, "%s: sequence %u %s%s", r->path, seq, where, what);
    memcpy(r->hashes[r->n_hashes++], st->hash, 32);
    return RA_OK;
}

static ra_status read_seq(reader *r, uint32_t i, ra_trace_seq *q, uint64_t steps_left)
{
    if (r->left < SEQ_FIXED) return fmt_err(r, i, "header runs past the end of the payload");
    q->prompt_index = take_u32(r);
    uint32_t n_prompt = take_u32(r);
    if ((uint64_t)n_prompt * 4 > r->left - (SEQ_FIXED - 8)) return fmt_err(r, i, "prompt runs past the end of the payload");
    RA_TRY(ra_calloc(&q->prompt_ids, n_prompt, sizeof *q->prompt_ids));
    q->n_prompt = n_prompt;
    for (uint32_t j = 0; j < n_prompt; j++) {
        q->prompt_ids[j] = (int32_t)take_u32(r);
        if (q->prompt_ids[j] < 0 || (uint32_t)q->prompt_ids[j] >= r->n_vocab)
            return fmt_err(r, i, "prompt token id out of range");
    }
    r->n_prompt += n_prompt;
    uint32_t n_steps = take_u32(r);
    memcpy(q->digest, r->p, 32);
    r->p += 32;
    r->left -= 32;
    uint64_t step_min = STEP_FIXED + 8 * (uint64_t)r->top_k;
    if (n_steps > steps_left) return fmt_err(r, i, "more steps than the header's total");
    if (n_steps * step_min > r->left) return fmt_err(r, i, "steps run past the end of the payload");
    RA_TRY(ra_calloc(&q->steps, n_steps, sizeof *q->steps));
    q->n_steps = n_steps;
    size_t first = r->n_hashes;
    for (uint32_t j = 0; j < n_steps; j++) {
        if (r->left < step_min) return fmt_err(r, i, "steps run past the end of the payload");
        RA_TRY(read_step(r, i, j, &q->steps[j]));
    }
    uint8_t d[32];
    ra_merkle_root(n_steps ? (const uint8_t (*)[32])(r->hashes + first) : NULL, n_steps, d); /* NULL + 0 is UB */
    if (memcmp(d, q->digest, 32)) return fmt_err(r, i, "digest does not match its step hashes");
    return RA_OK;
}

/* A fixed string field: NUL-terminated inside its width and zero after the NUL. */
static bool str_ok(const uint8_t *f, size_t cap, char *out)
{
    const uint8_t *nul = memchr(f, 0, cap);
    if (!nul) return false;
    for (const uint8_t *p = nul; p < f + cap; p++)
        if (*p) return false;
    memcpy(out, f, cap);
    return true;
}

/* Checks the header alone; fills meta and the counts. */
static ra_status read_header(const char *path, const uint8_t *h, size_t file_len, ra_trace *t, uint64_t *n_steps,
                             uint64_t *n_prompt, uint64_t *n_full, uint64_t *raw)
{
    if (file_len < HDR_SIZE) return ra_fail(RA_ERR_FORMAT, "%s: %zu bytes is too short for a trace header", path, file_len);
    if (memcmp(h, MAGIC, 8)) return ra_fail(RA_ERR_FORMAT, "%s: not a trace file (bad magic)", path);
    uint32_t version = ra_le32(h + OFF_VERSION);
    if (version != RA_TRACE_VERSION)
        return ra_fail(RA_ERR_FORMAT, "%s: trace version %u, this build reads version %d", path, version, RA_TRACE_VERSION);
    if (ra_le32(h + OFF_HDR_SIZE) != HDR_SIZE) return ra_fail(RA_ERR_FORMAT, "%s: header size is not %u", path, HDR_SIZE);
    ra_trace_meta *m = &t->meta;
    if (!str_ok(h + OFF_FORMAT, 32, m->format) || !str_ok(h + OFF_KERNEL, 32, m->kernel) || !str_ok(h + OFF_MODE, 16, m->mode))
        return ra_fail(RA_ERR_FORMAT, "%s: a header string is not NUL-terminated and zero-padded", path);
    m->repeat = ra_le32(h + OFF_REPEAT);
    m->n_vocab = ra_le32(h + OFF_N_VOCAB);
    m->top_k = ra_le32(h + OFF_TOP_K);
    if (m->n_vocab == 0 || m->n_vocab > RA_TRACE_MAX_VOCAB)
        return ra_fail(RA_ERR_FORMAT, "%s: n_vocab %u out of range 1..%u", path, m->n_vocab, RA_TRACE_MAX_VOCAB);
    if (m->top_k > m->n_vocab || m->top_k > RA_TRACE_MAX_TOP_K)
        return ra_fail(RA_ERR_FORMAT, "%s: top_k %u exceeds n_vocab %u or %u", path, m->top_k, m->n_vocab,
                       RA_TRACE_MAX_TOP_K);
    if (ra_le32(h + OFF_FLAGS) || ra_le32(h + OFF_RESERVED))
        return ra_fail(RA_ERR_FORMAT, "%s: unknown header flags (version 1 has none)", path);
    uint64_t seqs = ra_le32(h + OFF_N_SEQS);
    *n_steps = ra_le64(h + OFF_N_STEPS);
    *n_prompt = ra_le64(h + OFF_N_PROMPT);
    *n_full = ra_le64(h + OFF_N_FULL);
    *raw = ra_le64(h + OFF_RAW);
    uint64_t comp = ra_le64(h + OFF_PAYLOAD);
    if (comp != file_len - HDR_SIZE)
        return ra_fail(RA_ERR_FORMAT, "%s: header says %llu payload bytes, the file has %zu", path,
                       (unsigned long long)comp, file_len - HDR_SIZE);
    RA_TRY(size_ok(path, *raw, comp));
    /* The counts fix the payload size exactly; each term is checked before the sum. */
    uint64_t terms[4] = {seqs * SEQ_FIXED, 0, 0, 0};
    if (*n_prompt > *raw / 4 || *n_steps > *raw / STEP_FIXED || *n_full > *n_steps)
        return ra_fail(RA_ERR_FORMAT, "%s: header counts do not fit the uncompressed size", path);
    terms[1] = *n_prompt * 4;
    terms[2] = *n_steps * (STEP_FIXED + 8 * (uint64_t)m->top_k);
    terms[3] = *n_full * 4 * (uint64_t)m->n_vocab;
    uint64_t sum = 0;
    for (int i = 0; i < 4; i++) {
        if (terms[i] > RA_TRACE_MAX_RAW) return ra_fail(RA_ERR_FORMAT, "%s: header counts do not fit the uncompressed size", path);
        sum += terms[i];
    }
    if (sum != *raw)
        return ra_fail(RA_ERR_FORMAT, "%s: header counts give %llu payload bytes, the header says %llu", path,
                       (unsigned long long)sum, (unsigned long long)*raw);
    t->n_seqs = (uint32_t)seqs;
    memcpy(t->digest, h + OFF_DIGEST, 32);
    return RA_OK;
}

/* Decompresses exactly one zstd frame of exactly raw bytes. The buffer grows
 * with the output actually produced, so a lying header costs no memory. */
static ra_status decompress(const char *path, const uint8_t *src, size_t n, size_t raw, uint8_t **out)
{
    *out = NULL;
    /* A zstd frame proper: a skippable frame "declares" 0 bytes and would pass for an empty payload. */
    if (n < 4 || ra_le32(src) != ZSTD_MAGICNUMBER)
        return ra_fail(RA_ERR_FORMAT, "%s: the payload is not a zstd frame", path);
    unsigned long long fcs = ZSTD_getFrameContentSize(src, n);
    if (fcs != raw)
        return ra_fail(RA_ERR_FORMAT, "%s: the zstd frame does not declare the header's uncompressed size", path);
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d) return ra_fail(RA_ERR_NOMEM, "%s: cannot create a zstd context", path);
    size_t cap = raw < ((size_t)1 << 20) ? raw : (size_t)1 << 20;
    uint8_t *buf = malloc(cap ? cap : 1);
    ra_status s = buf ? RA_OK : ra_fail(RA_ERR_NOMEM, "%s: out of memory", path);
    ZSTD_inBuffer in = {src, n, 0};
    ZSTD_outBuffer o = {buf, cap, 0};
    while (s == RA_OK) {
        if (o.pos == o.size && o.size < raw) {
            size_t grow = o.size > raw - o.size ? raw : 2 * o.size;
            uint8_t *p = realloc(buf, grow);
            if (!p) { s = ra_fail(RA_ERR_NOMEM, "%s: out of memory decompressing", path); break; }
            buf = p;
            o.dst = buf;
            o.size = grow;
        }
        size_t in0 = in.pos, out0 = o.pos;
        size_t r = ZSTD_decompressStream(d, &o, &in);
        if (ZSTD_isError(r)) s = ra_fail(RA_ERR_FORMAT, "%s: payload does not decompress: %s", path, ZSTD_getErrorName(r));
        else if (r == 0) break;
        else if (in.pos == in0 && o.pos == out0)
            s = ra_fail(RA_ERR_FORMAT, "%s: payload is truncated or larger than the header says", path);
    }
    ZSTD_freeDCtx(d);
    if (s == RA_OK && (in.pos != n || o.pos != raw))
        s = ra_fail(RA_ERR_FORMAT, "%s: payload does not decompress to exactly %zu bytes in one frame", path, raw);
    if (s != RA_OK) { free(buf); return s; }
    *out = buf;
    return RA_OK;
}

static ra_status read_payload(reader *r, ra_trace *t, uint64_t n_steps)
{
    RA_TRY(ra_calloc(&t->seqs, t->n_seqs, sizeof *t->seqs));
    if (n_steps) {
        /* The size check made n_steps * (41 + 8 top_k) <= the real payload, so these are bounded. */
        RA_TRY(ra_calloc(&r->hashes, n_steps, 32));
        RA_TRY(ra_calloc(&r->ids_sorted, r->top_k, sizeof *r->ids_sorted));
        RA_TRY(ra_calloc(&r->re_id, r->top_k, sizeof *r->re_id));
        RA_TRY(ra_calloc(&r->re_lp, r->top_k, sizeof *r->re_lp));
    }
    for (uint32_t i = 0; i < t->n_seqs; i++) RA_TRY(read_seq(r, i, &t->seqs[i], n_steps - r->n_hashes));
    if (r->left) return ra_fail(RA_ERR_FORMAT, "%s: %zu bytes after the last sequence", r->path, r->left);
    return RA_OK;
}

static ra_status read_trace(const char *path, const uint8_t *file, size_t len, ra_trace *t)
{
    uint64_t n_steps = 0, n_prompt = 0, n_full = 0, raw = 0;
    RA_TRY(read_header(path, file, len, t, &n_steps, &n_prompt, &n_full, &raw));
    uint8_t h[32];
    RA_TRY(content_hash(file, file + HDR_SIZE, len - HDR_SIZE, h));
    if (memcmp(h, file + OFF_CONTENT, 32)) return ra_fail(RA_ERR_FORMAT, "%s: content SHA-256 does not match (corrupt file)", path);
    uint8_t *payload;
    RA_TRY(decompress(path, file + HDR_SIZE, len - HDR_SIZE, (size_t)raw, &payload));
    reader r = {.path = path, .p = payload, .left = (size_t)raw, .n_vocab = t->meta.n_vocab, .top_k = t->meta.top_k};
    ra_status s = read_payload(&r, t, n_steps);
    if (s == RA_OK && (r.n_hashes != n_steps || r.n_prompt != n_prompt || r.n_full != n_full))
        s = ra_fail(RA_ERR_FORMAT, "%s: step, prompt or full-vector counts differ from the header", path);
    if (s == RA_OK) {
        ra_merkle_root((const uint8_t (*)[32])r.hashes, r.n_hashes, h);
        if (memcmp(h, t->digest, 32)) s = ra_fail(RA_ERR_FORMAT, "%s: trace digest does not match its step hashes", path);
    }
    free(r.hashes);
    free(r.ids_sorted);
    free(r.re_id);
    free(r.re_lp);
    free(payload);
    return s;
}

ra_status ra_trace_parse(const char *name, const uint8_t *file, size_t len, ra_trace **out)
{
    *out = NULL;
    ra_trace *t;
    RA_TRY(ra_calloc(&t, 1, sizeof *t));
    ra_status s = read_trace(name, file, len, t);
    if (s != RA_OK) {
        ra_trace_free(t);
        return s;
    }
    *out = t;
    return RA_OK;
}

ra_status ra_trace_read(const char *path, ra_trace **out)
{
    *out = NULL;
    uint8_t *file;
    size_t len;
    RA_TRY(ra_read_file_max(path, RA_TRACE_MAX_FILE, &file, &len));
    ra_status s = ra_trace_parse(path, file, len, out);
    free(file);
    return s;
}
