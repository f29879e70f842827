/* Calibration and evaluation text (include/ra/textset.h). */
#include "ra/textset.h"

#include <stdlib.h>
#include <string.h>

#include "ra/util.h"

ra_status ra_text_load(const char *path, const ra_tokenizer *tok, ra_text *out)
{
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t len;
    ra_status s = ra_read_file_max(path, RA_TEXT_MAX_BYTES, &data, &len);
    if (s == RA_ERR_NOTFOUND || s == RA_ERR_IO)
        return ra_wrap(s, "text %s (the default is fetched by `make text`)", path);
    RA_TRY(s);
    ra_sha256(data, len, out->sha256);
    s = ra_tokenizer_encode(tok, (const char *)data, len, false, &out->ids, &out->n);
    free(data);
    if (s == RA_OK) s = ra_strdup(&out->path, path);
    if (s != RA_OK) {
        ra_text_free(out);
        return ra_wrap(s, "text %s", path);
    }
    return RA_OK;
}

void ra_text_free(ra_text *t)
{
    free(t->ids);
    free(t->path);
    memset(t, 0, sizeof *t);
}

ra_status ra_text_slices(const ra_text *t, bool eval, uint32_t n_seqs, uint32_t seq_len, int32_t **ids)
{
    const size_t half = t->n / 2, start = eval ? half : 0, avail = eval ? t->n - half : half;
    const uint64_t want = (uint64_t)n_seqs * seq_len;
    if (!n_seqs || !seq_len || want > avail)
        return ra_fail(RA_ERR_USAGE, "text %s: %u sequences of %u tokens need %llu tokens; its %s half has %zu", t->path,
                       n_seqs, seq_len, (unsigned long long)want, eval ? "evaluation" : "calibration", avail);
    RA_TRY(ra_calloc(ids, (size_t)want, sizeof **ids));
    memcpy(*ids, t->ids + start, (size_t)want * sizeof **ids);
    return RA_OK;
}
