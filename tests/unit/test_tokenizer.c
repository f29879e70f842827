/* Tokenizer: byte-level BPE on a small hand-built vocabulary (no model file).
 *
 * The toy vocabulary: ids 0..255 are the 256 GPT-2 byte-level characters, id b
 * standing for byte b (so an unmerged byte encodes to its own value); then one
 * token per merge below, in rank order; then an unknown token and seven
 * special tokens. Every merge's sides and result are tokens, as HF requires;
 * one more merge, "x y" whose result is missing, is added only for the
 * tokenizers of test_unknown. The
 * byte -> character map is restated here from its definition (printable
 * Latin-1 bytes stand for themselves, the other 68 take U+0100, U+0101, ... in
 * byte order), not taken from tokenizer.c.
 *
 * Notation in the derivations: 'Ġ' is a space, 'Ċ' a newline, [a b] the
 * symbols of one pre-tokenized piece, "a b"(r) a merge of rank r. Some merges
 * are traps: they would fire only if the pre-split were wrong (a piece boundary
 * missing), so each pre-split expectation below tells right from wrong. Every
 * expected id is worked out by hand from the table; none is read back. */
#include "check.h"
#include "ra/tokenizer.h"
#include "ra/util.h"

#include <stdlib.h>

/* ---------- the toy vocabulary ---------- */

/* Merges in rank order (raw bytes, before the byte-level map). */
static const struct { const char *l, *r; } MERGES[] = {
    {"t", "'"},          /*  0 trap: only if a word and a following contraction share a piece */
    {"a", " "},          /*  1 trap: only if a space sticks to the word before it */
    {"'", "S"},          /*  2 trap: only if contractions matched case-insensitively */
    {"'", "s"},          /*  3 */
    {"'", "t"},          /*  4 */
    {"'", "r"},          /*  5 */
    {"'r", "e"},         /*  6 */
    {"'", "v"},          /*  7 */
    {"'v", "e"},         /*  8 */
    {"'", "m"},          /*  9 */
    {"'", "l"},          /* 10 */
    {"'l", "l"},         /* 11 */
    {"'", "d"},          /* 12 */
    {"a", "a"},          /* 13 */
    {"b", "c"},          /* 14 */
    {"a", "b"},          /* 15 */
    {"l", "l"},          /* 16 */
    {"h", "e"},          /* 17 */
    {"he", "ll"},        /* 18 */
    {"hell", "o"},       /* 19 */
    {" ", "hello"},      /* 20 */
    {"q", "q"},          /* 21 (used by no test text) */
    {" ", "b"},          /* 22 */
    {" ", " "},          /* 23 */
    {" ", "\n"},         /* 24 */
    {"\n", "\n"},        /* 25 */
    {"!", "!"},          /* 26 */
    {"\xC3", "\xA9"},    /* 27 é = C3 A9 */
    {"f", "\xC3\xA9"},   /* 28 trap: only if é is in the same piece as the letters before it */
    {"\xB1", "\xE4"},    /* 29 last byte of 東 (E6 9D B1) + first of 京 (E4 BA AC): only inside one piece */
    {" ", "\xF0"},       /* 30 space + first byte of a 4-byte character (emoji) */
    {" ", "1"},          /* 31 */
    {"1", "9"},          /* 32 */
    {"6", "9"},          /* 33 */
    {"i", "t"},          /* 34 */
};
#define N_MERGES (sizeof MERGES / sizeof *MERGES)

enum {
    T_TQ = 256, T_ASP, T_QS_UP,                                      /* ranks 0..2 (traps) */
    T_QS, T_QT, T_QR, T_QRE, T_QV, T_QVE, T_QM, T_QL, T_QLL, T_QD,   /* ranks 3..12 */
    T_AA, T_BC, T_AB, T_LL, T_HE, T_HELL, T_HELLO, T_SPHELLO,        /* ranks 13..20 */
    T_QQ,                                                            /* rank 21 */
    T_SPB, T_SP2, T_SPNL, T_NL2, T_BANG2, T_EACUTE, T_FE, T_MID, T_SPF0, T_SP1, T_19, T_69, T_IT, /* 22..34 */
    T_UNK,                         /* "<unk>", type UNKNOWN */
    S_BOS, S_EOS, S_X, S_XY,       /* "<s>" "</s>" "<|x|>" "<|x|>y": control */
    U_U, U_UPLUS, U_G,             /* "[U]" "[U]+" "<Ġ>": user-defined */
    N_VOCAB
};
_Static_assert(T_UNK == 256 + N_MERGES, "one token per merge");

/* Byte -> its byte-level code point (GPT-2's bytes_to_unicode). */
static uint32_t bl_cp(uint8_t b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    uint32_t n = 256;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) n++;
    return n;
}

