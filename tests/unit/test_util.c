#include "check.h"
#include "ra/util.h"

#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    /* SHA-256 known answers (FIPS 180-2) */
    uint8_t h[32];
    char hex[65];
    ra_sha256("abc", 3, h);
    ra_hex(h, 32, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    ra_sha256("", 0, h);
    ra_hex(h, 32, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    uint8_t back[32];
    CHECK_OK(ra_unhex(hex, back, 32));
    CHECK(!memcmp(back, h, 32));
    CHECK_STATUS(ra_unhex("zz", back, 1), RA_ERR_FORMAT);

    /* half: exact cases, subnormals, rounding, inf/nan */
    CHECK(ra_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ra_f16_to_f32(0xc000) == -2.0f);
    CHECK(ra_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    CHECK(ra_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(ra_f16_to_f32(0x7c00)));
    CHECK(isnan(ra_f16_to_f32(0x7e00)));
    for (uint32_t u = 0; u < 0x10000; u++) { /* every finite half round-trips */
        if ((u & 0x7c00) == 0x7c00) continue;
        if (ra_f32_to_f16(ra_f16_to_f32((uint16_t)u)) != u) { CHECK_MSG(0, "half 0x%04x", u); break; }
    }
    CHECK(ra_f32_to_f16(1.0f + 1.0f / 4096) == 0x3c00); /* tie to even */
    CHECK(ra_f32_to_f16(1e6f) == 0x7c00);

    /* bfloat16 round to nearest even */
    CHECK(ra_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(ra_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(ra_f32_to_bf16(1.00390625f) == 0x3f80);   /* exactly halfway, even stays */
    CHECK(ra_f32_to_bf16(1.01171875f) == 0x3f82);   /* halfway above odd, rounds up */
    CHECK(isnan(ra_bf16_to_f32(ra_f32_to_bf16(NAN))));

    /* atomic write + read back */
    char dir[] = "/tmp/ra-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/file.txt", dir);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    CHECK_OK(ra_mkdirs(sub));
    CHECK_OK(ra_write_file_atomic(path, "hello", 5));
    uint8_t *data;
    size_t len;
    CHECK_OK(ra_read_file(path, &data, &len));
    CHECK(len == 5 && !memcmp(data, "hello", 5) && data[5] == 0);
    free(data);
    CHECK_STATUS(ra_read_file("/nonexistent/x", &data, &len), RA_ERR_IO);
    CHECK_OK(ra_remove_tree(dir));
    CHECK(!ra_path_exists(dir));

    ra_buf b = {0};
    for (int i = 0; i < 1000; i++) CHECK_OK(ra_buf_printf(&b, "%d,", i));
    CHECK(b.len == 3890);
    ra_buf_free(&b);

    void *p;
    CHECK_STATUS(ra_calloc(&p, SIZE_MAX / 2, 4), RA_ERR_NOMEM);
    CHECK_DONE();
}
