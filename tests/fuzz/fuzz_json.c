/* libFuzzer target for ra_json_parse, the strict parser every manifest and
 * prompt line goes through: any input either fails with a message or gives a
 * tree whose strings and keys are UTF-8 without NUL and whose objects never
 * repeat a key; printing it (ra_json_print) and parsing that again gives the
 * same tree. */
#include <stdlib.h>
#include <string.h>

#include "ra/json.h"
#include "ra/text.h"

static void check(const cJSON *v)
{
    for (const cJSON *c = v; c; c = c->next) {
        if (c->string && !ra_utf8_valid(c->string, strlen(c->string))) abort();
        if (cJSON_IsString(c) && !ra_utf8_valid(c->valuestring, strlen(c->valuestring))) abort();
        for (const cJSON *d = c->next; c->string && d; d = d->next)
            if (d->string && !strcmp(c->string, d->string)) abort();
        if (c->child) check(c->child);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *v;
    if (ra_json_parse("fuzz.json", (const char *)data, size, 4096, &v) != RA_OK) return 0;
    check(v);
    char *text;
    if (ra_json_print(v, size & 1, &text) != RA_OK) abort();
    cJSON *again;
    /* printing never adds values; NaN and huge numbers print as null, so compare only when none are there */
    if (ra_json_parse("printed", text, strlen(text), (size_t)1 << 20, &again) != RA_OK) abort();
    if (!strstr(text, "null") && !cJSON_Compare(v, again, true)) abort();
    cJSON_Delete(again);
    free(text);
    cJSON_Delete(v);
    return 0;
}