/* Raw bytes -> byte-level UTF-8 (every code point is below U+0800). Returns the length. */
static size_t to_bl(const char *raw, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = bl_cp((uint8_t)raw[i]);
        if (cp < 0x80) out[k++] = (char)cp;
        else {
            out[k++] = (char)(0xC0 | (cp >> 6));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return k;
}

static char vocab_buf[N_VOCAB][32];
static const char *vocab[N_VOCAB];
static size_t vocab_len[N_VOCAB];
static int32_t vocab_type[N_VOCAB];
static char merge_buf[N_MERGES + 1][48];
static const char *merge_text[N_MERGES + 1]; /* the last one: "x y", for test_unknown only */
static size_t merge_len[N_MERGES + 1];

static void build_tables(void)
{
    for (int b = 0; b < 256; b++) {
        char raw = (char)b;
        vocab_len[b] = to_bl(&raw, 1, vocab_buf[b]);
    }
    int id = 256;
    for (size_t i = 0; i < N_MERGES; i++) {
        size_t nl = strlen(MERGES[i].l), nr = strlen(MERGES[i].r);
        size_t k = to_bl(MERGES[i].l, nl, merge_buf[i]);
        merge_buf[i][k++] = ' ';
        k += to_bl(MERGES[i].r, nr, merge_buf[i] + k);
        merge_len[i] = k;
        char raw[16];
        memcpy(raw, MERGES[i].l, nl);
        memcpy(raw + nl, MERGES[i].r, nr);
        vocab_len[id] = to_bl(raw, nl + nr, vocab_buf[id]);
        id++;
    }
    static const struct { int id; const char *s; int32_t type; } SPECIAL[] = {
        {T_UNK, "<unk>", RA_TOK_UNKNOWN}, {S_BOS, "<s>", RA_TOK_CONTROL},       {S_EOS, "</s>", RA_TOK_CONTROL},
        {S_X, "<|x|>", RA_TOK_CONTROL},   {S_XY, "<|x|>y", RA_TOK_CONTROL},    {U_U, "[U]", RA_TOK_USER_DEFINED},
        {U_UPLUS, "[U]+", RA_TOK_USER_DEFINED}, {U_G, "<\xC4\xA0>", RA_TOK_USER_DEFINED},
    };
    for (int i = 0; i < N_VOCAB; i++) vocab_type[i] = RA_TOK_NORMAL;
    for (size_t i = 0; i < sizeof SPECIAL / sizeof *SPECIAL; i++) {
        vocab_len[SPECIAL[i].id] = strlen(SPECIAL[i].s);
        memcpy(vocab_buf[SPECIAL[i].id], SPECIAL[i].s, vocab_len[SPECIAL[i].id]);
        vocab_type[SPECIAL[i].id] = SPECIAL[i].type;
    }
    for (int i = 0; i < N_VOCAB; i++) vocab[i] = vocab_buf[i];
    memcpy(merge_buf[N_MERGES], "x y", merge_len[N_MERGES] = 3);
    for (size_t i = 0; i < N_MERGES + 1; i++) merge_text[i] = merge_buf[i];
}

static ra_tokenizer_spec toy_spec(const char *pre)
{
    return (ra_tokenizer_spec){.model = "gpt2", .pre = pre, .n_tokens = N_VOCAB, .tokens = vocab,
                               .token_lens = vocab_len, .token_types = vocab_type, .n_merges = N_MERGES,
                               .merges = merge_text, .merge_lens = merge_len, .bos_id = S_BOS, .eos_id = S_EOS,
                               .unk_id = T_UNK, .pad_id = -1, .add_bos = false};
}

static ra_tokenizer *smol, *gpt2;

/* ---------- helpers ---------- */

static void expect_ids(const ra_tokenizer *t, const char *text, size_t len, bool special, const int32_t *want,
                       size_t n_want, int line)
{
    int32_t *ids = NULL;
    size_t n = 0;
    ra_status s = ra_tokenizer_encode(t, text, len, special, &ids, &n);
    CHECK_MSG(s == RA_OK, "line %d: encode -> %s: %s", line, ra_status_name(s), ra_errmsg());
    if (s != RA_OK) return;
    bool same = n == n_want && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
    if (!same) {
        fprintf(stderr, "line %d: got [", line);
        for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? " " : "", ids[i]);
        fprintf(stderr, "], want [");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, "%s%d", i ? " " : "", want[i]);
        fprintf(stderr, "]\n");
    }
    CHECK_MSG(same, "line %d: ids of a %zu-byte text", line, len);
    free(ids);
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t)
/* ENC(tokenizer, "literal", parse_special, id, id, ...) */
#define ENC(t, lit, sp, ...) expect_ids(t, lit, sizeof(lit) - 1, sp, IDS(__VA_ARGS__), __LINE__)
/* Same ids with and without parse_special, on both pre-tokenizers. */
#define ENC_ALL(lit, ...) do { ENC(smol, lit, false, __VA_ARGS__); ENC(smol, lit, true, __VA_ARGS__); \
    ENC(gpt2, lit, false, __VA_ARGS__); ENC(gpt2, lit, true, __VA_ARGS__); } while (0)

static void expect_round_trip(const ra_tokenizer *t, const char *text, size_t len, bool special, int line)
{
    int32_t *ids = NULL;
    size_t n = 0;
    char *back = NULL;
    size_t blen = 0;
    ra_status s = ra_tokenizer_encode(t, text, len, special, &ids, &n);
    CHECK_MSG(s == RA_OK, "line %d: encode -> %s: %s", line, ra_status_name(s), ra_errmsg());
    if (s != RA_OK) return;
    for (size_t i = 0; i < n; i++) CHECK_MSG(ids[i] >= 0 && ids[i] < N_VOCAB, "line %d: id %d", line, ids[i]);
    s = ra_tokenizer_decode(t, ids, n, &back, &blen);
    CHECK_MSG(s == RA_OK, "line %d: decode -> %s: %s", line, ra_status_name(s), ra_errmsg());
    if (s == RA_OK) {
        CHECK_MSG(blen == len && !memcmp(back, text, len) && back[blen] == 0,
                  "line %d: round trip of %zu bytes gave %zu bytes", line, len, blen);
    }
    free(back);
    free(ids);
}

static void expect_decode(const ra_tokenizer *t, const int32_t *ids, size_t n, const char *want, size_t wlen, int line)
{
    char *text = NULL;
    size_t len = 0;
    ra_status s = ra_tokenizer_decode(t, ids, n, &text, &len);
    CHECK_MSG(s == RA_OK, "line %d: decode -> %s: %s", line, ra_status_name(s), ra_errmsg());
    if (s != RA_OK) return;
    CHECK_MSG(len == wlen && !memcmp(text, want, wlen) && text[len] == 0, "line %d: decoded '%s' (%zu bytes)", line,
              text, len);
    free(text);
}
#define DEC(t, lit, ...) expect_decode(t, IDS(__VA_ARGS__), lit, sizeof(lit) - 1, __LINE__)

/* ---------- the byte map ---------- */

