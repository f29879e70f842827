/* Private to src/io/: building a ra_model_desc (include/ra/desc.h). */
#ifndef RA_IO_DESC_INTERNAL_H
#define RA_IO_DESC_INTERNAL_H

#include "ra/desc.h"
#include "ra/gguf.h"
#include "ra/safetensors.h"
#include "ra/util.h"

/* What a description owns besides its public arrays: open containers and
 * every buffer made while building it, all released by ra_desc_close. */
struct ra_desc_store {
    ra_gguf *gguf;
    ra_st_file **shards;
    size_t n_shards;
    void **owned;
    size_t n_owned, cap_owned;
    ra_name_index *by_name;
};

ra_status ra_desc_new(const char *container, const char *path, ra_model_desc **out);
/* Hands p to the description (freed at close); on failure p is freed at once. */
ra_status ra_desc_own(ra_model_desc *d, void *p);
/* calloc / strdup whose result the description owns. */
ra_status ra_desc_alloc(ra_model_desc *d, void *out_ptr, size_t n, size_t size);
ra_status ra_desc_strdup(ra_model_desc *d, const char *s, size_t len, char **out);
/* Records a file of the description: its size and the SHA-256 of the bytes used. */
ra_status ra_desc_add_file(ra_model_desc *d, const char *path, uint64_t bytes, const uint8_t sha256[32]);
/* After the tensors are in: the name index (duplicates fail) and the shape,
 * type and size checks every tensor must pass whatever its container. */
ra_status ra_desc_finish(ra_model_desc *d);

/* tokenizer.json (and tokenizer_config.json, when config_path is not NULL)
 * into d->tokenizer; ids are made dense up to at least vocab_size. */
ra_status ra_hf_tokenizer_read(ra_model_desc *d, const char *path, const char *config_path, uint32_t vocab_size);

ra_status ra_desc_open_gguf(const char *path, unsigned flags, ra_model_desc **out);
ra_status ra_desc_open_hf(const char *dir, unsigned flags, ra_model_desc **out);

#endif
