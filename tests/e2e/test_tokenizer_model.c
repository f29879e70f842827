/* The tokenizer on the real model (SmolLM2-135M-Instruct, pre-tokenizer
 * "smollm"): metadata, encodings known from HF `tokenizers`, byte-exact round
 * trips of tricky text, special-token handling, and encoding speed.
 * Usage: test_tokenizer_model MODEL.gguf (run by `make e2e`). */
#include <stdlib.h>

#include "check.h"
#include "ra/desc.h"
#include "ra/tokenizer.h"
#include "ra/util.h"

static ra_tokenizer *tok;

static void expect_ids(const char *text, size_t len, bool special, const int32_t *want, size_t n_want,
                       const char *what)
{
    int32_t *ids = NULL;
    size_t n = 0;
    ra_status s = ra_tokenizer_encode(tok, text, len, special, &ids, &n);
    CHECK_MSG(s == RA_OK, "%s: encode -> %s: %s", what, ra_status_name(s), ra_errmsg());
    if (s != RA_OK) return;
    bool same = n == n_want && !memcmp(ids, want, n * sizeof *ids);
    if (!same) {
        fprintf(stderr, "%s: got [", what);
        for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? ", " : "", ids[i]);
        fprintf(stderr, "], HF [");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, "%s%d", i ? ", " : "", want[i]);
        fprintf(stderr, "]\n");
    }
    CHECK_MSG(same, "%s: ids differ from HF", what);
    free(ids);
}
#define IDS(...) (const int32_t[]){__VA_ARGS__}, sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t)
#define HF(lit, sp, ...) expect_ids(lit, sizeof(lit) - 1, sp, IDS(__VA_ARGS__), #lit)

/* decode(encode(text)) == text byte for byte; returns the number of ids. */
static size_t round_trip(const char *text, size_t len, bool special, const char *what)
{
    int32_t *ids = NULL;
    size_t n = 0;
    char *back = NULL;
    size_t blen = 0;
    ra_status s = ra_tokenizer_encode(tok, text, len, special, &ids, &n);
    CHECK_MSG(s == RA_OK, "%s: encode -> %s: %s", what, ra_status_name(s), ra_errmsg());
    if (s != RA_OK) return 0;
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(ids[i] >= 0 && (size_t)ids[i] < ra_tokenizer_n_vocab(tok), "%s: id %d", what, ids[i]);
    s = ra_tokenizer_decode(tok, ids, n, &back, &blen);
    CHECK_MSG(s == RA_OK, "%s: decode -> %s: %s", what, ra_status_name(s), ra_errmsg());
    if (s == RA_OK)
        CHECK_MSG(blen == len && !memcmp(back, text, len), "%s: round trip gave %zu bytes for %zu: \"%.*s\"", what,
                  blen, len, (int)(blen < 200 ? blen : 200), back);
    free(back);
    free(ids);
    return n;
}

