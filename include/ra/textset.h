/* A plain-text corpus tokenized once (src/audit/textset.c): the calibration
 * text of GPTQ and act-order, and the evaluation text of `ppl`. Calibration
 * sequences come from the first half of its tokens, evaluation sequences
 * from the second half, so the two never share a token. */
#ifndef RA_TEXTSET_H
#define RA_TEXTSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"
#include "ra/tokenizer.h"

/* The default corpus, fetched by `make text` (tools/fetch_text.sh): Ambrose
 * Bierce's "The Devil's Dictionary" (1911, public domain) from Debian's
 * dict-devil package. */
#define RA_DEFAULT_TEXT "data/devils-dictionary.txt"
#define RA_TEXT_MAX_BYTES ((size_t)64 << 20)

typedef struct {
    char *path;
    int32_t *ids;
    size_t n;
    uint8_t sha256[32];   /* of the file's bytes */
} ra_text;

/* Reads (at most RA_TEXT_MAX_BYTES) and tokenizes path, special tokens not
 * parsed: the text is data. */
ra_status ra_text_load(const char *path, const ra_tokenizer *tok, ra_text *out);
void ra_text_free(ra_text *t);
/* n_seqs consecutive sequences of seq_len tokens from the start of the
 * calibration half (eval false) or of the evaluation half (eval true), into
 * a new array; RA_ERR_USAGE naming the text when that half is too short. */
ra_status ra_text_slices(const ra_text *t, bool eval, uint32_t n_seqs, uint32_t seq_len, int32_t **ids);

#endif
