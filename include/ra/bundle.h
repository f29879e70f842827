/* A bundle is a directory written by `repro-audit run`:
 *   manifest.json   what ran, on what, with which inputs (schema in docs/bundle-format.md)
 *   traces/F@K.rN.ratrace one trace per (format, kernel, repeat)
 *   report.json, report.md, report.html
 * It is written under a new DIR.partial-XXXXXXXX and renamed to DIR when complete.
 *
 * manifest.json, version 1 (fields that compare/verify read are marked *):
 * { "schema": "repro-audit.manifest"*, "version": 1*,
 *   "tool": {"name","version","git_commit"},
 *   "created_utc", "host": {"hostname","cpu","os","backend","threads"},
 *   "model": {"path","architecture","name","files":[{"path","bytes","sha256"}]},
 *   "tokenizer": {"sha256"}, "prompts": {"path","sha256","count"},
 *   "settings": {"mode"*,"max_new_tokens","repeats","top_k","store_full","formats":[...]},
 *   "traces"*: [ {"format"*,"kernel"*,"deterministic"*,"repeat"*,"file"* (relative),
 *                "sha256"* (of the file),"digest"* (trace Merkle root, hex),"steps","full",
 *                "scenario", "engine": {"backend", GPU and library versions, ...}} ],
 *   "times": {"started_utc","seconds"} } */
#ifndef RA_BUNDLE_H
#define RA_BUNDLE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "ra/status.h"

/* Limits a reader enforces (docs/security.md). */
#define RA_BUNDLE_MAX_TRACES 65536                 /* traces in one manifest */
#define RA_MANIFEST_MAX_BYTES ((size_t)32 << 20)   /* manifest.json */
#define RA_MANIFEST_MAX_VALUES ((size_t)4 << 20)   /* JSON values in it (cJSON memory) */

typedef struct {
    char format[32], kernel[32];
    bool deterministic;   /* the kernel promises run-to-run and batch invariance */
    uint32_t repeat;
    char *file;           /* dir/rel, for messages */
    char *rel;            /* the manifest's path, relative to the bundle */
    uint8_t sha256[32];   /* of the trace file */
    uint8_t digest[32];   /* trace Merkle root */
    bool full;            /* the trace stores full log-prob vectors */
    char scenario[24];    /* "repeat" (also when absent), "batch-alone", ... */
    char scope[320];      /* what its numbers are scoped to: GPU, driver, libraries,
                             kernel build; or CPU model (from the trace's "engine") */
} ra_bundle_trace;

typedef struct {
    char *dir;
    char mode[16];
    /* What must match for two bundles' traces to be comparable (hex SHA-256s). */
    char model_sha256[65], tokenizer_sha256[65], prompts_sha256[65];
    char model_name[128], host[256], backend[32];
    uint32_t max_new_tokens, n_prompts;
    uint32_t n_traces;
    ra_bundle_trace *traces;
    void *manifest;       /* cJSON*, owned */
} ra_bundle;

/* Reads and validates DIR/manifest.json (schema, version, every field marked *
 * above; trace files must be plain relative paths inside the bundle). The
 * manifest is read as ra_read_file_inside reads (no symlink, a regular file,
 * at most RA_MANIFEST_MAX_BYTES) and parsed by ra_json_parse. */
ra_status ra_bundle_open(const char *dir, ra_bundle **out);
void ra_bundle_close(ra_bundle *b);

/* Checks every trace against the manifest: the file's SHA-256, a full read of
 * the trace (which recomputes its hashes), its Merkle digest and its
 * format/kernel/repeat/mode. Each problem (a missing file, a mismatch, a
 * corrupt trace) is one line on `log`, escaped; *n_bad counts them. Returns
 * an error when the check cannot run safely: a trace path that is a symlink,
 * not a regular file or over the size limits. */
ra_status ra_bundle_verify(const ra_bundle *b, FILE *log, uint32_t *n_bad);

struct ra_trace;
/* Trace i read from the bundle's bytes and held to its manifest entry, as
 * verify holds it: any mismatch is an RA_ERR_FORMAT error naming the file. */
ra_status ra_bundle_read_trace(const ra_bundle *b, uint32_t i, struct ra_trace **out);

/* Creates the directory `run` writes a bundle into: a new OUT.partial-XXXXXXXX
 * next to OUT (ra_create_unique: never one that existed) with traces/ in it. */
ra_status ra_bundle_create_partial(const char *out_dir, char **tmp);

/* Removes an unfinished bundle that `run` made: the files a bundle has
 * (manifest.json, report.json, report.md, report.html, traces/\*.ratrace), then the
 * directories if they are empty. Anything else is left where it is. */
void ra_bundle_discard(const char *dir);

#endif
