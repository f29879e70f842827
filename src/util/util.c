#include "ra/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
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

/* Reads fd to the end, at most max bytes; name is for messages. */
static ra_status read_fd(int fd, const char *name, size_t max, uint8_t **data, size_t *len)
{
    ra_buf b = {0};
    uint8_t chunk[65536];
    ra_status s = RA_OK;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { s = ra_fail(RA_ERR_IO, "%s: read error: %s", name, strerror(errno)); break; }
        if (n == 0) break;
        if ((size_t)n > max - b.len) {
            s = ra_fail(RA_ERR_UNSUPPORTED, "%s: larger than the %zu-byte limit", name, max);
            break;
        }
        if ((s = ra_buf_append(&b, chunk, (size_t)n)) != RA_OK) break;
    }
    if (s == RA_OK) s = ra_buf_append(&b, "", 1);
    if (s != RA_OK) {
        ra_buf_free(&b);
        return s;
    }
    *data = b.data;
    *len = b.len - 1;
    return RA_OK;
}

ra_status ra_read_file_max(const char *path, size_t max, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ra_fail(RA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    ra_status s = read_fd(fd, path, max, data, len);
    close(fd);
    return s;
}

ra_status ra_read_file(const char *path, uint8_t **data, size_t *len) { return ra_read_file_max(path, RA_READ_MAX, data, len); }

bool ra_path_inside(const char *p)
{
    /* One spelling per file: no empty, "." or ".." component, so two names are two files. */
    for (const char *c = p;; c++) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return false;
        c += n;
        if (!*c) return true;
    }
}

/* Why dir/rel (the component `name` in dfd, a directory on the way or the
 * file itself) was refused, as an error; err is the open's errno, or 0. */
static ra_status refused(int dfd, const char *name, bool last, const char *dir, const char *rel, int err)
{
    struct stat st;
    if (err == ENOENT) return ra_fail(RA_ERR_NOTFOUND, "%s/%s: no such file", dir, rel);
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode))
            return ra_fail(RA_ERR_IO, "%s/%s: %s is a symbolic link; files inside a bundle must not be", dir, rel, name);
        if (err == ENOTDIR || err == 0)
            return ra_fail(RA_ERR_IO, "%s/%s: %s is not a %s", dir, rel, name, last ? "regular file" : "directory");
    }
    return ra_fail(RA_ERR_IO, "%s/%s: cannot open: %s", dir, rel, strerror(err));
}

ra_status ra_read_file_inside(const char *dir, const char *rel, size_t max, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    char buf[4096];
    if (!ra_path_inside(rel) || strlen(rel) >= sizeof buf)
        return ra_fail(RA_ERR_FORMAT, "%s: \"%s\" is not a path inside it", dir, rel);
    snprintf(buf, sizeof buf, "%s", rel);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ra_fail(RA_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    /* Walk down one component at a time, never following a link. */
    char *name = buf, *slash;
    while ((slash = strchr(name, '/')) != NULL) {
        *slash = 0;
        int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            ra_status s = refused(dfd, name, false, dir, rel, errno);
            close(dfd);
            return s;
        }
        close(dfd);
        dfd = sub;
        name = slash + 1;
    }
    /* O_PATH first: fstat without opening, so a FIFO cannot block and a device is never opened. */
    struct stat st, st2;
    int pfd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    ra_status s = RA_OK;
    if (pfd < 0) s = refused(dfd, name, true, dir, rel, errno);
    else if (fstat(pfd, &st) != 0) s = ra_fail(RA_ERR_IO, "%s/%s: %s", dir, rel, strerror(errno));
    else if (!S_ISREG(st.st_mode)) s = refused(dfd, name, true, dir, rel, 0);
    else if ((uint64_t)st.st_size > max)
        s = ra_fail(RA_ERR_UNSUPPORTED, "%s/%s: %lld bytes is over the %zu-byte limit", dir, rel, (long long)st.st_size, max);
    if (pfd >= 0) close(pfd);
    int fd = -1;
    if (s == RA_OK) {
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        /* The same file as the one just checked, or it was swapped in between. */
        if (fd < 0 || fstat(fd, &st2) != 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
            s = ra_fail(RA_ERR_IO, "%s/%s: changed while being opened", dir, rel);
    }
    close(dfd);
    if (s == RA_OK) {
        char name_full[4200];
        snprintf(name_full, sizeof name_full, "%s/%s", dir, rel);
        s = read_fd(fd, name_full, max, data, len);
    }
    if (fd >= 0) close(fd);
    return s;
}

ra_status ra_create_unique(const char *prefix, bool dir, char **path, int *fd)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    *path = NULL;
    if (fd) *fd = -1;
    size_t n = strlen(prefix);
    RA_TRY(ra_calloc(path, n + 9, 1));
    memcpy(*path, prefix, n);
    for (int attempt = 0; attempt < 100; attempt++) {
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) break;
        for (int i = 0; i < 8; i++) (*path)[n + (size_t)i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
        int r = dir ? mkdir(*path, 0755) : open(*path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (r >= 0) {
            if (fd) *fd = dir ? -1 : r;
            return RA_OK;
        }
        if (errno != EEXIST) break;
    }
    int e = errno;
    ra_status s = ra_fail(RA_ERR_IO, "%sXXXXXXXX: cannot create: %s", prefix, strerror(e));
    free(*path);
    *path = NULL;
    return s;
}

ra_status ra_write_file_atomic(const char *path, const void *data, size_t len)
{
    char prefix[4096];
    if (snprintf(prefix, sizeof prefix, "%s.tmp-", path) >= (int)sizeof prefix)
        return ra_fail(RA_ERR_USAGE, "%s: path too long", path);
    char *tmp;
    int fd;
    RA_TRY(ra_create_unique(prefix, false, &tmp, &fd));
    const uint8_t *p = data;
    size_t left = len;
    ra_status s = RA_OK;
    while (left > 0 && s == RA_OK) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) s = ra_fail(RA_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        else {
            p += w;
            left -= (size_t)w;
        }
    }
    if (s == RA_OK && fsync(fd) != 0) s = ra_fail(RA_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && s == RA_OK) s = ra_fail(RA_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (s == RA_OK && rename(tmp, path) != 0) s = ra_fail(RA_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    if (s != RA_OK) unlink(tmp);
    free(tmp);
    return s;
}

ra_status ra_rename_noreplace(const char *from, const char *to)
{
    int r = renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
    if (r != 0 && (errno == EINVAL || errno == ENOSYS)) r = rename(from, to); /* no RENAME_NOREPLACE here */
    if (r == 0) return RA_OK;
    if (errno == EEXIST || errno == ENOTEMPTY || errno == ENOTDIR || errno == EISDIR)
        return ra_fail(RA_ERR_USAGE, "%s already exists (it appeared while %s was being written); nothing was replaced", to, from);
    return ra_fail(RA_ERR_IO, "cannot rename %s to %s: %s", from, to, strerror(errno));
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
