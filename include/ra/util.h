/* Small shared helpers: checked allocation, whole-file I/O, atomic writes,
 * SHA-256, hex, and 16-bit float conversions. */
#ifndef RA_UTIL_H
#define RA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ra/status.h"

/* calloc that records RA_ERR_NOMEM on failure; also fails (instead of
 * overflowing) when n * size does not fit in size_t. */
ra_status ra_calloc(void *out_ptr, size_t n, size_t size);
/* strdup with the same failure convention. */
ra_status ra_strdup(char **out, const char *s);

/* Read a whole file into a malloc'd buffer (NUL-terminated for convenience;
 * *len excludes the terminator). The path is the user's own choice, so
 * symlinks are followed and pipes are read, but never more than max bytes
 * (RA_ERR_UNSUPPORTED past it); ra_read_file allows RA_READ_MAX. */
#define RA_READ_MAX ((size_t)1 << 30)
ra_status ra_read_file(const char *path, uint8_t **data, size_t *len);
ra_status ra_read_file_max(const char *path, size_t max, uint8_t **data, size_t *len);

/* Reads dir/rel where dir may hold hostile content (a bundle): rel must be
 * relative, its components neither empty, "." nor ".." (ra_path_inside: one
 * spelling per file), no component of it may be a
 * symbolic link, and the file must be a regular file of at most max bytes;
 * opening never blocks and never opens a device. Errors name dir/rel:
 * RA_ERR_NOTFOUND when it does not exist, RA_ERR_UNSUPPORTED over max,
 * RA_ERR_IO for a link, a FIFO, a device or a directory. */
ra_status ra_read_file_inside(const char *dir, const char *rel, size_t max, uint8_t **data, size_t *len);
bool ra_path_inside(const char *rel);

/* Creates a new file or directory named prefix + 8 random characters that
 * did not exist before (O_CREAT|O_EXCL|O_NOFOLLOW, or mkdir): a planted file
 * or symlink can neither be reused nor written through. Files are opened
 * for writing (*fd), mode 0644 and directories 0755, less the umask. */
ra_status ra_create_unique(const char *prefix, bool dir, char **path, int *fd);

/* Write data to path atomically: a new temporary file (ra_create_unique) in
 * the same directory, fsync, then rename over path. A crash leaves either
 * the old file or the new; a symlink at path is replaced, not followed. */
ra_status ra_write_file_atomic(const char *path, const void *data, size_t len);

/* rename(2) that fails with RA_ERR_USAGE instead of replacing an existing
 * `to` (RENAME_NOREPLACE; where the filesystem lacks it, plain rename, which
 * can replace only an empty directory). */
ra_status ra_rename_noreplace(const char *from, const char *to);

/* mkdir -p */
ra_status ra_mkdirs(const char *path);
/* rm -rf of a directory we created (used to discard an incomplete bundle). */
ra_status ra_remove_tree(const char *path);
bool ra_path_exists(const char *path);
bool ra_is_dir(const char *path);

/* Maps a whole regular, non-empty file read-only; kind ("GGUF",
 * "safetensors") names what it should be in messages. ra_unmap_file undoes it. */
ra_status ra_map_file(const char *path, const char *kind, const uint8_t **base, size_t *size);
void ra_unmap_file(const uint8_t *base, size_t size);
/* The file variant of a reader whose memory variant takes a caller's buffer:
 * maps path and calls open(bytes, size, path, true, out), unmapping the bytes
 * when it fails (on success the reader owns the mapping). */
typedef ra_status (*ra_buffer_open_fn)(const uint8_t *data, size_t len, const char *name, bool mapped, void *out);
ra_status ra_open_mapped(const char *path, const char *kind, ra_buffer_open_fn open, void *out);

/* A sorted index of names (keys, tensors) for lookup by bsearch. Building it
 * fails on a duplicate, naming file, what ("tensor") and the name. */
typedef struct { const char *name; size_t index; } ra_name_index;
ra_status ra_name_index_build(const char *file, const char *what, size_t n, const char *(*name_of)(const void *items, size_t i),
                              const void *items, ra_name_index **out);
const ra_name_index *ra_name_index_find(const ra_name_index *idx, size_t n, const char *name); /* NULL if absent */

/* SHA-256 (OpenSSL EVP). */
typedef struct ra_sha256_ctx ra_sha256_ctx;
ra_status ra_sha256_new(ra_sha256_ctx **out);
void ra_sha256_update(ra_sha256_ctx *c, const void *data, size_t len);
void ra_sha256_final(ra_sha256_ctx *c, uint8_t out[32]); /* also frees c */
void ra_sha256(const void *data, size_t len, uint8_t out[32]);
ra_status ra_sha256_file(const char *path, uint8_t out[32]);

/* Lower-case hex: out must hold 2*n + 1 bytes. */
void ra_hex(const uint8_t *bytes, size_t n, char *out);
/* Parse exactly 2*n hex digits. */
ra_status ra_unhex(const char *hex, uint8_t *bytes, size_t n);

/* IEEE half and bfloat16. ra_f32_to_bf16 rounds to nearest, ties to even,
 * and keeps NaN a (quiet) NaN. */
float ra_f16_to_f32(uint16_t h);
uint16_t ra_f32_to_f16(float f);
float ra_bf16_to_f32(uint16_t b);
uint16_t ra_f32_to_bf16(float f);

/* The bits of a float and back (exact, whatever the value: NaN payloads too). */
static inline uint32_t ra_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float ra_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Little-endian loads from unaligned bytes (files are little-endian). */
static inline uint16_t ra_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t ra_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t ra_le64(const uint8_t *p) { return (uint64_t)ra_le32(p) | ((uint64_t)ra_le32(p + 4) << 32); }
static inline void ra_put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void ra_put_le64(uint8_t *p, uint64_t v) { ra_put_le32(p, (uint32_t)v); ra_put_le32(p + 4, (uint32_t)(v >> 32)); }

/* A growable byte buffer, for building files in memory before an atomic write. */
typedef struct { uint8_t *data; size_t len, cap; } ra_buf;
ra_status ra_buf_append(ra_buf *b, const void *data, size_t len);
ra_status ra_buf_printf(ra_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ra_buf_free(ra_buf *b);

/* Monotonic seconds, for progress and timings. */
double ra_now(void);

#endif
