/* JSON in and out. Everything we read (manifests, prompt files, later
 * policies) goes through ra_json_parse, which refuses what cJSON would take
 * silently but another reader would take differently; everything we write
 * goes through ra_json_print, so every file is valid UTF-8. */
#ifndef RA_JSON_H
#define RA_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "ra/status.h"

/* Parses one JSON value from text[0..len): only whitespace may follow it;
 * strings and keys must be UTF-8 without NUL (raw or \u0000, which C strings
 * would cut); no object may repeat a key (cJSON keeps the first, Python and
 * jq the last); at most max_values values (bounds the memory cJSON takes).
 * `what` names the input in messages ("FILE" or "FILE:LINE"). */
ra_status ra_json_parse(const char *what, const char *text, size_t len, size_t max_values, cJSON **out);

/* Prints root (pretty or compact) after replacing every byte that is not
 * UTF-8 in its strings and keys with U+FFFD. *out is malloc'd. */
ra_status ra_json_print(cJSON *root, bool pretty, char **out);

#endif