static void test_byte_map(void)
{
    /* The map restated above, on its known points: printable bytes are themselves,
     * space -> U+0120 'Ġ', newline -> U+010A 'Ċ', NUL -> U+0100, DEL -> U+0121,
     * soft hyphen 0xAD -> U+0143 (the 68th and last). */
    CHECK(bl_cp('!') == '!' && bl_cp('~') == '~' && bl_cp(0xA1) == 0xA1 && bl_cp(0xFF) == 0xFF);
    CHECK(bl_cp(' ') == 0x120 && bl_cp('\n') == 0x10A && bl_cp(0) == 0x100);
    CHECK(bl_cp(0x7F) == 0x121 && bl_cp(0xA0) == 0x142 && bl_cp(0xAD) == 0x143);
    CHECK(vocab_len[' '] == 2 && !memcmp(vocab[' '], "\xC4\xA0", 2));

    /* Decoding id b gives byte b, for every byte (C0, C1, F5..FF included,
     * which no valid UTF-8 text contains). */
    for (int b = 0; b < 256; b++) {
        int32_t id = b;
        char *text = NULL;
        size_t len = 0;
        CHECK_OK(ra_tokenizer_decode(smol, &id, 1, &text, &len));
        CHECK_MSG(text && len == 1 && (uint8_t)text[0] == b && text[1] == 0, "decode [%d]", b);
        free(text);
    }
    /* Every ASCII character alone encodes to its byte's id (one piece, no merge). */
    for (int c = 0; c < 128; c++) {
        char s = (char)c;
        int32_t want = c;
        expect_ids(smol, &s, 1, true, &want, 1, __LINE__);
    }
    /* Every 2-byte character U+0080..U+07FF: [lead cont], except é (C3 A9),
     * which "Ã ©"(27) merges into T_EACUTE. Every continuation byte 80..BF and
     * every lead byte C2..DF is encoded here. */
    for (uint32_t cp = 0x80; cp < 0x800; cp++) {
        char s[2] = {(char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F))};
        int32_t want[2] = {(uint8_t)s[0], (uint8_t)s[1]};
        if (cp == 0xE9) expect_ids(smol, s, 2, false, IDS(T_EACUTE), __LINE__);
        else expect_ids(smol, s, 2, false, want, 2, __LINE__);
    }
    /* 3-byte characters (a sample: every lead byte E0..EF) and 4-byte ones (every
     * lead F0..F4): no merge applies inside one character, so [bytes]. */
    for (uint32_t cp = 0x800; cp < 0x10000; cp += 0x3F1) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char s[3] = {(char)(0xE0 | (cp >> 12)), (char)(0x80 | ((cp >> 6) & 0x3F)), (char)(0x80 | (cp & 0x3F))};
        int32_t want[3] = {(uint8_t)s[0], (uint8_t)s[1], (uint8_t)s[2]};
        expect_ids(smol, s, 3, false, want, 3, __LINE__);
    }
    for (uint32_t cp = 0x10000; cp <= 0x10FFFF; cp += 0x7777) {
        char s[4] = {(char)(0xF0 | (cp >> 18)), (char)(0x80 | ((cp >> 12) & 0x3F)), (char)(0x80 | ((cp >> 6) & 0x3F)),
                     (char)(0x80 | (cp & 0x3F))};
        int32_t want[4] = {(uint8_t)s[0], (uint8_t)s[1], (uint8_t)s[2], (uint8_t)s[3]};
        expect_ids(smol, s, 4, false, want, 4, __LINE__);
    }
    ENC(smol, "\xF4\x8F\xBF\xBF", false, 0xF4, 0x8F, 0xBF, 0xBF); /* U+10FFFF, the last code point */
    ENC(smol, "\xEF\xBF\xBF", false, 0xEF, 0xBF, 0xBF);             /* U+FFFF */
    ENC(smol, "\xED\x9F\xBF", false, 0xED, 0x9F, 0xBF);             /* U+D7FF, just below the surrogates */
    ENC(smol, "\xEE\x80\x80", false, 0xEE, 0x80, 0x80);             /* U+E000, just above them */
}

/* ---------- BPE ---------- */

static void test_bpe(void)
{
    /* [a b c]: "a b"(15), "b c"(14): the lower rank wins though it is on the right
     * -> [a bc]; "a bc" is no merge. */
    ENC_ALL("abc", 'a', T_BC);
    /* [a a a]: "a a"(13) twice, leftmost first -> [aa a]; "aa a" is no merge. */
    ENC_ALL("aaa", T_AA, 'a');
    /* [a a a a] -> [aa a a] -> pairs (aa,a) none, (a,a) 13 -> [aa aa]. */
    ENC_ALL("aaaa", T_AA, T_AA);
    /* [a a a a a] -> [aa a a a] -> [aa aa a]. */
    ENC_ALL("aaaaa", T_AA, T_AA, 'a');
    /* [a a b c]: aa(13) ab(15) bc(14) -> [aa b c] -> bc(14) -> [aa bc]. */
    ENC_ALL("aabc", T_AA, T_BC);
    /* [a b]: "a b"(15) -> [ab]. */
    ENC_ALL("ab", T_AB);
    /* Chain: [h e l l o]: he(17) ll(16) -> [h e ll o] -> he(17) -> [he ll o]
     * -> "he ll"(18) -> [hell o] -> "hell o"(19) -> [hello]. */
    ENC_ALL("hello", T_HELLO);
    ENC_ALL("hell", T_HELL);      /* [h e l l] -> [h e ll] -> [he ll] -> [hell] */
    ENC_ALL("he", T_HE);
    ENC_ALL("hellos", T_HELLO, 's'); /* one piece; "hello s" is no merge */
    /* [Ġ h e l l o] -> ... -> [Ġ hello] -> "Ġ hello"(20) -> [Ġhello]. */
    ENC_ALL(" hello", T_SPHELLO);
    /* Two pieces [hello] [Ġ h e l l o]. */
    ENC_ALL("hello hello", T_HELLO, T_SPHELLO);
    ENC_ALL("xy", 'x', 'y');     /* no merge "x y" in the main table */
}

/* A merge whose result is not in the vocabulary: "x y" (rank 35, after the
 * table). The symbol it makes has no id: the unknown id stands for it, and
 * without an unknown id encoding fails with RA_ERR_FORMAT. (HF `tokenizers`
 * refuses to build such a tokenizer; should ra_tokenizer_create come to refuse
 * it too, with RA_ERR_FORMAT, this function is the one to change: the main
 * vocabulary above is valid either way.) */
