/* The safetensors reader on hand-built files: a valid file read back exactly,
 * the writer's output read back, and every malformed header refused with a
 * message that names the file and the tensor. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "ra/safetensors.h"
#include "ra/util.h"

/* 8-byte length, the header, then data_len bytes 0, 1, 2, ... */
static uint8_t *build(const char *header, size_t data_len, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    uint8_t *b = malloc(*len);
    ra_put_le64(b, h);
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (uint8_t)i;
    return b;
}

/* Opening must fail with want, and the message must contain each of the words. */
static void expect_fail(const char *what, const uint8_t *buf, size_t len, ra_status want, const char *w1, const char *w2)
{
    ra_st_file *f = NULL;
    ra_status s = ra_safetensors_open_memory(buf, len, "bad.safetensors", &f);
    CHECK_MSG(s == want, "%s: got %s (%s), want %s", what, ra_status_name(s), ra_errmsg(), ra_status_name(want));
    CHECK_MSG(f == NULL, "%s: a handle came back", what);
    CHECK_MSG(strstr(ra_errmsg(), "bad.safetensors") != NULL, "%s: message does not name the file: %s", what, ra_errmsg());
    if (w1) CHECK_MSG(strstr(ra_errmsg(), w1) != NULL, "%s: message lacks '%s': %s", what, w1, ra_errmsg());
    if (w2) CHECK_MSG(strstr(ra_errmsg(), w2) != NULL, "%s: message lacks '%s': %s", what, w2, ra_errmsg());
    ra_safetensors_close(f);
}

static void expect_header_fail(const char *what, const char *header, size_t data_len, ra_status want, const char *w1,
                               const char *w2)
{
    size_t len;
    uint8_t *b = build(header, data_len, &len);
    expect_fail(what, b, len, want, w1, w2);
    free(b);
}

static void test_valid(void)
{
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]},"
                    "\"z\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[40,40]},"
                    "\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[40,42]}}   ";
    size_t len;
    uint8_t *b = build(h, 42, &len);
    ra_st_file *f = NULL;
    CHECK_OK(ra_safetensors_open_memory(b, len, "ok.safetensors", &f));
    if (f) {
        CHECK(ra_safetensors_n_tensors(f) == 5);
        CHECK(ra_safetensors_data_offset(f) == 8 + strlen(h));
        const ra_st_info *a = ra_safetensors_find(f, "a"), *bt = ra_safetensors_find(f, "b");
        CHECK(a && a->type == RA_ST_F32 && a->n_dims == 2 && a->shape[0] == 2 && a->shape[1] == 3);
        CHECK(a && a->data == b + 8 + strlen(h) && a->end - a->begin == 24);
        CHECK(bt && bt->type == RA_ST_BF16 && bt->data[0] == 24);
        CHECK(ra_safetensors_tensor_at(f, 0) == a); /* data order */
        const ra_st_info *sc = ra_safetensors_find(f, "s");
        CHECK(sc && sc->n_dims == 0 && sc->end - sc->begin == 8);
        CHECK(ra_safetensors_find(f, "nope") == NULL);
        CHECK(ra_safetensors_n_meta(f) == 1);
        CHECK(ra_safetensors_meta(f, "format") && !strcmp(ra_safetensors_meta(f, "format"), "pt"));
    }
    ra_safetensors_close(f);
    free(b);
}

static void test_writer_round_trip(void)
{
    char path[] = "/tmp/ra_st_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    float w[6] = {1, -2, 3.5f, 0, 1e-9f, -0.0f};
    uint16_t v[3] = {0x3f80, 0x4000, 0xbf80};
    ra_st_tensor t[2] = {{"model.w", "F32", 2, {2, 3}, w, sizeof w}, {"model.v", "BF16", 1, {3}, v, sizeof v}};
    const char *k[] = {"format"}, *val[] = {"pt"};
    CHECK_OK(ra_safetensors_write(path, t, 2, k, val, 1));
    ra_st_file *f = NULL;
    CHECK_OK(ra_safetensors_open(path, &f));
    if (f) {
        const ra_st_info *a = ra_safetensors_find(f, "model.w"), *b = ra_safetensors_find(f, "model.v");
        CHECK(a && a->type == RA_ST_F32 && !memcmp(a->data, w, sizeof w));
        CHECK(b && b->type == RA_ST_BF16 && !memcmp(b->data, v, sizeof v));
        CHECK(ra_safetensors_data_offset(f) % 8 == 0);
    }
    ra_safetensors_close(f);
    unlink(path);
}

