/* Loading a quantized checkpoint's linear layers for a checkpoint format
 * (include/ra/qformat.h): the layer's tensors gathered from the description
 * by name, unpacked (every name, dtype and shape checked) into the format's
 * in-memory layer. Layers the checkpoint left unquantized (ignore lists,
 * modules_to_not_convert) are kept as stored. */
#include <stdio.h>
#include <string.h>

#include "ra/model.h"
#include "ra/qformat.h"
#include "ra/util.h"
#include "model_internal.h"

ra_status ra_qload_check(const ra_model_desc *d, const ra_format *f, ra_qformat *ck)
{
    if (!f->quant) {
        if (d->quant.method == RA_QUANT_NONE) return RA_OK;
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: the checkpoint is quantized (%s); format %s cannot run it (run it as %s)",
                       d->path, d->quant.summary, f->name, d->quant.format[0] ? d->quant.format : "a format of its own");
    }
    if (d->quant.method == RA_QUANT_NONE)
        return ra_fail(RA_ERR_USAGE, "%s is not quantized; format %s is derived from it by `run` or `quantize`", d->path,
                       f->name);
    ra_status s = ra_qformat_of_checkpoint(&d->quant, ck);
    if (s != RA_OK) return ra_wrap(s, "%s", d->path);
    if (!ra_qformat_can_load(f->quant, ck))
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: the checkpoint (%s) cannot run as format %s", d->path, d->quant.summary,
                       f->name);
    return RA_OK;
}

/* Borrows every tensor `module + suffix` the family may have; *file: where the layer is stored. */
static ra_status gather(const ra_model_desc *d, const char *module, ra_qfamily fam, ra_qtensors *t, const char **file)
{
    for (const char *const *sfx = ra_qformat_suffixes(fam); *sfx; sfx++) {
        char name[RA_QT_NAME_MAX];
        snprintf(name, sizeof name, "%s%s", module, *sfx);
        const ra_tensor_desc *td = ra_desc_find(d, name);
        if (!td) continue;
        *file = td->file;
        ra_qt_dtype dt;
        ra_status s = ra_qt_dtype_parse(ra_stype_name(td->type), &dt);
        if (s == RA_OK && td->n_dims > 4) s = ra_fail(RA_ERR_FORMAT, "%u dimensions", td->n_dims);
        if (s == RA_OK) s = ra_qtensors_borrow(t, *sfx, dt, td->n_dims, td->shape, td->data, td->nbytes);
        if (s != RA_OK) return ra_wrap(s, "%s: tensor %s", td->file, name);
    }
    return RA_OK;
}

ra_status ra_qload_linear(const ra_model_desc *d, const ra_format *f, const ra_qformat *ck, const char *name,
                          uint32_t rows, uint32_t cols, ra_weight *w)
{
    const ra_tensor_desc *dense = ra_desc_find(d, name);
    if (dense && dense->ggml_type != RA_NO_GGML) /* left unquantized by the checkpoint */
        return ra_load_dense(d, dense->type == RA_ST_BF16 ? ra_format_find("bf16") : ra_format_find("f32"), name, rows,
                             cols, w);
    char module[RA_QT_NAME_MAX];
    size_t len = strlen(name);
    if (len < 7 || len - 7 >= sizeof module || strcmp(name + len - 7, ".weight"))
        return ra_fail(RA_ERR_INTERNAL, "linear layer name %s", name);
    memcpy(module, name, len - 7);
    module[len - 7] = 0;
    ra_qtensors t = {0};
    ra_qlayer q;
    const char *file = d->path;
    ra_status s = gather(d, module, ck->family, &t, &file);
    if (s == RA_OK && t.n == 0)
        s = ra_fail(RA_ERR_FORMAT, "%s: layer %s has none of the %s tensors", d->path, module, ra_qfamily_name(ck->family));
    if (s == RA_OK) {
        s = ra_qformat_unpack(f->quant, ck, &d->quant, &t, &q);
        if (s != RA_OK) s = ra_wrap(s, "%s: layer %s", file, module);
    }
    ra_qtensors_free(&t);
    RA_TRY(s);
    if (ra_qlayer_rows(&q) != rows || ra_qlayer_cols(&q) != cols) {
        s = ra_fail(RA_ERR_FORMAT, "%s: layer %s is %u x %u, expected %u x %u", file, module, ra_qlayer_rows(&q),
                    ra_qlayer_cols(&q), rows, cols);
        ra_qlayer_free(&q);
        return s;
    }
    return ra_weight_from_qlayer(&q, w);
}
