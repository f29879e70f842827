/* GGUF reader and GGML dequantizers: hand-computed blocks, an in-memory
 * writer whose output must parse back exactly, malformed files that must fail
 * cleanly, and a golden file written by the Python gguf package. */
#include "check.h"
#include "ra/ggml_types.h"
#include "ra/gguf.h"
#include "ra/util.h"

#include <stdlib.h>

/* ---------- bit-exact float comparison ---------- */

static bool same_bits(float a, float b) { return !memcmp(&a, &b, sizeof a); }

static bool same_floats(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!same_bits(a[i], b[i])) {
            fprintf(stderr, "  element %zu: %.9g vs %.9g\n", i, a[i], b[i]);
            return false;
        }
    return true;
}

/* ---------- hand-computed dequantization ---------- */

static void test_type_table(void)
{
    const ra_ggml_type_info *t = ra_ggml_type_info_of(RA_GGML_Q4_1);
    CHECK(t && t->block_elems == 32 && t->block_bytes == 20 && t->dequant && !strcmp(t->name, "q4_1"));
    t = ra_ggml_type_info_of(RA_GGML_Q6_K);
    CHECK(t && t->block_elems == 256 && t->block_bytes == 210);
    t = ra_ggml_type_info_of(RA_GGML_Q5_K);
    CHECK(t && t->block_bytes == 176 && !t->dequant);
    CHECK(ra_ggml_type_info_of(4) == NULL); /* ids 4 and 5 were removed from ggml */
    CHECK(ra_ggml_type_info_of(99) == NULL);

    uint64_t bytes = 0;
    CHECK_OK(ra_ggml_row_bytes(RA_GGML_Q4_1, 576, &bytes));
    CHECK(bytes == 18 * 20);
    CHECK_OK(ra_ggml_row_bytes(RA_GGML_F32, 7, &bytes));
    CHECK(bytes == 28);
    CHECK_STATUS(ra_ggml_row_bytes(RA_GGML_Q8_0, 33, &bytes), RA_ERR_FORMAT);
    CHECK_STATUS(ra_ggml_row_bytes(99, 32, &bytes), RA_ERR_FORMAT);
    CHECK_STATUS(ra_ggml_row_bytes(RA_GGML_F64, UINT64_MAX / 4, &bytes), RA_ERR_FORMAT);

    float out[32];
    uint8_t zero[256] = { 0 };
    CHECK_STATUS(ra_ggml_dequantize(RA_GGML_Q5_1, zero, out, 32), RA_ERR_UNSUPPORTED); /* a type we do not decode */
    CHECK(strstr(ra_errmsg(), "q5_1") != NULL);
    CHECK_STATUS(ra_ggml_dequantize(99, zero, out, 32), RA_ERR_UNSUPPORTED);
    CHECK_STATUS(ra_ggml_dequantize(RA_GGML_Q4_0, zero, out, 31), RA_ERR_FORMAT);
}

