/* Byte-level BPE (GPT-2 family) from a model description's tokenizer spec.
 *
 * Encoding, as HF `tokenizers` does it for these models:
 *   1. special tokens are cut out of the text whole (longest match first);
 *   2. each stretch between them is pre-split by the model's rules with PCRE2
 *      ("smollm": every digit alone, then the GPT-2 regex on each piece;
 *      "gpt2": the GPT-2 regex);
 *   3. each piece's bytes become byte-level characters and adjacent symbols
 *      are merged, lowest merge rank first (leftmost on ties), until no pair
 *      has a rank; the final symbols are looked up in the vocabulary. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "ra/desc.h"
#include "ra/tokenizer.h"
#include "ra/text.h"
#include "ra/util.h"

/* The GPT-2 pre-tokenizer regex (contractions, letters, numbers, other,
 * spaces). "Space" is spelled out as Unicode's White_Space property, which is
 * what HF's regex engine means by \s; PCRE2's \s also takes U+180E. */
#define WS "\\t\\n\\x0b\\f\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
static const char GPT2_SPLIT[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS
                                 "])|[" WS "]+";
static const char DIGIT_SPLIT[] = "\\p{N}";

/* ---- string -> int32 hash map over bytes owned elsewhere ---- */

typedef struct {
    const char *key; /* NULL: empty slot */
    uint32_t len;
    int32_t val;
} slot;

typedef struct {
    slot *slots;
    size_t mask; /* capacity - 1, a power of two minus one */
} str_map;

static uint64_t fnv_step(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static ra_status map_init(str_map *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2; /* load factor at most one half */
    RA_TRY(ra_calloc(&m->slots, cap, sizeof *m->slots));
    m->mask = cap - 1;
    return RA_OK;
}

/* Inserts key -> val; an existing key keeps its value unless `replace`. */
static void map_put(str_map *m, const char *key, uint32_t len, int32_t val, bool replace)
{
    for (size_t i = fnv_step(FNV_INIT, key, len) & m->mask;; i = (i + 1) & m->mask) {
        slot *s = &m->slots[i];
        if (!s->key) {
            *s = (slot){key, len, val};
            return;
        }
        if (s->len == len && !memcmp(s->key, key, len)) {
            if (replace) s->val = val;
            return;
        }
    }
}

/* Looks up the concatenation a [sep] b (sep = 0: none), without building it. */
static int32_t map_get2(const str_map *m, const char *a, size_t na, char sep, const char *b, size_t nb)
{
    uint64_t h = fnv_step(FNV_INIT, a, na);
    if (sep) h = fnv_step(h, &sep, 1);
    h = fnv_step(h, b, nb);
    size_t n = na + (sep != 0) + nb;
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const slot *s = &m->slots[i];
        if (!s->key) return -1;
        if (s->len == n && !memcmp(s->key, a, na) && (!sep || s->key[na] == sep) &&
            !memcmp(s->key + na + (sep != 0), b, nb))
            return s->val;
    }
}

static int32_t map_get(const str_map *m, const char *key, size_t n) { return map_get2(m, key, n, 0, "", 0); }

/* ---- the tokenizer ---- */

struct ra_tokenizer {
    bool smollm;            /* digits split off one by one before the GPT-2 regex */
    size_t n_tokens;
    const char **tok;       /* into arena */
    uint32_t *tok_len;
    int32_t *type;
    str_map vocab, merges;  /* merges: "left right" -> rank */
    char *arena;
    int32_t bos, eos;
    bool add_bos;
    int32_t *special;       /* control and user-defined ids, longest text first */
    size_t n_special;
    pcre2_code *re_words, *re_digits;
    char byte_chr[256][2];  /* byte -> its byte-level character, UTF-8 */
    uint8_t byte_chr_len[256];
    int16_t chr_byte[324];  /* byte-level code point -> byte, -1 if none */
    uint8_t digest[32];
};

/* GPT-2's reversible byte <-> printable code point map: printable Latin-1
 * bytes stand for themselves, the other 68 take code points 256, 257, ... */
static void byte_map(ra_tokenizer *t)
{
    uint32_t next = 256;
    for (int i = 0; i < 324; i++) t->chr_byte[i] = -1;
    for (uint32_t b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
        uint32_t cp = printable ? b : next++;
        t->chr_byte[cp] = (int16_t)b;
        if (cp < 0x80) {
            t->byte_chr[b][0] = (char)cp;
            t->byte_chr_len[b] = 1;
        } else {
            t->byte_chr[b][0] = (char)(0xc0 | (cp >> 6));
            t->byte_chr[b][1] = (char)(0x80 | (cp & 0x3f));
            t->byte_chr_len[b] = 2;
        }
    }
}

void ra_tokenizer_free(ra_tokenizer *t)
{
    if (!t) return;
    pcre2_code_free(t->re_words);
    pcre2_code_free(t->re_digits);
    free(t->tok);
    free(t->tok_len);
    free(t->type);
    free(t->vocab.slots);
    free(t->merges.slots);
    free(t->arena);
    free(t->special);
    free(t);
}

static ra_status compile(const char *pattern, pcre2_code **out)
{
    int err;
    PCRE2_SIZE off;
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return ra_fail(RA_ERR_INTERNAL, "pre-tokenizer regex does not compile at %zu: %s", (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); /* a speed-up only; the interpreter gives the same matches */
    return RA_OK;
}

/* Special tokens, longest text first (ties by id), so the first match is the longest. */
static int by_length_desc(const void *a, const void *b, void *ctx)
{
    const ra_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->tok_len[x] != t->tok_len[y]) return t->tok_len[x] > t->tok_len[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static void put_len(ra_sha256_ctx *c, uint64_t n)
{
    uint8_t b[8];
    ra_put_le64(b, n);
    ra_sha256_update(c, b, 8);
}

static void put_str(ra_sha256_ctx *c, const char *s, size_t n)
{
    put_len(c, n);
    ra_sha256_update(c, s, n);
}

static ra_status compute_digest(ra_tokenizer *t, const ra_tokenizer_spec *sp)
{
    ra_sha256_ctx *c;
    RA_TRY(ra_sha256_new(&c));
    put_str(c, "repro-audit tokenizer v1", 24);
    put_str(c, sp->model, strlen(sp->model));
    put_str(c, sp->pre, strlen(sp->pre));
    put_len(c, sp->n_tokens);
    for (size_t i = 0; i < sp->n_tokens; i++) {
        put_str(c, sp->tokens[i], sp->token_lens[i]);
        put_len(c, (uint64_t)(uint32_t)t->type[i]);
    }
    put_len(c, sp->n_merges);
    for (size_t i = 0; i < sp->n_merges; i++) put_str(c, sp->merges[i], sp->merge_lens[i]);
    int32_t ids[4] = {sp->bos_id, sp->eos_id, sp->unk_id, sp->pad_id};
    for (int i = 0; i < 4; i++) put_len(c, (uint64_t)(uint32_t)ids[i]);
    put_len(c, sp->add_bos);
    ra_sha256_final(c, t->digest);
    return RA_OK;
}

static ra_status check_spec(const ra_tokenizer_spec *sp)
{
    if (!sp->model || strcmp(sp->model, "gpt2") != 0)
        return ra_fail(RA_ERR_UNSUPPORTED, "tokenizer model '%s' is not supported (byte-level BPE 'gpt2' only)",
                       sp->model ? sp->model : "(none)");
    if (!sp->pre || (strcmp(sp->pre, "smollm") != 0 && strcmp(sp->pre, "gpt2") != 0))
        return ra_fail(RA_ERR_UNSUPPORTED, "pre-tokenizer '%s' is not supported (known: smollm, gpt2)",
                       sp->pre ? sp->pre : "(none)");
    if (sp->n_tokens == 0 || sp->n_tokens > INT32_MAX)
        return ra_fail(RA_ERR_FORMAT, "tokenizer: %zu tokens is out of range", sp->n_tokens);
    if (sp->n_merges > INT32_MAX) return ra_fail(RA_ERR_FORMAT, "tokenizer: %zu merges is out of range", sp->n_merges);
    int32_t ids[4] = {sp->bos_id, sp->eos_id, sp->unk_id, sp->pad_id};
    const char *names[4] = {"bos", "eos", "unknown", "padding"};
    for (int i = 0; i < 4; i++)
        if (ids[i] < -1 || (ids[i] >= 0 && (size_t)ids[i] >= sp->n_tokens))
            return ra_fail(RA_ERR_FORMAT, "tokenizer: %s token id %d outside the vocabulary of %zu", names[i], ids[i],
                           sp->n_tokens);
    if (sp->add_bos && sp->bos_id < 0) return ra_fail(RA_ERR_FORMAT, "tokenizer: add_bos is set but there is no bos token");
    for (size_t i = 0; i < sp->n_merges; i++) {
        const char *sp_at = sp->merge_lens[i] > 2 ? memchr(sp->merges[i] + 1, ' ', sp->merge_lens[i] - 2) : NULL;
        if (!sp_at) return ra_fail(RA_ERR_FORMAT, "tokenizer: merge %zu is not two symbols separated by a space", i);
    }
    return RA_OK;
}

ra_status ra_tokenizer_create(const ra_tokenizer_spec *sp, ra_tokenizer **out)
{
    *out = NULL;
    RA_TRY(check_spec(sp));
    ra_tokenizer *t;
    RA_TRY(ra_calloc(&t, 1, sizeof *t));
    t->n_tokens = sp->n_tokens;
    t->smollm = !strcmp(sp->pre, "smollm");
    t->bos = sp->bos_id;
    t->eos = sp->eos_id;
    t->add_bos = sp->add_bos;
    byte_map(t);

    size_t bytes = 1;
    ra_status s = RA_OK;
    for (size_t i = 0; i < sp->n_tokens && s == RA_OK; i++) {
        if (sp->token_lens[i] > UINT32_MAX / 2 || bytes > SIZE_MAX / 2)
            s = ra_fail(RA_ERR_FORMAT, "tokenizer: token %zu is too long", i);
        bytes += sp->token_lens[i];
    }
    for (size_t i = 0; i < sp->n_merges && s == RA_OK; i++) {
        if (sp->merge_lens[i] > UINT32_MAX / 2 || bytes > SIZE_MAX / 2)
            s = ra_fail(RA_ERR_FORMAT, "tokenizer: merge %zu is too long", i);
        bytes += sp->merge_lens[i];
    }
    if (s == RA_OK) s = ra_calloc(&t->arena, bytes, 1);
    if (s == RA_OK) s = ra_calloc(&t->tok, sp->n_tokens, sizeof *t->tok);
    if (s == RA_OK) s = ra_calloc(&t->tok_len, sp->n_tokens, sizeof *t->tok_len);
    if (s == RA_OK) s = ra_calloc(&t->type, sp->n_tokens, sizeof *t->type);
    if (s == RA_OK) s = map_init(&t->vocab, sp->n_tokens);
    if (s == RA_OK) s = map_init(&t->merges, sp->n_merges);
    if (s != RA_OK) {
        ra_tokenizer_free(t);
        return s;
    }

    char *p = t->arena;
    for (size_t i = 0; i < sp->n_tokens; i++) {
        memcpy(p, sp->tokens[i], sp->token_lens[i]);
        t->tok[i] = p;
        t->tok_len[i] = (uint32_t)sp->token_lens[i];
        p += sp->token_lens[i];
        t->type[i] = sp->token_types ? sp->token_types[i] : RA_TOK_NORMAL;
        t->n_special += t->tok_len[i] > 0 && (t->type[i] == RA_TOK_CONTROL || t->type[i] == RA_TOK_USER_DEFINED);
        map_put(&t->vocab, t->tok[i], t->tok_len[i], (int32_t)i, true); /* a repeated string: the last id wins, as in HF */
    }
    for (size_t i = 0; i < sp->n_merges && s == RA_OK; i++) {
        memcpy(p, sp->merges[i], sp->merge_lens[i]);
        map_put(&t->merges, p, (uint32_t)sp->merge_lens[i], (int32_t)i, false); /* a repeated merge keeps its first rank */
        /* Both sides and their concatenation must be tokens (HF refuses such a
         * tokenizer too), so every symbol a merge makes has an id. */
        size_t l = (size_t)((const char *)memchr(p + 1, ' ', sp->merge_lens[i] - 2) - p), r = sp->merge_lens[i] - l - 1;
        if (map_get(&t->vocab, p, l) < 0 || map_get(&t->vocab, p + l + 1, r) < 0 ||
            map_get2(&t->vocab, p, l, 0, p + l + 1, r) < 0)
            s = ra_fail(RA_ERR_FORMAT, "tokenizer: merge %zu ('%.*s') involves a token that is not in the vocabulary", i,
                        (int)sp->merge_lens[i], p);
        p += sp->merge_lens[i];
    }
    if (s == RA_OK) s = ra_calloc(&t->special, t->n_special ? t->n_special : 1, sizeof *t->special);
    if (s == RA_OK) {
        size_t k = 0;
        for (size_t i = 0; i < sp->n_tokens && s == RA_OK; i++)
            if (t->tok_len[i] > 0 && (t->type[i] == RA_TOK_CONTROL || t->type[i] == RA_TOK_USER_DEFINED)) {
                t->special[k++] = (int32_t)i;
                /* Matched against text by bytes: it must be whole characters. */
                for (size_t at = 0, n; at < t->tok_len[i] && s == RA_OK; at += n)
                    if (!(n = ra_utf8_len((const uint8_t *)t->tok[i] + at, t->tok_len[i] - at)))
                        s = ra_fail(RA_ERR_FORMAT, "tokenizer: special token %zu is not valid UTF-8", i);
            }
        qsort_r(t->special, t->n_special, sizeof *t->special, by_length_desc, t);
        if (s == RA_OK) s = compile(GPT2_SPLIT, &t->re_words);
    }
    if (s == RA_OK && t->smollm) s = compile(DIGIT_SPLIT, &t->re_digits);
    if (s == RA_OK) s = compute_digest(t, sp);
    if (s != RA_OK) {
        ra_tokenizer_free(t);
        return s;
    }
    *out = t;
    return RA_OK;
}

/* ---- from a model description ---- */

ra_status ra_tokenizer_from_desc(const ra_model_desc *d, ra_tokenizer **out)
{
    *out = NULL;
    if (!d->has_tokenizer) return ra_fail(RA_ERR_FORMAT, "%s: no tokenizer (not a tokenizer we can build)", d->path);
    ra_status s = ra_tokenizer_create(&d->tokenizer, out);
    if (s != RA_OK) return ra_wrap(s, "%s", d->path);
    return RA_OK;
}

/* ---- encoding ---- */

typedef struct {
    int32_t *ids;
    size_t n, cap;
} id_vec;

static ra_status push_id(id_vec *v, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = cap <= SIZE_MAX / sizeof *p ? realloc(v->ids, cap * sizeof *p) : NULL;
        if (!p) return ra_fail(RA_ERR_NOMEM, "out of memory encoding text");
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return RA_OK;
}

/* BPE of one pre-tokenized piece, in O(n log n). Symbols are contiguous
 * slices of the piece's byte-level text kept in a linked list, so a merge only
 * widens the left slice. Candidate pairs wait in a min-heap ordered by (rank,
 * start of the left symbol): the lowest rank first, leftmost on ties. A popped
 * pair is used only if both symbols still have the lengths it was made with. */
typedef struct {
    int32_t rank;
    uint32_t left, right, left_len, right_len;
} bpe_pair;

typedef struct {
    char *text;         /* byte-level form of the piece */
    uint32_t *start, *len;
    int32_t *prev, *next; /* -1 at the ends */
    bpe_pair *heap;     /* at most 3n pairs are ever pushed */
    size_t n_heap, cap;
} bpe_scratch;

static void scratch_free(bpe_scratch *b)
{
    free(b->text);
    free(b->start);
    free(b->len);
    free(b->prev);
    free(b->next);
    free(b->heap);
}

static ra_status scratch_reserve(bpe_scratch *b, size_t n)
{
    if (n <= b->cap) return RA_OK;
    size_t cap = n < 64 ? 64 : n;
    scratch_free(b);
    memset(b, 0, sizeof *b);
    if (cap > SIZE_MAX / (3 * sizeof *b->heap) || !(b->text = malloc(2 * cap)) || !(b->start = malloc(cap * 4)) ||
        !(b->len = malloc(cap * 4)) || !(b->prev = malloc(cap * 4)) || !(b->next = malloc(cap * 4)) ||
        !(b->heap = malloc(3 * cap * sizeof *b->heap)))
        return ra_fail(RA_ERR_NOMEM, "out of memory encoding a piece of %zu bytes", n);
    b->cap = cap;
    return RA_OK;
}

static bool pair_before(const bpe_scratch *b, const bpe_pair *x, const bpe_pair *y)
{
    if (x->rank != y->rank) return x->rank < y->rank;
    return b->start[x->left] < b->start[y->left];
}

/* Pushes the pair (l, r) if it is a merge. */
static void push_pair(const ra_tokenizer *t, bpe_scratch *b, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return;
    bpe_pair p = {map_get2(&t->merges, b->text + b->start[l], b->len[l], ' ', b->text + b->start[r], b->len[r]),
                  (uint32_t)l, (uint32_t)r, b->len[l], b->len[r]};
    if (p.rank < 0) return;
    size_t i = b->n_heap++;
    while (i > 0 && pair_before(b, &p, &b->heap[(i - 1) / 2])) {
        b->heap[i] = b->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    b->heap[i] = p;
}

static bpe_pair pop_pair(bpe_scratch *b)
{
    bpe_pair top = b->heap[0], last = b->heap[--b->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= b->n_heap) break;
        if (c + 1 < b->n_heap && pair_before(b, &b->heap[c + 1], &b->heap[c])) c++;
        if (!pair_before(b, &b->heap[c], &last)) break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    if (b->n_heap) b->heap[i] = last;
    return top;
}

static ra_status bpe(const ra_tokenizer *t, const uint8_t *piece, size_t n, bpe_scratch *b, id_vec *out)
{
    if (n == 0) return RA_OK;
    if (n > INT32_MAX) return ra_fail(RA_ERR_USAGE, "a piece of %zu bytes is too long to encode", n);
    RA_TRY(scratch_reserve(b, n));
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        b->start[i] = (uint32_t)at;
        b->len[i] = t->byte_chr_len[piece[i]];
        b->prev[i] = (int32_t)i - 1;
        b->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        memcpy(b->text + at, t->byte_chr[piece[i]], b->len[i]);
        at += b->len[i];
    }
    b->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, b, (int32_t)i, (int32_t)i + 1);
    while (b->n_heap) {
        bpe_pair p = pop_pair(b);
        /* Stale when either side has merged since: a dead symbol's length is 0. */
        if (b->len[p.left] != p.left_len || b->len[p.right] != p.right_len || b->next[p.left] != (int32_t)p.right)
            continue;
        b->len[p.left] += b->len[p.right];
        b->len[p.right] = 0;
        b->next[p.left] = b->next[p.right];
        if (b->next[p.right] >= 0) b->prev[b->next[p.right]] = (int32_t)p.left;
        push_pair(t, b, b->prev[p.left], (int32_t)p.left);
        push_pair(t, b, (int32_t)p.left, b->next[p.left]);
    }
    /* Merged symbols are tokens (checked at creation); a single byte whose
     * character is not in the vocabulary is dropped, as HF's byte-level BPE
     * (no unknown token) and llama.cpp do. */
    for (int32_t i = 0; i >= 0; i = b->next[i]) {
        int32_t id = map_get(&t->vocab, b->text + b->start[i], b->len[i]);
        if (id >= 0) RA_TRY(push_id(out, id));
    }
    return RA_OK;
}

/* Runs re over text[0, n) and BPE-encodes each match and each unmatched gap
 * (with these patterns every character is in some match). */
typedef ra_status (*piece_fn)(const ra_tokenizer *t, const uint8_t *s, size_t n, bpe_scratch *b, id_vec *out,
                              pcre2_match_data *md);

static ra_status split(const ra_tokenizer *t, const pcre2_code *re, const uint8_t *s, size_t n, bpe_scratch *b,
                       id_vec *out, pcre2_match_data *md, piece_fn each)
{
    size_t last = 0, at = 0;
    while (at < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return ra_fail(RA_ERR_INTERNAL, "pre-tokenizer regex failed: %s", (char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t m0 = ov[0], m1 = ov[1];
        if (m0 > last) RA_TRY(each(t, s + last, m0 - last, b, out, md));
        if (m1 == m0) { /* an empty match: step over one character */
            size_t step = ra_utf8_len(s + m1, n - m1);
            at = m1 + (step ? step : 1);
            continue;
        }
        RA_TRY(each(t, s + m0, m1 - m0, b, out, md));
        last = at = m1;
    }
    if (last < n) RA_TRY(each(t, s + last, n - last, b, out, md));
    return RA_OK;
}

static ra_status bpe_piece(const ra_tokenizer *t, const uint8_t *s, size_t n, bpe_scratch *b, id_vec *out,
                           pcre2_match_data *md)
{
    (void)md;
    return bpe(t, s, n, b, out);
}

static ra_status word_split(const ra_tokenizer *t, const uint8_t *s, size_t n, bpe_scratch *b, id_vec *out,
                            pcre2_match_data *md)
{
    return split(t, t->re_words, s, n, b, out, md, bpe_piece);
}

/* Text between special tokens: pre-split, then BPE. */
static ra_status encode_plain(const ra_tokenizer *t, const uint8_t *s, size_t n, bpe_scratch *b, id_vec *out,
                              pcre2_match_data *md)
{
    if (n == 0) return RA_OK;
    if (t->smollm) return split(t, t->re_digits, s, n, b, out, md, word_split);
    return word_split(t, s, n, b, out, md);
}

/* The longest special token starting at s, or -1. Control tokens count only
 * with parse_special; user-defined ones always (as llama.cpp and HF do). */
static int32_t match_special(const ra_tokenizer *t, const uint8_t *s, size_t n, bool parse_special)
{
    for (size_t i = 0; i < t->n_special; i++) {
        int32_t id = t->special[i];
        uint32_t len = t->tok_len[id];
        if (len > n || (uint8_t)t->tok[id][0] != s[0] || memcmp(t->tok[id], s, len) != 0) continue;
        if (t->type[id] == RA_TOK_CONTROL && !parse_special) continue;
        return id;
    }
    return -1;
}

ra_status ra_tokenizer_encode(const ra_tokenizer *t, const char *text, size_t len, bool parse_special, int32_t **ids,
                              size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        size_t k = ra_utf8_len(s + i, len - i);
        if (!k) return ra_fail(RA_ERR_USAGE, "text is not valid UTF-8 at byte %zu", i);
        i += k;
    }
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    if (!md) return ra_fail(RA_ERR_NOMEM, "out of memory for regex match data");
    id_vec out = {0};
    bpe_scratch b = {0};
    ra_status st = RA_OK;
    size_t seg = 0;
    for (size_t i = 0; i < len && st == RA_OK;) {
        int32_t id = match_special(t, s + i, len - i, parse_special);
        if (id < 0) {
            i += ra_utf8_len(s + i, len - i);
            continue;
        }
        st = encode_plain(t, s + seg, i - seg, &b, &out, md);
        if (st == RA_OK) st = push_id(&out, id);
        i += t->tok_len[id];
        seg = i;
    }
    if (st == RA_OK) st = encode_plain(t, s + seg, len - seg, &b, &out, md);
    pcre2_match_data_free(md);
    scratch_free(&b);
    if (st == RA_OK && !out.ids) st = ra_calloc(&out.ids, 1, sizeof *out.ids); /* empty text: a valid empty array */
    if (st != RA_OK) {
        free(out.ids);
        return st;
    }
    *ids = out.ids;
    *n_ids = out.n;
    return RA_OK;
}

/* ---- decoding ---- */

ra_status ra_tokenizer_decode(const ra_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, size_t *len)
{
    *text = NULL;
    ra_buf b = {0};
    ra_status s = RA_OK;
    for (size_t i = 0; i < n_ids && s == RA_OK; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_tokens) {
            s = ra_fail(RA_ERR_USAGE, "token id %d outside the vocabulary of %zu", ids[i], t->n_tokens);
            break;
        }
        const uint8_t *p = (const uint8_t *)t->tok[ids[i]];
        size_t n = t->tok_len[ids[i]];
        int32_t ty = t->type[ids[i]];
        if (ty == RA_TOK_CONTROL || ty == RA_TOK_USER_DEFINED) {
            s = ra_buf_append(&b, p, n);
            continue;
        }
        /* Byte-level characters back to bytes; anything else passes through. */
        for (size_t k = 0; k < n && s == RA_OK;) {
            size_t cl = ra_utf8_len(p + k, n - k);
            uint32_t cp = cl == 1 ? p[k] : cl == 2 ? (uint32_t)((p[k] & 0x1f) << 6 | (p[k + 1] & 0x3f)) : 324;
            if (cl && cp < 324 && t->chr_byte[cp] >= 0) {
                uint8_t byte = (uint8_t)t->chr_byte[cp];
                s = ra_buf_append(&b, &byte, 1);
            } else {
                s = ra_buf_append(&b, p + k, cl ? cl : 1);
            }
            k += cl ? cl : 1;
        }
    }
    if (s == RA_OK) s = ra_buf_append(&b, "", 1); /* the terminator */
    if (s != RA_OK) {
        ra_buf_free(&b);
        return s;
    }
    *text = (char *)b.data;
    *len = b.len - 1;
    return RA_OK;
}

size_t ra_tokenizer_n_vocab(const ra_tokenizer *t) { return t->n_tokens; }
int32_t ra_tokenizer_bos(const ra_tokenizer *t) { return t->bos; }
int32_t ra_tokenizer_eos(const ra_tokenizer *t) { return t->eos; }
bool ra_tokenizer_add_bos(const ra_tokenizer *t) { return t->add_bos; }
void ra_tokenizer_digest(const ra_tokenizer *t, uint8_t out[32]) { memcpy(out, t->digest, 32); }

const char *ra_tokenizer_token(const ra_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_tokens) {
        *len = 0;
        return NULL;
    }
    *len = t->tok_len[id];
    return t->tok[id];
}