static void test_malformed(void)
{
    uint8_t tiny[5] = {0};
    expect_fail("shorter than the length", tiny, sizeof tiny, RA_ERR_FORMAT, "too short", NULL);
    uint8_t absurd[16] = {0};
    ra_put_le64(absurd, 1ull << 40);
    expect_fail("absurd header length", absurd, sizeof absurd, RA_ERR_FORMAT, "absurd", "byte 0");
    ra_put_le64(absurd, 9);
    expect_fail("header past the end", absurd, sizeof absurd, RA_ERR_FORMAT, "past the end", NULL);

    static const struct {
        const char *what, *header;
        size_t data_len;
        ra_status want;
        const char *w1, *w2;
    } cases[] = {
        {"not JSON", "{\"a\":", 0, RA_ERR_FORMAT, "not valid JSON", NULL},
        {"not an object", "[1,2]", 0, RA_ERR_FORMAT, "expected an object", NULL},
        {"garbage after", "{} x", 0, RA_ERR_FORMAT, "after the JSON", NULL},
        {"not UTF-8", "{\"\xff\":1}", 0, RA_ERR_FORMAT, "not UTF-8", "byte 10"},
        {"unknown dtype",
         "{\"w\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, RA_ERR_FORMAT, "tensor w", "F99"},
        {"unsupported dtype",
         "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
         8, RA_ERR_UNSUPPORTED, "tensor w", "F64"},
        {"dtype not a string",
         "{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, RA_ERR_FORMAT, "tensor w", "dtype"},
        {"size mismatch",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}",
         12, RA_ERR_FORMAT, "tensor w", "need 16"},
        {"offset past the end",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         8, RA_ERR_FORMAT, "tensor w", "past the end"},
        {"offsets backwards",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}",
         8, RA_ERR_FORMAT, "tensor w", "backwards"},
        {"overlap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, RA_ERR_FORMAT, "tensor b", "overlaps tensor a"},
        {"hole",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, RA_ERR_FORMAT, "tensor b", "hole"},
        {"bytes after the last tensor",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         6, RA_ERR_FORMAT, "covered exactly", NULL},
        {"duplicate name",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, RA_ERR_FORMAT, "duplicate key \"a\"", NULL},
        {"metadata not strings", "{\"__metadata__\":{\"k\":1}}", 0, RA_ERR_FORMAT, "__metadata__", "\"k\""},
        {"metadata not an object", "{\"__metadata__\":[]}", 0, RA_ERR_FORMAT, "__metadata__", NULL},
        {"shape not an array",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}",
         16, RA_ERR_FORMAT, "tensor w", "shape"},
        {"negative dim",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
         4, RA_ERR_FORMAT, "tensor w", "shape[0]"},
        {"fractional dim",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
         4, RA_ERR_FORMAT, "tensor w", "shape[0]"},
        {"huge dim",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}",
         4, RA_ERR_FORMAT, "tensor w", "shape[0]"},
        {"overflowing shape",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
         4, RA_ERR_FORMAT, "tensor w", "overflows"},
        {"too many dims",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
         1, RA_ERR_FORMAT, "tensor w", "shape"},
        {"three offsets",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}",
         1, RA_ERR_FORMAT, "tensor w", "data_offsets"},
        {"no offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, RA_ERR_FORMAT, "tensor w", "data_offsets"},
        {"tensor not an object", "{\"w\":[1]}", 0, RA_ERR_FORMAT, "tensor w", NULL},
        {"control character in a name",
         "{\"a\\u001b[2J\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
         1, RA_ERR_FORMAT, "control character", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_header_fail(cases[i].what, cases[i].header, cases[i].data_len, cases[i].want, cases[i].w1, cases[i].w2);

    ra_st_file *f = NULL;
    CHECK_STATUS(ra_safetensors_open("/nonexistent/x.safetensors", &f), RA_ERR_IO);
    CHECK(strstr(ra_errmsg(), "/nonexistent/x.safetensors") != NULL);
}

int main(void)
{
    test_valid();
    test_writer_round_trip();
    test_malformed();
    CHECK_DONE();
}
