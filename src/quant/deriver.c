/* Models in any format from one base description (include/ra/quantize.h):
 * checkpoint formats of an unquantized base go through the derived-checkpoint
 * cache; the rest load from the base as they always did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/model.h"
#include "ra/quantize.h"
#include "ra/textset.h"
#include "ra/util.h"

#define CALIB_SAMPLES 8
#define CALIB_SEQ_LEN 256
#define MAX_DERIVED 64

struct ra_deriver {
    const ra_model_desc *base;
    const ra_tokenizer *tok;
    ra_pool *pool;
    ra_derive_opts o;
    ra_text text;               /* loaded when a format calibrates */
    char *scratch;              /* --no-cache: where checkpoints go, removed at close */
    char *names[MAX_DERIVED], *dirs[MAX_DERIVED];
    size_t n;
};

ra_status ra_deriver_open(const ra_model_desc *base, const ra_tokenizer *tok, ra_pool *pool, const ra_derive_opts *o,
                          ra_deriver **out)
{
    RA_TRY(ra_calloc(out, 1, sizeof **out));
    **out = (ra_deriver){.base = base, .tok = tok, .pool = pool, .o = *o};
    return RA_OK;
}

size_t ra_deriver_n(const ra_deriver *dv) { return dv->n; }

void ra_deriver_at(const ra_deriver *dv, size_t i, const char **format, const char **dir)
{
    *format = dv->names[i];
    *dir = dv->dirs[i];
}

void ra_deriver_close(ra_deriver *dv)
{
    if (!dv) return;
    if (dv->scratch) ra_remove_tree(dv->scratch);
    free(dv->scratch);
    for (size_t i = 0; i < dv->n; i++) free(dv->names[i]), free(dv->dirs[i]);
    ra_text_free(&dv->text);
    free(dv);
}

/* Whether the manifest's list already names format f (one format may run on several kernels). */
static bool recorded(const ra_deriver *dv, const char *name)
{
    for (size_t i = 0; i < dv->n; i++)
        if (!strcmp(dv->names[i], name)) return true;
    return false;
}

/* The checkpoint of format f derived from the base, described. */
static ra_status derive(ra_deriver *dv, const ra_format *f, ra_model_desc **out)
{
    ra_model_config c;
    RA_TRY(ra_config_from_desc(dv->base, &c));
    ra_qformat qf = *f->quant;
    ra_qformat_fit_group(&qf, c.dim, c.n_heads * c.head_dim, c.ffn_dim);
    int32_t *ids = NULL;
    ra_calib_tokens ct = {0};
    if (ra_qformat_calibrated(&qf)) {
        if (!dv->text.ids) RA_TRY(ra_text_load(dv->o.calib_path ? dv->o.calib_path : RA_DEFAULT_TEXT, dv->tok, &dv->text));
        RA_TRY(ra_text_slices(&dv->text, false, CALIB_SAMPLES, CALIB_SEQ_LEN, &ids));
        ct = (ra_calib_tokens){ids, CALIB_SAMPLES, CALIB_SEQ_LEN, {0}};
        memcpy(ct.sha256, dv->text.sha256, 32);
    }
    char cache[4096];
    ra_status s = RA_OK;
    if (dv->o.no_cache && !dv->scratch) s = ra_create_unique("/tmp/repro-audit-derived-", true, &dv->scratch, NULL);
    if (s == RA_OK && !dv->o.no_cache && !dv->o.cache_dir) s = ra_cache_dir_default(cache, sizeof cache);
    const char *where = dv->o.no_cache ? dv->scratch : dv->o.cache_dir ? dv->o.cache_dir : cache;
    ra_quantize_opts qo = {&qf, f->name, ids ? &ct : NULL, dv->pool, dv->o.progress};
    char *dir = NULL;
    bool made;
    if (s == RA_OK) s = ra_derive_checkpoint(dv->base, &qo, where, &dir, &made);
    if (s == RA_OK && dv->o.progress && !made) fprintf(stderr, "  %s from the cache: %s\n", f->name, dir);
    if (s == RA_OK) s = ra_desc_open(dir, 0, out);
    if (s == RA_OK && !dv->o.no_cache && dv->n < MAX_DERIVED && !recorded(dv, f->name)) {
        dv->dirs[dv->n] = dir, dir = NULL;
        if ((s = ra_strdup(&dv->names[dv->n], f->name)) == RA_OK) dv->n++;
        else free(dv->dirs[dv->n]);
    }
    free(dir);
    free(ids);
    return s;
}

ra_status ra_deriver_load(ra_deriver *dv, const ra_format *f, ra_model **m)
{
    ra_model_desc *derived = NULL;
    if (f->quant && dv->base->quant.method == RA_QUANT_NONE) RA_TRY(derive(dv, f, &derived));
    ra_status s = ra_model_load(derived ? derived : dv->base, f, dv->pool, m);
    ra_desc_close(derived); /* the model holds its own copies */
    return s;
}