static void test_unknown(void)
{
    /* A merge whose result ("xy") is not a token: refused at creation, as HF
     * refuses it, so every symbol a merge makes has an id. */
    ra_tokenizer *t = NULL;
    ra_tokenizer_spec sp = toy_spec("smollm");
    sp.n_merges = N_MERGES + 1;
    CHECK_STATUS(ra_tokenizer_create(&sp, &t), RA_ERR_FORMAT);
    CHECK(t == NULL);
    CHECK(strstr(ra_errmsg(), "merge 35") != NULL);

    /* A byte with no token (0x04's character renamed away): dropped, as HF's
     * byte-level BPE without an unknown token and llama.cpp drop it. */
    const char *saved = vocab[4];
    size_t saved_len = vocab_len[4];
    vocab[4] = "<gone>";
    vocab_len[4] = 6;
    sp = toy_spec("smollm");
    CHECK_OK(ra_tokenizer_create(&sp, &t));
    if (t) {
        ENC(t, "a\x04" "b", false, 'a', 'b');     /* "a" "\x04" "b": the middle piece has no token */
        ENC(t, "\x04\x04", false);                 /* nothing left */
        DEC(t, "ab", 'a', 'b');                    /* so the text does not come back */
    }
    ra_tokenizer_free(t);
    vocab[4] = saved;
    vocab_len[4] = saved_len;

    /* A special token that is not valid UTF-8 would match inside a character. */
    saved = vocab[U_U];
    saved_len = vocab_len[U_U];
    vocab[U_U] = "\xC3";
    vocab_len[U_U] = 1;
    sp = toy_spec("smollm");
    CHECK_STATUS(ra_tokenizer_create(&sp, &t), RA_ERR_FORMAT);
    vocab[U_U] = saved;
    vocab_len[U_U] = saved_len;
}

/* ---------- the GPT-2 pre-split (same on "smollm" and "gpt2" when there are no digits) ---------- */

static void test_contractions(void)
{
    /* "it's" -> pieces "it" ('s ends the letter run, then the 's alternative)
     * and "'s": [i t] -> it(34); [' s] -> 's(3). One piece would have given
     * [i t ' s] -> "t '"(0) first -> [i t' s]. */
    ENC_ALL("it's", T_IT, T_QS);
    ENC_ALL("don't", 'd', 'o', 'n', T_QT);      /* "don" "'t" */
    ENC_ALL("we're", 'w', 'e', T_QRE);          /* "we" "'re": [' r e] -> 'r(5) -> 're(6) */
    ENC_ALL("I've", 'I', T_QVE);                /* "I" "'ve": [' v e] -> 'v(7) -> 've(8) */
    ENC_ALL("I'm", 'I', T_QM);                  /* "I" "'m" */
    ENC_ALL("you'll", 'y', 'o', 'u', T_QLL);    /* "you" "'ll": [' l l]: 'l(10) < ll(16) -> ['l l] -> 'll(11) */
    ENC_ALL("I'd", 'I', T_QD);                  /* "I" "'d" */
    /* Case-sensitive: "'S" is no contraction. "IT'S" -> "IT", then "'" (the
     * punctuation run stops at the letter S), then "S": [I T] ['] [S]. A
     * case-insensitive match would make "'S" one piece -> "' S"(2). */
    ENC_ALL("IT'S", 'I', 'T', '\'', 'S');
    ENC_ALL("I'M", 'I', '\'', 'M');
    /* "'ll" is matched before the letters: "'lla" -> "'ll" "a". Without the
     * contraction rule: "'" then "lla" -> [' ll a]. */
    ENC_ALL("'lla", T_QLL, 'a');
    /* A contraction takes no leading space: " 's" -> " '" (space + punctuation
     * run) and "s"; no merge "Ġ '". */
    ENC_ALL(" 's", ' ', '\'', 's');
    /* "'" alone and "''s": the 's alternative is tried first at each position:
     * at 0 "''s" starts no contraction ('' is not 's), the punctuation run takes
     * "''" (stops at the letter), then "s". */
    ENC_ALL("'", '\'');
    ENC_ALL("''s", '\'', '\'', 's');
}