static void test_dequant_blocks(void)
{
    float y[32];

    /* Q4_0, d = 0x3800 = 0.5; byte j = j (low nibble) | (15 - j) << 4.
     * x[j] = (j - 8) * 0.5, x[j + 16] = (15 - j - 8) * 0.5 = (7 - j) * 0.5:
     * x[0] = -4, x[8] = 0, x[15] = 3.5, x[16] = 3.5, x[31] = -4. */
    uint8_t q40[18] = { 0x00, 0x38 };
    for (int j = 0; j < 16; j++) q40[2 + j] = (uint8_t)(j | (15 - j) << 4);
    CHECK_OK(ra_ggml_dequantize(RA_GGML_Q4_0, q40, y, 32));
    bool ok = true;
    for (int j = 0; j < 16; j++) ok &= y[j] == (float)(j - 8) * 0.5f && y[j + 16] == (float)(7 - j) * 0.5f;
    CHECK(ok);
    CHECK(y[0] == -4.0f && y[8] == 0.0f && y[15] == 3.5f && y[16] == 3.5f && y[31] == -4.0f);

    /* Q4_1, d = 0x3400 = 0.25, m = 0xbc00 = -1; same nibbles.
     * x[j] = j * 0.25 - 1, x[j + 16] = (15 - j) * 0.25 - 1:
     * x[0] = -1, x[4] = 0, x[15] = 2.75, x[16] = 2.75, x[31] = -1. */
    uint8_t q41[20] = { 0x00, 0x34, 0x00, 0xbc };
    for (int j = 0; j < 16; j++) q41[4 + j] = (uint8_t)(j | (15 - j) << 4);
    CHECK_OK(ra_ggml_dequantize(RA_GGML_Q4_1, q41, y, 32));
    CHECK(y[0] == -1.0f && y[4] == 0.0f && y[15] == 2.75f && y[16] == 2.75f && y[31] == -1.0f && y[17] == 2.5f);

    /* Q4_1 rounding order: d = 0x3555 = 0.333251953125, m = 0x3c00 = 1, q = 3:
     * 3 * d = 0.999755859375 (exact in f32), + 1 = 1.999755859375. */
    uint8_t q41b[20] = { 0x55, 0x35, 0x00, 0x3c };
    memset(q41b + 4, 0x33, 16);
    CHECK_OK(ra_ggml_dequantize(RA_GGML_Q4_1, q41b, y, 32));
    CHECK(y[0] == 1.999755859375f && y[31] == 1.999755859375f);

    /* Q8_0, d = 0x4000 = 2; q[j] = j - 16, q[31] patched to -128:
     * x[j] = (j - 16) * 2, x[0] = -32, x[16] = 0, x[31] = -256. */
    uint8_t q80[34] = { 0x00, 0x40 };
    for (int j = 0; j < 32; j++) q80[2 + j] = (uint8_t)(int8_t)(j - 16);
    q80[2 + 31] = 0x80;
    CHECK_OK(ra_ggml_dequantize(RA_GGML_Q8_0, q80, y, 32));
    CHECK(y[0] == -32.0f && y[16] == 0.0f && y[17] == 2.0f && y[30] == 28.0f && y[31] == -256.0f);

    /* F16 (little-endian): 1, -2, 65504, 2^-24, 1/3 rounded = 0.333251953125, -0 */
    uint8_t f16[12] = { 0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x55, 0x35, 0x00, 0x80 };
    CHECK_OK(ra_ggml_dequantize(RA_GGML_F16, f16, y, 6));
    CHECK(y[0] == 1.0f && y[1] == -2.0f && y[2] == 65504.0f && y[3] == 5.9604644775390625e-8f &&
          y[4] == 0.333251953125f && y[5] == 0.0f && signbit(y[5]));

    /* BF16: 0x3f80 = 1, 0xc040 = -3, 0x4049 = 3.140625, 0x0001 = 2^-133 (f32 subnormal) */
    uint8_t bf16[8] = { 0x80, 0x3f, 0x40, 0xc0, 0x49, 0x40, 0x01, 0x00 };
    CHECK_OK(ra_ggml_dequantize(RA_GGML_BF16, bf16, y, 4));
    CHECK(y[0] == 1.0f && y[1] == -3.0f && y[2] == 3.140625f && y[3] == ldexpf(1.0f, -133));

    /* F32 passes through bit for bit, NaN payloads included */
    uint8_t f32[8] = { 0x01, 0x00, 0xc0, 0x7f, 0x00, 0x00, 0x80, 0xbf };
    CHECK_OK(ra_ggml_dequantize(RA_GGML_F32, f32, y, 2));
    uint32_t bits;
    memcpy(&bits, &y[0], 4);
    CHECK(bits == 0x7fc00001u && y[1] == -1.0f);
}

/* ggml's reference quantizers: the hand-made q4 blocks above come back bit
 * for bit from their own values (their scales are the rule's), and a q8_0
 * block by hand. llama.cpp's own output is tests/e2e/test_quant_derive.c. */
