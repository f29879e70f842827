/* safetensors writer: 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets}, "__metadata__": {...}} padded with
 * spaces to a multiple of 8, then the tensor bytes in header order. */
#ifndef RA_SAFETENSORS_H
#define RA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

typedef struct {
    const char *name;
    const char *dtype;       /* "F32", "BF16", ... */
    uint32_t n_dims;
    uint64_t shape[4];
    const void *data;
    uint64_t nbytes;
} ra_st_tensor;

/* Written to a temporary name, fsync'd, then renamed: all or nothing.
 * meta_keys/meta_vals: n_meta string pairs for "__metadata__". */
ra_status ra_safetensors_write(const char *path, const ra_st_tensor *t, size_t n, const char *const *meta_keys,
                               const char *const *meta_vals, size_t n_meta);

#endif
