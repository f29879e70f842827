/* GGUF writer: a model file whose metadata is another file's and whose
 * tensors are given (src/io/gguf_write.c). */
#ifndef RA_GGUF_WRITE_H
#define RA_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "ra/gguf.h"
#include "ra/status.h"

typedef struct {
    const char *name;
    uint32_t type;         /* ra_ggml_type */
    uint32_t n_dims;
    uint64_t ne[4];
    const void *data;
    uint64_t nbytes;       /* the type's row bytes times ne[1] * ne[2] * ne[3] */
} ra_gguf_out_tensor;

/* Writes a GGUF version 3 file to path atomically: every key/value of src
 * in its order, with general.file_type set to file_type (added if absent),
 * then the tensors in the given order, each aligned to src's alignment. */
ra_status ra_gguf_write(const char *path, const ra_gguf *src, uint32_t file_type, const ra_gguf_out_tensor *t,
                        size_t n);

#endif
