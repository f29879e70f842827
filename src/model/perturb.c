/* The negative control's planted difference: one weight moved by one unit in
 * the last place of what is stored. A verdict of "identical" means something
 * only if a change this small is seen; `run --scenarios control` and `locate`
 * use it. */
#include <stdio.h>
#include <string.h>

#include "ra/model.h"
#include "ra/util.h"

static const char *const tensor_names[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

static ra_weight *layer_tensor(ra_layer *L, size_t i)
{
    ra_weight *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return w[i];
}

static const char *tensor_prefix(size_t i) { return i < 4 ? "self_attn" : "mlp"; }

ra_status ra_perturb_parse(const char *spec, ra_perturb *out)
{
    memset(out, 0, sizeof *out);
    const char *colon = spec ? strchr(spec, ':') : NULL;
    uint32_t layer = 0;
    size_t nd = colon ? (size_t)(colon - spec) : 0;
    bool digits = nd > 0 && nd <= 4 && strspn(spec, "0123456789") == nd;
    for (size_t i = 0; digits && i < nd; i++) layer = layer * 10 + (uint32_t)(spec[i] - '0');
    for (size_t i = 0; digits && i < sizeof tensor_names / sizeof *tensor_names; i++)
        if (!strcmp(colon + 1, tensor_names[i])) {
            out->layer = layer;
            out->tensor = (uint32_t)i;
            return RA_OK;
        }
    return ra_fail(RA_ERR_USAGE, "perturbation '%s' is not LAYER:TENSOR (TENSOR one of q_proj, k_proj, v_proj, o_proj, "
                   "gate_proj, up_proj, down_proj)", spec ? spec : "");
}

void ra_perturb_name(const ra_perturb *p, char *out, size_t n)
{
    snprintf(out, n, "model.layers.%u.%s.%s.weight", p->layer, tensor_prefix(p->tensor), tensor_names[p->tensor]);
}

void ra_perturb_op(const ra_perturb *p, char *out, size_t n)
{
    snprintf(out, n, "%s.%s", tensor_prefix(p->tensor), tensor_names[p->tensor]);
}

/* One ulp up of a stored 16-bit float (the block scale d, or a bf16 weight),
 * away from zero; an all-ones exponent (inf/NaN) is left alone by refusing. */
static ra_status bump16(uint8_t *at, uint16_t exp_mask, const char *name, char *what, size_t n, const char *kind)
{
    uint16_t v = (uint16_t)(at[0] | at[1] << 8);
    if ((v & exp_mask) == exp_mask) return ra_fail(RA_ERR_UNSUPPORTED, "%s: its first %s is not finite", name, kind);
    uint16_t w = (uint16_t)(v + 1);
    at[0] = (uint8_t)w;
    at[1] = (uint8_t)(w >> 8);
    snprintf(what, n, "%s, row 0: %s 0x%04x -> 0x%04x (one ulp)", name, kind, v, w);
    return RA_OK;
}

ra_status ra_model_perturb(ra_model *m, const ra_perturb *p, char *what, size_t n)
{
    char name[128];
    ra_perturb_name(p, name, sizeof name);
    if (p->layer >= m->cfg.n_layers)
        return ra_fail(RA_ERR_USAGE, "perturbation: layer %u, but the model has %u layers", p->layer, m->cfg.n_layers);
    ra_weight *w = layer_tensor(&m->layers[p->layer], p->tensor);
    if (w->borrowed || !w->data || w->rows == 0)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: a %s weight cannot be perturbed (format %s)", name, ra_wtype_name(w->type), m->format->name);
    switch (w->type) {
    case RA_W_F32: {
        float f;
        memcpy(&f, w->data, 4);
        uint32_t b = ra_f32_bits(f);
        if ((b & 0x7f800000u) == 0x7f800000u) return ra_fail(RA_ERR_UNSUPPORTED, "%s: its first weight is not finite", name);
        uint32_t nb = b + 1;
        memcpy(w->data, &nb, 4);
        snprintf(what, n, "%s, row 0: float 0x%08x -> 0x%08x (one ulp)", name, b, nb);
        return RA_OK;
    }
    case RA_W_BF16: return bump16(w->data, 0x7f80, name, what, n, "bfloat16 weight");
    case RA_W_Q4_1:
    case RA_W_Q8_0:
    case RA_W_Q4_0: return bump16(w->data, 0x7c00, name, what, n, "block scale d (f16)");
    default: break;
    }
    return ra_fail(RA_ERR_UNSUPPORTED, "%s: %s weights cannot be perturbed yet (use f32, bf16, q4_1, q8_0 or q4_0)", name,
                   ra_wtype_name(w->type));
}
