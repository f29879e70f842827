/* The manifest of a toy bundle, shared by tests/unit/test_compare.c and
 * tests/hostile/gen.c: fixed model, tokenizer and prompt-set SHA-256s, two
 * prompts, generate mode, 3 new tokens; one traces[] entry per trace. */
#ifndef RA_TOY_MANIFEST_H
#define RA_TOY_MANIFEST_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "ra/util.h"

/* *traces receives the (empty) traces array of the returned manifest. */
static inline cJSON *toy_manifest(const char *name, const char *prompts_sha, cJSON **traces)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "schema", "repro-audit.manifest");
    cJSON_AddNumberToObject(m, "version", 1);
    cJSON *model = cJSON_AddObjectToObject(m, "model");
    cJSON_AddStringToObject(model, "name", name);
    cJSON *file = cJSON_CreateObject();
    cJSON_AddStringToObject(file, "sha256", "11111111111111111111111111111111111111111111111111111111111111aa");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(model, "files"), file);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "tokenizer"), "sha256",
                            "2222222222222222222222222222222222222222222222222222222222222222");
    cJSON *pr = cJSON_AddObjectToObject(m, "prompts");
    cJSON_AddStringToObject(pr, "sha256", prompts_sha);
    cJSON_AddNumberToObject(pr, "count", 2);
    cJSON *st = cJSON_AddObjectToObject(m, "settings");
    cJSON_AddStringToObject(st, "mode", "generate");
    cJSON_AddNumberToObject(st, "max_new_tokens", 3);
    *traces = cJSON_AddArrayToObject(m, "traces");
    return m;
}

static inline void toy_trace_entry(cJSON *traces, const char *format, const char *kernel, uint32_t repeat, const char *rel,
                                   const uint8_t sha[32], const uint8_t digest[32], bool full)
{
    char hex[65];
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "format", format);
    cJSON_AddStringToObject(t, "kernel", kernel);
    cJSON_AddBoolToObject(t, "deterministic", true);
    cJSON_AddNumberToObject(t, "repeat", repeat);
    cJSON_AddStringToObject(t, "file", rel);
    ra_hex(sha, 32, hex);
    cJSON_AddStringToObject(t, "sha256", hex);
    ra_hex(digest, 32, hex);
    cJSON_AddStringToObject(t, "digest", hex);
    cJSON_AddBoolToObject(t, "full", full);
    cJSON_AddItemToArray(traces, t);
}

#endif