static void test_words_and_spaces(void)
{
    /* "a b" -> "a" " b": [a] [Ġ b] -> "Ġ b"(22). With the space on the left
     * word: [a Ġ] -> "a Ġ"(1). */
    ENC_ALL("a b", 'a', T_SPB);
    /* "a   b" (3 spaces): "a"; then \s+(?!\S) takes 3 spaces, the next char is
     * "b", backs off to 2 -> "  "; then " b". [Ġ Ġ] -> ĠĠ(23), [Ġ b] -> Ġb(22). */
    ENC_ALL("a   b", 'a', T_SP2, T_SPB);
    /* Trailing spaces: "a" then "   " (at the end (?!\S) holds): [Ġ Ġ Ġ] ->
     * "Ġ Ġ"(23) twice, leftmost -> [ĠĠ Ġ]. */
    ENC_ALL("a   ", 'a', T_SP2, ' ');
    /* Leading spaces: "   b" -> "  " " b". */
    ENC_ALL("   b", T_SP2, T_SPB);
    ENC_ALL(" ", ' ');
    /* Newlines: "a\nb" -> "a" "\n" "b". */
    ENC_ALL("a\nb", 'a', '\n', 'b');
    /* "a\n\nb": at the first \n, \s+ takes "\n\n", (?!\S) fails before "b",
     * backs off to "\n" (followed by \n: holds); the second "\n" then only
     * matches the plain \s+. So [Ċ] [Ċ], and "Ċ Ċ"(25) cannot fire. */
    ENC_ALL("a\n\nb", 'a', '\n', '\n', 'b');
    /* At the end, the run stays whole: "a" "\n\n" -> [Ċ Ċ] -> ĊĊ(25). */
    ENC_ALL("a\n\n", 'a', T_NL2);
    /* "a \n b": " ?\p{L}+" and " ?[^\s..]+" fail at the space (next is \n);
     * \s+ takes " \n ", backs off to " \n" -> [Ġ Ċ] -> "Ġ Ċ"(24); then " b". */
    ENC_ALL("a \n b", 'a', T_SPNL, T_SPB);
    ENC_ALL("a\tb", 'a', '\t', 'b');                 /* "a" "\t" "b" */
    ENC_ALL("a\r\nb", 'a', '\r', '\n', 'b');         /* "\r\n" -> "\r" (backs off) then "\n" */
    /* Punctuation runs: "a!!! b" -> "a" "!!!" " b": [! ! !] -> "! !"(26)
     * leftmost -> [!! !]. */
    ENC_ALL("a!!! b", 'a', T_BANG2, '!', T_SPB);
    ENC_ALL("hi !!", 'h', 'i', ' ', T_BANG2);        /* "hi" " !!": [Ġ ! !] -> [Ġ !!] */
    ENC_ALL("a,b", 'a', ',', 'b');
    ENC_ALL("a\0b", 'a', 0, 'b');                    /* NUL is "other": its own piece */
    /* Non-ASCII letters: "café" is one \p{L}+ piece: [c a f Ã ©] -> "Ã ©"(27)
     * -> [c a f é] -> "f é"(28) -> [c a fé]. */
    ENC_ALL("caf\xC3\xA9", 'c', 'a', T_FE);
    ENC_ALL(" caf\xC3\xA9", ' ', 'c', 'a', T_FE);   /* [Ġ c a f Ã ©]: no "Ġ c" */
    ENC_ALL("\xC3\xA9", T_EACUTE);
    /* "東京" = E6 9D B1 E4 BA AC, one letter piece: only "± ä"(29) applies. */
    ENC_ALL("\xE6\x9D\xB1\xE4\xBA\xAC", 0xE6, 0x9D, T_MID, 0xBA, 0xAC);
    /* "東 京" -> "東" " 京": the merge cannot cross pieces. */
    ENC_ALL("\xE6\x9D\xB1 \xE4\xBA\xAC", 0xE6, 0x9D, 0xB1, ' ', 0xE4, 0xBA, 0xAC);
    /* Emoji (U+1F642 = F0 9F 99 82) is "other": "a 🙂b" -> "a" " 🙂" "b";
     * [Ġ ð ...] -> "Ġ ð"(30). */
    ENC_ALL("a \xF0\x9F\x99\x82" "b", 'a', T_SPF0, 0x9F, 0x99, 0x82, 'b');
    /* "a🙂" -> "a" "🙂": no space, no merge. */
    ENC_ALL("a\xF0\x9F\x99\x82", 'a', 0xF0, 0x9F, 0x99, 0x82);
    /* "hi 🙂!" -> "hi" " 🙂!" (one run of non-letters). */
    ENC_ALL("hi \xF0\x9F\x99\x82!", 'h', 'i', T_SPF0, 0x9F, 0x99, 0x82, '!');
}

static void test_digits(void)
{
    /* smollm: every \p{N} alone first: "year " "1" "9" "6" "9"; the GPT-2 regex
     * then splits "year " into "year" and the trailing " ". No merge can join
     * digits or the space. */
    ENC(smol, "year 1969", false, 'y', 'e', 'a', 'r', ' ', '1', '9', '6', '9');
    /* gpt2: "year" " 1969": [Ġ 1 9 6 9]: Ġ1(31) 19(32) 69(33) -> [Ġ1 9 6 9]
     * -> (Ġ1,9) none, 69(33) -> [Ġ1 9 69]. */
    ENC(gpt2, "year 1969", false, 'y', 'e', 'a', 'r', T_SP1, '9', T_69);
    ENC(smol, "1969", false, '1', '9', '6', '9');
    ENC(gpt2, "1969", false, T_19, T_69);             /* [1 9 6 9] -> 19(32) -> [19 6 9] -> 69(33) */
    ENC(smol, " 1", false, ' ', '1');                 /* " " "1" */
    ENC(gpt2, " 1", false, T_SP1);                    /* " 1" */
    /* smollm "a 1b": "a " "1" "b" -> "a" " " (separate pieces: the trap
     * "a Ġ"(1) cannot fire) "1" "b". gpt2: "a" " 1" "b". */
    ENC(smol, "a 1b", false, 'a', ' ', '1', 'b');
    ENC(gpt2, "a 1b", false, 'a', T_SP1, 'b');
    ENC(smol, "a1b2", false, 'a', '1', 'b', '2');
    ENC(gpt2, "a1b2", false, 'a', '1', 'b', '2');
    /* Non-ASCII \p{N}: "١٩" (Arabic-Indic one, nine: D9 A1, D9 A9) splits in
     * smollm; in gpt2 it is one piece, but no merge applies either way. */
    ENC(smol, "\xD9\xA1\xD9\xA9", false, 0xD9, 0xA1, 0xD9, 0xA9);
    ENC(gpt2, "\xD9\xA1\xD9\xA9", false, 0xD9, 0xA1, 0xD9, 0xA9);
}

/* ---------- special tokens ---------- */