static void test_quant_blocks(void)
{
    float x[32];
    uint8_t q40[18] = { 0x00, 0x38 }, q41[20] = { 0x00, 0x34, 0x00, 0xbc }, out[34];
    for (int j = 0; j < 16; j++) q40[2 + j] = q41[4 + j] = (uint8_t)(j | (15 - j) << 4);
    CHECK_OK(ra_ggml_dequantize(RA_GGML_Q4_0, q40, x, 32));
    CHECK_OK(ra_ggml_quantize(RA_GGML_Q4_0, x, out, 32));
    CHECK(!memcmp(out, q40, sizeof q40));
    CHECK_OK(ra_ggml_dequantize(RA_GGML_Q4_1, q41, x, 32));
    CHECK_OK(ra_ggml_quantize(RA_GGML_Q4_1, x, out, 32));
    CHECK(!memcmp(out, q41, sizeof q41));

    /* q8_0 of x[j] = j - 16: d = 16/127, q = roundf(x * (1/d)), 1/d ~ 7.9375. */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    CHECK_OK(ra_ggml_quantize(RA_GGML_Q8_0, x, out, 32));
    CHECK(ra_f16_to_f32((uint16_t)(out[0] | out[1] << 8)) == ra_f16_to_f32(ra_f32_to_f16(16.0f / 127.0f)));
    CHECK((int8_t)out[2] == -127 && out[2 + 16] == 0 && out[2 + 17] == 8 && out[2 + 31] == 119);

    CHECK_STATUS(ra_ggml_quantize(RA_GGML_Q5_1, x, out, 32), RA_ERR_UNSUPPORTED); /* a type we do not write */
    CHECK_STATUS(ra_ggml_quantize(RA_GGML_Q8_0, x, out, 31), RA_ERR_FORMAT);
}

/* ---------- an in-memory GGUF writer ---------- */

typedef struct {
    uint8_t data[4096];
    size_t len;
} wbuf;

