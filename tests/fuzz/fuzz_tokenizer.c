/* libFuzzer target for the tokenizer: any input is encoded with parse_special
 * on and off by two toy byte-complete tokenizers ("smollm" and "gpt2" pre-split,
 * a handful of merges, a control and a user-defined token). Valid UTF-8 must
 * encode (every symbol is in the vocabulary, so there is no failure to allow),
 * to ids in range, the same ids twice, and decode back to the input byte for
 * byte; the control token may appear only with parse_special. Invalid UTF-8
 * must be refused with RA_ERR_USAGE and no output. Anything else aborts.
 *
 * Build and run (the seed corpus is tests/fuzz/corpus/fuzz_tokenizer; work on a
 * scratch copy so the committed one stays small):
 *   clang -O1 -g -std=c11 -D_GNU_SOURCE -Iinclude -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined tests/fuzz/fuzz_tokenizer.c src/model/tokenizer.c src/io/gguf.c \
 *     src/util/util.c src/util/status.c formats/gguf_quants.c -lpcre2-8 -lcrypto -lm -o /tmp/fuzz_tokenizer
 *   rm -rf /tmp/corpus && cp -r tests/fuzz/corpus/fuzz_tokenizer /tmp/corpus
 *   /tmp/fuzz_tokenizer -max_len=512 -max_total_time=90 /tmp/corpus */
#include "ra/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Merges (raw bytes; rank = index). Every result is a token. */
static const struct { const char *l, *r; } MERGES[] = {
    {" ", "t"}, {"h", "e"}, {" t", "he"}, {"i", "n"}, {"in", "g"}, {"e", "r"}, {" ", " "}, {"  ", "  "},
    {"\n", "\n"}, {"1", "2"}, {"<", "|"}, {"'", "s"}, {"\xC3", "\xA9"}, {" ", "\xF0"}, {"\xE6", "\x9D"},
    {"e", "n"}, {"en", "d"}, {"|", ">"},
};
#define N_MERGES (sizeof MERGES / sizeof *MERGES)
#define N_VOCAB (256 + N_MERGES + 2)
#define CONTROL_ID (256 + (int32_t)N_MERGES)      /* "<|end|>" */
#define USER_ID (CONTROL_ID + 1)                  /* "<u>" */

static bool printable(unsigned b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

/* Raw bytes -> GPT-2 byte-level UTF-8. */
static size_t to_bl(const char *raw, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned b = (uint8_t)raw[i], cp = b;
        if (!printable(b)) {
            cp = 256;
            for (unsigned c = 0; c < b; c++) cp += !printable(c);
        }
        if (cp < 0x80) out[k++] = (char)cp;
        else {
            out[k++] = (char)(0xC0 | (cp >> 6));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return k;
}

static ra_tokenizer *toks[2];

static void init(void)
{
    static char vbuf[N_VOCAB][32], mbuf[N_MERGES][48];
    static const char *vocab[N_VOCAB], *merges[N_MERGES];
    static size_t vlen[N_VOCAB], mlen[N_MERGES];
    static int32_t types[N_VOCAB];
    for (unsigned b = 0; b < 256; b++) {
        char raw = (char)b;
        vlen[b] = to_bl(&raw, 1, vbuf[b]);
        types[b] = RA_TOK_NORMAL;
    }
    for (size_t i = 0; i < N_MERGES; i++) {
        size_t nl = strlen(MERGES[i].l), nr = strlen(MERGES[i].r), k;
        char raw[16];
        k = to_bl(MERGES[i].l, nl, mbuf[i]);
        mbuf[i][k++] = ' ';
        mlen[i] = k + to_bl(MERGES[i].r, nr, mbuf[i] + k);
        memcpy(raw, MERGES[i].l, nl);
        memcpy(raw + nl, MERGES[i].r, nr);
        vlen[256 + i] = to_bl(raw, nl + nr, vbuf[256 + i]);
        types[256 + i] = RA_TOK_NORMAL;
    }
    memcpy(vbuf[CONTROL_ID], "<|end|>", vlen[CONTROL_ID] = 7);
    types[CONTROL_ID] = RA_TOK_CONTROL;
    memcpy(vbuf[USER_ID], "<u>", vlen[USER_ID] = 3);
    types[USER_ID] = RA_TOK_USER_DEFINED;
    for (size_t i = 0; i < N_VOCAB; i++) vocab[i] = vbuf[i];
    for (size_t i = 0; i < N_MERGES; i++) merges[i] = mbuf[i];
    static const char *const PRE[2] = {"smollm", "gpt2"};
    for (int i = 0; i < 2; i++) {
        ra_tokenizer_spec sp = {.model = "gpt2", .pre = PRE[i], .n_tokens = N_VOCAB, .tokens = vocab,
                                .token_lens = vlen, .token_types = types, .n_merges = N_MERGES, .merges = merges,
                                .merge_lens = mlen, .bos_id = -1, .eos_id = CONTROL_ID, .unk_id = -1, .pad_id = -1};
        if (ra_tokenizer_create(&sp, &toks[i]) != RA_OK) {
            fprintf(stderr, "fuzz_tokenizer: create: %s\n", ra_errmsg());
            abort();
        }
    }
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), restated. */
static bool valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!len || n - i < len) return false;
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += len;
    }
    return true;
}

static void fail(const char *what, const ra_tokenizer *t, bool special)
{
    fprintf(stderr, "fuzz_tokenizer: %s (pre %s, parse_special %d): %s\n", what, t == toks[0] ? "smollm" : "gpt2",
            special, ra_errmsg());
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!toks[0]) init();
    bool valid = valid_utf8(data, size);
    for (int k = 0; k < 2; k++)
        for (int sp = 0; sp < 2; sp++) {
            const ra_tokenizer *t = toks[k];
            int32_t *ids = (int32_t *)1;
            size_t n = 1;
            ra_status s = ra_tokenizer_encode(t, (const char *)data, size, sp, &ids, &n);
            if (!valid) {
                if (s != RA_ERR_USAGE) fail("invalid UTF-8 not refused with RA_ERR_USAGE", t, sp);
                if (ids != NULL || n != 0) fail("outputs set on failure", t, sp);
                continue;
            }
            if (s != RA_OK) fail("valid UTF-8 did not encode", t, sp);
            if (n > size) fail("more ids than bytes", t, sp);
            for (size_t i = 0; i < n; i++) {
                if (ids[i] < 0 || ids[i] >= (int32_t)N_VOCAB) fail("id out of range", t, sp);
                if (ids[i] == CONTROL_ID && !sp) fail("control token without parse_special", t, sp);
            }
            int32_t *again = NULL;
            size_t n2 = 0;
            if (ra_tokenizer_encode(t, (const char *)data, size, sp, &again, &n2) != RA_OK || n2 != n ||
                (n && memcmp(again, ids, n * sizeof *ids)))
                fail("encoding twice differs", t, sp);
            free(again);
            char *text = NULL;
            size_t len = 0;
            if (ra_tokenizer_decode(t, ids, n, &text, &len) != RA_OK) fail("decode failed", t, sp);
            if (len != size || (size && memcmp(text, data, size)) || text[len] != 0) fail("round trip differs", t, sp);
            free(text);
            free(ids);
        }
    return 0;
}
