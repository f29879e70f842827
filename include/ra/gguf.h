/* GGUF reader (versions 2 and 3): header, metadata, tensor table, mmap'd data.
 * Everything read from the file is bounds-checked at open time; after a
 * successful ra_gguf_open every accessor is safe to call on any input. */
#ifndef RA_GGUF_H
#define RA_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

typedef enum {
    RA_GGUF_UINT8 = 0, RA_GGUF_INT8 = 1, RA_GGUF_UINT16 = 2, RA_GGUF_INT16 = 3,
    RA_GGUF_UINT32 = 4, RA_GGUF_INT32 = 5, RA_GGUF_FLOAT32 = 6, RA_GGUF_BOOL = 7,
    RA_GGUF_STRING = 8, RA_GGUF_ARRAY = 9, RA_GGUF_UINT64 = 10, RA_GGUF_INT64 = 11,
    RA_GGUF_FLOAT64 = 12
} ra_gguf_vtype;

const char *ra_gguf_vtype_name(ra_gguf_vtype t);

typedef struct {
    const char *key;          /* NUL-terminated copy */
    ra_gguf_vtype type;
    ra_gguf_vtype elem_type;  /* for arrays */
    uint64_t n;               /* array length (1 for scalars) */
    const uint8_t *data;      /* raw little-endian payload inside the mapping:
                                 scalars and numeric arrays: the values;
                                 strings / string arrays: use the accessors */
} ra_gguf_kv;

typedef struct {
    const char *name;         /* NUL-terminated copy */
    uint32_t type;            /* ra_ggml_type (formats/ggml_types.h) */
    uint32_t n_dims;          /* 1..4 */
    uint64_t ne[4];           /* ne[0] = row length (fastest), unused dims = 1 */
    uint64_t offset;          /* from the start of the data section */
    uint64_t nbytes;
    const uint8_t *data;      /* inside the mapping, nbytes long */
} ra_gguf_tensor;

typedef struct ra_gguf ra_gguf;

/* Opens and mmaps path; validates header, every key/value, every tensor info
 * (known type, dims, sizes without overflow, alignment, within the file, no
 * overlaps). Errors name the file, the item and the byte offset. */
ra_status ra_gguf_open(const char *path, ra_gguf **out);
/* Same checks on a caller-owned buffer (used by the fuzzer and tests); the
 * buffer must outlive the handle. name appears in error messages. */
ra_status ra_gguf_open_memory(const uint8_t *data, size_t len, const char *name, ra_gguf **out);
void ra_gguf_close(ra_gguf *g);

const char *ra_gguf_path(const ra_gguf *g);
uint32_t ra_gguf_version(const ra_gguf *g);
uint64_t ra_gguf_alignment(const ra_gguf *g);
uint64_t ra_gguf_data_offset(const ra_gguf *g); /* file offset of the tensor data section */
size_t ra_gguf_file_size(const ra_gguf *g);
/* SHA-256 of the bytes the handle reads (its mapping): the file that ran,
 * even if the path names another file by now. */
void ra_gguf_sha256(const ra_gguf *g, uint8_t out[32]);

size_t ra_gguf_n_kv(const ra_gguf *g);
const ra_gguf_kv *ra_gguf_kv_at(const ra_gguf *g, size_t i);
const ra_gguf_kv *ra_gguf_find(const ra_gguf *g, const char *key); /* NULL if absent */

/* Typed getters. RA_ERR_NOTFOUND when absent, RA_ERR_FORMAT on a type that
 * cannot represent the request (get_u64 accepts any integer type holding a
 * non-negative value; get_f32 accepts float32/float64). */
ra_status ra_gguf_get_u64(const ra_gguf *g, const char *key, uint64_t *out);
ra_status ra_gguf_get_u32(const ra_gguf *g, const char *key, uint32_t *out);
ra_status ra_gguf_get_f32(const ra_gguf *g, const char *key, float *out);
ra_status ra_gguf_get_bool(const ra_gguf *g, const char *key, bool *out);
ra_status ra_gguf_get_str(const ra_gguf *g, const char *key, const char **s, size_t *len); /* not NUL-terminated */

/* Arrays. ra_gguf_arr_str works for string arrays (O(1) per element: offsets
 * are indexed at open). ra_gguf_arr_i64 / arr_f64 convert numeric elements. */
ra_status ra_gguf_get_arr(const ra_gguf *g, const char *key, ra_gguf_vtype *elem_type, uint64_t *n);
ra_status ra_gguf_arr_str(const ra_gguf *g, const ra_gguf_kv *kv, uint64_t i, const char **s, size_t *len);
ra_status ra_gguf_arr_i64(const ra_gguf_kv *kv, uint64_t i, int64_t *out);
ra_status ra_gguf_arr_f64(const ra_gguf_kv *kv, uint64_t i, double *out);
/* Scalar value as text (for inspect): numbers, bools, strings (quoted,
 * escaped, cut at max_chars), arrays as "[type; n] first few...". */
ra_status ra_gguf_kv_to_text(const ra_gguf *g, const ra_gguf_kv *kv, char *out, size_t out_size, size_t max_items);

size_t ra_gguf_n_tensors(const ra_gguf *g);
const ra_gguf_tensor *ra_gguf_tensor_at(const ra_gguf *g, size_t i);
const ra_gguf_tensor *ra_gguf_find_tensor(const ra_gguf *g, const char *name); /* NULL if absent */

#endif