static void put(wbuf *b, const void *p, size_t n)
{
    if (b->len + n > sizeof b->data) abort(); /* test bug, not a parser case */
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
static void put_u8(wbuf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(wbuf *b, uint16_t v) { uint8_t p[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; put(b, p, 2); }
static void put_u32(wbuf *b, uint32_t v) { uint8_t p[4]; ra_put_le32(p, v); put(b, p, 4); }
static void put_u64(wbuf *b, uint64_t v) { uint8_t p[8]; ra_put_le64(p, v); put(b, p, 8); }
static void put_f32(wbuf *b, float f) { uint32_t u; memcpy(&u, &f, 4); put_u32(b, u); }
static void put_f64(wbuf *b, double d) { uint64_t u; memcpy(&u, &d, 8); put_u64(b, u); }
static void put_str(wbuf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void put_key(wbuf *b, const char *key, uint32_t type) { put_str(b, key); put_u32(b, type); }
static void pad_to(wbuf *b, size_t align) { while (b->len % align) put_u8(b, 0); }

enum { N_TENSORS = 3 };

/* Where the writer put the fields that the malformed cases patch. */
typedef struct {
    size_t n_tensors, n_kv, align_value, u8_key, str_len, strs_count, nums_count, bool_value;
    size_t t_name[N_TENSORS], t_ndims[N_TENSORS], t_ne[N_TENSORS], t_type[N_TENSORS], t_offset[N_TENSORS];
    size_t data_offset;
} layout;

static const char *const test_strs[] = { "a", "bc", "", "tab\there" };
static const int16_t test_nums[] = { 1, -2, 300 };
static const float test_f32_tensor[8] = { 1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f, 65504.0f, -7.0f };

/* A valid v3 file, alignment 32: 16 kvs of every type, then tensors
 *   w.f32 [8] f32 at 0 (32 bytes), w.q8 [32, 2] q8_0 at 32 (68 bytes),
 *   w.q4 [64] q4_1 at 128 (40 bytes). */
static void build_valid(wbuf *b, layout *at)
{
    memset(b, 0, sizeof *b);
    put(b, "GGUF", 4);
    put_u32(b, 3);
    at->n_tensors = b->len;
    put_u64(b, N_TENSORS);
    at->n_kv = b->len;
    put_u64(b, 16);

    put_key(b, "general.alignment", RA_GGUF_UINT32);
    at->align_value = b->len;
    put_u32(b, 32);
    at->u8_key = b->len + 8 + 5; /* the 'u' of "test.u8" */
    put_key(b, "test.u8", RA_GGUF_UINT8);
    put_u8(b, 200);
    put_key(b, "test.i8", RA_GGUF_INT8);
    put_u8(b, (uint8_t)-5);
    put_key(b, "test.u16", RA_GGUF_UINT16);
    put_u16(b, 65000);
    put_key(b, "test.i16", RA_GGUF_INT16);
    put_u16(b, (uint16_t)-1234);
    put_key(b, "test.u32", RA_GGUF_UINT32);
    put_u32(b, 3000000000u);
    put_key(b, "test.i32", RA_GGUF_INT32);
    put_u32(b, (uint32_t)-7);
    put_key(b, "test.f32", RA_GGUF_FLOAT32);
    put_f32(b, 1.5f);
    put_key(b, "test.bool", RA_GGUF_BOOL);
    at->bool_value = b->len;
    put_u8(b, 1);
    put_key(b, "test.str", RA_GGUF_STRING);
    at->str_len = b->len;
    put_str(b, "hello\n\"x\"\\");
    put_key(b, "test.u64", RA_GGUF_UINT64);
    put_u64(b, (uint64_t)1 << 40);
    put_key(b, "test.i64", RA_GGUF_INT64);
    put_u64(b, (uint64_t)-((int64_t)1 << 40));
    put_key(b, "test.f64", RA_GGUF_FLOAT64);
    put_f64(b, 2.25);
    put_key(b, "test.strs", RA_GGUF_ARRAY);
    put_u32(b, RA_GGUF_STRING);
    at->strs_count = b->len;
    put_u64(b, 4);
    for (int i = 0; i < 4; i++) put_str(b, test_strs[i]);
    put_key(b, "test.nums", RA_GGUF_ARRAY);
    put_u32(b, RA_GGUF_INT16);
    at->nums_count = b->len;
    put_u64(b, 3);
    for (int i = 0; i < 3; i++) put_u16(b, (uint16_t)test_nums[i]);
    put_key(b, "test.empty", RA_GGUF_ARRAY);
    put_u32(b, RA_GGUF_FLOAT32);
    put_u64(b, 0);

    static const struct { const char *name; uint32_t n_dims; uint64_t ne[2]; uint32_t type; uint64_t offset; } ts[N_TENSORS] = {
        { "w.f32", 1, { 8, 1 }, RA_GGML_F32, 0 },
        { "w.q8", 2, { 32, 2 }, RA_GGML_Q8_0, 32 },
        { "w.q4", 1, { 64, 1 }, RA_GGML_Q4_1, 128 },
    };
    for (int i = 0; i < N_TENSORS; i++) {
        at->t_name[i] = b->len + 8;
        put_str(b, ts[i].name);
        at->t_ndims[i] = b->len;
        put_u32(b, ts[i].n_dims);
        at->t_ne[i] = b->len;
        for (uint32_t d = 0; d < ts[i].n_dims; d++) put_u64(b, ts[i].ne[d]);
        at->t_type[i] = b->len;
        put_u32(b, ts[i].type);
        at->t_offset[i] = b->len;
        put_u64(b, ts[i].offset);
    }
    pad_to(b, 32);
    at->data_offset = b->len;
    for (int i = 0; i < 8; i++) put_f32(b, test_f32_tensor[i]);
    for (int i = 0; i < 68; i++) put_u8(b, (uint8_t)(i * 7 + 1)); /* q8_0: any bytes are valid */
    pad_to(b, 32);
    for (int i = 0; i < 40; i++) put_u8(b, (uint8_t)(i * 13 + 5));
}

/* Opens an exact-size heap copy, so ASan sees any read past the end. */
static ra_status open_bytes(const uint8_t *data, size_t len, uint8_t **copy, ra_gguf **g)
{
    *copy = malloc(len ? len : 1);
    if (len) memcpy(*copy, data, len);
    return ra_gguf_open_memory(*copy, len, "test.gguf", g);
}

/* Parses b and expects failure with status want and an error that names the file. */
static bool fails_with(const wbuf *b, ra_status want)
{
    uint8_t *copy;
    ra_gguf *g = NULL;
    ra_status s = open_bytes(b->data, b->len, &copy, &g);
    bool ok = s == want && g == NULL && strstr(ra_errmsg(), "test.gguf") != NULL;
    if (!ok) fprintf(stderr, "  got %s (%s), want %s\n", ra_status_name(s), ra_errmsg(), ra_status_name(want));
    ra_gguf_close(g);
    free(copy);
    return ok;
}

static void patch_u32(wbuf *b, size_t at, uint32_t v) { ra_put_le32(b->data + at, v); }
static void patch_u64(wbuf *b, size_t at, uint64_t v) { ra_put_le64(b->data + at, v); }

static void test_valid_file(void)
{
    wbuf b;
    layout at;
    build_valid(&b, &at);
    uint8_t *copy;
    ra_gguf *g;
    CHECK_OK(open_bytes(b.data, b.len, &copy, &g));
    if (!g) { free(copy); return; }

    CHECK(ra_gguf_version(g) == 3 && ra_gguf_alignment(g) == 32 && ra_gguf_data_offset(g) == at.data_offset);
    CHECK(ra_gguf_file_size(g) == b.len && !strcmp(ra_gguf_path(g), "test.gguf"));
    CHECK(ra_gguf_n_kv(g) == 16 && ra_gguf_n_tensors(g) == N_TENSORS);
    CHECK(ra_gguf_kv_at(g, 16) == NULL && ra_gguf_tensor_at(g, N_TENSORS) == NULL);
    CHECK(!strcmp(ra_gguf_kv_at(g, 1)->key, "test.u8"));

    uint64_t u64;
    uint32_t u32;
    float f;
    bool bl;
    const char *s;
    size_t len;
    CHECK_OK(ra_gguf_get_u64(g, "test.u8", &u64)); CHECK(u64 == 200);
    CHECK_OK(ra_gguf_get_u64(g, "test.u16", &u64)); CHECK(u64 == 65000);
    CHECK_OK(ra_gguf_get_u32(g, "test.u32", &u32)); CHECK(u32 == 3000000000u);
    CHECK_OK(ra_gguf_get_u64(g, "test.u64", &u64)); CHECK(u64 == (uint64_t)1 << 40);
    CHECK_STATUS(ra_gguf_get_u32(g, "test.u64", &u32), RA_ERR_FORMAT); /* does not fit */
    CHECK_STATUS(ra_gguf_get_u64(g, "test.i8", &u64), RA_ERR_FORMAT);  /* negative */
    CHECK_STATUS(ra_gguf_get_u64(g, "test.f32", &u64), RA_ERR_FORMAT);
    CHECK_STATUS(ra_gguf_get_u64(g, "no.such.key", &u64), RA_ERR_NOTFOUND);
    CHECK_OK(ra_gguf_get_f32(g, "test.f32", &f)); CHECK(f == 1.5f);
    CHECK_OK(ra_gguf_get_f32(g, "test.f64", &f)); CHECK(f == 2.25f);
    CHECK_STATUS(ra_gguf_get_f32(g, "test.u8", &f), RA_ERR_FORMAT);
    CHECK_OK(ra_gguf_get_bool(g, "test.bool", &bl)); CHECK(bl);
    CHECK_STATUS(ra_gguf_get_bool(g, "test.u8", &bl), RA_ERR_FORMAT);
    CHECK_OK(ra_gguf_get_str(g, "test.str", &s, &len));
    CHECK(len == 10 && !memcmp(s, "hello\n\"x\"\\", 10));
    CHECK_STATUS(ra_gguf_get_str(g, "test.strs", &s, &len), RA_ERR_FORMAT);

    ra_gguf_vtype et;
    uint64_t n;
    CHECK_OK(ra_gguf_get_arr(g, "test.strs", &et, &n)); CHECK(et == RA_GGUF_STRING && n == 4);
    const ra_gguf_kv *strs = ra_gguf_find(g, "test.strs");
    CHECK(strs != NULL);
    for (uint64_t i = 0; strs && i < 4; i++) {
        CHECK_OK(ra_gguf_arr_str(g, strs, i, &s, &len));
        CHECK(len == strlen(test_strs[i]) && !memcmp(s, test_strs[i], len));
    }
    if (strs) CHECK_STATUS(ra_gguf_arr_str(g, strs, 4, &s, &len), RA_ERR_USAGE);
    int64_t i64;
    double f64;
    if (strs) CHECK_STATUS(ra_gguf_arr_i64(strs, 0, &i64), RA_ERR_FORMAT);
    const ra_gguf_kv *nums = ra_gguf_find(g, "test.nums");
    CHECK(nums && nums->type == RA_GGUF_ARRAY && nums->elem_type == RA_GGUF_INT16 && nums->n == 3);
    for (uint64_t i = 0; nums && i < 3; i++) {
        CHECK_OK(ra_gguf_arr_i64(nums, i, &i64)); CHECK(i64 == test_nums[i]);
        CHECK_OK(ra_gguf_arr_f64(nums, i, &f64)); CHECK(f64 == test_nums[i]);
    }
    if (nums) {
        CHECK_STATUS(ra_gguf_arr_i64(nums, 3, &i64), RA_ERR_USAGE);
        CHECK_STATUS(ra_gguf_arr_str(g, nums, 0, &s, &len), RA_ERR_FORMAT);
    }
    CHECK_OK(ra_gguf_get_arr(g, "test.empty", &et, &n)); CHECK(et == RA_GGUF_FLOAT32 && n == 0);
    CHECK_STATUS(ra_gguf_arr_i64(ra_gguf_find(g, "test.u8"), 0, &i64), RA_ERR_FORMAT);

    /* kv_to_text */
    char text[256];
    CHECK_OK(ra_gguf_kv_to_text(g, ra_gguf_find(g, "test.str"), text, sizeof text, 4));
    CHECK(!strcmp(text, "\"hello\\n\\\"x\\\"\\\\\""));
    CHECK_OK(ra_gguf_kv_to_text(g, strs, text, sizeof text, 8));
    CHECK(!strcmp(text, "[string; 4] \"a\", \"bc\", \"\", \"tab\\x09here\""));
    CHECK_OK(ra_gguf_kv_to_text(g, strs, text, sizeof text, 2));
    CHECK(!strcmp(text, "[string; 4] \"a\", \"bc\", ..."));
    CHECK_OK(ra_gguf_kv_to_text(g, nums, text, sizeof text, 8));
    CHECK(!strcmp(text, "[int16; 3] 1, -2, 300"));
    CHECK_OK(ra_gguf_kv_to_text(g, ra_gguf_find(g, "test.i64"), text, sizeof text, 8));
    CHECK(!strcmp(text, "-1099511627776"));
    CHECK_OK(ra_gguf_kv_to_text(g, ra_gguf_find(g, "test.f32"), text, sizeof text, 8));
    CHECK(!strcmp(text, "1.5"));
    CHECK_OK(ra_gguf_kv_to_text(g, ra_gguf_find(g, "test.bool"), text, sizeof text, 8));
    CHECK(!strcmp(text, "true"));
    CHECK_OK(ra_gguf_kv_to_text(g, strs, text, 16, 8)); /* cut to fit, and says so */
    CHECK(strlen(text) == 15 && !strcmp(text + 12, "..."));

    /* tensors */
    const ra_gguf_tensor *t = ra_gguf_find_tensor(g, "w.q8");
    CHECK(t && t->type == RA_GGML_Q8_0 && t->n_dims == 2 && t->ne[0] == 32 && t->ne[1] == 2 && t->ne[2] == 1 &&
          t->ne[3] == 1 && t->offset == 32 && t->nbytes == 68 && t->data == copy + at.data_offset + 32);
    CHECK(ra_gguf_find_tensor(g, "w.nope") == NULL);
    t = ra_gguf_find_tensor(g, "w.q4");
    CHECK(t && t->nbytes == 40 && t->offset == 128);
    t = ra_gguf_tensor_at(g, 0);
    float y[8];
    CHECK(!strcmp(t->name, "w.f32"));
    CHECK_OK(ra_ggml_dequantize(t->type, t->data, y, t->ne[0]));
    CHECK(same_floats(y, test_f32_tensor, 8));

    ra_gguf_close(g);
    free(copy);
}

static void test_truncations(void)
{
    wbuf b;
    layout at;
    build_valid(&b, &at);
    size_t full = b.len, bad = 0;
    for (size_t n = 0; n < full; n++) {
        b.len = n;
        if (!fails_with(&b, RA_ERR_FORMAT)) { fprintf(stderr, "  prefix of %zu bytes\n", n); bad++; }
    }
    CHECK_MSG(bad == 0, "%zu of %zu truncations not rejected", bad, full);
}

static void test_malformed(void)
{
    wbuf b;
    layout at;

#define MALFORMED(want, edit) do { build_valid(&b, &at); edit; CHECK_MSG(fails_with(&b, want), "%s", #edit); } while (0)
    MALFORMED(RA_ERR_FORMAT, b.data[0] = 'X');                                   /* magic */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, 4, 1));                               /* version 1 */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, 4, 4));
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, 4, 0x03000000));                      /* big-endian v3 */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.n_kv, (uint64_t)1 << 60));         /* absurd counts */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.n_kv, UINT64_MAX));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.n_tensors, (uint64_t)1 << 60));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.n_kv, 17));                         /* one more kv than present */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.strs_count, (uint64_t)1 << 60));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.strs_count, 400));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.nums_count, (uint64_t)1 << 63));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.str_len, (uint64_t)1 << 60));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.str_len, UINT64_MAX));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.n_kv + 8, (uint64_t)1 << 62));     /* first key's length */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.n_kv + 8, 0));                     /* empty key */
    MALFORMED(RA_ERR_FORMAT, b.data[at.n_kv + 16 + 3] = 0);                      /* NUL inside a key */
    MALFORMED(RA_ERR_FORMAT, b.data[at.u8_key] = 'i');                           /* duplicate key test.i8 */
    MALFORMED(RA_ERR_FORMAT, b.data[at.bool_value] = 2);                         /* bool not 0/1 */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.align_value, 0));                  /* alignment */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.align_value, 3));
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.align_value - 4, RA_GGUF_INT32)); /* wrong type */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.align_value - 4, 13));            /* unknown value type */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.strs_count - 4, 77));             /* unknown element type */
    MALFORMED(RA_ERR_UNSUPPORTED, patch_u32(&b, at.strs_count - 4, RA_GGUF_ARRAY)); /* nested array */
    MALFORMED(RA_ERR_FORMAT, b.data[at.t_name[1] + 3] = '4');                    /* duplicate tensor w.q4 */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.t_ndims[0], 0));
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.t_ndims[0], 5));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_ne[0], 0));                      /* ne 0 */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_ne[1] + 8, 0));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_ne[1], 31));                     /* not a block multiple */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_ne[1], (uint64_t)1 << 40);       /* element count overflow */
                             patch_u64(&b, at.t_ne[1] + 8, (uint64_t)1 << 30));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_ne[0], (uint64_t)1 << 62));      /* byte count overflow */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_ne[1], (uint64_t)1 << 58));      /* bytes overflow via rows */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_ne[0], 16));                     /* grows into w.q8 */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.t_type[1], 99));                   /* unknown type */
    MALFORMED(RA_ERR_FORMAT, patch_u32(&b, at.t_type[1], 4));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_offset[2], 4));                  /* misaligned */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_offset[1], 0));                  /* overlaps w.f32 */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_offset[2], 160));                /* past the end */
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_offset[2], (uint64_t)1 << 40));
    MALFORMED(RA_ERR_FORMAT, patch_u64(&b, at.t_offset[2], UINT64_MAX - 31));    /* offset + size overflow */
