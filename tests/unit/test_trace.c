/* Traces: step hashes and Merkle roots against known answers computed with
 * hashlib alone (tools/gen_trace_golden.py), top-k ranking, a writer/reader
 * round trip checked field by field and against the documented byte layout
 * (docs/trace-format.md), writer refusals, and malformed files that must be
 * rejected with RA_ERR_FORMAT by the check meant to catch them. */
#include "check.h"
#include "ra/trace.h"
#include "ra/util.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <zstd.h>

/* Layout constants, restated from docs/trace-format.md (not from trace.c). */
#define HDR 224
#define HASHED 192
#define O_VERSION 8
#define O_HDR_SIZE 12
#define O_FORMAT 16
#define O_N_VOCAB 100
#define O_TOP_K 104
#define O_N_SEQS 108
#define O_FLAGS 112
#define O_N_STEPS 120
#define O_N_PROMPT 128
#define O_N_FULL 136
#define O_PAYLOAD 144
#define O_RAW 152
#define O_DIGEST 160
#define O_CONTENT 192

static char dir[] = "/tmp/ra-trace-XXXXXX"; /* a mkdtemp template */

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static bool same_bits(float a, float b) { return !memcmp(&a, &b, sizeof a); }

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Plain (non-atomic) file write: tests write many small files. */
static void put_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

