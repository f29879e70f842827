/* Makes the hostile inputs of tests/hostile/run.sh at test time, so that only
 * small files are committed. It uses only the trace writer, SHA-256 and cJSON,
 * APIs that predate the fixes it tests, so it also builds against old trees.
 *
 *   gen bundle DIR [formats=N] [repeats=R] [name=S] [fmt0=S] [kernel=S] [data=plain|nan] [shared=1] [clone=1] [differ=1]
 *       a valid bundle of toy traces (4-token vocabulary, 2 sequences x 3 steps):
 *       N formats f0.. (the first named fmt0 when given) x R repeats. shared=1
 *       points every manifest entry at the first trace file and writes no other;
 *       clone=1 gives every entry its own copy of the first trace (another
 *       format and repeat in its header), cheap enough for thousands;
 *       differ=1 gives the last repeat of the first format other numbers.
 *       data=nan: f0 = {NaN, -0.5, -1, -inf}, f1 = f0 with token 2 at -1.5,
 *       f2 = f0 with token 0 at -2 (formats=3 for all three).
 *   gen bomb FILE GIB
 *       a trace whose small zstd frame expands to about GIB GiB of zeros,
 *       with a header and content hash that agree with it.
 *   gen gguf-esc FILE
 *       a small GGUF whose keys, tensor name and string value hold terminal
 *       escapes, a C1 control and bytes that are not UTF-8. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "ra/trace.h"
#include "ra/util.h"
#include "toy_manifest.h"

#define NV 4
#define DIE(...) do { fprintf(stderr, "gen: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)
#define OK(x) do { if ((x) != RA_OK) DIE("%s: %s", #x, ra_errmsg()); } while (0)

static const char *opt(int argc, char **argv, const char *key, const char *dflt)
{
    size_t n = strlen(key);
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], key, n) && argv[i][n] == '=') return argv[i] + n + 1;
    return dflt;
}

static void put(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) DIE("cannot write %s", path);
}

/* The log-prob vector of format f at a step. */
static void lp_of(unsigned f, bool nan_data, float *lp)
{
    if (nan_data) {
        const float base[NV] = {NAN, -0.5f, -1.0f, -INFINITY};
        memcpy(lp, base, sizeof base);
        if (f == 1) lp[2] = -1.5f;
        if (f == 2) lp[0] = -2.0f;
        return;
    }
    const float p[NV] = {-0.69314718f, -1.38629436f, -2.07944154f, -2.07944154f};
    memcpy(lp, p, sizeof p);
    lp[2] += 0.125f * (float)f;
}

/* Writes a trace with the data of format f; returns its file bytes. */
static uint8_t *base_trace(const char *path, const char *format, const char *kernel, uint32_t repeat, unsigned f,
                           bool nan_data, size_t *len, uint8_t digest[32])
{
    ra_trace_meta m = {.repeat = repeat, .n_vocab = NV, .top_k = 2};
    snprintf(m.format, sizeof m.format, "%s", format);
    snprintf(m.kernel, sizeof m.kernel, "%s", kernel);
    snprintf(m.mode, sizeof m.mode, "generate");
    float lp[NV];
    lp_of(f, nan_data, lp);
    ra_trace_writer *w;
    OK(ra_trace_writer_open(path, &m, &w));
    static const int32_t p0[] = {3, 1}, p1[] = {2};
    OK(ra_trace_begin_seq(w, 0, p0, 2));
    for (int k = 0; k < 3; k++) OK(ra_trace_add_step(w, 1, lp, true));
    OK(ra_trace_begin_seq(w, 1, p1, 1));
    for (int k = 0; k < 3; k++) OK(ra_trace_add_step(w, 1, lp, true));
    OK(ra_trace_writer_finish(w, digest));
    uint8_t *data;
    OK(ra_read_file(path, &data, len));
    return data;
}

/* docs/trace-format.md: format at 16 (32 bytes, zero-padded), repeat at 96;
 * content SHA-256 at 192 over [0, 192) and the payload. */
static void set_identity(uint8_t *file, size_t len, const char *format, uint32_t repeat)
{
    memset(file + 16, 0, 32);
    memcpy(file + 16, format, strlen(format));
    ra_put_le32(file + 96, repeat);
    ra_sha256_ctx *c;
    OK(ra_sha256_new(&c));
    ra_sha256_update(c, file, 192);
    ra_sha256_update(c, file + 224, len - 224);
    ra_sha256_final(c, file + 192);
}

