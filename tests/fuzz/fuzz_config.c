/* libFuzzer target for the HF config.json + quantization_config parser: any
 * input either fails with a message or gives a configuration whose strings
 * are terminated within their buffers, whose eos list fits, and whose
 * quantization description is consistent; then it is freed. Anything else
 * aborts. `make fuzz` builds and runs it; `make test` replays the corpus in
 * tests/fuzz/corpus/fuzz_config. */
#include <stdlib.h>
#include <string.h>

#include "ra/desc.h"

static void terminated(const char *s, size_t n)
{
    if (!memchr(s, 0, n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ra_model_config c;
    ra_quant_config q;
    if (ra_hf_config_parse((const char *)data, size, "fuzz/config.json", &c, &q) != RA_OK) return 0;
    terminated(c.arch, sizeof c.arch);
    terminated(c.name, sizeof c.name);
    terminated(c.dtype, sizeof c.dtype);
    if (c.n_eos > RA_MAX_EOS || (c.n_eos && c.eos_id != c.eos_ids[0]) || !c.n_layers || !c.dim || !c.n_heads) abort();
    if (c.rope.kind == RA_ROPE_LLAMA3 && !(c.rope.high_freq_factor > c.rope.low_freq_factor)) abort();
    terminated(q.method_name, sizeof q.method_name);
    terminated(q.format, sizeof q.format);
    terminated(q.layout, sizeof q.layout);
    terminated(q.summary, sizeof q.summary);
    if ((q.method == RA_QUANT_NONE) != (q.method_name[0] == 0)) abort();
    if (q.format[0] && q.method == RA_QUANT_NONE) abort();
    for (size_t i = 0; i < q.n_ignore; i++)
        if (!q.ignore[i]) abort();
    ra_quant_config_free(&q);
    return 0;
}
