/* The model configuration from a description: whatever the container, the
 * same defaults and the same plausibility checks. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ra/model.h"
#include "ra/text.h"

ra_status ra_config_from_desc(const ra_model_desc *d, ra_model_config *c)
{
    *c = d->config;
    const char *where = d->path;
    if (c->n_heads == 0 || (c->head_dim == 0 && c->dim % c->n_heads))
        return ra_fail(RA_ERR_FORMAT, "%s: dim %u not divisible by %u heads", where, c->dim, c->n_heads);
    if (c->head_dim == 0) c->head_dim = c->dim / c->n_heads;
    if (c->n_layers == 0 || c->n_layers > 1024 || c->dim == 0 || c->dim > 65536 || c->ffn_dim == 0 ||
        c->ffn_dim > 1 << 20 || c->n_kv_heads == 0 || c->n_heads % c->n_kv_heads || c->head_dim == 0 ||
        c->head_dim % 2 || c->head_dim > 1024 || c->n_heads > 1024 || c->n_vocab == 0 || c->n_vocab > (1u << 24) ||
        c->max_seq == 0)
        return ra_fail(RA_ERR_FORMAT, "%s: implausible model configuration (layers %u, dim %u, ffn %u, heads %u/%u, head_dim %u, vocab %u)",
                       where, c->n_layers, c->dim, c->ffn_dim, c->n_heads, c->n_kv_heads, c->head_dim, c->n_vocab);
    if (c->sliding_window && c->sliding_window < c->max_seq) c->max_seq = c->sliding_window;
    if (c->max_seq > (1u << 20)) c->max_seq = 1u << 20; /* RoPE tables are built for every position */

    const ra_tensor_desc *emb = ra_desc_find(d, "model.embed_tokens.weight");
    if (!emb) return ra_fail(RA_ERR_FORMAT, "%s: no tensor model.embed_tokens.weight", where);
    if (emb->n_dims != 2 || emb->shape[0] != c->n_vocab || emb->shape[1] != c->dim)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s has shape [%" PRIu64 ", %" PRIu64 "], expected [vocab %u, dim %u]",
                       emb->file, emb->name, emb->shape[0], emb->n_dims > 1 ? emb->shape[1] : 0, c->n_vocab, c->dim);
    for (uint32_t i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] < 0 || (uint32_t)c->eos_ids[i] >= c->n_vocab)
            return ra_fail(RA_ERR_FORMAT, "%s: eos token id %d outside the vocabulary of %u", where, c->eos_ids[i], c->n_vocab);
    if (c->bos_id >= 0 && (uint32_t)c->bos_id >= c->n_vocab) c->bos_id = -1;
    c->eos_id = c->n_eos ? c->eos_ids[0] : -1;
    return RA_OK;
}
