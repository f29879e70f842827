#include "ra/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

ra_status ra_calloc(void *out_ptr, size_t n, size_t size)
{
    void **out = out_ptr;
    *out = NULL;
    if (size && n > SIZE_MAX / size)
        return ra_fail(RA_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
    *out = calloc(n ? n : 1, size ? size : 1);
    if (!*out) return ra_fail(RA_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", n, size);
    return RA_OK;
}

ra_status ra_strdup(char **out, const char *s)
{
    size_t n = strlen(s) + 1;
    RA_TRY(ra_calloc(out, n, 1));
    memcpy(*out, s, n);
    return RA_OK;
}

ra_status ra_read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ra_fail(RA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    ra_buf b = {0};
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (ra_buf_append(&b, chunk, n) != RA_OK) { fclose(f); ra_buf_free(&b); return RA_ERR_NOMEM; }
    }
    int err = ferror(f);
    fclose(f);
    if (err) { ra_buf_free(&b); return ra_fail(RA_ERR_IO, "%s: read error", path); }
    if (ra_buf_append(&b, "", 1) != RA_OK) { ra_buf_free(&b); return RA_ERR_NOMEM; }
    *data = b.data;
    *len = b.len - 1;
    return RA_OK;
}

ra_status ra_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return ra_fail(RA_ERR_USAGE, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return ra_fail(RA_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ra_fail(RA_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return ra_fail(RA_ERR_IO, "%s: fsync/close failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ra_fail(RA_ERR_IO, "%s: rename failed: %s", path, strerror(e));
    }
    return RA_OK;
}

ra_status ra_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return ra_fail(RA_ERR_USAGE, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return ra_fail(RA_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        buf[i] = c;
    }
    return RA_OK;
}

ra_status ra_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return RA_OK;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return ra_fail(RA_ERR_IO, "%s: cannot open directory", path);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char child[4096];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            ra_status s = ra_remove_tree(child);
            if (s != RA_OK) { closedir(d); return s; }
        }
        closedir(d);
        if (rmdir(path) != 0) return ra_fail(RA_ERR_IO, "%s: rmdir failed: %s", path, strerror(errno));
    } else if (unlink(path) != 0) {
        return ra_fail(RA_ERR_IO, "%s: unlink failed: %s", path, strerror(errno));
    }
    return RA_OK;
}

bool ra_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool ra_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

