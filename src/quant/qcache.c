/* Derived formats for `run`: the checkpoint a format derives from a base
 * model, cached by content (include/ra/quantize.h). The key is the SHA-256
 * of the base model's files (name, size, SHA-256 of each), the format's name
 * and parameters, the calibration text's SHA-256 and slice when the format
 * calibrates, and the tool's version with RA_QUANT_VERSION; the entry is the
 * checkpoint directory `quantize` would write, renamed into place complete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/quantize.h"
#include "ra/util.h"
#include "ra/version.h"

ra_status ra_cache_dir_default(char *buf, size_t n)
{
    const char *env = getenv("REPRO_AUDIT_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    if (env && env[0]) len = snprintf(buf, n, "%s", env);
    else if (xdg && xdg[0]) len = snprintf(buf, n, "%s/repro-audit", xdg);
    else if (home && home[0]) len = snprintf(buf, n, "%s/.cache/repro-audit", home);
    else return ra_fail(RA_ERR_USAGE, "no cache directory: set REPRO_AUDIT_CACHE or HOME, or give --cache-dir or --no-cache");
    if (len < 0 || (size_t)len >= n) return ra_fail(RA_ERR_USAGE, "cache directory path too long");
    return RA_OK;
}

static void put_u32(ra_sha256_ctx *h, uint32_t v)
{
    uint8_t b[8];
    ra_put_le64(b, v);
    ra_sha256_update(h, b, 8);
}

static void put_str(ra_sha256_ctx *h, const char *s)
{
    put_u32(h, (uint32_t)strlen(s));
    ra_sha256_update(h, s, strlen(s));
}

ra_status ra_derive_key(const ra_model_desc *base, const char *name, const ra_qformat *f, const ra_calib_tokens *calib,
                        char hex[65])
{
    ra_sha256_ctx *h;
    RA_TRY(ra_sha256_new(&h));
    put_str(h, "repro-audit derived checkpoint");
    put_str(h, RA_VERSION);
    put_u32(h, RA_QUANT_VERSION);
    put_u32(h, (uint32_t)base->n_files);
    for (size_t i = 0; i < base->n_files; i++) {
        const char *b = strrchr(base->files[i].path, '/');
        put_str(h, b ? b + 1 : base->files[i].path);
        put_u32(h, (uint32_t)(base->files[i].bytes >> 32));
        put_u32(h, (uint32_t)base->files[i].bytes);
        ra_sha256_update(h, base->files[i].sha256, 32);
    }
    put_str(h, name);
    const uint32_t params[] = {f->family, f->method, f->bits, (uint32_t)f->group_size, f->sym, f->act_order,
                               f->fp8_scheme, f->fp8_act};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) put_u32(h, params[i]);
    if (calib) {
        ra_sha256_update(h, calib->sha256, 32);
        put_u32(h, calib->n_seqs);
        put_u32(h, calib->seq_len);
    }
    uint8_t d[32];
    ra_sha256_final(h, d);
    ra_hex(d, 32, hex);
    return RA_OK;
}

ra_status ra_derive_checkpoint(const ra_model_desc *base, const ra_quantize_opts *o, const char *cache_dir, char **dir, bool *made)
{
    *dir = NULL;
    *made = false;
    const ra_qformat *f = o->format;
    bool calibrated = ra_qformat_calibrated(f);
    char hex[65], path[4096];
    RA_TRY(ra_derive_key(base, o->name, f, calibrated ? o->calib : NULL, hex));
    if (snprintf(path, sizeof path, "%s/derived/%s-%.16s", cache_dir, o->name, hex) >= (int)sizeof path)
        return ra_fail(RA_ERR_USAGE, "%s: cache path too long", cache_dir);
    if (ra_is_dir(path)) return ra_strdup(dir, path);
    char parent[4096];
    snprintf(parent, sizeof parent, "%s/derived", cache_dir);
    RA_TRY(ra_mkdirs(parent));
    ra_quantize_stats st;
    ra_status s = ra_quantize_model(base, o, path, &st);
    if (s != RA_OK && ra_is_dir(path)) { /* another run put it there first */
        ra_clear_error();
        return ra_strdup(dir, path);
    }
    RA_TRY(s);
    *made = true;
    if (o->progress)
        fprintf(stderr, "  %s derived in %.1fs (peak resident %.0f MB): %s\n", o->name, st.seconds, st.peak_rss_bytes / 1e6,
                path);
    return ra_strdup(dir, path);
}
