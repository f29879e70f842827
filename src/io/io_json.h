/* Private to src/io/: JSON (cJSON) helpers shared by the safetensors,
 * config.json and tokenizer.json readers. */
#ifndef RA_IO_JSON_H
#define RA_IO_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

/* Parses len bytes of UTF-8 JSON without raw control characters, then with
 * ra_json_parse (no duplicate keys, no NUL, at most RA_IO_JSON_MAX_VALUES
 * values); only whitespace may follow the value. Errors name file and the
 * byte offset (base is the text's offset in file, for the byte checks). */
#define RA_IO_JSON_MAX_VALUES ((size_t)1 << 24)
ra_status ra_io_json_parse(const char *text, size_t len, const char *file, uint64_t base, cJSON **out);

/* v is a JSON number holding an integer in [lo, hi] exactly (no fraction,
 * |v| <= 2^53, where doubles stop counting one by one). */
bool ra_io_json_int(const cJSON *v, int64_t lo, int64_t hi, int64_t *out);

/* The JSON type of v in words ("a string", "an array", "null"), for messages. */
const char *ra_io_json_kind(const cJSON *v);

/* Prints o (indented when pretty) to dir/name, atomically. */
ra_status ra_io_json_write(const char *dir, const char *name, cJSON *o, bool pretty);

#endif
