/* Checkpoint formats end to end on a toy model: quantize (RTN and GPTQ,
 * with and without act-order) into a checkpoint directory, read it back as
 * the format, run it; byte-identical checkpoints on 1 and 3 threads; the
 * cached dequantization multiplies bit for bit as the format's own matmul;
 * malformed checkpoints refused naming file and tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ra/engine.h"
#include "ra/model.h"
#include "ra/qformat.h"
#include "ra/quantize.h"
#include "ra/safetensors.h"
#include "ra/util.h"

#define DIM 64
#define HEADS 4
#define HD 16
#define FFN 128
#define VOCAB 300
#define LAYERS 2

static char root[64];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", root, name); }

static float rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

/* The toy base model: float32 safetensors and config.json in root/base. */
static void write_base(void)
{
    static float data[64][VOCAB * DIM];
    static char names[64][96];
    ra_st_tensor t[64];
    size_t n = 0;
    uint32_t seed = 7;
#define T(r, c, gain, ...) do { snprintf(names[n], sizeof names[n], __VA_ARGS__); \
    for (size_t i = 0; i < (size_t)(r) * (c ? c : 1); i++) data[n][i] = gain ? 1.0f + 0.1f * rnd(&seed) : 0.2f * rnd(&seed); \
    t[n] = (ra_st_tensor){names[n], "F32", c ? 2 : 1, {r, c}, data[n], (uint64_t)(r) * (c ? c : 1) * 4}; n++; } while (0)
    T(VOCAB, DIM, false, "model.embed_tokens.weight");
    T(DIM, 0, true, "model.norm.weight");
    for (int l = 0; l < LAYERS; l++) {
        T(DIM, 0, true, "model.layers.%d.input_layernorm.weight", l);
        T(DIM, 0, true, "model.layers.%d.post_attention_layernorm.weight", l);
        T(HEADS * HD, DIM, false, "model.layers.%d.self_attn.q_proj.weight", l);
        T(HEADS * HD, DIM, false, "model.layers.%d.self_attn.k_proj.weight", l);
        T(HEADS * HD, DIM, false, "model.layers.%d.self_attn.v_proj.weight", l);
        T(DIM, HEADS * HD, false, "model.layers.%d.self_attn.o_proj.weight", l);
        T(FFN, DIM, false, "model.layers.%d.mlp.gate_proj.weight", l);
        T(FFN, DIM, false, "model.layers.%d.mlp.up_proj.weight", l);
        T(DIM, FFN, false, "model.layers.%d.mlp.down_proj.weight", l);
    }
#undef T
    char dir[128], path[160];
    path_of(dir, sizeof dir, "base");
    CHECK_OK(ra_mkdirs(dir));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(ra_safetensors_write(path, t, n, NULL, NULL, 0));
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"llama\", \"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d, "
             "\"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"vocab_size\": %d, "
             "\"max_position_embeddings\": 64, \"tie_word_embeddings\": true}", DIM, FFN, LAYERS, HEADS, HEADS, VOCAB);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK_OK(ra_write_file_atomic(path, cfg, strlen(cfg)));
}

static int32_t calib_ids[4 * 16];
static ra_calib_tokens calib = {calib_ids, 4, 16, {0}};

static ra_status quantize(const char *format, const char *out, uint32_t threads)
{
    ra_model_desc *d = NULL;
    ra_pool *p = NULL;
    char base[128], dir[128];
    path_of(base, sizeof base, "base");
    path_of(dir, sizeof dir, out);
    const ra_format *f = ra_format_find(format);
    ra_qformat qf = *f->quant;
    ra_qformat_fit_group(&qf, DIM, HEADS * HD, FFN);
    ra_status s = ra_desc_open(base, 0, &d);
    if (s == RA_OK) s = ra_pool_new(threads, &p);
    ra_quantize_opts o = {&qf, format, &calib, p, false};
    if (s == RA_OK) s = ra_quantize_model(d, &o, dir, NULL);
    ra_pool_free(p);
    ra_desc_close(d);
    return s;
}

