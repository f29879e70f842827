/* A bundle is a directory written by `repro-audit run`:
 *   manifest.json   what ran, on what, with which inputs (schema in docs/bundle-format.md)
 *   traces/F@K.rN.ratrace one trace per (format, kernel, repeat)
 *   report.json, report.md
 * It is written under DIR.partial-PID and renamed to DIR when complete.
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

typedef struct {
    char format[32], kernel[32];
    bool deterministic;   /* the kernel promises run-to-run and batch invariance */
    uint32_t repeat;
    char *file;           /* absolute or bundle-relative path as resolved */
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
 * above; trace files must be plain relative paths inside the bundle). */
ra_status ra_bundle_open(const char *dir, ra_bundle **out);
void ra_bundle_close(ra_bundle *b);

/* Checks every trace against the manifest: the file's SHA-256, a full read of
 * the trace (which recomputes its hashes), its Merkle digest and its
 * format/kernel/repeat. Each problem is one line on `log`; *n_bad counts them.
 * Returns an error only when the check itself could not run. */
ra_status ra_bundle_verify(const ra_bundle *b, FILE *log, uint32_t *n_bad);

#endif