ra_status ra_map_file(const char *path, const char *kind, const uint8_t **base, size_t *size)
{
    *base = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ra_fail(RA_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    ra_status s = RA_OK;
    if (fstat(fd, &st) != 0) s = ra_fail(RA_ERR_IO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) s = ra_fail(RA_ERR_IO, "%s: not a regular file", path);
    else if (st.st_size == 0) s = ra_fail(RA_ERR_FORMAT, "%s: empty file, not a %s file", path, kind);
    else if ((uint64_t)st.st_size > SIZE_MAX) s = ra_fail(RA_ERR_IO, "%s: too large to map", path);
    if (s != RA_OK) {
        close(fd);
        return s;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return ra_fail(RA_ERR_IO, "%s: mmap: %s", path, strerror(e));
    *base = map;
    *size = (size_t)st.st_size;
    return RA_OK;
}

void ra_unmap_file(const uint8_t *base, size_t size)
{
    if (base) munmap((void *)base, size);
}

ra_status ra_open_mapped(const char *path, const char *kind, ra_buffer_open_fn open, void *out)
{
    const uint8_t *map;
    size_t size;
    RA_TRY(ra_map_file(path, kind, &map, &size));
    ra_status s = open(map, size, path, true, out);
    if (s != RA_OK) ra_unmap_file(map, size);
    return s;
}

/* Length of the valid UTF-8 sequence at s (strict: no overlongs, surrogates
 * or code points past U+10FFFF), or 0 when it is not one. */
size_t ra_utf8_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

static int cmp_name_index(const void *a, const void *b)
{
    return strcmp(((const ra_name_index *)a)->name, ((const ra_name_index *)b)->name);
}

ra_status ra_name_index_build(const char *file, const char *what, size_t n, const char *(*name_of)(const void *, size_t),
                              const void *items, ra_name_index **out)
{
    RA_TRY(ra_calloc(out, n ? n : 1, sizeof **out));
    for (size_t i = 0; i < n; i++) (*out)[i] = (ra_name_index){name_of(items, i), i};
    qsort(*out, n, sizeof **out, cmp_name_index);
    for (size_t i = 1; i < n; i++)
        if (!strcmp((*out)[i - 1].name, (*out)[i].name))
            return ra_fail(RA_ERR_FORMAT, "%s: duplicate %s '%s'", file, what, (*out)[i].name);
    return RA_OK;
}

const ra_name_index *ra_name_index_find(const ra_name_index *idx, size_t n, const char *name)
{
    if (!idx || !name) return NULL;
    ra_name_index key = {name, 0};
    return bsearch(&key, idx, n, sizeof *idx, cmp_name_index);
}

struct ra_sha256_ctx { EVP_MD_CTX *md; };

ra_status ra_sha256_new(ra_sha256_ctx **out)
{
    RA_TRY(ra_calloc(out, 1, sizeof **out));
    (*out)->md = EVP_MD_CTX_new();
    if (!(*out)->md || EVP_DigestInit_ex((*out)->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free((*out)->md);
        free(*out);
        *out = NULL;
        return ra_fail(RA_ERR_INTERNAL, "OpenSSL SHA-256 initialisation failed");
    }
    return RA_OK;
}

void ra_sha256_update(ra_sha256_ctx *c, const void *data, size_t len) { EVP_DigestUpdate(c->md, data, len); }

void ra_sha256_final(ra_sha256_ctx *c, uint8_t out[32])
{
    unsigned int n = 32;
    EVP_DigestFinal_ex(c->md, out, &n);
    EVP_MD_CTX_free(c->md);
    free(c);
}

void ra_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

ra_status ra_sha256_file(const char *path, uint8_t out[32])
{
    FILE *f = fopen(path, "rb");
    if (!f) return ra_fail(RA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    ra_sha256_ctx *c;
    ra_status s = ra_sha256_new(&c);
    if (s != RA_OK) { fclose(f); return s; }
    static _Thread_local uint8_t chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ra_sha256_update(c, chunk, n);
    int err = ferror(f);
    fclose(f);
    ra_sha256_final(c, out);
    return err ? ra_fail(RA_ERR_IO, "%s: read error", path) : RA_OK;
}

void ra_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

ra_status ra_unhex(const char *hex, uint8_t *bytes, size_t n)
{
    if (!hex || strlen(hex) != 2 * n) return ra_fail(RA_ERR_FORMAT, "expected %zu hex digits", 2 * n);
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return ra_fail(RA_ERR_FORMAT, "bad hex digit in '%s'", hex);
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return RA_OK;
}


float ra_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    if (exp == 31) return ra_bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {                                                   /* zero / subnormal: man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return ra_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t ra_f32_to_f16(float f)
{
    uint32_t u = ra_f32_bits(f), sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffff;
    if (a > 0x7f800000) return (uint16_t)(sign | 0x7e00);           /* nan */
    if (a >= 0x477ff000) return (uint16_t)(sign | 0x7c00);          /* overflow to inf (after rounding) */
    if (a < 0x38800000) {                                           /* subnormal half or zero */
        float v = ra_bits_f32(a) * 16777216.0f;                        /* exact: scale by 2^24 */
        uint32_t m = (uint32_t)v;
        float frac = v - (float)m;
        if (frac > 0.5f || (frac == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t r = a + 0x0fff + ((a >> 13) & 1);                     /* round to nearest even */
    return (uint16_t)(sign | ((r - 0x38000000) >> 13));
}

float ra_bf16_to_f32(uint16_t b) { return ra_bits_f32((uint32_t)b << 16); }

uint16_t ra_f32_to_bf16(float f)
{
    uint32_t u = ra_f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static ra_status buf_reserve(ra_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len) return ra_fail(RA_ERR_NOMEM, "buffer size overflow");
    if (b->len + extra <= b->cap) return RA_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap = cap > SIZE_MAX / 2 ? b->len + extra : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return ra_fail(RA_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return RA_OK;
}

ra_status ra_buf_append(ra_buf *b, const void *data, size_t len)
{
    RA_TRY(buf_reserve(b, len));
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    return RA_OK;
}

ra_status ra_buf_printf(ra_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return ra_fail(RA_ERR_INTERNAL, "format error");
    RA_TRY(buf_reserve(b, (size_t)n + 1));
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return RA_OK;
}

void ra_buf_free(ra_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

double ra_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
