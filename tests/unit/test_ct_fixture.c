/* Our compressed-tensors readers held to compressed-tensors itself, without
 * python: tests/fixtures/ct_fixture.safetensors holds, per format, a 128x256
 * slice of SmolLM2 weights as compressed-tensors 0.20.0 compressed it
 * (pack-quantized W4A16, float-quantized per channel and 128x128 blocks,
 * nvfp4- and mxfp4-pack-quantized) and the floats its decompressor gave
 * (made by tools/ct_check.py on the GPU machine; tests/fixtures/README.md).
 * Each layer is unpacked and dequantized by our code and must give those
 * floats bit for bit once rounded to the dtype compressed-tensors
 * dequantizes in (the scale's: bf16, or float32 for the FP8 blocks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ra/format.h"
#include "ra/qformat.h"
#include "ra/safetensors.h"
#include "ra/util.h"

#define FIXTURE "tests/fixtures/ct_fixture.safetensors"
#define ROWS 128
#define COLS 256

typedef struct {
    const char *name;   /* the fixture's prefix and our row */
    const char *layout; /* compressed-tensors format */
    int32_t group_size; /* integer formats: as the fixture was made */
} ct_case;

/* Borrows every tensor "<prefix>.<suffix>" that the family may have. */
static ra_status gather(const ra_st_file *f, const char *prefix, ra_qfamily fam, ra_qtensors *t)
{
    for (const char *const *sfx = ra_qformat_suffixes(fam); *sfx; sfx++) {
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, *sfx);
        const ra_st_info *ti = ra_safetensors_find(f, name);
        if (!ti) continue;
        ra_qt_dtype dt;
        RA_TRY(ra_qt_dtype_parse(ra_stype_name(ti->type), &dt));
        RA_TRY(ra_qtensors_borrow(t, *sfx, dt, ti->n_dims, ti->shape, ti->data, ti->end - ti->begin));
    }
    return RA_OK;
}

static void check_case(const ra_st_file *f, const ct_case *c)
{
    const ra_format *row = ra_format_find(c->name);
    CHECK_MSG(row && row->quant, "%s: no such quantized row", c->name);
    if (!row || !row->quant) return;
    ra_qformat ck = *row->quant;
    if (c->group_size) ck.group_size = c->group_size;
    ra_quant_config qc = {.method = RA_QUANT_COMPRESSED};
    snprintf(qc.layout, sizeof qc.layout, "%s", c->layout);

    char name[64];
    snprintf(name, sizeof name, "%s.expected", c->name);
    const ra_st_info *want = ra_safetensors_find(f, name);
    CHECK_MSG(want && want->n_dims == 2 && want->shape[0] == ROWS && want->shape[1] == COLS &&
                  (want->type == RA_ST_BF16 || want->type == RA_ST_F32),
              "%s: %s missing or not %ux%u bf16/f32", FIXTURE, name, ROWS, COLS);
    if (!want) return;

    ra_qtensors t = {0};
    ra_qlayer q;
    ra_status s = gather(f, c->name, ck.family, &t);
    if (s == RA_OK) s = ra_qformat_unpack(&ck, &ck, &qc, &t, &q);
    CHECK_MSG(s == RA_OK, "%s: unpack: %s", c->name, ra_errmsg());
    ra_qtensors_free(&t);
    if (s != RA_OK) return;
    CHECK(ra_qlayer_rows(&q) == ROWS && ra_qlayer_cols(&q) == COLS);

    float ours[COLS];
    size_t differ = 0, first = (size_t)-1;
    for (uint32_t r = 0; r < ROWS; r++) {
        CHECK_OK(ra_qlayer_row_f32(&q, r, ours));
        for (uint32_t k = 0; k < COLS; k++) {
            size_t i = (size_t)r * COLS + k;
            uint32_t a, b;
            if (want->type == RA_ST_BF16) {
                uint16_t h;
                memcpy(&h, want->data + 2 * i, 2);
                a = h;
                b = ra_f32_to_bf16(ours[k]);
            } else {
                memcpy(&a, want->data + 4 * i, 4);
                memcpy(&b, &ours[k], 4);
            }
            if (a != b && differ++ == 0) first = i;
        }
    }
    CHECK_MSG(differ == 0, "%s: %zu of %u floats differ from compressed-tensors' (first at [%zu][%zu])", c->name,
              differ, ROWS * COLS, first / COLS, first % COLS);
    ra_qlayer_free(&q);
}

int main(void)
{
    static const ct_case cases[] = {
        {"w4a16", "pack-quantized", 128},
        {"fp8", "float-quantized", 0},
        {"fp8-block", "float-quantized", 0},
        {"nvfp4", "nvfp4-pack-quantized", 0},
        {"mxfp4", "mxfp4-pack-quantized", 0},
    };
    ra_st_file *f = NULL;
    CHECK_OK(ra_safetensors_open(FIXTURE, &f));
    if (!f) CHECK_DONE();
    const char *by = ra_safetensors_meta(f, "compressed_tensors");
    CHECK_MSG(by && !strcmp(by, RA_CT_VERSION), "fixture made by compressed-tensors %s, we test against %s",
              by ? by : "?", RA_CT_VERSION);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(f, &cases[i]);
    ra_safetensors_close(f);
    CHECK_DONE();
}
