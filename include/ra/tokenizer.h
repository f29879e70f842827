/* Byte-level BPE tokenizer (GPT-2 family) built from a model description's
 * tokenizer spec (include/ra/desc.h: GGUF tokenizer.ggml.* or HF tokenizer.json).
 * Text is pre-split with PCRE2 by the model's pre-tokenizer rules, each piece
 * is mapped to byte-level unicode and merged by rank; special (control /
 * user-defined) tokens found in the text are kept whole when asked. */
#ifndef RA_TOKENIZER_H
#define RA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

typedef struct ra_tokenizer ra_tokenizer;
typedef struct ra_model_desc ra_model_desc;

/* Token types as GGUF stores them (tokenizer.ggml.token_type). */
enum { RA_TOK_NORMAL = 1, RA_TOK_UNKNOWN = 2, RA_TOK_CONTROL = 3, RA_TOK_USER_DEFINED = 4,
       RA_TOK_UNUSED = 5, RA_TOK_BYTE = 6 };

/* Plain-array description: the tokenizer part of a model description, or
 * hand-built (tests). Strings are copied. */
typedef struct {
    const char *model;            /* "gpt2" */
    const char *pre;              /* pre-tokenizer name: "smollm", "gpt2", "llama-bpe", ... */
    size_t n_tokens;
    const char *const *tokens;    /* byte-level unicode strings, as stored */
    const size_t *token_lens;
    const int32_t *token_types;   /* may be NULL: all normal */
    size_t n_merges;
    const char *const *merges;    /* "a b" */
    const size_t *merge_lens;
    int32_t bos_id, eos_id, unk_id, pad_id; /* -1 when absent */
    bool add_bos;
} ra_tokenizer_spec;

ra_status ra_tokenizer_create(const ra_tokenizer_spec *spec, ra_tokenizer **out);
/* From a model description; fails when it has no tokenizer. */
ra_status ra_tokenizer_from_desc(const ra_model_desc *d, ra_tokenizer **out);
void ra_tokenizer_free(ra_tokenizer *t);

/* Encode UTF-8 text. With parse_special, control/user-defined token texts in
 * the input (e.g. "<|im_start|>") become their ids; otherwise they are plain
 * text. Never adds BOS by itself (see ra_tokenizer_add_bos). *ids is malloc'd. */
ra_status ra_tokenizer_encode(const ra_tokenizer *t, const char *text, size_t len, bool parse_special,
                              int32_t **ids, size_t *n_ids);
/* Decode ids to UTF-8 bytes (byte-level inverse; control tokens print as their
 * text). *text is malloc'd and NUL-terminated. Out-of-range id: RA_ERR_USAGE. */
ra_status ra_tokenizer_decode(const ra_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, size_t *len);

size_t ra_tokenizer_n_vocab(const ra_tokenizer *t);
int32_t ra_tokenizer_bos(const ra_tokenizer *t);
int32_t ra_tokenizer_eos(const ra_tokenizer *t);
bool ra_tokenizer_add_bos(const ra_tokenizer *t);
/* The stored string of a token (byte-level unicode form), not NUL-terminated. */
const char *ra_tokenizer_token(const ra_tokenizer *t, int32_t id, size_t *len);
/* A digest of the vocabulary, merges, types and pre-tokenizer: identifies the tokenizer in manifests. */
void ra_tokenizer_digest(const ra_tokenizer *t, uint8_t out[32]);

#endif
