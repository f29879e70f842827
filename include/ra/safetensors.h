/* safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}
 * (padded with spaces), then the data section, which the tensors cover
 * exactly, back to back. A reader (mmap, everything checked at open) and an
 * atomic writer. */
#ifndef RA_SAFETENSORS_H
#define RA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ra/desc.h"
#include "ra/status.h"

/* ---- reader ---- */

/* The largest header accepted (as the reference implementation). */
#define RA_ST_MAX_HEADER 100000000u

typedef struct ra_st_file ra_st_file;

typedef struct {
    const char *name;
    ra_stype type;             /* BF16 F16 F32 I32 I64 I8 U8 F8_E4M3 F8_E5M2 */
    uint32_t n_dims;
    uint64_t shape[RA_MAX_DIMS];
    uint64_t begin, end;       /* data_offsets, from the start of the data section */
    const uint8_t *data;       /* end - begin bytes */
} ra_st_info;

/* Opens and mmaps path and validates the whole header: its length sane and
 * inside the file, UTF-8 JSON, every tensor's dtype known, shape product x
 * dtype size == its span, spans inside the data section, back to back in
 * offset order and covering it exactly, no duplicate names, __metadata__ a
 * map of strings. Messages name the file, the tensor and the byte offset. */
ra_status ra_safetensors_open(const char *path, ra_st_file **out);
/* The same on a caller's buffer (fuzzer, tests); it must outlive the handle. */
ra_status ra_safetensors_open_memory(const uint8_t *data, size_t len, const char *name, ra_st_file **out);
void ra_safetensors_close(ra_st_file *f);

const char *ra_safetensors_path(const ra_st_file *f);
size_t ra_safetensors_file_size(const ra_st_file *f);
/* SHA-256 of the mapped file, the bytes the tensors are read from. */
void ra_safetensors_sha256(const ra_st_file *f, uint8_t out[32]);
uint64_t ra_safetensors_data_offset(const ra_st_file *f); /* 8 + N */
size_t ra_safetensors_n_tensors(const ra_st_file *f);
const ra_st_info *ra_safetensors_tensor_at(const ra_st_file *f, size_t i); /* in data order */
const ra_st_info *ra_safetensors_find(const ra_st_file *f, const char *name); /* NULL if absent */
size_t ra_safetensors_n_meta(const ra_st_file *f);
void ra_safetensors_meta_at(const ra_st_file *f, size_t i, const char **key, const char **value);
const char *ra_safetensors_meta(const ra_st_file *f, const char *key); /* NULL if absent */

/* ---- writer ---- */

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