static void test_metadata(void)
{
    CHECK(ra_tokenizer_n_vocab(tok) == 49152);
    CHECK(ra_tokenizer_bos(tok) == 1 && ra_tokenizer_eos(tok) == 2 && !ra_tokenizer_add_bos(tok));
    static const char *const CONTROL[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>"};
    for (int32_t i = 0; i < 4; i++) {
        size_t len;
        const char *s = ra_tokenizer_token(tok, i, &len);
        CHECK_MSG(s && len == strlen(CONTROL[i]) && !memcmp(s, CONTROL[i], len), "token %d", i);
    }
}

/* Three prompts of tests/fixtures/hf_prompts.jsonl ("capital", "numbers",
 * "unicode"), with the ids HF `tokenizers` gave for them: prompts[0], [4] and
 * [6].prompt_ids of tests/fixtures/hf_fixture.json. */
static void test_hf_prompts(void)
{
    HF("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
       "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
       true, 1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182,
       2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198);
    HF("The year 1969 was when humans first", true, 504, 713, 216, 33, 41, 38, 41, 436, 645, 2973, 808);
    HF("Voil\xC3\xA0: na\xC3\xAFve caf\xC3\xA9, \xE6\x9D\xB1\xE4\xBA\xAC, and \xF0\x9F\x99\x82 are", true, 70, 11458,
       16739, 42, 15486, 46494, 37366, 28, 17097, 247, 126, 16736, 122, 28, 284, 47526, 359);
}

/* More ids from HF `tokenizers` 0.23.3 (tools/hf_tokenizer_ids.py): a BPE built from this GGUF's tokens
 * and merges, pre-tokenizer Sequence[Digits(individual_digits), ByteLevel(
 * add_prefix_space=false)], control tokens added as special tokens (the same
 * construction gives the fixture's ids for all 7 prompts). parse_special=false
 * corresponds to HF's encode_special_tokens=True. */
static void test_hf_more(void)
{
    HF("  leading spaces", true, 216, 2899, 5600);                     /* Ġ Ġleading Ġspaces */
    HF("trailing   ", true, 4861, 4966, 333);                          /* tra iling ĠĠĠ */
    HF("a\n\nb", true, 81, 198, 198, 82);                              /* a Ċ Ċ b */
    HF("line1\r\nline2\r\n", true, 1311, 33, 201, 198, 1311, 34, 2738); /* ... č Ċ ... čĊ */
    HF("\tdef f(x):\n\t\treturn x**2", true, 197, 1604, 275, 24, 104, 727, 3354, 197, 5406, 1792, 828, 34);
    HF("I'LL don't we're", true, 57, 23, 16421, 1326, 982, 392, 2316); /* I ' LL Ġdon 't Ġwe 're */
    HF("1,234,567.89", true, 33, 28, 34, 35, 36, 28, 37, 38, 39, 30, 40, 41);
    HF("\xE6\x9D\xB1\xE4\xBA\xAC \xD0\x9C\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0 caf\xC3\xA9", true, 30679, 126,
       16736, 122, 5470, 246, 6485, 39511, 16464, 6511, 37366);        /* 東京 Москва café */
    HF("\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",
       true, 10813, 235, 231, 10813, 233, 138, 15107, 235, 118, 321, 231, 10813, 235, 119, 321, 231, 10813, 235, 117);
    HF("e\xCC\x81", true, 85, 151, 219);                               /* e + combining acute */
    HF("<|im_sta", true, 44, 108, 306, 79, 40966);                     /* < | im _ sta */
    HF("<|im_end|><|im_start|>user", true, 2, 1, 4093);
    HF("<|im_end|><|im_start|>user", false, 44, 108, 306, 79, 486, 108, 21198, 108, 306, 79, 3738, 108, 46, 4093);
}

/* Where a careless byte-level BPE parts from HF (ids from tools/hf_tokenizer_ids.py):
 * - SmolLM2 has no token for the byte-level characters of bytes 04 06 13 14 16
 *   1D F1 F2; HF (and llama.cpp) drop such a symbol rather than emit the GGUF's
 *   unknown_token_id (0 = <|endoftext|>) into the middle of the prompt;
 * - PCRE2's \s (with UCP) matches U+180E MONGOLIAN VOWEL SEPARATOR, which is
 *   not Unicode White_Space (HF's \s does not match it), so " \u180E" splits
 *   differently before a letter. */
static void test_hf_divergences(void)
{
    HF("a\x04" "b", true, 81, 82);                                     /* HF: a b (U+0004 dropped) */
    HF("\xF1\x90\x80\x80", true, 234, 218, 218);                       /* U+50000: HF drops the F1 byte */
    HF("x \xE1\xA0\x8Ey", true, 104, 15822, 250, 232, 105);            /* x Ġá ł İ y */
}

static void test_special(void)
{
    HF("<|im_start|>", true, 1);
    /* Without parse_special it is text: < | im _ start | > */
    HF("<|im_start|>", false, 44, 108, 306, 79, 3738, 108, 46);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(ra_tokenizer_encode(tok, "<|im_start|>", 12, false, &ids, &n));
    CHECK(n > 1);
    for (size_t i = 0; i < n; i++) CHECK_MSG(ids[i] > 16, "control token %d without parse_special", ids[i]);
    free(ids);
    HF("<|im_start|><|im_end|><|endoftext|>", true, 1, 2, 0);
    /* Partial and broken special tokens are text in both modes. */
    static const char *const PARTIAL[] = {"<|im_sta", "<|im_start|", "|im_start|>", "<|im_start>", "<|IM_START|>",
                                          "< |im_start|>", "<|im_end|", "<|endoftext"};
    for (size_t i = 0; i < sizeof PARTIAL / sizeof *PARTIAL; i++)
        for (int sp = 0; sp < 2; sp++) {
            CHECK_OK(ra_tokenizer_encode(tok, PARTIAL[i], strlen(PARTIAL[i]), sp, &ids, &n));
            for (size_t k = 0; k < n; k++) CHECK_MSG(ids[k] > 16, "'%s': control token %d", PARTIAL[i], ids[k]);
            free(ids);
        }
}

static void test_round_trips(void)
{
    static const char *const TEXTS[] = {
        " ", "  ", "     ", "\t", "\t\t\t", "\n", "\n\n\n", "\r\n", "\r\n\r\n", " \n \n ", "a \t \n b",
        "trailing spaces   ", "   leading spaces", "mixed \t\r\n whitespace \v\f here",
        "def softmax(x):\n    e = np.exp(x - x.max())\n    return e / e.sum()\n",
        "int main(void) { return printf(\"%d\\n\", 42) != 0; }",
        "if (a<b && c>=d) { x += y->z[0]; } // done",
        "0 1 12 123 1234 12345 3.14159 -2.5e-10 1,000,000 0xDEADBEEF 2024-11-23 10:30",
        "\xC2\xB2 \xC2\xBD \xE2\x85\xAB \xEF\xBC\x91\xEF\xBC\x92 \xD9\xA3\xD9\xA4 \xF0\x9D\x9F\x98", /* ² ½ Ⅻ １２ ٣٤ 𝟘 */
        "I'm you're he's she'll we'd they've can't IT'S WE'RE 'quoted' ''",
        "na\xC3\xAFve caf\xC3\xA9 r\xC3\xA9sum\xC3\xA9 Stra\xC3\x9F" "e \xC3\x85ngstr\xC3\xB6m",
        "\xE6\x9D\xB1\xE4\xBA\xAC\xE9\x83\xBD \xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xE0\xB9\x84\xE0\xB8\x97\xE0\xB8\xA2",
        "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80! \xCE\x95\xCE\xBB\xCE\xBB\xCE\xAC\xCE\xB4\xCE\xB1",
        "\xD8\xA7\xD9\x84\xD8\xB9\xD8\xB1\xD8\xA8\xD9\x8A\xD8\xA9 \xD7\xA2\xD7\x91\xD7\xA8\xD7\x99\xD7\xAA mixed RTL",
        "\xE0\xA4\xB9\xE0\xA4\xBF\xE0\xA4\xA8\xE0\xA5\x8D\xE0\xA4\xA6\xE0\xA5\x80", /* Devanagari with virama */
        "\xF0\x9F\x99\x82\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D"
        "\xF0\x9F\x91\xA7 \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",                    /* emoji, skin tone, ZWJ family, flag */
        "e\xCC\x81 a\xCC\x8A o\xCC\x88\xCC\x81 Z\xCD\x91\xCD\x97\xCD\x8C",      /* combining marks */
        "\xE2\x80\x8B\xE2\x80\x8C\xE2\x80\x8D\xEF\xBB\xBF zero-width and BOM",
        "\xC2\xA0nbsp\xE3\x80\x80ideographic\xE2\x80\xA8ls\xE2\x80\xA9ps\xC2\x85nel\xE1\xA0\x8Emvs",
        "\x01\x02\x03\x05\x07\x08\x1B[31mred\x1B[0m\x7F",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|><|im_end|><|endoftext|>", "<|im_sta", "<|im_start|", "rt|>", "<|<|im_start|>|>",
        "text<|im_end|>more<|endoftext|>", "<repo_name>r<file_sep>f.py<jupyter_code>x=1<empty_output>",
        "https://example.com/path?q=1&r=%20#frag", "user@example.com", "/usr/bin/env python3",
        "\"quotes\" 'single' `back` \xE2\x80\x9Csmart\xE2\x80\x9D \xC2\xABguillemets\xC2\xBB",
        "----------==========**********__________..........", "!!!???...;;;:::", "a-b_c.d/e\\f|g",
        "ALLCAPS lowercase MiXeD CamelCase snake_case kebab-case",
        "\xF4\x8F\xBF\xBF \xEF\xBF\xBD \xEE\x80\x80", /* U+10FFFF, U+FFFD, a private-use character */
        "\x00" "embedded NUL",
    };
    size_t n = sizeof TEXTS / sizeof *TEXTS;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(TEXTS[i]) + (i == n - 1); /* the last one starts with a NUL */
        char what[48];
        snprintf(what, sizeof what, "round trip #%zu", i);
        round_trip(TEXTS[i], len, true, what);
        round_trip(TEXTS[i], len, false, what);
    }
    printf("tokenizer: %zu round-trip strings, both parse_special modes\n", n);
}

