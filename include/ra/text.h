/* Untrusted text (names from manifests, GGUF keys, prompt ids, paths) on its
 * way to a terminal, a report or a JSON file: UTF-8 decoding, escaping and
 * truncation that never cuts a character. */
#ifndef RA_TEXT_H
#define RA_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"
#include "ra/util.h"

/* Length (1-4) of the valid UTF-8 character at s, its code point in *cp, or 0
 * when s does not start with one (strict: no overlongs, surrogates or code
 * points past U+10FFFF). n >= 1. */
size_t ra_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
bool ra_utf8_valid(const char *s, size_t n);
/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static inline size_t ra_utf8_len(const uint8_t *s, size_t n)
{
    uint32_t cp;
    return ra_utf8_decode(s, n, &cp);
}

/* Copies s into out (cap bytes, NUL-terminated) without cutting a character;
 * bytes that are not UTF-8 become U+FFFD. Returns out. */
char *ra_utf8_copy(char *out, size_t cap, const char *s, size_t n);

/* Escaping: control characters (C0, DEL, C1), bidirectional and line/paragraph
 * separator code points and bytes that are not UTF-8 become \n, \xNN (a
 * control byte or one that is not UTF-8) or \u{NNNN} (a code point), and a
 * backslash becomes \\, so that no untrusted byte can move the cursor,
 * recolour, retitle or reorder what is shown, and escapes stay unambiguous. */
enum {
    RA_ESC_QUOTE = 1,     /* also " -> \" (inside a quoted string) */
    RA_ESC_MARKDOWN = 2,  /* also backslash-escape Markdown punctuation: safe in a table cell */
    RA_ESC_JSON = 4,      /* JSON string content instead: \uNNNN, \", and U+FFFD for a bad byte */
    RA_ESC_HTML = 8       /* also & < > " ' as character references: safe in HTML text and quoted attributes */
};
/* The escaped form of the character at s (n >= 1 bytes left) in out; *used
 * is how many bytes of s it stands for. Returns its length (at most 10). */
size_t ra_escape_char(const uint8_t *s, size_t n, unsigned flags, char out[16], size_t *used);
ra_status ra_escape(ra_buf *b, const char *s, size_t n, unsigned flags);
/* The escaped text of the C string s in out (cap >= 8), cut with "..." when it
 * does not fit. Returns out, so it can be an argument of printf. */
const char *ra_esc(char *out, size_t cap, const char *s);

#endif