static void test_special(void)
{
    /* Control tokens only with parse_special. */
    ENC(smol, "<s>hello</s>", true, S_BOS, T_HELLO, S_EOS);
    /* Without: plain text "<" "s" ">" "hello" "</" "s" ">". */
    ENC(smol, "<s>hello</s>", false, '<', 's', '>', T_HELLO, '<', '/', 's', '>');
    ENC(gpt2, "<s>hello</s>", false, '<', 's', '>', T_HELLO, '<', '/', 's', '>');
    /* User-defined tokens always. */
    ENC_ALL("a[U]b", 'a', U_U, 'b');
    ENC(smol, "<s>[U]", false, '<', 's', '>', U_U);
    ENC(smol, "<s>[U]", true, S_BOS, U_U);
    /* Longest match first: "<|x|>" is a prefix of "<|x|>y". */
    ENC(smol, "<|x|>y", true, S_XY);
    ENC(smol, "<|x|>yy", true, S_XY, 'y');
    ENC(smol, "<|x|>z", true, S_X, 'z');
    ENC(smol, "<|x|>", true, S_X);
    ENC_ALL("[U]+", U_UPLUS);
    ENC_ALL("[U]++", U_UPLUS, '+');
    ENC_ALL("[U]-", U_U, '-');
    /* A special token's text is plain UTF-8, not byte-level: "<Ġ>" is matched
     * as the characters '<' U+0120 '>', and "< >" is not it. */
    ENC_ALL("<\xC4\xA0>", U_G);
    ENC_ALL("< >", '<', ' ', '>'); /* "<" then " >" (space + punctuation run): no "Ġ >" merge */
    /* Without parse_special "<|x|>y" is text: "<|" "x" "|>" "y". */
    ENC(smol, "<|x|>y", false, '<', '|', 'x', '|', '>', 'y');
    /* Adjacent, and at the start and the end of the text. */
    ENC(smol, "<s></s><s>", true, S_BOS, S_EOS, S_BOS);
    ENC_ALL("[U][U]+[U]", U_U, U_UPLUS, U_U);
    ENC(smol, "<|x|>hello</s>", true, S_X, T_HELLO, S_EOS);
    ENC(smol, "</s>[U]<|x|>y<s>", true, S_EOS, U_U, S_XY, S_BOS);
    /* The text between special tokens is split and merged on its own:
     * "a" <s> " b"; "hel" <s> "lo" ([h e l] -> [he l]; [l o]). */
    ENC(smol, "a<s> b", true, 'a', S_BOS, T_SPB);
    ENC(smol, "hel<s>lo", true, T_HE, 'l', S_BOS, 'l', 'o');
    ENC(smol, " </s>", true, ' ', S_EOS);
    /* Partial special tokens are plain text in both modes: "<|" "x" "|". */
    ENC(smol, "<|x|", true, '<', '|', 'x', '|');
    ENC(smol, "<s", true, '<', 's');
    ENC(smol, "[U", true, '[', 'U');
    /* The unknown token's text is not special. */
    ENC(smol, "<unk>", true, '<', 'u', 'n', 'k', '>');
}

/* ---------- invalid UTF-8, empty text ---------- */

static void test_invalid_utf8(void)
{
    static const struct { const char *s; size_t n; const char *what; } BAD[] = {
        {"\x80", 1, "lone continuation byte"},
        {"abc\xBF", 4, "continuation byte after ASCII"},
        {"a\xC3", 2, "truncated 2-byte sequence"},
        {"\xE2\x82", 2, "truncated 3-byte sequence"},
        {"\xF0\x9F\x99", 3, "truncated 4-byte sequence"},
        {"\xC3(", 2, "lead byte followed by ASCII"},
        {"\xC0\x80", 2, "overlong NUL"},
        {"\xC1\xBF", 2, "overlong 2-byte"},
        {"\xE0\x80\x80", 3, "overlong 3-byte"},
        {"\xF0\x80\x80\x80", 4, "overlong 4-byte"},
        {"\xED\xA0\x80", 3, "surrogate U+D800"},
        {"\xED\xBF\xBF", 3, "surrogate U+DFFF"},
        {"\xF4\x90\x80\x80", 4, "above U+10FFFF"},
        {"\xF5\x80\x80\x80", 4, "lead byte F5"},
        {"\xFF", 1, "byte FF"},
        {"<s>\xFE", 4, "bad byte after a special token"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++)
        for (int sp = 0; sp < 2; sp++) {
            int32_t *ids = (int32_t *)1;
            size_t n = 99;
            ra_status s = ra_tokenizer_encode(smol, BAD[i].s, BAD[i].n, sp, &ids, &n);
            CHECK_MSG(s == RA_ERR_USAGE, "%s: %s", BAD[i].what, ra_status_name(s));
            CHECK_MSG(ids == NULL && n == 0, "%s: outputs not cleared", BAD[i].what);
            if (s == RA_OK) free(ids);
        }
}

static void test_empty(void)
{
    int32_t *ids = NULL;
    size_t n = 99;
    CHECK_OK(ra_tokenizer_encode(smol, "", 0, true, &ids, &n));
    CHECK(n == 0);
    free(ids);
    n = 99;
    CHECK_OK(ra_tokenizer_encode(gpt2, "abc", 0, false, &ids, &n)); /* length 0 of a longer buffer */
    CHECK(n == 0);
    free(ids);
}

/* ---------- decoding ---------- */

static void test_decode(void)
{
    DEC(smol, "<s>hello</s>", S_BOS, T_HELLO, S_EOS);             /* control tokens print as their text */
    DEC(smol, "<|x|>y[U]+[U]", S_XY, U_UPLUS, U_U);
    DEC(smol, "<\xC4\xA0>", U_G);                                /* as stored: U+0120 stays, no byte-level map */
    DEC(smol, " hello", T_SPHELLO);                               /* Ġ -> space */
    DEC(smol, "\n\n", T_NL2);
    DEC(smol, "  ", T_SP2);
    DEC(smol, "\xC3\xA9", T_EACUTE);
    DEC(smol, "f\xC3\xA9", T_FE);
    DEC(smol, " \xF0", T_SPF0);                                   /* half a character: bytes as they are */
    DEC(smol, "<unk>", T_UNK);
    DEC(smol, "it's", T_IT, T_QS);
    char *text = (char *)1;
    size_t len = 99;
    CHECK_OK(ra_tokenizer_decode(smol, NULL, 0, &text, &len));  /* nothing: "" */
    CHECK(text && len == 0 && text[0] == 0);
    free(text);
    static const int32_t BAD[][2] = {{N_VOCAB, 0}, {-1, 0}, {'a', N_VOCAB}, {'a', INT32_MAX}, {'a', INT32_MIN}};
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        text = (char *)1;
        CHECK_STATUS(ra_tokenizer_decode(smol, BAD[i], 2, &text, &len), RA_ERR_USAGE);
        CHECK(text == NULL);
    }
}