#undef MALFORMED

    /* the message names the item and the byte offset */
    build_valid(&b, &at);
    patch_u64(&b, at.t_offset[2], 4);
    CHECK(fails_with(&b, RA_ERR_FORMAT) && strstr(ra_errmsg(), "w.q4") && strstr(ra_errmsg(), "alignment"));
    build_valid(&b, &at);
    b.data[at.bool_value] = 7;
    CHECK(fails_with(&b, RA_ERR_FORMAT) && strstr(ra_errmsg(), "test.bool") && strstr(ra_errmsg(), "byte"));

    /* a header alone, with no kvs and no tensors, is a valid (empty) file */
    wbuf e = { .len = 0 };
    put(&e, "GGUF", 4);
    put_u32(&e, 2);
    put_u64(&e, 0);
    put_u64(&e, 0);
    uint8_t *copy;
    ra_gguf *g = NULL;
    CHECK_OK(open_bytes(e.data, e.len, &copy, &g));
    CHECK(g && ra_gguf_n_kv(g) == 0 && ra_gguf_n_tensors(g) == 0 && ra_gguf_find(g, "x") == NULL &&
          ra_gguf_find_tensor(g, "x") == NULL);
    ra_gguf_close(g);
    free(copy);
    CHECK_STATUS(open_bytes(e.data, 0, &copy, &g), RA_ERR_FORMAT);
    free(copy);

    CHECK_STATUS(ra_gguf_open("/nonexistent/model.gguf", &g), RA_ERR_IO);
    CHECK(strstr(ra_errmsg(), "/nonexistent/model.gguf") != NULL);
    CHECK_STATUS(ra_gguf_open("tests", &g), RA_ERR_IO);
}

