#include "check.h"
#include "ra/json.h"
#include "ra/text.h"
#include "ra/util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
}

/* ra_read_file_inside: only regular files, no link anywhere on the way, bounded. */
static void test_read_inside(const char *dir)
{
    char p[512], q[512];
    uint8_t *data;
    size_t len;
    snprintf(p, sizeof p, "%s/sub", dir);
    CHECK_OK(ra_mkdirs(p));
    snprintf(p, sizeof p, "%s/sub/f", dir);
    put(p, "0123456789");
    CHECK_OK(ra_read_file_inside(dir, "sub/f", 10, &data, &len));
    CHECK(len == 10 && !memcmp(data, "0123456789", 10) && data[10] == 0);
    free(data);
    CHECK_STATUS(ra_read_file_inside(dir, "./sub/f", 10, &data, &len), RA_ERR_FORMAT); /* one spelling per file */
    CHECK_STATUS(ra_read_file_inside(dir, "sub//f", 10, &data, &len), RA_ERR_FORMAT);
    CHECK_STATUS(ra_read_file_inside(dir, "sub/f", 9, &data, &len), RA_ERR_UNSUPPORTED);
    CHECK(data == NULL && strstr(ra_errmsg(), "sub/f") && strstr(ra_errmsg(), "limit"));
    CHECK_STATUS(ra_read_file_inside(dir, "sub/none", 10, &data, &len), RA_ERR_NOTFOUND);
    CHECK_STATUS(ra_read_file_inside(dir, "../f", 10, &data, &len), RA_ERR_FORMAT);
    CHECK_STATUS(ra_read_file_inside(dir, "/etc/passwd", 10, &data, &len), RA_ERR_FORMAT);
    CHECK_STATUS(ra_read_file_inside(dir, "sub/f/x", 10, &data, &len), RA_ERR_IO);
    CHECK(strstr(ra_errmsg(), "f is not a directory") != NULL);
    CHECK_STATUS(ra_read_file_inside(dir, "sub", 10, &data, &len), RA_ERR_IO); /* a directory */
    CHECK(strstr(ra_errmsg(), "not a regular file") != NULL);
    snprintf(q, sizeof q, "%s/link", dir);
    CHECK(symlink(p, q) == 0);
    CHECK_STATUS(ra_read_file_inside(dir, "link", 10, &data, &len), RA_ERR_IO);
    CHECK(strstr(ra_errmsg(), "symbolic link") != NULL);
    snprintf(q, sizeof q, "%s/dirlink", dir);
    CHECK(symlink("sub", q) == 0);
    CHECK_STATUS(ra_read_file_inside(dir, "dirlink/f", 10, &data, &len), RA_ERR_IO);
    CHECK(strstr(ra_errmsg(), "dirlink is a symbolic link") != NULL);
    snprintf(q, sizeof q, "%s/fifo", dir);
    CHECK(mkfifo(q, 0600) == 0);
    CHECK_STATUS(ra_read_file_inside(dir, "fifo", 10, &data, &len), RA_ERR_IO); /* and it did not block */
    CHECK(strstr(ra_errmsg(), "not a regular file") != NULL);
    /* A pipe the user names is read, but never past the limit. */
    CHECK_STATUS(ra_read_file_max("/dev/zero", 1000, &data, &len), RA_ERR_UNSUPPORTED);
    CHECK(ra_path_inside("a/b") && ra_path_inside("a..b") && ra_path_inside(".a") && !ra_path_inside("") &&
          !ra_path_inside("a/../b") && !ra_path_inside("a/./b") && !ra_path_inside("a/") && !ra_path_inside("/a"));
}

/* Temporary names are new every time; a symlink at the target is replaced, never followed. */
static void test_create_and_rename(const char *dir)
{
    char prefix[512], victim[512], target[512];
    snprintf(prefix, sizeof prefix, "%s/x.tmp-", dir);
    char *a, *b;
    int fa, fb;
    CHECK_OK(ra_create_unique(prefix, false, &a, &fa));
    CHECK_OK(ra_create_unique(prefix, false, &b, &fb));
    CHECK(a && b && strcmp(a, b) != 0 && strlen(a) == strlen(prefix) + 8 && fa >= 0 && fb >= 0);
    close(fa);
    close(fb);
    unlink(a);
    unlink(b);
    free(a);
    free(b);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    put(victim, "precious");
    snprintf(target, sizeof target, "%s/target", dir);
    CHECK(symlink(victim, target) == 0);
    CHECK_OK(ra_write_file_atomic(target, "new", 3));
    uint8_t *data;
    size_t len;
    CHECK_OK(ra_read_file(victim, &data, &len));
    CHECK(len == 8 && !memcmp(data, "precious", 8));
    free(data);
    struct stat st;
    CHECK(lstat(target, &st) == 0 && S_ISREG(st.st_mode));
    /* A directory that appeared at the destination is not replaced. */
    char from[512], to[512];
    snprintf(prefix, sizeof prefix, "%s/out.partial-", dir);
    char *tmp;
    CHECK_OK(ra_create_unique(prefix, true, &tmp, NULL));
    snprintf(to, sizeof to, "%s/out", dir);
    CHECK(mkdir(to, 0755) == 0);
    CHECK_STATUS(ra_rename_noreplace(tmp, to), RA_ERR_USAGE);
    CHECK(strstr(ra_errmsg(), "already exists") != NULL);
    CHECK(rmdir(to) == 0);
    CHECK_OK(ra_rename_noreplace(tmp, to));
    snprintf(from, sizeof from, "%s", tmp);
    CHECK(!ra_path_exists(from) && ra_path_exists(to));
    free(tmp);
}