/* A 1 MB English-like text: words from a fixed list, spaces, punctuation,
 * now and then a number or a newline; deterministic. */
static void test_speed(void)
{
    static const char *const WORDS[] = {
        "the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "his", "on", "be", "at",
        "by", "had", "are", "but", "from", "or", "have", "an", "they", "which", "one", "you", "were", "her", "all",
        "there", "been", "their", "has", "would", "when", "into", "people", "through", "government", "between",
        "information", "development", "understanding", "determinism", "inference", "tokenizer", "quickly",
        "Although", "However", "Meanwhile", "Nevertheless", "don't", "it's", "we're", "they'll", "I've",
    };
    static const char *const PUNCT[] = {" ", " ", " ", " ", " ", " ", ", ", ". ", "; ", ": ", "? ", "! ", "\n", "\n\n"};
    const size_t target = 1u << 20;
    char *text = malloc(target + 64);
    CHECK(text != NULL);
    if (!text) return;
    size_t n = 0;
    uint32_t s = 12345;
    while (n < target) {
        s = s * 1664525u + 1013904223u;
        if ((s >> 24) < 8) n += (size_t)snprintf(text + n, 16, "%u", (s >> 8) % 100000);
        else {
            const char *w = WORDS[(s >> 8) % (sizeof WORDS / sizeof *WORDS)];
            memcpy(text + n, w, strlen(w));
            n += strlen(w);
        }
        s = s * 1664525u + 1013904223u;
        const char *p = PUNCT[(s >> 8) % (sizeof PUNCT / sizeof *PUNCT)];
        memcpy(text + n, p, strlen(p));
        n += strlen(p);
    }
    n = target;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    double t0 = ra_now();
    CHECK_OK(ra_tokenizer_encode(tok, text, n, true, &ids, &n_ids));
    double dt = ra_now() - t0;
    printf("tokenizer: encoded %zu bytes into %zu ids in %.3f s (%.2f MB/s, %.0f ids/s)\n", n, n_ids, dt,
           (double)n / dt / 1e6, (double)n_ids / dt);
    CHECK_MSG(dt < 5.0, "1 MB took %.2f s", dt);
    if (ids) {
        char *back = NULL;
        size_t blen = 0;
        CHECK_OK(ra_tokenizer_decode(tok, ids, n_ids, &back, &blen));
        CHECK(back && blen == n && !memcmp(back, text, n));
        free(back);
    }
    free(ids);
    free(text);
}