/* Log-probs of three tokens through the CPU engine, in format f. */
static ra_status run(const char *dir_name, const char *format, uint32_t threads, float *out)
{
    char dir[128];
    path_of(dir, sizeof dir, dir_name);
    ra_model_desc *d = NULL;
    ra_pool *pool = NULL;
    ra_model *m = NULL;
    ra_engine *e = NULL;
    uint32_t cap = 8, seq[3] = {0, 0, 0};
    int32_t tok[3] = {5, 17, 250};
    bool want[3] = {true, true, true};
    ra_status s = ra_desc_open(dir, 0, &d);
    if (s == RA_OK) s = ra_pool_new(threads, &pool);
    if (s == RA_OK) s = ra_model_load(d, ra_format_find(format), pool, &m);
    if (s == RA_OK) s = ra_engine_open(m, ra_kernel_find("cpu"), NULL, &e);
    if (s == RA_OK) s = ra_engine_begin(e, 1, &cap);
    if (s == RA_OK) s = ra_engine_forward(e, seq, tok, want, 3, out, NULL);
    ra_engine_close(e);
    ra_model_free(m);
    ra_pool_free(pool);
    ra_desc_close(d);
    return s;
}

static bool same_file(const char *a, const char *b)
{
    uint8_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool same = ra_read_file(a, &x, &nx) == RA_OK && ra_read_file(b, &y, &ny) == RA_OK && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* Every checkpoint format: written, detected as itself, loaded, run; thread count changes nothing. */
static void test_formats(void)
{
    static float a[3 * VOCAB], b[3 * VOCAB], dense[3 * VOCAB];
    CHECK_OK(run("base", "bf16", 1, dense));
    for (size_t i = 0; i < ra_format_count(); i++) {
        const ra_format *f = ra_format_at(i);
        if (!f->quant) continue;
        CHECK_OK(quantize(f->name, f->name, 2));
        char dir[128];
        path_of(dir, sizeof dir, f->name);
        ra_model_desc *d = NULL;
        CHECK_OK(ra_desc_open(dir, 0, &d));
        ra_qformat ck;
        if (d) CHECK_OK(ra_qformat_of_checkpoint(&d->quant, &ck));
        if (d) CHECK_MSG(ra_qformat_row_for(&ck) && ra_qformat_can_load(f->quant, &ck), "%s: not its own checkpoint", f->name);
        ra_desc_close(d);
        CHECK_OK(run(f->name, f->name, 1, a));
        CHECK_OK(run(f->name, f->name, 3, b));
        CHECK_MSG(!memcmp(a, b, sizeof a), "%s: 1 and 3 threads differ", f->name);
        double diff = 0;
        for (size_t k = 0; k < 3 * VOCAB; k++) diff = fmax(diff, fabs((double)a[k] - dense[k]));
        CHECK_MSG(diff > 0 && diff < 2.0, "%s: max |log-prob - bf16| = %g", f->name, diff);
    }
    /* A dense format cannot run a quantized checkpoint, nor a checkpoint format an unquantized one. */
    CHECK_STATUS(run("awq", "f32", 1, a), RA_ERR_UNSUPPORTED);
    CHECK(strstr(ra_errmsg(), "run it as awq") != NULL);
    CHECK_STATUS(run("base", "awq", 1, a), RA_ERR_USAGE);
    CHECK_STATUS(run("awq", "fp8", 1, a), RA_ERR_UNSUPPORTED);
    CHECK_OK(run("gptq", "marlin", 1, a)); /* Marlin repacks any 4-bit checkpoint */
    CHECK_OK(run("gptq-act", "marlin", 1, b));
}

/* GPTQ with act-order: the same bytes on 1 and 3 threads. */
static void test_deterministic(void)
{
    static const char *const calibrated[] = {"gptq-cal-act", "awq-cal"};
    for (int i = 0; i < 2; i++) {
        char t1[32], t3[32], a[160], b[160];
        snprintf(t1, sizeof t1, "%s-t1", calibrated[i]);
        snprintf(t3, sizeof t3, "%s-t3", calibrated[i]);
        CHECK_OK(quantize(calibrated[i], t1, 1));
        CHECK_OK(quantize(calibrated[i], t3, 3));
        snprintf(a, sizeof a, "%s/%s/model.safetensors", root, t1);
        snprintf(b, sizeof b, "%s/%s/model.safetensors", root, t3);
        CHECK_MSG(same_file(a, b), "%s: 1 and 3 threads give other bytes", calibrated[i]);
        snprintf(a, sizeof a, "%s/%s/config.json", root, t1);
        snprintf(b, sizeof b, "%s/%s/config.json", root, t3);
        CHECK(same_file(a, b));
        CHECK_STATUS(quantize(calibrated[i], t1, 1), RA_ERR_USAGE); /* never over an existing directory */
    }
    /* AWQ's scales went into the norms: the checkpoint's differ from the base's. */
    char a[160], b[160];
    snprintf(a, sizeof a, "%s/awq-cal-t1/model.safetensors", root);
    snprintf(b, sizeof b, "%s/awq/model.safetensors", root);
    ra_st_file *fa = NULL, *fb = NULL;
    CHECK_OK(ra_safetensors_open(a, &fa));
    CHECK_OK(ra_safetensors_open(b, &fb));
    const ra_st_info *na = fa ? ra_safetensors_find(fa, "model.layers.0.input_layernorm.weight") : NULL;
    const ra_st_info *nb = fb ? ra_safetensors_find(fb, "model.layers.0.input_layernorm.weight") : NULL;
    CHECK(na && nb && na->end - na->begin == nb->end - nb->begin && memcmp(na->data, nb->data, na->end - na->begin));
    ra_safetensors_close(fa);
    ra_safetensors_close(fb);
}

/* The cached dequantization multiplies as the format's own matmul, bit for bit. */
static void test_cached_rows(void)
{
    static float x[5 * FFN], y1[5 * DIM * 2], y2[5 * DIM * 2];
    uint32_t seed = 3;
    for (size_t i = 0; i < 5 * FFN; i++) x[i] = rnd(&seed);
    for (size_t i = 0; i < ra_format_count(); i++) {
        const ra_format *f = ra_format_at(i);
        if (!f->quant) continue;
        char dir[128];
        path_of(dir, sizeof dir, f->name);
        ra_model_desc *d = NULL;
        ra_model *m = NULL;
        ra_pool *p = NULL;
        CHECK_OK(ra_desc_open(dir, 0, &d));
        CHECK_OK(ra_pool_new(2, &p));
        if (d) CHECK_OK(ra_model_load(d, f, p, &m));
        for (uint32_t n = 1; m && n <= 5; n++) {
            ra_qlayer *q = m->layers[1].w_down.q;
            CHECK_OK(ra_cpu_matmul(p, &m->layers[1].w_down, x, n, y1));
            float *deq = q->deq;
            q->deq = NULL;
            CHECK_OK(ra_qlayer_matmul(p, q, x, n, y2));
            q->deq = deq;
            CHECK_MSG(!memcmp(y1, y2, (size_t)n * DIM * 4), "%s: cached rows differ at batch %u", f->name, n);
        }
        ra_model_free(m);
        ra_pool_free(p);
        ra_desc_close(d);
    }
}

/* Rewrites dir_name's model.safetensors into root/bad with one tensor changed by edit. */
typedef void (*edit_fn)(ra_st_tensor *t, size_t *n, uint8_t *scratch);
static void write_bad(const char *src, edit_fn edit)
{
    char in[160], out[160], cmd[512];
    path_of(in, sizeof in, src);
    path_of(out, sizeof out, "bad");
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", out, in, out);
    CHECK(system(cmd) == 0);
    snprintf(in, sizeof in, "%s/%s/model.safetensors", root, src);
    snprintf(out, sizeof out, "%s/bad/model.safetensors", root);
    ra_st_file *f = NULL;
    CHECK_OK(ra_safetensors_open(in, &f));
    if (!f) return;
    size_t n = ra_safetensors_n_tensors(f);
    ra_st_tensor *t = calloc(n, sizeof *t);
    static uint8_t scratch[1 << 16];
    for (size_t i = 0; i < n; i++) {
        const ra_st_info *e = ra_safetensors_tensor_at(f, i);
        t[i] = (ra_st_tensor){e->name, ra_stype_name(e->type), e->n_dims, {0}, e->data, e->end - e->begin};
        for (uint32_t k = 0; k < e->n_dims && k < 4; k++) t[i].shape[k] = e->shape[k];
    }
    edit(t, &n, scratch);
    CHECK_OK(ra_safetensors_write(out, t, n, NULL, NULL, 0));
    free(t);
    ra_safetensors_close(f);
}

static ra_st_tensor *named(ra_st_tensor *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

static void drop_qzeros(ra_st_tensor *t, size_t *n, uint8_t *scratch)
{
    (void)scratch;
    ra_st_tensor *z = named(t, *n, "model.layers.1.mlp.up_proj.qzeros");
    if (z) *z = t[--*n];
}

static void bad_g_idx(ra_st_tensor *t, size_t *n, uint8_t *scratch)
{
    ra_st_tensor *g = named(t, *n, "model.layers.0.self_attn.o_proj.g_idx");
    if (!g) return;
    memcpy(scratch, g->data, g->nbytes);
    ra_put_le32(scratch + 4 * 3, 99);
    g->data = scratch;
}

static void scales_i32(ra_st_tensor *t, size_t *n, uint8_t *scratch)
{
    (void)scratch;
    ra_st_tensor *s = named(t, *n, "model.layers.0.mlp.gate_proj.scales");
    if (!s) return;
    s->dtype = "I32";
    s->shape[1] /= 2; /* same bytes, other dtype */
}

/* compressed-tensors layouts: a scale of the wrong shape, a missing global scale, weights of the wrong dtype. */
static void w4a16_scale_shape(ra_st_tensor *t, size_t *n, uint8_t *scratch)
{
    (void)n, (void)scratch;
    ra_st_tensor *s = named(t, *n, "model.layers.1.self_attn.k_proj.weight_scale");
    if (!s) return;
    s->shape[0] /= 2; /* same bytes, [rows/2, 2 groups] */
    s->shape[1] *= 2;
}

static void drop_global_scale(ra_st_tensor *t, size_t *n, uint8_t *scratch)
{
    (void)scratch;
    ra_st_tensor *g = named(t, *n, "model.layers.0.mlp.down_proj.weight_global_scale");
    if (g) *g = t[--*n];
}

static void fp8_weight_u8(ra_st_tensor *t, size_t *n, uint8_t *scratch)
{
    (void)scratch;
    ra_st_tensor *w = named(t, *n, "model.layers.1.mlp.gate_proj.weight");
    if (w) w->dtype = "U8";
}

/* Refused as RA_ERR_FORMAT with a message holding w1 and w2 (and always the file). */
static void expect_refused(const char *format, const char *w1, const char *w2)
{
    static float lp[3 * VOCAB];
    ra_status s = run("bad", format, 1, lp);
    CHECK_MSG(s == RA_ERR_FORMAT, "%s: got %s (%s)", w2, ra_status_name(s), ra_errmsg());
    CHECK_MSG(strstr(ra_errmsg(), "model.safetensors") && strstr(ra_errmsg(), w1) && strstr(ra_errmsg(), w2),
              "message lacks '%s' / '%s': %s", w1, w2, ra_errmsg());
}

static void test_malformed(void)
{
    write_bad("gptq", drop_qzeros);
    expect_refused("gptq", "model.safetensors", "qzeros");
    write_bad("gptq-act", bad_g_idx);
    expect_refused("gptq-act", "model.safetensors", "g_idx");
    write_bad("w4a16", w4a16_scale_shape);
    expect_refused("w4a16", "layer model.layers.1.self_attn.k_proj", ".weight_scale has shape");
    write_bad("nvfp4", drop_global_scale);
    expect_refused("nvfp4", "layer model.layers.0.mlp.down_proj", "weight_global_scale");
    write_bad("fp8", fp8_weight_u8);
    expect_refused("fp8", "layer model.layers.1.mlp.gate_proj", ".weight must be a 2-D F8_E4M3");
    write_bad("gptq", scales_i32); /* last: the config test below edits its config.json */
    expect_refused("gptq", "model.safetensors", "scales");
    /* A config field of the wrong type. */
    char cfg[160], *text = NULL;
    size_t len;
    path_of(cfg, sizeof cfg, "bad/config.json");
    CHECK_OK(ra_read_file(cfg, (uint8_t **)&text, &len));
    char *bits = text ? strstr(text, "\"bits\":") : NULL;
    CHECK(bits != NULL);
    if (bits) {
        char *v = bits + 7;
        while (*v == ' ' || *v == '\t') v++;
        char *edited = malloc(len + 8);
        int k = snprintf(edited, len + 8, "%.*s\"%c\"%s", (int)(v - text), text, *v, v + 1);
        CHECK_OK(ra_write_file_atomic(cfg, edited, (size_t)k));
        free(edited);
        ra_model_desc *d = NULL;
        path_of(cfg, sizeof cfg, "bad");
        CHECK_STATUS(ra_desc_open(cfg, 0, &d), RA_ERR_FORMAT);
        CHECK_MSG(strstr(ra_errmsg(), "config.json") && strstr(ra_errmsg(), "bits"), "%s", ra_errmsg());
    }
    free(text);
}

/* A format derived once is listed once, however many kernels load it (the
 * manifest's derived_checkpoints is an object keyed by format: a second key
 * made the strict reader refuse the bundle). */
static void test_deriver_lists_once(void)
{
    char base[128], cache[128];
    path_of(base, sizeof base, "base");
    path_of(cache, sizeof cache, "cache");
    ra_model_desc *d = NULL;
    ra_pool *p = NULL;
    ra_deriver *dv = NULL;
    CHECK_OK(ra_desc_open(base, 0, &d));
    CHECK_OK(ra_pool_new(1, &p));
    ra_derive_opts o = {.cache_dir = cache};
    if (d && p) CHECK_OK(ra_deriver_open(d, NULL, p, &o, &dv));
    for (int i = 0; dv && i < 3; i++) {
        ra_model *m = NULL;
        CHECK_OK(ra_deriver_load(dv, ra_format_find(i == 2 ? "w4a16" : "awq"), &m));
        ra_model_free(m);
    }
    CHECK_MSG(dv && ra_deriver_n(dv) == 2, "deriver lists %zu checkpoints for awq, awq, w4a16", dv ? ra_deriver_n(dv) : 0);
    ra_deriver_close(dv);
    ra_pool_free(p);
    ra_desc_close(d);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/ra-qmodel-XXXXXX");
    if (!mkdtemp(root)) return 2;
    for (size_t i = 0; i < sizeof calib_ids / sizeof calib_ids[0]; i++) calib_ids[i] = (int32_t)((i * 37 + 11) % VOCAB);
    write_base();
    test_formats();
    test_deterministic();
    test_cached_rows();
    test_malformed();
    test_deriver_lists_once();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) return 2;
    CHECK_DONE();
}
