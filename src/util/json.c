/* Strict JSON parsing of untrusted text and UTF-8-clean printing (ra/json.h). */
#include "ra/json.h"

#include <stdlib.h>
#include <string.h>

#include "ra/text.h"
#include "ra/util.h"

/* A NUL the parser would turn into a C string terminator: a raw byte or \u0000. */
static const char *find_nul(const char *text, size_t len)
{
    const char *raw = memchr(text, 0, len);
    if (raw) return raw;
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] != '\\') continue;
        if (text[i + 1] == 'u' && i + 5 < len && !memcmp(text + i + 2, "0000", 4)) return text + i;
        i++; /* skip the escaped character, so "\\u0000" (an escaped backslash) is not taken for one */
    }
    return NULL;
}

static int by_key(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Every string and key UTF-8, no key twice in one object; depth is bounded by cJSON's nesting limit. */
static ra_status check_tree(const char *what, const cJSON *v)
{
    if (cJSON_IsString(v) && !ra_utf8_valid(v->valuestring, strlen(v->valuestring)))
        return ra_fail(RA_ERR_FORMAT, "%s: a string is not valid UTF-8", what);
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return RA_OK;
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next) {
        RA_TRY(check_tree(what, c));
        n++;
    }
    if (!cJSON_IsObject(v) || n == 0) return RA_OK;
    const cJSON **keys;
    RA_TRY(ra_calloc(&keys, n, sizeof *keys));
    size_t i = 0;
    ra_status s = RA_OK;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (!ra_utf8_valid(c->string, strlen(c->string))) s = ra_fail(RA_ERR_FORMAT, "%s: a key is not valid UTF-8", what);
        keys[i++] = c;
    }
    qsort(keys, n, sizeof *keys, by_key);
    for (i = 1; s == RA_OK && i < n; i++)
        if (!strcmp(keys[i - 1]->string, keys[i]->string)) {
            char esc[128];
            s = ra_fail(RA_ERR_FORMAT, "%s: duplicate key \"%s\" in one object", what, ra_esc(esc, sizeof esc, keys[i]->string));
        }
    free(keys);
    return s;
}

ra_status ra_json_parse(const char *what, const char *text, size_t len, size_t max_values, cJSON **out)
{
    *out = NULL;
    const char *nul = find_nul(text, len);
    if (nul) return ra_fail(RA_ERR_FORMAT, "%s: NUL character at byte %zu (refused: C strings would cut the text there)", what,
                            (size_t)(nul - text));
    /* Every value but the first follows a ',' or opens a container's contents. */
    size_t values = 1;
    for (size_t i = 0; i < len; i++) values += text[i] == ',' || text[i] == '[' || text[i] == '{';
    if (values > max_values)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: up to %zu JSON values, more than the %zu allowed", what, values, max_values);
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!v) return ra_fail(RA_ERR_FORMAT, "%s: not valid JSON (at byte %zu)", what, end && end >= text ? (size_t)(end - text) : (size_t)0);
    while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    ra_status s = RA_OK;
    if (end != text + len) s = ra_fail(RA_ERR_FORMAT, "%s: data after the JSON value (at byte %zu)", what, (size_t)(end - text));
    if (s == RA_OK) s = check_tree(what, v);
    if (s != RA_OK) {
        cJSON_Delete(v);
        return s;
    }
    *out = v;
    return RA_OK;
}

/* A UTF-8-clean copy of s, allocated with cJSON's allocator, or NULL when s is already clean. */
static char *clean_copy(const char *s, bool *nomem)
{
    size_t n = strlen(s);
    if (ra_utf8_valid(s, n)) return NULL;
    char *c = cJSON_malloc(3 * n + 1); /* each bad byte becomes 3 */
    if (!c) *nomem = true;
    else ra_utf8_copy(c, 3 * n + 1, s, n);
    return c;
}

static void clean_tree(cJSON *v, bool *nomem)
{
    for (cJSON *c = v; c; c = c->next) {
        char *s;
        if (c->string && !(c->type & cJSON_StringIsConst) && (s = clean_copy(c->string, nomem)) != NULL) {
            cJSON_free(c->string);
            c->string = s;
        }
        if (cJSON_IsString(c) && !(c->type & cJSON_IsReference) && (s = clean_copy(c->valuestring, nomem)) != NULL) {
            cJSON_free(c->valuestring);
            c->valuestring = s;
        }
        if (c->child) clean_tree(c->child, nomem);
    }
}

ra_status ra_json_print(cJSON *root, bool pretty, char **out)
{
    bool nomem = false;
    if (root) clean_tree(root->child, &nomem);
    if (root && root->child == NULL && cJSON_IsString(root)) {
        char *s = clean_copy(root->valuestring, &nomem);
        if (s) { cJSON_free(root->valuestring); root->valuestring = s; }
    }
    *out = nomem || !root ? NULL : pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
    if (!*out) return ra_fail(RA_ERR_NOMEM, "out of memory printing JSON");
    return RA_OK;
}
