/* Reading a JSON fixture whole, for the e2e tests. */
#ifndef RA_FIXTURE_JSON_H
#define RA_FIXTURE_JSON_H

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "ra/util.h"

static ra_status load_json(const char *path, cJSON **out)
{
    uint8_t *text;
    size_t len;
    RA_TRY(ra_read_file(path, &text, &len));
    *out = cJSON_ParseWithLength((const char *)text, len);
    free(text);
    if (!*out) return ra_fail(RA_ERR_FORMAT, "%s: not valid JSON", path);
    return RA_OK;
}

#endif