static int cmd_bundle(const char *dir, int argc, char **argv)
{
    unsigned nf = (unsigned)atoi(opt(argc, argv, "formats", "2")), nr = (unsigned)atoi(opt(argc, argv, "repeats", "2"));
    const char *kernel = opt(argc, argv, "kernel", "cpu"), *fmt0 = opt(argc, argv, "fmt0", NULL);
    bool nan_data = !strcmp(opt(argc, argv, "data", "plain"), "nan"), shared = atoi(opt(argc, argv, "shared", "0"));
    bool differ = atoi(opt(argc, argv, "differ", "0")), clone = atoi(opt(argc, argv, "clone", "0"));
    uint8_t *first = NULL; /* clone=1: the first trace's bytes */
    size_t first_len = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/traces", dir);
    OK(ra_mkdirs(path));
    cJSON *traces, *m = toy_manifest(opt(argc, argv, "name", "toy"),
                                      "3333333333333333333333333333333333333333333333333333333333333333", &traces);
    char first_rel[512] = "";
    uint8_t first_sha[32], first_digest[32];
    for (unsigned f = 0; f < nf; f++) {
        char format[32];
        if (f == 0 && fmt0) snprintf(format, sizeof format, "%s", fmt0);
        else snprintf(format, sizeof format, "f%u", f);
        uint8_t digest[32], sha[32];
        size_t len = 0;
        uint8_t *bytes = NULL;
        char rel[512];
        for (unsigned r = 0; r < nr; r++) {
            snprintf(rel, sizeof rel, "traces/%s@%s.r%u.ratrace", format, kernel, r);
            if (shared && first_rel[0]) {
                snprintf(rel, sizeof rel, "%s", first_rel);
                memcpy(sha, first_sha, 32);
                memcpy(digest, first_digest, 32);
            } else {
                snprintf(path, sizeof path, "%s/%s", dir, rel);
                if (!bytes && clone && first) {
                    if (!(bytes = malloc(first_len))) DIE("out of memory");
                    memcpy(bytes, first, first_len);
                    len = first_len;
                    memcpy(digest, first_digest, 32);
                    set_identity(bytes, len, format, r);
                    put(path, bytes, len);
                } else if (!bytes) bytes = base_trace(path, format, kernel, r, f, nan_data, &len, digest);
                else if (differ && f == 0 && r + 1 == nr) {
                    free(bytes); /* the last repeat of the first format gets the second format's numbers */
                    bytes = base_trace(path, format, kernel, r, 1, nan_data, &len, digest);
                } else {
                    set_identity(bytes, len, format, r);
                    put(path, bytes, len); /* no fsync: thousands of files */
                }
                ra_sha256(bytes, len, sha);
                if (!first_rel[0]) {
                    snprintf(first_rel, sizeof first_rel, "%s", rel);
                    memcpy(first_sha, sha, 32);
                    memcpy(first_digest, digest, 32);
                    if (!(first = malloc(len))) DIE("out of memory");
                    memcpy(first, bytes, len);
                    first_len = len;
                }
            }
            toy_trace_entry(traces, format, kernel, r, rel, sha, digest, true);
        }
        free(bytes);
    }
    free(first);
    char *text = cJSON_PrintUnformatted(m);
    if (!text) DIE("out of memory");
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    put(path, text, strlen(text));
    free(text);
    cJSON_Delete(m);
    return 0;
}

/* One sequence, 16 steps a GiB, all full, n_vocab 2^24 (the largest a header
 * may say): raw = 44 + 41 a step + GIB GiB of zeros. */
