/* Writes the seed corpus of tests/fuzz/fuzz_trace.c: two small valid traces and
 * the first again in the harness's "RAWTRACE" form (payload uncompressed).
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude tools/gen_trace_corpus.c src/audit/trace.c \
 *      src/util/util.c src/util/status.c -lzstd -lcrypto -lm -o /tmp/gen_trace_corpus
 *   /tmp/gen_trace_corpus tests/fuzz/corpus/fuzz_trace */
#include "ra/trace.h"
#include "ra/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#define OK(x) do { if ((x) != RA_OK) { fprintf(stderr, "%s: %s\n", #x, ra_errmsg()); exit(1); } } while (0)

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: %s DIR\n", argv[0]); return 2; }
    char mixed[4096], full[4096], raw[4096];
    snprintf(mixed, sizeof mixed, "%s/mixed.ratrace", argv[1]);
    snprintf(full, sizeof full, "%s/full.ratrace", argv[1]);
    snprintf(raw, sizeof raw, "%s/mixed.raw", argv[1]);
    ra_trace_writer *w;

    /* n_vocab 6, top_k 3; full and partial steps, NaN and -inf, an empty sequence. */
    ra_trace_meta m = {.format = "q4_1", .kernel = "cpu", .mode = "generate", .repeat = 1, .n_vocab = 6, .top_k = 3};
    const float a[6] = {-1.5f, -0.25f, -0.25f, -3.0f, -2.0f, -4.0f};
    const float b[6] = {-0.5f, NAN, -1.0f, -INFINITY, -0.75f, -1.0f};
    OK(ra_trace_writer_open(mixed, &m, &w));
    OK(ra_trace_begin_seq(w, 0, (const int32_t[]){1, 2, 5}, 3));
    OK(ra_trace_add_step(w, 2, a, true));
    OK(ra_trace_add_step(w, 0, b, false));
    OK(ra_trace_add_step(w, 5, b, true));
    OK(ra_trace_begin_seq(w, 1, NULL, 0));
    OK(ra_trace_begin_seq(w, 2, (const int32_t[]){4}, 1));
    OK(ra_trace_add_step(w, 3, a, false));
    OK(ra_trace_writer_finish(w, NULL));

    /* n_vocab 3 = top_k, every step full (so the fuzzer's rewrite check runs), a first sequence without steps. */
    ra_trace_meta m2 = {.format = "f32", .kernel = "cpu", .mode = "score", .repeat = 0, .n_vocab = 3, .top_k = 3};
    const float c[3] = {-1.0f, -1.0f, -0.5f};
    OK(ra_trace_writer_open(full, &m2, &w));
    OK(ra_trace_begin_seq(w, 0, (const int32_t[]){0}, 1));
    OK(ra_trace_begin_seq(w, 1, (const int32_t[]){2, 1}, 2));
    OK(ra_trace_add_step(w, 1, c, true));
    OK(ra_trace_add_step(w, 2, a, true));
    OK(ra_trace_writer_finish(w, NULL));

    /* RAWTRACE: the mixed trace's header with the uncompressed payload after it. */
    uint8_t *f;
    size_t len;
    OK(ra_read_file(mixed, &f, &len));
    uint64_t n = ra_le64(f + 152);
    uint8_t *out = malloc(224 + n);
    if (!out || ZSTD_decompress(out + 224, n, f + 224, len - 224) != n) return 1;
    memcpy(out, f, 224);
    memcpy(out, "RAWTRACE", 8);
    OK(ra_write_file_atomic(raw, out, 224 + n));
    free(out);
    free(f);
    return 0;
}