static void test_text(void)
{
    char out[64];
    CHECK(!strcmp(ra_esc(out, sizeof out, "a\033[31m\r\n"), "a\\x1b[31m\\x0d\\n"));
    CHECK(!strcmp(ra_esc(out, sizeof out, "c1 \xc2\x9b x"), "c1 \\u{009b} x"));
    CHECK(!strcmp(ra_esc(out, sizeof out, "bidi \xe2\x80\xae"), "bidi \\u{202e}"));
    CHECK(!strcmp(ra_esc(out, sizeof out, "bad \xff\xc3"), "bad \\xff\\xc3"));
    CHECK(!strcmp(ra_esc(out, sizeof out, "del \x7f back\\slash"), "del \\x7f back\\\\slash"));
    CHECK(!strcmp(ra_esc(out, sizeof out, "caf\xc3\xa9 ok"), "caf\xc3\xa9 ok"));
    CHECK(!strcmp(ra_esc(out, 8, "abcdefghij"), "abcd..."));
    CHECK(!strcmp(ra_esc(out, 8, "abcdefg"), "abcdefg"));
    char small[12];
    CHECK(!strcmp(ra_esc(small, sizeof small, "\033\033\033"), "\\x1b\\x1b..."));
    ra_buf b = {0};
    CHECK_OK(ra_escape(&b, "a|b*c\"d", 7, RA_ESC_MARKDOWN | RA_ESC_QUOTE));
    CHECK_OK(ra_buf_append(&b, "", 1));
    CHECK(!strcmp((char *)b.data, "a\\|b\\*c\\\"d"));
    ra_buf_free(&b);
    CHECK_OK(ra_escape(&b, "q\"\x01\x7f\xc2\x85\xff", 7, RA_ESC_JSON));
    CHECK_OK(ra_buf_append(&b, "", 1));
    CHECK(!strcmp((char *)b.data, "q\\\"\\u0001\\u007f\\u0085\\ufffd"));
    ra_buf_free(&b);
    CHECK_OK(ra_escape(&b, "<a href='x'>&\"\033\xe2\x80\xae\xff", 19, RA_ESC_HTML));
    CHECK_OK(ra_buf_append(&b, "", 1));
    CHECK(!strcmp((char *)b.data, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;\\x1b\\u{202e}\\xff"));
    ra_buf_free(&b);

    /* UTF-8-safe truncation: 100 two-byte characters into 128 bytes keep 63 whole ones. */
    char name[128], src[201];
    for (int i = 0; i < 100; i++) memcpy(src + 2 * i, "\xc3\xa9", 2);
    src[200] = 0;
    ra_utf8_copy(name, sizeof name, src, 200);
    CHECK(strlen(name) == 126 && ra_utf8_valid(name, strlen(name)));
    ra_utf8_copy(name, sizeof name, "a\xff" "b", 3);
    CHECK(!strcmp(name, "a\xef\xbf\xbd" "b"));
    CHECK(!ra_utf8_valid("\xed\xa0\x80", 3) && !ra_utf8_valid("\xc0\xaf", 2) && ra_utf8_valid("\xf0\x9f\x98\x80", 4));
}

static void json_refused(int line, const char *text, const char *want)
{
    cJSON *v = (cJSON *)&v;
    ra_status s = ra_json_parse("t.json", text, strlen(text), 100, &v);
    CHECK_MSG(s != RA_OK && v == NULL, "line %d: accepted: %s", line, text);
    CHECK_MSG(strstr(ra_errmsg(), want) != NULL, "line %d: message \"%s\" lacks \"%s\"", line, ra_errmsg(), want);
}

static void test_json(void)
{
    cJSON *v;
    const char *ok = " {\"a\": [1, {\"b\": \"caf\\u00e9\", \"c\": \"\\\\u0000\"}], \"d\": null}\n";
    CHECK_OK(ra_json_parse("t.json", ok, strlen(ok), 100, &v));
    cJSON_Delete(v);
    json_refused(__LINE__, "{\"a\": 1, \"b\": 2, \"a\": 3}", "duplicate key \"a\"");
    json_refused(__LINE__, "[{\"x\": {\"k\": 1, \"k\": 1}}]", "duplicate key \"k\"");
    json_refused(__LINE__, "{\"a\": 1} {}", "after the JSON value");
    json_refused(__LINE__, "{\"a\": \"x\\u0000y\"}", "NUL");
    json_refused(__LINE__, "{\"a\\u0000\": 1}", "NUL");
    json_refused(__LINE__, "{\"a\": \"\xff\"}", "UTF-8");
    json_refused(__LINE__, "{\"\xc3\": 1}", "UTF-8");
    json_refused(__LINE__, "{\"a\": [1, 2", "not valid JSON");
    json_refused(__LINE__, "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
                           "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]",
                 "allowed");
    char raw[] = "{\"a\": 1}";
    raw[3] = 0; /* a raw NUL inside the text */
    CHECK_STATUS(ra_json_parse("t.json", raw, sizeof raw - 1, 100, &v), RA_ERR_FORMAT);
    /* Printing makes every string UTF-8. */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "k\xff", "v\xc3");
    char *text;
    CHECK_OK(ra_json_print(o, false, &text));
    CHECK(text && !strcmp(text, "{\"k\xef\xbf\xbd\":\"v\xef\xbf\xbd\"}"));
    free(text);
    cJSON_Delete(o);
}

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

    char dir2[] = "/tmp/ra-test-XXXXXX";
    CHECK(mkdtemp(dir2) != NULL);
    test_read_inside(dir2);
    test_create_and_rename(dir2);
    CHECK_OK(ra_remove_tree(dir2));
    test_text();
    test_json();
    CHECK_DONE();
}
