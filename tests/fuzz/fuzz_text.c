/* libFuzzer target for the escaper and UTF-8 helpers (ra/text.h): whatever the
 * bytes, the escaped text holds no control character (C0, DEL, C1), no
 * bidirectional control and nothing that is not UTF-8; in Markdown mode no
 * unescaped '|'; in JSON mode it is a valid JSON string body; the fixed-size
 * form fits its buffer; a UTF-8 copy is valid UTF-8 and never longer than asked. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ra/text.h"

static void clean(const char *s, size_t n)
{
    if (!ra_utf8_valid(s, n)) abort();
    const uint8_t *p = (const uint8_t *)s;
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k) {
        k = ra_utf8_decode(p + i, n - i, &cp);
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x202e || cp == 0x2066) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    for (unsigned flags = 0; flags <= RA_ESC_JSON; flags++) {
        ra_buf b = {0};
        if (ra_escape(&b, s, size, flags) != RA_OK) abort();
        clean(b.data ? (const char *)b.data : "", b.len);
        if (flags & RA_ESC_MARKDOWN)
            for (size_t i = 0; i < b.len; i++)
                if (b.data[i] == '|' && (i == 0 || b.data[i - 1] != '\\')) abort();
        if (flags == RA_ESC_JSON) {
            ra_buf q = {0};
            if (ra_buf_printf(&q, "\"%.*s\"", (int)b.len, b.data ? (const char *)b.data : "") != RA_OK) abort();
            cJSON *v = cJSON_ParseWithLength((const char *)q.data, q.len);
            if (!cJSON_IsString(v)) abort();
            cJSON_Delete(v);
            ra_buf_free(&q);
        }
        ra_buf_free(&b);
    }
    char *z = malloc(size + 1);
    if (!z) return 0;
    memcpy(z, data, size);
    z[size] = 0;
    char out[40], copy[24];
    ra_esc(out, sizeof out, z);
    if (strlen(out) >= sizeof out) abort();
    clean(out, strlen(out));
    ra_utf8_copy(copy, sizeof copy, s, size);
    if (strlen(copy) >= sizeof copy || !ra_utf8_valid(copy, strlen(copy))) abort();
    free(z);
    return 0;
}
