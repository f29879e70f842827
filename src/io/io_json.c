/* JSON helpers for the io/ readers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_json.h"
#include "ra/json.h"
#include "ra/util.h"
#include "ra/text.h"

ra_status ra_io_json_parse(const char *text, size_t len, const char *file, uint64_t base, cJSON **out)
{
    *out = NULL;
    for (size_t i = 0, n; i < len; i += n) {
        if (!(n = ra_utf8_len((const uint8_t *)text + i, len - i)))
            return ra_fail(RA_ERR_FORMAT, "%s: byte %llu is not UTF-8", file, (unsigned long long)(base + i));
        /* JSON allows no raw control character (cJSON would take one inside a string) */
        if ((uint8_t)text[i] < 0x20 && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            return ra_fail(RA_ERR_FORMAT, "%s: control character 0x%02x at byte %llu", file, (uint8_t)text[i],
                           (unsigned long long)(base + i));
    }
    /* The strict parser everything else uses: no duplicate keys (cJSON keeps the
     * first, Python the last), no NUL, a bounded number of values. */
    return ra_json_parse(file, text, len, RA_IO_JSON_MAX_VALUES, out);
}

bool ra_io_json_int(const cJSON *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0) return false;
    int64_t i = (int64_t)d;
    if (i < lo || i > hi) return false;
    *out = i;
    return true;
}

const char *ra_io_json_kind(const cJSON *v)
{
    if (!v) return "missing";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}

ra_status ra_io_json_write(const char *dir, const char *name, cJSON *o, bool pretty)
{
    char *text;
    RA_TRY(ra_json_print(o, pretty, &text));
    char path[4096];
    ra_status s = RA_OK;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) s = ra_fail(RA_ERR_USAGE, "%s: path too long", dir);
    if (s == RA_OK) s = ra_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}