static void test_round_trip(void)
{
    static const char *const TEXTS[] = {
        "hello world", "Hello, World!", "it's we're I've I'm you'll I'd IT'S", "  leading and trailing  ",
        "tabs\tand\t\ttabs", "line\nbreaks\n\n\nand\r\nCRLF\r\n", "a   b    c     ", "\n", " \n \n ",
        "1969 2024 3.14159 1,000,000 0x1F", "x=1+2*3; y = f(x) // comment", "def f(x):\n    return x ** 2\n",
        "caf\xC3\xA9 na\xC3\xAFve \xE6\x9D\xB1\xE4\xBA\xAC \xD0\x9C\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0",
        "\xF0\x9F\x99\x82\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",
        "e\xCC\x81 a\xCC\x8A", "<s>hello</s>", "<|x|>y<|x|>z<|x|", "[U][U]+[U", "<s", "</s", "xy xyz qqq", " <\xC4\xA0> <\xC4\xA0",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "!!!!!!!!!!!!!!!", "'s's't're've'm'll'd", "\xC2\xA0nbsp\xE3\x80\x80",
        "\xEF\xBB\xBF" "bom", "\xE2\x80\xA8line sep\xE2\x80\xA9", "\x7F\x01\x02\x1B[0m",
    };
    for (size_t i = 0; i < sizeof TEXTS / sizeof *TEXTS; i++)
        for (int sp = 0; sp < 2; sp++) {
            expect_round_trip(smol, TEXTS[i], strlen(TEXTS[i]), sp, __LINE__);
            expect_round_trip(gpt2, TEXTS[i], strlen(TEXTS[i]), sp, __LINE__);
        }
    /* Every byte value inside valid UTF-8: U+0000..U+00FF (bytes 00..7F, C2/C3
     * with every continuation byte 80..BF), one character on each lead byte
     * E0..EF and F0..F4, separated by mixed spaces, letters and digits. */
    char all[2048];
    size_t n = 0;
    for (uint32_t cp = 0; cp < 0x100; cp++) {
        if (cp < 0x80) all[n++] = (char)cp;
        else { all[n++] = (char)(0xC0 | (cp >> 6)); all[n++] = (char)(0x80 | (cp & 0x3F)); }
        if (cp % 7 == 0) all[n++] = ' ';
        if (cp % 11 == 0) all[n++] = '7';
    }
    for (uint32_t lead = 0xE0; lead <= 0xEF; lead++) {
        all[n++] = (char)lead;
        all[n++] = (char)(lead == 0xE0 ? 0xA0 : lead == 0xED ? 0x9F : 0x80);
        all[n++] = (char)0xBF;
        all[n++] = lead % 2 ? ' ' : 'q';
    }
    for (uint32_t lead = 0xF0; lead <= 0xF4; lead++) {
        all[n++] = (char)lead;
        all[n++] = (char)(lead == 0xF0 ? 0x90 : lead == 0xF4 ? 0x8F : 0xBF);
        all[n++] = (char)0x80;
        all[n++] = (char)0xAA;
    }
    all[n++] = 'x';
    for (int sp = 0; sp < 2; sp++) {
        expect_round_trip(smol, all, n, sp, __LINE__);
        expect_round_trip(gpt2, all, n, sp, __LINE__);
    }
    /* And every one of those bytes at the start and end, alone between specials. */
    for (uint32_t cp = 0; cp < 0x100; cp++) {
        char s[16];
        size_t k = 0;
        if (cp < 0x80) s[k++] = (char)cp;
        else { s[k++] = (char)(0xC0 | (cp >> 6)); s[k++] = (char)(0x80 | (cp & 0x3F)); }
        memcpy(s + k, "<s>", 3);
        memcpy(s + k + 3, s, k);
        expect_round_trip(smol, s, 2 * k + 3, true, __LINE__);
    }
}

/* ---------- creation ---------- */

static void expect_create(ra_tokenizer_spec sp, ra_status want, int line)
{
    ra_tokenizer *t = (ra_tokenizer *)1;
    ra_status s = ra_tokenizer_create(&sp, &t);
    CHECK_MSG(s == want, "line %d: create -> %s (%s), want %s", line, ra_status_name(s), ra_errmsg(),
              ra_status_name(want));
    if (s == RA_OK) ra_tokenizer_free(t);
    else CHECK_MSG(t == NULL, "line %d: *out not cleared", line);
}

static void test_create_rejects(void)
{
    ra_tokenizer_spec sp = toy_spec("smollm");
    expect_create(sp, RA_OK, __LINE__);
    sp.model = "llama";
    expect_create(sp, RA_ERR_UNSUPPORTED, __LINE__);
    sp.model = "bpe";
    expect_create(sp, RA_ERR_UNSUPPORTED, __LINE__);
    sp.model = NULL;
    expect_create(sp, RA_ERR_UNSUPPORTED, __LINE__);
    sp = toy_spec("llama-bpe");
    expect_create(sp, RA_ERR_UNSUPPORTED, __LINE__);
    sp = toy_spec("");
    expect_create(sp, RA_ERR_UNSUPPORTED, __LINE__);
    sp = toy_spec(NULL);
    expect_create(sp, RA_ERR_UNSUPPORTED, __LINE__);

    /* A merge that is not two symbols separated by a space. */
    static const char *const BAD_MERGES[] = {"ab", "a ", " a", "a", ""};
    for (size_t i = 0; i < sizeof BAD_MERGES / sizeof *BAD_MERGES; i++) {
        const char *m[N_MERGES];
        size_t ml[N_MERGES];
        memcpy(m, merge_text, sizeof m);
        memcpy(ml, merge_len, sizeof ml);
        m[5] = BAD_MERGES[i];
        ml[5] = strlen(BAD_MERGES[i]);
        sp = toy_spec("gpt2");
        sp.merges = m;
        sp.merge_lens = ml;
        expect_create(sp, RA_ERR_FORMAT, __LINE__);
    }
    /* Special ids out of range. */
    sp = toy_spec("gpt2");
    sp.bos_id = N_VOCAB;
    expect_create(sp, RA_ERR_FORMAT, __LINE__);
    sp.bos_id = -2;
    expect_create(sp, RA_ERR_FORMAT, __LINE__);
    sp = toy_spec("gpt2");
    sp.eos_id = N_VOCAB + 5;
    expect_create(sp, RA_ERR_FORMAT, __LINE__);
    sp = toy_spec("gpt2");
    sp.unk_id = N_VOCAB;
    expect_create(sp, RA_ERR_FORMAT, __LINE__);
    sp = toy_spec("gpt2");
    sp.bos_id = N_VOCAB - 1; /* the last id is fine */
    expect_create(sp, RA_OK, __LINE__);
    sp = toy_spec("gpt2");
    sp.bos_id = -1;
    sp.add_bos = true; /* BOS wanted but none */
    expect_create(sp, RA_ERR_FORMAT, __LINE__);
    sp = toy_spec("gpt2");
    sp.n_tokens = 0;
    expect_create(sp, RA_ERR_FORMAT, __LINE__);
}