static size_t dir_entries(void)
{
    DIR *d = opendir(dir);
    if (!d) return (size_t)-1;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* ---------- known answers (python3 tools/gen_trace_golden.py) ---------- */

static const char *const GOLDEN_STEP[7] = {
    "bb0ff164345a662002ecfa0abfc96d79c21141d6b0f61356666a8c51a6f21a05",
    "543f89ad63feceb8625aedf256c85da8d979d5fd20825cdb2aa1e8f7932cd741",
    "8717babc5853a684bad806cc34c335fdeac3ef08b694b56a41f97a6b529b8142",
    "599a45097098bf4e30478c3b090b64bcfba0af2c4c1be49439304c521bd188ac",
    "43de7e80ac38cbc8dcee619d871cbc4b6d501172a1db1690a82ed4073660de5c",
    "d03af069aba426eeac455c6c9c2259cd95fdc5626c091d9f2cc2b480acb4ea6e",
    "652b06c4ec23f456522bbabd66c34f181a9c5a4dfd33ed34c900579f461c72ee",
};

static const struct { size_t n; const char *hex; } GOLDEN_ROOT[] = {
    {0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {1, "62ed861b5aa9f423845ae56a4ee6271b138e9a2be60b13ee6d332ee89831e540"},
    {2, "1110142ed37b28c6fabe4352862362781f4ae83a0f4d531d86398c1e5587a44f"},
    {3, "69e995475fa58ad81fbaf4641f3a9fd55501593aca91140ad6ec920fce5c8e37"},
    {4, "c6fe49ccc6b79bf2309bc9108f0ef970f710e2e8960506f52fefe42da87d3cb6"},
    {5, "087c7e8cfcbbf524548f2db18c9004491a9e05a15f36a8fa994769cd7c40c7f3"},
    {7, "3f59df7a1eddf87569b3b08bd2e8d29dee14e424126f179dc31c41bdcfa1607d"},
};

static void test_golden(void)
{
    /* Step i: token i, lp[j] = -(i + j) * 0.25 over n_vocab 7 (exact in float32). The
     * negation is of the integer, as in the script: lp[0] of step 0 is +0.0, and
     * -0.0 (a different bit pattern) would give a different hash. */
    uint8_t h[7][32];
    char hex[65];
    for (int i = 0; i < 7; i++) {
        float lp[7];
        for (int j = 0; j < 7; j++) lp[j] = (float)-(i + j) * 0.25f;
        ra_step_hash(i, lp, 7, h[i]);
        ra_hex(h[i], 32, hex);
        CHECK_MSG(!strcmp(hex, GOLDEN_STEP[i]), "step %d: %s", i, hex);
    }
    for (size_t i = 0; i < sizeof GOLDEN_ROOT / sizeof *GOLDEN_ROOT; i++) {
        uint8_t root[32];
        ra_merkle_root((const uint8_t (*)[32])h, GOLDEN_ROOT[i].n, root);
        ra_hex(root, 32, hex);
        CHECK_MSG(!strcmp(hex, GOLDEN_ROOT[i].hex), "root %zu: %s", GOLDEN_ROOT[i].n, hex);
    }
}

/* ---------- top-k ---------- */

/* Reference ranking, written independently: larger first, NaN last, ties by smaller id. */
static bool ref_before(float va, int32_t ia, float vb, int32_t ib)
{
    if (isnan(va) || isnan(vb)) return isnan(va) == isnan(vb) ? ia < ib : isnan(vb);
    if (va != vb) return va > vb;
    return ia < ib;
}

static void ref_topk(const float *lp, uint32_t n, uint32_t k, int32_t *ids)
{
    bool used[256] = {false};
    for (uint32_t i = 0; i < k; i++) {
        int32_t best = -1;
        for (uint32_t j = 0; j < n; j++)
            if (!used[j] && (best < 0 || ref_before(lp[j], (int32_t)j, lp[best], best))) best = (int32_t)j;
        used[best] = true;
        ids[i] = best;
    }
}

static bool topk_is(const float *lp, uint32_t n, uint32_t k, const int32_t *want, uint32_t n_want)
{
    int32_t ids[16];
    float vals[16];
    for (int i = 0; i < 16; i++) { ids[i] = -7; vals[i] = 99.0f; }
    ra_topk(lp, n, k, ids, vals);
    for (uint32_t i = 0; i < n_want; i++)
        if (ids[i] != want[i] || !same_bits(vals[i], lp[want[i]])) return false;
    for (uint32_t i = n_want; i < 16; i++) /* nothing written past min(k, n) */
        if (ids[i] != -7 || vals[i] != 99.0f) return false;
    return true;
}

static void test_topk(void)
{
    const float a[5] = {-3.0f, -1.0f, -2.0f, -0.5f, -4.0f};
    CHECK(topk_is(a, 5, 3, (const int32_t[]){3, 1, 2}, 3));
    CHECK(topk_is(a, 5, 1, (const int32_t[]){3}, 1));
    CHECK(topk_is(a, 5, 0, NULL, 0));
    CHECK(topk_is(a, 5, 5, (const int32_t[]){3, 1, 2, 0, 4}, 5));   /* k = n_vocab: a full sort */
    CHECK(topk_is(a, 5, 12, (const int32_t[]){3, 1, 2, 0, 4}, 5));  /* k > n_vocab clamps */

    const float ties[6] = {-1.0f, -2.0f, -1.0f, -1.0f, -2.0f, -0.0f};
    CHECK(topk_is(ties, 6, 6, (const int32_t[]){5, 0, 2, 3, 1, 4}, 6));
    CHECK(topk_is(ties, 6, 3, (const int32_t[]){5, 0, 2}, 3));
    const float zeros[3] = {0.0f, -0.0f, 0.0f}; /* -0 == +0: a tie, broken by id */
    CHECK(topk_is(zeros, 3, 3, (const int32_t[]){0, 1, 2}, 3));

    const float nan[6] = {NAN, -5.0f, NAN, -1.0f, -INFINITY, -INFINITY};
    CHECK(topk_is(nan, 6, 6, (const int32_t[]){3, 1, 4, 5, 0, 2}, 6));
    CHECK(topk_is(nan, 6, 2, (const int32_t[]){3, 1}, 2));
    const float all_nan[3] = {NAN, NAN, NAN};
    CHECK(topk_is(all_nan, 3, 2, (const int32_t[]){0, 1}, 2));
    const float one[1] = {-2.5f};
    CHECK(topk_is(one, 1, 1, (const int32_t[]){0}, 1));
    CHECK(topk_is(one, 1, 3, (const int32_t[]){0}, 1));

    /* Against the reference: many ties, some NaN and -inf, every k. */
    uint32_t s = 12345;
    bool ok = true;
    for (int round = 0; round < 40 && ok; round++) {
        float lp[200];
        int32_t want[200], ids[200];
        float vals[200];
        uint32_t n = 1 + lcg(&s) % 200;
        for (uint32_t j = 0; j < n; j++) {
            uint32_t r = lcg(&s) % 23;
            lp[j] = r == 0 ? NAN : r == 1 ? -INFINITY : -(float)(r % 6) * 0.5f;
        }
        for (uint32_t k = 0; ok; k = k + 1 + k / 8 < n ? k + 1 + k / 8 : n) {
            ref_topk(lp, n, k, want);
            ra_topk(lp, n, k, ids, vals);
            for (uint32_t i = 0; i < k; i++)
                if (ids[i] != want[i] || !same_bits(vals[i], lp[ids[i]])) {
                    CHECK_MSG(0, "round %d n %u k %u: position %u is id %d, want %d", round, n, k, i, ids[i], want[i]);
                    ok = false;
                    break;
                }
            if (k == n) break;
        }
    }
    CHECK(ok);
}

/* ---------- round trip ---------- */

typedef struct { uint32_t prompt_index, n_prompt, n_steps; } seq_shape;

/* Sequences with no steps (the first one among them: no step hash exists yet when
 * it closes), prompts of length zero, and one with neither. */
static const seq_shape SHAPES[] = {{9, 0, 0}, {0, 5, 4}, {7, 0, 3}, {2, 3, 0}, {3, 1, 6}, {4, 2, 1}};
#define N_SHAPES (sizeof SHAPES / sizeof *SHAPES)

/* Log-probs for (sequence, step): a coarse grid, so ties are common; -inf now and then; a NaN in some. */
static void make_lp(uint32_t nv, uint32_t seq, uint32_t step, float *lp)
{
    uint32_t s = seq * 7919u + step * 104729u + nv;
    for (uint32_t j = 0; j < nv; j++) {
        uint32_t r = lcg(&s);
        lp[j] = r % 97 == 0 ? -INFINITY : -(float)(r % 40) * 0.125f - 0.0625f;
    }
    if ((seq + step) % 5 == 2) lp[(seq * 3) % nv] = NAN;
}

static int32_t step_token(uint32_t nv, uint32_t seq, uint32_t step) { return (int32_t)((seq * 131u + step * 17u + 5u) % nv); }
static bool step_full(uint32_t seq, uint32_t step) { return (seq + step) % 3 == 0; }
static int32_t prompt_id(uint32_t nv, uint32_t seq, uint32_t i) { return (int32_t)((seq * 31u + i * 7u + 1u) % nv); }

static ra_trace_meta test_meta(uint32_t nv, uint32_t k)
{
    ra_trace_meta m;
    memset(&m, 0, sizeof m);
    strcpy(m.format, "q4_1");
    strcpy(m.kernel, "cpu");
    strcpy(m.mode, "generate");
    m.repeat = 2;
    m.n_vocab = nv;
    m.top_k = k;
    return m;
}

static ra_status write_shapes(const char *path, uint32_t nv, uint32_t k, uint8_t digest[32])
{
    ra_trace_meta m = test_meta(nv, k);
    ra_trace_writer *w;
    RA_TRY(ra_trace_writer_open(path, &m, &w));
    float *lp = malloc(nv * sizeof *lp);
    int32_t prompt[8];
    ra_status s = lp ? RA_OK : RA_ERR_NOMEM;
    for (uint32_t q = 0; q < N_SHAPES && s == RA_OK; q++) {
        for (uint32_t i = 0; i < SHAPES[q].n_prompt; i++) prompt[i] = prompt_id(nv, q, i);
        s = ra_trace_begin_seq(w, SHAPES[q].prompt_index, SHAPES[q].n_prompt ? prompt : NULL, SHAPES[q].n_prompt);
        for (uint32_t j = 0; j < SHAPES[q].n_steps && s == RA_OK; j++) {
            make_lp(nv, q, j, lp);
            s = ra_trace_add_step(w, step_token(nv, q, j), lp, step_full(q, j));
        }
    }
    free(lp);
    if (s != RA_OK) {
        ra_trace_writer_abort(w);
        return s;
    }
    return ra_trace_writer_finish(w, digest);
}

/* Walks the decompressed payload by the documented layout and compares it with what the reader returned. */
static void check_layout(const uint8_t *file, size_t len, const ra_trace *t)
{
    uint64_t comp = ra_le64(file + O_PAYLOAD), raw = ra_le64(file + O_RAW);
    CHECK(comp == len - HDR);
    CHECK(ZSTD_getFrameContentSize(file + HDR, comp) == raw);
    uint8_t *p = malloc(raw ? raw : 1);
    CHECK(p && ZSTD_decompress(p, raw, file + HDR, comp) == raw);
    if (!p) return;
    uint32_t nv = t->meta.n_vocab, k = t->meta.top_k;
    size_t at = 0;
    bool ok = true;
    for (uint32_t q = 0; q < t->n_seqs && ok; q++) {
        const ra_trace_seq *sq = &t->seqs[q];
        ok &= ra_le32(p + at) == sq->prompt_index && ra_le32(p + at + 4) == sq->n_prompt;
        at += 8;
        for (uint32_t i = 0; i < sq->n_prompt; i++, at += 4) ok &= (int32_t)ra_le32(p + at) == sq->prompt_ids[i];
        ok &= ra_le32(p + at) == sq->n_steps && !memcmp(p + at + 4, sq->digest, 32);
        at += 36;
        for (uint32_t j = 0; j < sq->n_steps; j++) {
            const ra_trace_step *st = &sq->steps[j];
            float lp;
            uint32_t u = ra_le32(p + at + 4);
            memcpy(&lp, &u, 4);
            ok &= (int32_t)ra_le32(p + at) == st->token && same_bits(lp, st->logprob);
            ok &= p[at + 8] == (st->full != NULL) && !memcmp(p + at + 9, st->hash, 32);
            at += 41;
            for (uint32_t i = 0; i < k; i++) {
                u = ra_le32(p + at + 4 * ((size_t)k + i));
                memcpy(&lp, &u, 4);
                ok &= (int32_t)ra_le32(p + at + 4 * i) == st->topk_id[i] && same_bits(lp, st->topk_lp[i]);
            }
            at += 8 * (size_t)k;
            if (st->full) {
                for (uint32_t i = 0; i < nv; i++) {
                    u = ra_le32(p + at + 4 * i);
                    memcpy(&lp, &u, 4);
                    ok &= same_bits(lp, st->full[i]);
                }
                at += 4 * (size_t)nv;
            }
        }
    }
    CHECK(ok);
    CHECK(at == raw);
    free(p);
}

static void roundtrip(uint32_t nv, uint32_t k)
{
    char a[256], b[256];
    path_in(a, sizeof a, "a.ratrace");
    path_in(b, sizeof b, "b.ratrace");
    uint8_t dig_a[32], dig_b[32];
    CHECK_OK(write_shapes(a, nv, k, dig_a));
    CHECK_OK(write_shapes(b, nv, k, dig_b));
    CHECK(!memcmp(dig_a, dig_b, 32));

    /* Same content, same bytes. */
    uint8_t *fa = NULL, *fb = NULL;
    size_t la = 0, lb = 0;
    CHECK_OK(ra_read_file(a, &fa, &la));
    CHECK_OK(ra_read_file(b, &fb, &lb));
    CHECK_MSG(fa && fb && la == lb && !memcmp(fa, fb, la), "n_vocab %u top_k %u: two writes differ", nv, k);

    ra_trace *t = NULL;
    CHECK_OK(ra_trace_read(a, &t));
    if (!t || !fa) {
        free(fa);
        free(fb);
        return;
    }
    CHECK(!strcmp(t->meta.format, "q4_1") && !strcmp(t->meta.kernel, "cpu") && !strcmp(t->meta.mode, "generate"));
    CHECK(t->meta.repeat == 2 && t->meta.n_vocab == nv && t->meta.top_k == k);
    CHECK(t->n_seqs == N_SHAPES);
    CHECK(!memcmp(t->digest, dig_a, 32));

    float *lp = malloc(nv * sizeof *lp);
    int32_t *want_id = malloc((k ? k : 1) * sizeof *want_id);
    float *want_lp = malloc((k ? k : 1) * sizeof *want_lp);
    uint8_t (*all)[32] = malloc(64 * 32);
    size_t n_all = 0;
    uint64_t n_prompt = 0, n_full = 0;
    bool ok = lp && want_id && want_lp && all;
    for (uint32_t q = 0; q < t->n_seqs && ok; q++) {
        const ra_trace_seq *sq = &t->seqs[q];
        ok &= sq->prompt_index == SHAPES[q].prompt_index && sq->n_prompt == SHAPES[q].n_prompt;
        ok &= sq->n_steps == SHAPES[q].n_steps;
        if (!ok) break;
        for (uint32_t i = 0; i < sq->n_prompt; i++) ok &= sq->prompt_ids[i] == prompt_id(nv, q, i);
        n_prompt += sq->n_prompt;
        size_t first = n_all;
        for (uint32_t j = 0; j < sq->n_steps; j++) {
            const ra_trace_step *st = &sq->steps[j];
            make_lp(nv, q, j, lp);
            int32_t tok = step_token(nv, q, j);
            ok &= st->token == tok && same_bits(st->logprob, lp[tok]);
            uint8_t h[32];
            ra_step_hash(tok, lp, nv, h);
            ok &= !memcmp(st->hash, h, 32);
            ra_topk(lp, nv, k, want_id, want_lp);
            for (uint32_t i = 0; i < k; i++) ok &= st->topk_id[i] == want_id[i] && same_bits(st->topk_lp[i], want_lp[i]);
            ok &= (st->full != NULL) == step_full(q, j);
            if (st->full) {
                n_full++;
                for (uint32_t i = 0; i < nv; i++) ok &= same_bits(st->full[i], lp[i]);
            }
            memcpy(all[n_all++], h, 32);
        }
        uint8_t d[32];
        ra_merkle_root((const uint8_t (*)[32])all + first, n_all - first, d);
        ok &= !memcmp(sq->digest, d, 32);
    }
    CHECK_MSG(ok, "n_vocab %u top_k %u: a field read back wrong", nv, k);
    if (ok) {
        uint8_t d[32];
        ra_merkle_root((const uint8_t (*)[32])all, n_all, d);
        CHECK(!memcmp(t->digest, d, 32));
    }

    /* The header, by the documented offsets. */
    uint8_t h[32];
    CHECK(!memcmp(fa, "RATRACE\0", 8) && ra_le32(fa + O_VERSION) == 1 && ra_le32(fa + O_HDR_SIZE) == HDR);
    CHECK(!strcmp((const char *)fa + O_FORMAT, "q4_1"));
    CHECK(ra_le32(fa + O_N_VOCAB) == nv && ra_le32(fa + O_TOP_K) == k && ra_le32(fa + O_N_SEQS) == N_SHAPES);
    CHECK(ra_le32(fa + O_FLAGS) == 0 && ra_le32(fa + O_FLAGS + 4) == 0);
    CHECK(ra_le64(fa + O_N_STEPS) == n_all && ra_le64(fa + O_N_PROMPT) == n_prompt && ra_le64(fa + O_N_FULL) == n_full);
    CHECK(ra_le64(fa + O_RAW) == 44 * N_SHAPES + 4 * n_prompt + (41 + 8 * (uint64_t)k) * n_all + 4 * (uint64_t)nv * n_full);
    CHECK(!memcmp(fa + O_DIGEST, dig_a, 32));
    ra_sha256_ctx *c;
    CHECK_OK(ra_sha256_new(&c));
    ra_sha256_update(c, fa, HASHED);
    ra_sha256_update(c, fa + HDR, la - HDR);
    ra_sha256_final(c, h);
    CHECK(!memcmp(fa + O_CONTENT, h, 32));
    check_layout(fa, la, t);

    free(lp);
    free(want_id);
    free(want_lp);
    free(all);
    free(fa);
    free(fb);
    ra_trace_free(t);
    CHECK(unlink(a) == 0 && unlink(b) == 0);
}

static void test_roundtrip(void)
{
    roundtrip(1000, 7);
    roundtrip(3, 3);    /* top_k = n_vocab */
    roundtrip(3, 0);    /* no top-k at all */
    roundtrip(2500, 13); /* vectors longer than the writer's 1024-float chunks */
    roundtrip(1, 1);
    roundtrip(70000, 5); /* a payload over 1 MiB: the reader's decompression buffer grows */

    /* A trace with no sequences. */
    char p[256];
    path_in(p, sizeof p, "empty.ratrace");
    ra_trace_meta m = test_meta(10, 2);
    ra_trace_writer *w = NULL;
    uint8_t d[32], e[32];
    CHECK_OK(ra_trace_writer_open(p, &m, &w));
    CHECK_OK(ra_trace_writer_finish(w, d));
    ra_sha256("", 0, e);
    CHECK(!memcmp(d, e, 32));
    ra_trace *t = NULL;
    CHECK_OK(ra_trace_read(p, &t));
    CHECK(t && t->n_seqs == 0 && !memcmp(t->digest, e, 32));
    ra_trace_free(t);

    /* Sequences, but not one step in the whole trace. */
    const int32_t prompt[3] = {9, 0, 4};
    CHECK_OK(ra_trace_writer_open(p, &m, &w));
    CHECK_OK(ra_trace_begin_seq(w, 5, prompt, 3));
    CHECK_OK(ra_trace_begin_seq(w, 6, NULL, 0));
    CHECK_OK(ra_trace_writer_finish(w, d));
    CHECK(!memcmp(d, e, 32));
    CHECK_OK(ra_trace_read(p, &t));
    CHECK(t && t->n_seqs == 2 && !memcmp(t->digest, e, 32));
    CHECK(t && t->seqs[0].prompt_index == 5 && t->seqs[0].n_prompt == 3 && t->seqs[0].prompt_ids[2] == 4);
    CHECK(t && t->seqs[0].n_steps == 0 && !memcmp(t->seqs[0].digest, e, 32));
    CHECK(t && t->seqs[1].prompt_index == 6 && t->seqs[1].n_prompt == 0 && t->seqs[1].n_steps == 0);
    ra_trace_free(t);
    CHECK(unlink(p) == 0);
    CHECK(dir_entries() == 0);
}

/* ---------- writer refusals ---------- */

static void test_writer_refuses(void)
{
    char p[256];
    path_in(p, sizeof p, "refused.ratrace");
    ra_trace_writer *w = (ra_trace_writer *)&w;
    ra_trace_meta m = test_meta(4, 5);
    CHECK_STATUS(ra_trace_writer_open(p, &m, &w), RA_ERR_USAGE); /* top_k > n_vocab */
    CHECK(w == NULL);
    m = test_meta(0, 0);
    CHECK_STATUS(ra_trace_writer_open(p, &m, &w), RA_ERR_USAGE); /* n_vocab 0 */
    m = test_meta(RA_TRACE_MAX_VOCAB + 1, 2);
    CHECK_STATUS(ra_trace_writer_open(p, &m, &w), RA_ERR_USAGE); /* vocabulary over the limit */
    m = test_meta(RA_TRACE_MAX_VOCAB, RA_TRACE_MAX_TOP_K + 1);
    CHECK_STATUS(ra_trace_writer_open(p, &m, &w), RA_ERR_USAGE); /* top_k over the limit */
    m = test_meta(4, 2);
    memset(m.mode, 'x', sizeof m.mode);
    CHECK_STATUS(ra_trace_writer_open(p, &m, &w), RA_ERR_USAGE); /* string without its NUL */

    m = test_meta(4, 2);
    CHECK_OK(ra_trace_writer_open(p, &m, &w));
    const float lp[4] = {-1.0f, -2.0f, -0.5f, -3.0f};
    CHECK_STATUS(ra_trace_add_step(w, 0, lp, true), RA_ERR_USAGE); /* step before any sequence */
    const int32_t bad_prompt[2] = {1, 4};
    CHECK_STATUS(ra_trace_begin_seq(w, 0, bad_prompt, 2), RA_ERR_USAGE);
    CHECK_OK(ra_trace_begin_seq(w, 0, bad_prompt, 1));
    CHECK_STATUS(ra_trace_add_step(w, 4, lp, true), RA_ERR_USAGE);
    CHECK_STATUS(ra_trace_add_step(w, -1, lp, false), RA_ERR_USAGE);
    CHECK_STATUS(ra_trace_add_step(w, 0, NULL, false), RA_ERR_USAGE);
    CHECK_OK(ra_trace_add_step(w, 2, lp, true));
    ra_trace_writer_abort(w);
    CHECK(!ra_path_exists(p));
    CHECK(dir_entries() == 0);

    /* A refused call leaves the writer usable and the trace unchanged. */
    CHECK_OK(ra_trace_writer_open(p, &m, &w));
    CHECK_OK(ra_trace_begin_seq(w, 3, bad_prompt, 1));
    CHECK_STATUS(ra_trace_add_step(w, 9, lp, true), RA_ERR_USAGE);
    CHECK_STATUS(ra_trace_begin_seq(w, 4, bad_prompt, 2), RA_ERR_USAGE);
    CHECK_OK(ra_trace_add_step(w, 2, lp, false));
    CHECK_OK(ra_trace_writer_finish(w, NULL));
    ra_trace *t = NULL;
    CHECK_OK(ra_trace_read(p, &t));
    CHECK(t && t->n_seqs == 1 && t->seqs[0].prompt_index == 3 && t->seqs[0].n_steps == 1 && t->seqs[0].steps[0].token == 2);
    CHECK(t && t->seqs[0].steps[0].topk_id[0] == 2 && t->seqs[0].steps[0].topk_id[1] == 0 && !t->seqs[0].steps[0].full);
    ra_trace_free(t);
    CHECK(unlink(p) == 0);
}

/* ---------- malformed files ---------- */

/* The base file for tampering: n_vocab 5, top_k 2.
 *   sequence 0: 60 prompt ids; step 0 full (token 1, in the top-k), step 1 not
 *               full (token 0, outside the top-k), step 2 full (token 4, outside)
 *   sequence 1: 2 prompt ids; two steps without full vectors. */
#define B_NV 5
#define B_K 2
#define B_NP0 60
#define B_STEP (41 + 8 * B_K)
#define B_SEQ0_DIGEST (8 + 4 * B_NP0 + 4)
#define B_STEP0 (B_SEQ0_DIGEST + 32)
#define B_STEP1 (B_STEP0 + B_STEP + 4 * B_NV)
#define B_STEP2 (B_STEP1 + B_STEP)
#define B_SEQ1 (B_STEP2 + B_STEP + 4 * B_NV)
#define B_RAW (B_SEQ1 + 8 + 4 * 2 + 36 + 2 * B_STEP)

static const float B_LP0[B_NV] = {-1.0f, -0.25f, -3.0f, -0.5f, -2.0f};
static const float B_LP1[B_NV] = {-2.0f, -0.5f, -1.0f, -3.0f, -4.0f};
static const float B_LP2[B_NV] = {-0.75f, -1.5f, -0.125f, -2.5f, -4.0f};

static ra_status write_base(const char *path)
{
    ra_trace_meta m = test_meta(B_NV, B_K);
    ra_trace_writer *w;
    RA_TRY(ra_trace_writer_open(path, &m, &w));
    int32_t prompt[B_NP0];
    for (int i = 0; i < B_NP0; i++) prompt[i] = i % B_NV;
    ra_status s = ra_trace_begin_seq(w, 0, prompt, B_NP0);
    if (s == RA_OK) s = ra_trace_add_step(w, 1, B_LP0, true);
    if (s == RA_OK) s = ra_trace_add_step(w, 0, B_LP1, false);
    if (s == RA_OK) s = ra_trace_add_step(w, 4, B_LP2, true);
    if (s == RA_OK) s = ra_trace_begin_seq(w, 1, prompt + 3, 2);
    if (s == RA_OK) s = ra_trace_add_step(w, 3, B_LP2, false);
    if (s == RA_OK) s = ra_trace_add_step(w, 2, B_LP1, false);
    if (s != RA_OK) {
        ra_trace_writer_abort(w);
        return s;
    }
    return ra_trace_writer_finish(w, NULL);
}

/* Recomputes the content hash: SHA-256 of header [0, 192) and the payload, into [192, 224). */
static void rehash(uint8_t *file, size_t len)
{
    ra_sha256_ctx *c;
    if (ra_sha256_new(&c) != RA_OK) abort();
    ra_sha256_update(c, file, HASHED);
    ra_sha256_update(c, file + HDR, len - HDR);
    ra_sha256_final(c, file + O_CONTENT);
}

/* A tampered copy, owned by the caller. */
typedef struct { uint8_t *b; size_t len; } blob;

static blob copy_of(const uint8_t *file, size_t len)
{
    blob x = {malloc(len ? len : 1), len};
    if (!x.b) abort();
    memcpy(x.b, file, len);
    return x;
}

static uint8_t *unpack(const uint8_t *file, size_t len)
{
    uint8_t *raw = malloc(B_RAW);
    if (!raw || ZSTD_decompress(raw, B_RAW, file + HDR, len - HDR) != B_RAW) abort();
    return raw;
}

/* Header of file + zstd(raw), with the payload and raw sizes and the content hash made to agree. Frees raw. */
static blob repack(const uint8_t *file, uint8_t *raw, size_t raw_len)
{
    size_t bound = ZSTD_compressBound(raw_len);
    blob x = {malloc(HDR + bound), 0};
    if (!x.b) abort();
    memcpy(x.b, file, HDR);
    size_t n = ZSTD_compress(x.b + HDR, bound, raw, raw_len, 3);
    if (ZSTD_isError(n)) abort();
    x.len = HDR + n;
    ra_put_le64(x.b + O_PAYLOAD, n);
    ra_put_le64(x.b + O_RAW, raw_len);
    rehash(x.b, x.len);
    free(raw);
    return x;
}

static void add64(uint8_t *p, int64_t d) { ra_put_le64(p, ra_le64(p) + (uint64_t)d); }

/* Writes x, expects RA_ERR_FORMAT whose message contains want (when given), frees x. */
static void expect_bad_at(int line, blob x, const char *want, ra_status want_s)
{
    char p[256];
    path_in(p, sizeof p, "bad.ratrace");
    put_file(p, x.b, x.len);
    ra_trace *t = (ra_trace *)&t;
    ra_status s = ra_trace_read(p, &t);
    CHECK_MSG(s == want_s && t == NULL, "line %d: got %s: %s", line, ra_status_name(s), ra_errmsg());
    if (s == RA_OK) ra_trace_free(t);
    if (want) CHECK_MSG(strstr(ra_errmsg(), want) != NULL, "line %d: message \"%s\" lacks \"%s\"", line, ra_errmsg(), want);
    free(x.b);
    unlink(p);
}
#define expect_bad(x, want) expect_bad_at(__LINE__, x, want, RA_ERR_FORMAT)
/* Over the size limits of trace.h: refused before decompressing. */
#define expect_limit(x, want) expect_bad_at(__LINE__, x, want, RA_ERR_UNSUPPORTED)

/* A trace of no sequences has no payload that bounds n_vocab and top_k: the
 * header alone must (a 224-byte file with top_k ~5e8 once made the fuzzer's
 * rewrite of it allocate gigabytes). */
static void test_header_limits(void)
{
    char p[256];
    path_in(p, sizeof p, "empty.ratrace");
    ra_trace_meta m = test_meta(4, 2);
    ra_trace_writer *w;
    uint8_t digest[32];
    CHECK_OK(ra_trace_writer_open(p, &m, &w));
    CHECK_OK(ra_trace_writer_finish(w, digest));
    uint8_t *f = NULL;
    size_t len = 0;
    CHECK_OK(ra_read_file(p, &f, &len));
    CHECK(unlink(p) == 0);
    if (!f) return;
    blob x = copy_of(f, len);
    ra_put_le32(x.b + O_N_VOCAB, RA_TRACE_MAX_VOCAB); ra_put_le32(x.b + O_TOP_K, RA_TRACE_MAX_TOP_K); rehash(x.b, len);
    put_file(p, x.b, x.len);
    ra_trace *t = NULL;
    CHECK_OK(ra_trace_read(p, &t)); /* at the limits: reads */
    ra_trace_free(t);
    CHECK(unlink(p) == 0);
    free(x.b);
    x = copy_of(f, len); ra_put_le32(x.b + O_N_VOCAB, RA_TRACE_MAX_VOCAB + 1); rehash(x.b, len); expect_bad(x, "n_vocab");
    x = copy_of(f, len); ra_put_le32(x.b + O_N_VOCAB, 0x1e011104u); ra_put_le32(x.b + O_TOP_K, 0x1e011104u);
    rehash(x.b, len); expect_bad(x, "n_vocab");
    x = copy_of(f, len); ra_put_le32(x.b + O_N_VOCAB, RA_TRACE_MAX_VOCAB); ra_put_le32(x.b + O_TOP_K, RA_TRACE_MAX_TOP_K + 1);
    rehash(x.b, len); expect_bad(x, "top_k");
    free(f);
}

static void test_malformed(void)
{
    char p[256];
    path_in(p, sizeof p, "base.ratrace");
    CHECK_OK(write_base(p));
    uint8_t *f = NULL;
    size_t len = 0;
    CHECK_OK(ra_read_file(p, &f, &len));
    ra_trace *t = NULL;
    CHECK_OK(ra_trace_read(p, &t)); /* the untampered base reads */
    ra_trace_free(t);
    CHECK(unlink(p) == 0);
    if (!f || len <= HDR) return;
    CHECK(ra_le64(f + O_RAW) == B_RAW);
    size_t comp = len - HDR;

    /* Truncations: shorter than a header, and a header whose payload is cut. */
    const size_t cuts[] = {0, 10, 223};
    for (size_t i = 0; i < 3; i++) expect_bad(copy_of(f, cuts[i]), "too short");
    const size_t cuts2[] = {224, HDR + comp / 2, len - 1};
    for (size_t i = 0; i < 3; i++) expect_bad(copy_of(f, cuts2[i]), "payload bytes");
    /* ... also with the payload size and content hash made to agree with the cut. */
    for (size_t i = 0; i < 3; i++) {
        blob x = copy_of(f, cuts2[i]);
        ra_put_le64(x.b + O_PAYLOAD, x.len - HDR);
        rehash(x.b, x.len);
        expect_bad(x, NULL);
    }
    /* Trailing garbage. */
    blob x = copy_of(f, len);
    if (!(x.b = realloc(x.b, len + 3))) abort();
    memcpy(x.b + len, "abc", 3);
    x.len = len + 3;
    expect_bad(x, "payload bytes");

    /* The header alone. */
    x = copy_of(f, len); x.b[0] = 'X'; expect_bad(x, "bad magic");
    x = copy_of(f, len); x.b[7] = '1'; rehash(x.b, len); expect_bad(x, "bad magic");
    x = copy_of(f, len); ra_put_le32(x.b + O_VERSION, 2); rehash(x.b, len); expect_bad(x, "version 2");
    x = copy_of(f, len); ra_put_le32(x.b + O_VERSION, 0); rehash(x.b, len); expect_bad(x, "version 0");
    x = copy_of(f, len); ra_put_le32(x.b + O_HDR_SIZE, 256); rehash(x.b, len); expect_bad(x, "header size");
    x = copy_of(f, len); x.b[O_FORMAT + 20] = 'z'; rehash(x.b, len); expect_bad(x, "NUL-terminated");
    x = copy_of(f, len); memset(x.b + O_FORMAT, 'z', 32); rehash(x.b, len); expect_bad(x, "NUL-terminated");
    x = copy_of(f, len); ra_put_le32(x.b + O_N_VOCAB, 0); rehash(x.b, len); expect_bad(x, "n_vocab");
    x = copy_of(f, len); ra_put_le32(x.b + O_N_VOCAB, 0x80000000u); rehash(x.b, len); expect_bad(x, "n_vocab");
    x = copy_of(f, len); ra_put_le32(x.b + O_TOP_K, 6); rehash(x.b, len); expect_bad(x, "top_k");
    x = copy_of(f, len); ra_put_le32(x.b + O_FLAGS, 1); rehash(x.b, len); expect_bad(x, "flags");
    x = copy_of(f, len); ra_put_le32(x.b + O_FLAGS + 4, 1); rehash(x.b, len); expect_bad(x, "flags");
    x = copy_of(f, len); x.b[O_N_STEPS] ^= 1; expect_bad(x, "header counts"); /* a flipped count, hash untouched */
    x = copy_of(f, len); x.b[O_N_PROMPT + 7] ^= 0x80; expect_bad(x, "header counts");
    x = copy_of(f, len); ra_put_le64(x.b + O_N_FULL, 6); rehash(x.b, len); expect_bad(x, "header counts");
    x = copy_of(f, len); ra_put_le64(x.b + O_RAW, UINT64_MAX); rehash(x.b, len); expect_limit(x, "limit");
    x = copy_of(f, len); ra_put_le64(x.b + O_RAW, RA_TRACE_RATIO_FLOOR + 1); rehash(x.b, len); expect_limit(x, "decompression bomb");
    x = copy_of(f, len); ra_put_le64(x.b + O_PAYLOAD, comp + 1); rehash(x.b, len); expect_bad(x, "payload bytes");

    /* Bytes covered by the content hash, hash not recomputed. */
    x = copy_of(f, len); x.b[HDR + comp / 2] ^= 0x10; expect_bad(x, "content SHA-256");
    x = copy_of(f, len); x.b[len - 1] ^= 0x01; expect_bad(x, "content SHA-256");
    x = copy_of(f, len); x.b[O_DIGEST + 5] ^= 0x01; expect_bad(x, "content SHA-256");
    x = copy_of(f, len); x.b[O_CONTENT + 31] ^= 0x01; expect_bad(x, "content SHA-256");
    x = copy_of(f, len); x.b[96] ^= 0x01; expect_bad(x, "content SHA-256"); /* repeat */
    /* The trace digest, hash recomputed. */
    x = copy_of(f, len); x.b[O_DIGEST + 5] ^= 0x01; rehash(x.b, len); expect_bad(x, "trace digest");

    /* Lying counts that still sum to the raw size (41 + 8 top_k = 57 = step size, 44 = sequence). */
    x = copy_of(f, len); add64(x.b + O_N_STEPS, 4); add64(x.b + O_N_PROMPT, -57); rehash(x.b, len);
    expect_bad(x, "counts differ from the header");
    x = copy_of(f, len); add64(x.b + O_N_STEPS, -4); add64(x.b + O_N_PROMPT, 57); rehash(x.b, len);
    expect_bad(x, NULL);
    x = copy_of(f, len); ra_put_le32(x.b + O_N_SEQS, 1); add64(x.b + O_N_PROMPT, 11); rehash(x.b, len);
    expect_bad(x, "after the last sequence");
    x = copy_of(f, len); ra_put_le32(x.b + O_N_SEQS, 3); add64(x.b + O_N_PROMPT, -11); rehash(x.b, len);
    expect_bad(x, "header runs past the end");
    x = copy_of(f, len); add64(x.b + O_N_FULL, -1); add64(x.b + O_N_PROMPT, 5); rehash(x.b, len);
    expect_bad(x, "counts differ from the header");
    /* A lying raw size: the counts agree with it, the zstd frame does not. */
    x = copy_of(f, len); add64(x.b + O_RAW, 4); add64(x.b + O_N_PROMPT, 1); rehash(x.b, len);
    expect_bad(x, "does not declare");
    x = copy_of(f, len); add64(x.b + O_RAW, -4); add64(x.b + O_N_PROMPT, -1); rehash(x.b, len);
    expect_bad(x, "does not declare");
    /* ... and a true one over a payload with 4 bytes too many. */
    uint8_t *raw = unpack(f, len);
    if (!(raw = realloc(raw, B_RAW + 4))) abort();
    memset(raw + B_RAW, 0, 4);
    x = repack(f, raw, B_RAW + 4); add64(x.b + O_N_PROMPT, 1); rehash(x.b, x.len);
    expect_bad(x, "after the last sequence");

    /* Payloads that are not one zstd frame of the declared size. */
    x = copy_of(f, len); memset(x.b + HDR, 0xA5, comp); rehash(x.b, len); expect_bad(x, NULL);
    x = copy_of(f, len); x.b[HDR + 3] ^= 0x40; rehash(x.b, len); expect_bad(x, NULL); /* frame header */
    x = copy_of(f, len); x.b[HDR + comp / 2] ^= 0x10; rehash(x.b, len); expect_bad(x, NULL);
    {
        size_t cap = len + 64;
        blob y = {malloc(cap), 0};
        if (!y.b) abort();
        memcpy(y.b, f, len);
        size_t n = ZSTD_compress(y.b + len, cap - len, "", 0, 1); /* a second (empty) frame */
        CHECK(!ZSTD_isError(n));
        y.len = len + n;
        ra_put_le64(y.b + O_PAYLOAD, y.len - HDR);
        rehash(y.b, y.len);
        expect_bad(y, "in one frame");
    }

    /* An empty trace whose payload is a skippable frame (which "declares" 0 bytes) instead of a zstd frame. */
    {
        char e[256];
        path_in(e, sizeof e, "empty.ratrace");
        ra_trace_meta m = test_meta(10, 2);
        ra_trace_writer *w = NULL;
        CHECK_OK(ra_trace_writer_open(e, &m, &w));
        CHECK_OK(ra_trace_writer_finish(w, NULL));
        uint8_t *ef = NULL;
        size_t elen = 0;
        CHECK_OK(ra_read_file(e, &ef, &elen));
        CHECK(unlink(e) == 0);
        if (ef && elen >= HDR) {
            static const uint8_t skippable[11] = {0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'};
            blob y = {malloc(HDR + sizeof skippable), HDR + sizeof skippable};
            if (!y.b) abort();
            memcpy(y.b, ef, HDR);
            memcpy(y.b + HDR, skippable, sizeof skippable);
            ra_put_le64(y.b + O_PAYLOAD, sizeof skippable);
            rehash(y.b, y.len);
            expect_bad(y, "not a zstd frame");
        }
        free(ef);
    }

    /* Tampered payloads, recompressed and rehashed so only the structural checks can catch them. */
#define TAMPER(stmt, want) do { uint8_t *r_ = unpack(f, len); stmt; expect_bad(repack(f, r_, B_RAW), want); } while (0)
    /* Control: recompressed (at another level) but untouched, it reads. */
    x = repack(f, unpack(f, len), B_RAW);
    path_in(p, sizeof p, "repacked.ratrace");
    put_file(p, x.b, x.len);
    CHECK_OK(ra_trace_read(p, &t));
    CHECK(t && t->n_seqs == 2 && t->seqs[0].n_steps == 3 && t->seqs[0].steps[2].full && !t->seqs[0].steps[1].full);
    ra_trace_free(t);
    unlink(p);
    free(x.b);
    TAMPER(r_[B_STEP0 + B_STEP + 4] ^= 0x01, "step hash does not match");  /* full[1] */
    TAMPER(r_[B_STEP0 + 9] ^= 0x01, "step hash does not match");             /* the stored hash */
    TAMPER(r_[B_STEP2 + 9 + 31] ^= 0x80, "step hash does not match");
    TAMPER(r_[B_STEP1 + 9] ^= 0x01, "sequence 0: digest does not match");    /* no full vector: the digest catches it */
    TAMPER(r_[B_SEQ0_DIGEST] ^= 0x01, "sequence 0: digest does not match");
    TAMPER(r_[B_SEQ1 + 8 + 8 + 4 + 31] ^= 0x01, "sequence 1: digest does not match");
    /* top-k out of order: swap step 1's entries (1, -0.5) and (2, -1). */
    TAMPER({
        uint8_t e[4];
        memcpy(e, r_ + B_STEP1 + 41, 4); memcpy(r_ + B_STEP1 + 41, r_ + B_STEP1 + 45, 4); memcpy(r_ + B_STEP1 + 45, e, 4);
        memcpy(e, r_ + B_STEP1 + 49, 4); memcpy(r_ + B_STEP1 + 49, r_ + B_STEP1 + 53, 4); memcpy(r_ + B_STEP1 + 53, e, 4);
    }, "not in ranking order");
    TAMPER(ra_put_le32(r_ + B_STEP1 + 41 + 4, 1), "top-k ids repeat");          /* (1, -0.5), (1, -1) */
    TAMPER(ra_put_le32(r_ + B_STEP1 + 41 + 4, 5), "top-k id out of range");
    TAMPER(ra_put_le32(r_ + B_STEP1 + 41, 0xFFFFFFFFu), "top-k id out of range");
    /* Step 0's top-k replaced by a well-formed one that is not its full vector's: (1, -0.25), (4, -2). */
    TAMPER({ ra_put_le32(r_ + B_STEP0 + 45, 4); float v = -2.0f; uint32_t u; memcpy(&u, &v, 4); ra_put_le32(r_ + B_STEP0 + 53, u); },
           "top-k does not match the full vector");
    TAMPER(r_[B_STEP0 + 4] ^= 0x01, "logprob differs from the token's top-k entry");
    TAMPER(r_[B_STEP2 + 4] ^= 0x01, "logprob differs from the full vector");
    TAMPER(ra_put_le32(r_ + B_STEP1, B_NV), "token id out of range");
    TAMPER(ra_put_le32(r_ + B_STEP1, 0x80000000u), "token id out of range");
    TAMPER(r_[B_STEP1 + 8] = 2, "has_full is neither 0 nor 1");
    TAMPER(ra_put_le32(r_ + 8 + 4 * 7, B_NV), "prompt token id out of range");
    TAMPER(ra_put_le32(r_ + 4, B_NP0 + 200), "prompt runs past the end");
    TAMPER(ra_put_le32(r_ + 4, 0xFFFFFFFFu), "prompt runs past the end");
    TAMPER(ra_put_le32(r_ + B_SEQ1 + 8 + 8, 3), "more steps than the header's total");
    TAMPER(ra_put_le32(r_ + B_SEQ1 + 8 + 8, 0xFFFFFFFFu), "more steps than the header's total");
    TAMPER(ra_put_le32(r_ + B_SEQ0_DIGEST - 4, 4), NULL);  /* sequence 0 claims a fourth step */
    TAMPER(ra_put_le32(r_ + B_SEQ0_DIGEST - 4, 2), NULL);
    TAMPER(r_[B_STEP1 + 8] = 1, NULL);  /* claims a full vector it does not have */
    TAMPER(r_[B_STEP0 + 8] = 0, NULL);  /* hides the full vector it has */
#undef TAMPER
    free(f);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_golden();
    test_topk();
    test_roundtrip();
    test_writer_refuses();
    test_header_limits();
    test_malformed();
    CHECK(dir_entries() == 0);
    CHECK_OK(ra_remove_tree(dir));
    CHECK_DONE();
}