/* ---------- golden file from the Python gguf package ---------- */

static void test_golden(void)
{
    ra_gguf *g;
    CHECK_OK(ra_gguf_open("tests/data/golden.gguf", &g));
    uint8_t *want;
    size_t want_len;
    CHECK_OK(ra_read_file("tests/data/golden_dequant.bin", &want, &want_len));
    if (!g || !want) { ra_gguf_close(g); free(want); return; }

    CHECK(ra_gguf_version(g) == 3 && ra_gguf_alignment(g) == 64 && ra_gguf_n_tensors(g) == 7);
    uint64_t u64;
    uint32_t u32;
    float f;
    bool bl;
    const char *s;
    size_t len;
    CHECK_OK(ra_gguf_get_u64(g, "golden.u8", &u64)); CHECK(u64 == 200);
    CHECK_OK(ra_gguf_get_u64(g, "golden.u16", &u64)); CHECK(u64 == 60000);
    CHECK_OK(ra_gguf_get_u32(g, "golden.u32", &u32)); CHECK(u32 == 4000000000u);
    CHECK_OK(ra_gguf_get_u64(g, "golden.u64", &u64)); CHECK(u64 == ((uint64_t)1 << 63) + 5);
    CHECK_STATUS(ra_gguf_get_u64(g, "golden.i16", &u64), RA_ERR_FORMAT);
    CHECK_OK(ra_gguf_get_f32(g, "golden.f32", &f)); CHECK(f == 0.1f);
    CHECK_OK(ra_gguf_get_f32(g, "golden.f64", &f)); CHECK(f == 0.1f);
    CHECK_OK(ra_gguf_get_bool(g, "golden.bool", &bl)); CHECK(bl);
    CHECK_OK(ra_gguf_get_str(g, "golden.str", &s, &len));
    CHECK(len == 20 && !memcmp(s, "line1\n\"quoted\"\\ tab\t", len));
    CHECK_OK(ra_gguf_get_str(g, "general.architecture", &s, &len));
    CHECK(len == 6 && !memcmp(s, "golden", 6));
    char text[128];
    CHECK_OK(ra_gguf_kv_to_text(g, ra_gguf_find(g, "golden.i64"), text, sizeof text, 4));
    CHECK(!strcmp(text, "-4611686018427387904"));
    CHECK_OK(ra_gguf_kv_to_text(g, ra_gguf_find(g, "golden.strs"), text, sizeof text, 4));
    CHECK(!strcmp(text, "[string; 3] \"alpha\", \"\", \"gamma delta\""));
    const ra_gguf_kv *ints = ra_gguf_find(g, "golden.ints"), *floats = ra_gguf_find(g, "golden.floats");
    int64_t i64;
    double f64;
    CHECK(ints && ints->n == 3 && floats && floats->n == 2);
    if (ints) { CHECK_OK(ra_gguf_arr_i64(ints, 1, &i64)); CHECK(i64 == -2); }
    if (floats) { CHECK_OK(ra_gguf_arr_f64(floats, 1, &f64)); CHECK(f64 == -1.25); }

    /* every tensor dequantizes to exactly what gguf.quants.dequantize gave */
    static const char *const names[] = { "t.f32", "t.f16", "t.bf16", "t.q8_0", "t.q4_0", "t.q4_1", "t.q6_k" };
    size_t pos = 0;
    for (size_t i = 0; i < ra_gguf_n_tensors(g); i++) {
        const ra_gguf_tensor *t = ra_gguf_tensor_at(g, i);
        CHECK(i < 7 && !strcmp(t->name, names[i]));
        uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        if ((pos + n) * 4 > want_len) { CHECK_MSG(0, "golden_dequant.bin too short at %s", t->name); break; }
        float *got = malloc(n * sizeof *got), *ref = malloc(n * sizeof *ref);
        memcpy(ref, want + pos * 4, n * 4);
        CHECK_OK(ra_ggml_dequantize(t->type, t->data, got, n));
        CHECK_MSG(same_floats(got, ref, n), "tensor %s differs from gguf.quants.dequantize", t->name);
        free(got);
        free(ref);
        pos += n;
    }
    CHECK(pos * 4 == want_len);
    free(want);
    ra_gguf_close(g);
}

int main(void)
{
    test_type_table();
    test_dequant_blocks();
    test_quant_blocks();
    test_valid_file();
    test_truncations();
    test_malformed();
    test_golden();
    CHECK_DONE();
}