/* A long piece (one word or one run of spaces) must not take time quadratic in
 * its length: a BPE that rescans every pair after each merge takes about 5 s
 * for 64 KiB and over a minute for 256 KiB; the heap takes about 0.1 s. The
 * bound is loose on purpose: it catches the complexity, not the speed. */
static void test_long_pieces(void)
{
    const size_t n = 256 * 1024;
    char *text = malloc(n);
    CHECK(text != NULL);
    if (!text) return;
    static const struct { char kind; const char *what; } KINDS[] = {{' ', "spaces"}, {'w', "one word"}};
    for (size_t k = 0; k < 2; k++) {
        uint32_t s = 7;
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            text[i] = KINDS[k].kind == ' ' ? ' ' : (char)('a' + (s >> 8) % 26);
        }
        double t0 = ra_now();
        size_t n_ids = round_trip(text, n, true, KINDS[k].what);
        double dt = ra_now() - t0;
        printf("tokenizer: 256 KiB of %s: %zu ids in %.3f s\n", KINDS[k].what, n_ids, dt);
        CHECK_MSG(dt < 10.0, "256 KiB of %s took %.2f s", KINDS[k].what, dt);
    }
    free(text);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    ra_model_desc *g = NULL;
    CHECK_OK(ra_desc_open(argv[1], 0, &g));
    if (g) CHECK_OK(ra_tokenizer_from_desc(g, &tok));
    if (!tok) {
        ra_desc_close(g);
        CHECK_DONE();
    }
    test_metadata();
    test_hf_prompts();
    test_hf_more();
    test_hf_divergences();
    test_special();
    test_round_trips();
    test_speed();
    test_long_pieces();
    ra_tokenizer_free(tok);
    ra_desc_close(g);
    CHECK_DONE();
}
