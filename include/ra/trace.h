/* Traces: what one (format, kernel, repeat) produced, step by step, hashed.
 *
 * Step hash  = SHA-256( int32 LE token id || n_vocab float32 LE log-softmax values ).
 * Digests    = Merkle tree hash (RFC 6962: leaf = SHA-256(0x00 || step hash),
 *              node = SHA-256(0x01 || left || right), empty = SHA-256("")) over
 *              the step hashes: per sequence, and for the whole trace over all
 *              steps of all sequences in order.
 * The byte layout of a trace file is in docs/trace-format.md and versioned. */
#ifndef RA_TRACE_H
#define RA_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

#define RA_TRACE_VERSION 1

typedef struct {
    char format[32];   /* "q4_1" */
    char kernel[32];   /* "cpu" */
    char mode[16];     /* "generate" | "score" */
    uint32_t repeat;
    uint32_t n_vocab;
    uint32_t top_k;
} ra_trace_meta;

typedef struct {
    int32_t token;     /* the token chosen (generate) or given (score) at this step */
    float logprob;     /* its log-probability */
    int32_t *topk_id;  /* top_k ids by descending logprob, ties by ascending id */
    float *topk_lp;
    float *full;       /* n_vocab log-probabilities, or NULL when not stored */
    uint8_t hash[32];  /* step hash (always present; recomputable only when full is) */
} ra_trace_step;

typedef struct {
    uint32_t prompt_index;
    uint32_t n_prompt;
    int32_t *prompt_ids;
    uint32_t n_steps;
    ra_trace_step *steps;
    uint8_t digest[32]; /* Merkle root of this sequence's step hashes */
} ra_trace_seq;

typedef struct ra_trace {
    ra_trace_meta meta;
    uint32_t n_seqs;
    ra_trace_seq *seqs;
    uint8_t digest[32]; /* Merkle root over every step hash, sequences in order */
} ra_trace;

void ra_step_hash(int32_t token, const float *logprobs, uint32_t n_vocab, uint8_t out[32]);
void ra_merkle_root(const uint8_t (*leaves)[32], size_t n, uint8_t root[32]);

/* Top-k of a log-prob vector, by descending value, ties by ascending id. */
void ra_topk(const float *lp, uint32_t n_vocab, uint32_t k, int32_t *ids, float *vals);

/* Writer: sequences and steps are appended in order; the file appears under
 * path only when ra_trace_writer_finish succeeds (temporary name + rename). */
typedef struct ra_trace_writer ra_trace_writer;
ra_status ra_trace_writer_open(const char *path, const ra_trace_meta *meta, ra_trace_writer **out);
ra_status ra_trace_begin_seq(ra_trace_writer *w, uint32_t prompt_index, const int32_t *prompt_ids, uint32_t n_prompt);
/* logprobs: the full n_vocab vector; stored whole only if store_full. */
ra_status ra_trace_add_step(ra_trace_writer *w, int32_t token, const float *logprobs, bool store_full);
/* Writes the file; returns the trace digest. Frees w in every case. */
ra_status ra_trace_writer_finish(ra_trace_writer *w, uint8_t digest[32]);
/* Discards an unfinished trace (no file is left behind). */
void ra_trace_writer_abort(ra_trace_writer *w);

/* Limits (docs/security.md): the uncompressed payload is at most
 * RA_TRACE_MAX_RAW bytes, and above RA_TRACE_RATIO_FLOOR at most
 * RA_TRACE_MAX_RATIO times the compressed one (real traces compress about
 * 1.2-1.4x), so a small file cannot expand into gigabytes. The writer refuses
 * what the reader would; the reader refuses it with RA_ERR_UNSUPPORTED before
 * decompressing anything. */
#define RA_TRACE_MAX_RAW ((uint64_t)2 << 30)
/* A vocabulary as large as the model loaders take (GGUF, config.json), and
 * the top-k `run --top-k` allows; reader and writer hold every header to
 * them, so a header read cannot ask for gigabytes of top-k buffers when its
 * meta is written again (the fuzzer found a 224-byte one that did). */
#define RA_TRACE_MAX_VOCAB (1u << 24)
#define RA_TRACE_MAX_TOP_K 1000u
#define RA_TRACE_RATIO_FLOOR ((uint64_t)1 << 20)
#define RA_TRACE_MAX_RATIO 64
#define RA_TRACE_MAX_FILE ((size_t)RA_TRACE_MAX_RAW + ((size_t)1 << 20)) /* compressed, with room for zstd's overhead */

/* Reads and validates a trace file (bounds, version, sizes; recomputes every
 * step hash that has its full vector, and every digest). ra_trace_parse does
 * the same on a file's bytes; name is for messages. */
ra_status ra_trace_read(const char *path, ra_trace **out);
ra_status ra_trace_parse(const char *name, const uint8_t *file, size_t len, ra_trace **out);
void ra_trace_free(ra_trace *t);

#endif
