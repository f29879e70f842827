/* UTF-8 decoding, escaping and safe truncation of untrusted text (ra/text.h). */
#include "ra/text.h"

#include <stdio.h>
#include <string.h>

size_t ra_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t len;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xc2 && c <= 0xdf) { len = 2; *cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; *cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; *cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (*cp < 0x800 || (*cp >= 0xd800 && *cp <= 0xdfff))) || (len == 4 && (*cp < 0x10000 || *cp > 0x10ffff)))
        return 0;
    return len;
}

bool ra_utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = ra_utf8_decode(p + i, n - i, &cp))) return false;
    return true;
}

char *ra_utf8_copy(char *out, size_t cap, const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t len = 0;
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        size_t k = ra_utf8_decode(p + i, n - i, &cp);
        const char *piece = k ? s + i : "\xef\xbf\xbd"; /* U+FFFD for a byte that is not UTF-8 */
        size_t m = k ? k : 3;
        if (len + m >= cap) break;
        memcpy(out + len, piece, m);
        len += m;
        i += k ? k : 1;
    }
    if (cap) out[len] = 0;
    return out;
}

/* Code points that a terminal or a renderer acts on rather than shows. */
static bool hides(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t ra_escape_char(const uint8_t *s, size_t n, unsigned flags, char out[16], size_t *used)
{
    uint32_t cp;
    size_t k = ra_utf8_decode(s, n, &cp);
    bool json = flags & RA_ESC_JSON;
    *used = k ? k : 1;
    if (!k) return json ? (size_t)snprintf(out, 16, "\\ufffd") : (size_t)snprintf(out, 16, "\\x%02x", s[0]);
    if (cp == '\n') return (size_t)snprintf(out, 16, "\\n");
    if (hides(cp)) return (size_t)snprintf(out, 16, json ? "\\u%04x" : cp < 0x80 ? "\\x%02x" : "\\u{%04x}", cp);
    if ((flags & RA_ESC_HTML) && cp < 0x80 && strchr("&<>\"'", (int)cp)) {
        static const char *const ref[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
        const char *r = ref[strchr("&<>\"'", (int)cp) - "&<>\"'"];
        size_t len = strlen(r);
        memcpy(out, r, len);
        return len;
    }
    if (cp == '\\' || (cp == '"' && (flags & (RA_ESC_QUOTE | RA_ESC_JSON))) ||
        ((flags & RA_ESC_MARKDOWN) && cp < 0x80 && strchr("`*_[]<>|~&!#", (int)cp))) {
        out[0] = '\\';
        out[1] = (char)cp;
        return 2;
    }
    memcpy(out, s, k);
    return k;
}

ra_status ra_escape(ra_buf *b, const char *s, size_t n, unsigned flags)
{
    char piece[16];
    for (size_t i = 0, used; i < n; i += used) {
        size_t m = ra_escape_char((const uint8_t *)s + i, n - i, flags, piece, &used);
        RA_TRY(ra_buf_append(b, piece, m));
    }
    return RA_OK;
}

const char *ra_esc(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s), len = 0, total = 0, used;
    char piece[16];
    for (size_t i = 0; i < n; i += used) total += ra_escape_char((const uint8_t *)s + i, n - i, 0, piece, &used);
    size_t room = total < cap ? cap - 1 : cap - 4; /* keep room for "..." when it will not all fit */
    for (size_t i = 0; i < n; i += used) {
        size_t m = ra_escape_char((const uint8_t *)s + i, n - i, 0, piece, &used);
        if (len + m > room) break;
        memcpy(out + len, piece, m);
        len += m;
    }
    if (total >= cap) {
        memcpy(out + len, "...", 3);
        len += 3;
    }
    out[len] = 0;
    return out;
}