static int cmd_bomb(const char *path, unsigned gib)
{
    const uint64_t nv = (uint64_t)1 << 24, steps = 16 * (uint64_t)(gib ? gib : 1);
    const uint64_t raw = 44 + steps * 41 + steps * 4 * nv;
    uint8_t hdr[224] = "RATRACE";
    ra_put_le32(hdr + 8, 1);
    ra_put_le32(hdr + 12, 224);
    memcpy(hdr + 16, "f32", 3);
    memcpy(hdr + 48, "cpu", 3);
    memcpy(hdr + 80, "generate", 8);
    ra_put_le32(hdr + 100, (uint32_t)nv);
    ra_put_le32(hdr + 108, 1);
    ra_put_le64(hdr + 120, steps);
    ra_put_le64(hdr + 136, steps);
    ra_put_le64(hdr + 152, raw);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 20);
    ZSTD_CCtx_setPledgedSrcSize(c, raw);
    static uint8_t zeros[1 << 20], out[1 << 16];
    ra_buf frame = {0};
    uint64_t left = raw;
    for (;;) {
        size_t n = left < sizeof zeros ? (size_t)left : sizeof zeros;
        left -= n;
        ZSTD_inBuffer in = {zeros, n, 0};
        ZSTD_EndDirective mode = left ? ZSTD_e_continue : ZSTD_e_end;
        size_t rem;
        do {
            ZSTD_outBuffer o = {out, sizeof out, 0};
            rem = ZSTD_compressStream2(c, &o, &in, mode);
            if (ZSTD_isError(rem)) DIE("zstd: %s", ZSTD_getErrorName(rem));
            OK(ra_buf_append(&frame, out, o.pos));
        } while (in.pos < in.size || (mode == ZSTD_e_end && rem));
        if (!left) break;
    }
    ZSTD_freeCCtx(c);
    ra_put_le64(hdr + 144, frame.len);
    ra_sha256_ctx *h;
    OK(ra_sha256_new(&h));
    ra_sha256_update(h, hdr, 192);
    ra_sha256_update(h, frame.data, frame.len);
    ra_sha256_final(h, hdr + 192);
    OK(ra_buf_append(&frame, "", 0));
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(hdr, 1, 224, f) != 224 || fwrite(frame.data, 1, frame.len, f) != frame.len || fclose(f))
        DIE("cannot write %s", path);
    ra_buf_free(&frame);
    return 0;
}

static void gguf_str(ra_buf *b, const char *s, size_t n)
{
    uint8_t len[8];
    ra_put_le64(len, n);
    OK(ra_buf_append(b, len, 8));
    OK(ra_buf_append(b, s, n));
}

static void gguf_u32(ra_buf *b, uint32_t v)
{
    uint8_t x[4];
    ra_put_le32(x, v);
    OK(ra_buf_append(b, x, 4));
}

static int cmd_gguf_esc(const char *path)
{
    static const char key[] = "general.name\x1b[2K\rResult: every expectation held.";
    static const char c1key[] = "c1.\xc2\x9b" "31m";
    static const char val[] = "bad \xff\xfe utf-8 and C1 \xc2\x9b" "2J";
    static const char tname[] = "blk.0\x1b]0;pwned\x07.weight";
    ra_buf b = {0};
    OK(ra_buf_append(&b, "GGUF", 4));
    gguf_u32(&b, 3);
    uint8_t n[8];
    ra_put_le64(n, 1); /* tensors */
    OK(ra_buf_append(&b, n, 8));
    ra_put_le64(n, 2); /* kvs */
    OK(ra_buf_append(&b, n, 8));
    gguf_str(&b, key, sizeof key - 1);
    gguf_u32(&b, 8); /* string */
    gguf_str(&b, val, sizeof val - 1);
    gguf_str(&b, c1key, sizeof c1key - 1);
    gguf_u32(&b, 4); /* uint32 */
    gguf_u32(&b, 7);
    gguf_str(&b, tname, sizeof tname - 1);
    gguf_u32(&b, 1);  /* n_dims */
    ra_put_le64(n, 8); /* ne[0] */
    OK(ra_buf_append(&b, n, 8));
    gguf_u32(&b, 0);  /* f32 */
    ra_put_le64(n, 0); /* offset */
    OK(ra_buf_append(&b, n, 8));
    while (b.len % 32) OK(ra_buf_append(&b, "", 1));
    static const float data[8] = {0};
    OK(ra_buf_append(&b, data, sizeof data));
    put(path, b.data, b.len);
    ra_buf_free(&b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "bundle")) return cmd_bundle(argv[2], argc - 3, argv + 3);
    if (argc == 4 && !strcmp(argv[1], "bomb")) return cmd_bomb(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "gguf-esc")) return cmd_gguf_esc(argv[2]);
    fprintf(stderr, "usage: gen bundle DIR [key=value...] | gen bomb FILE GIB | gen gguf-esc FILE\n");
    return 2;
}