static void test_accessors(void)
{
    CHECK(ra_tokenizer_n_vocab(smol) == N_VOCAB);
    CHECK(ra_tokenizer_bos(smol) == S_BOS && ra_tokenizer_eos(smol) == S_EOS);
    CHECK(!ra_tokenizer_add_bos(smol));
    size_t len = 0;
    const char *s = ra_tokenizer_token(smol, T_SPHELLO, &len);
    CHECK(s && len == 7 && !memcmp(s, "\xC4\xA0hello", 7));
    s = ra_tokenizer_token(smol, S_XY, &len);
    CHECK(s && len == 6 && !memcmp(s, "<|x|>y", 6));
    len = 5;
    CHECK(ra_tokenizer_token(smol, N_VOCAB, &len) == NULL && len == 0);
    CHECK(ra_tokenizer_token(smol, -1, &len) == NULL);
    ra_tokenizer_spec sp = toy_spec("gpt2");
    sp.add_bos = true;
    ra_tokenizer *t = NULL;
    CHECK_OK(ra_tokenizer_create(&sp, &t));
    if (t) {
        CHECK(ra_tokenizer_add_bos(t));
        ENC(t, "hello", false, T_HELLO); /* encode never adds BOS itself */
    }
    ra_tokenizer_free(t);
    ra_tokenizer_free(NULL);
}

/* ---------- digest ---------- */

static bool digest_of(ra_tokenizer_spec sp, uint8_t out[32])
{
    ra_tokenizer *t = NULL;
    ra_status s = ra_tokenizer_create(&sp, &t);
    CHECK_MSG(s == RA_OK, "create -> %s: %s", ra_status_name(s), ra_errmsg());
    if (s != RA_OK) return false;
    ra_tokenizer_digest(t, out);
    ra_tokenizer_free(t);
    return true;
}

static void test_digest(void)
{
    uint8_t base[32], d[32];
    CHECK(digest_of(toy_spec("smollm"), base));
    /* Equal specs (rebuilt from separate copies of the arrays) -> equal digests. */
    {
        static char copy_buf[N_VOCAB][32];
        const char *tk[N_VOCAB];
        size_t tl[N_VOCAB];
        int32_t ty[N_VOCAB];
        for (int i = 0; i < N_VOCAB; i++) {
            memcpy(copy_buf[i], vocab[i], vocab_len[i]);
            tk[i] = copy_buf[i];
            tl[i] = vocab_len[i];
            ty[i] = vocab_type[i];
        }
        ra_tokenizer_spec sp = toy_spec("smollm");
        sp.tokens = tk;
        sp.token_lens = tl;
        sp.token_types = ty;
        CHECK(digest_of(sp, d) && !memcmp(d, base, 32));
        CHECK(digest_of(toy_spec("smollm"), d) && !memcmp(d, base, 32));
    }
    /* Any change -> a different digest. */
    const char *tk[N_VOCAB];
    size_t tl[N_VOCAB];
    int32_t ty[N_VOCAB];
    const char *mg[N_MERGES];
    size_t ml[N_MERGES];
    ra_tokenizer_spec sp;
#define RESET() do { memcpy(tk, vocab, sizeof tk); memcpy(tl, vocab_len, sizeof tl); memcpy(ty, vocab_type, sizeof ty); \
    memcpy(mg, merge_text, sizeof mg); memcpy(ml, merge_len, sizeof ml); sp = toy_spec("smollm"); sp.tokens = tk; \
    sp.token_lens = tl; sp.token_types = ty; sp.merges = mg; sp.merge_lens = ml; } while (0)
#define DIFFERS(what) CHECK_MSG(digest_of(sp, d) && memcmp(d, base, 32) != 0, "digest unchanged: %s", what)
    RESET();
    CHECK(digest_of(sp, d) && !memcmp(d, base, 32));
    RESET(); tk[S_X] = "<|z|>"; DIFFERS("a token's text");
    RESET(); tl[T_UNK] = 4; DIFFERS("a token's length");
    RESET(); tk[T_HE] = vocab[T_LL]; tk[T_LL] = vocab[T_HE]; DIFFERS("two tokens swapped");
    RESET(); sp.n_tokens = N_VOCAB - 1; DIFFERS("one token fewer");
    RESET(); mg[13] = merge_text[14]; mg[14] = merge_text[13]; ml[13] = merge_len[14]; ml[14] = merge_len[13];
    DIFFERS("two merge ranks swapped");
    RESET(); sp.n_merges = N_MERGES - 1; DIFFERS("one merge fewer");
    RESET(); ty[U_U] = RA_TOK_CONTROL; DIFFERS("a token's type");
    RESET(); ty['a'] = RA_TOK_UNUSED; DIFFERS("a normal token's type");
    RESET(); sp.bos_id = S_EOS; DIFFERS("bos");
    RESET(); sp.bos_id = -1; DIFFERS("no bos");
    RESET(); sp.eos_id = S_BOS; DIFFERS("eos");
    RESET(); sp.pre = "gpt2"; DIFFERS("pre-tokenizer");
    RESET(); sp.unk_id = -1; DIFFERS("unknown id");
    RESET(); sp.add_bos = true; DIFFERS("add_bos");
#undef RESET
#undef DIFFERS
}

int main(void)
{
    build_tables();
    ra_tokenizer_spec sp = toy_spec("smollm");
    CHECK_OK(ra_tokenizer_create(&sp, &smol));
    sp = toy_spec("gpt2");
    CHECK_OK(ra_tokenizer_create(&sp, &gpt2));
    if (!smol || !gpt2) CHECK_DONE();

    test_byte_map();
    test_bpe();
    test_unknown();
    test_contractions();
    test_words_and_spaces();
    test_digits();
    test_special();
    test_invalid_utf8();
    test_empty();
    test_decode();
    test_round_trip();
    test_create_rejects();
    test_accessors();
    test_digest();

    ra_tokenizer_free(smol);
    ra_tokenizer_free(gpt2);
    CHECK_DONE();
}
