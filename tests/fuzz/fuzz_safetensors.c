/* libFuzzer target for the safetensors header parser: any input either fails
 * to open or gives tensors whose spans lie inside the input, tile the data
 * section in order, match shape x dtype size, and are all findable by name.
 * Anything else aborts. `make fuzz` builds and runs it; `make test` replays the
 * corpus in tests/fuzz/corpus/fuzz_safetensors. */
#include <stdlib.h>
#include <string.h>

#include "ra/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ra_st_file *f;
    if (ra_safetensors_open_memory(data, size, "fuzz.safetensors", &f) != RA_OK) return 0;
    uint64_t at = 0, off = ra_safetensors_data_offset(f);
    if (off > size) abort();
    for (size_t i = 0; i < ra_safetensors_n_tensors(f); i++) {
        const ra_st_info *t = ra_safetensors_tensor_at(f, i);
        if (ra_safetensors_find(f, t->name) != t || t->begin != at || t->end < t->begin) abort();
        if (t->data != data + off + t->begin || t->end > size - off) abort();
        uint64_t n = ra_stype_size(t->type);
        for (uint32_t d = 0; d < t->n_dims; d++) n *= t->shape[d];
        if (n != t->end - t->begin) abort();
        volatile uint8_t sink = 0;
        for (uint64_t b = 0; b < t->end - t->begin; b++) sink ^= t->data[b]; /* every byte readable */
        (void)sink;
        at = t->end;
    }
    if (off + at != size) abort();
    for (size_t i = 0; i < ra_safetensors_n_meta(f); i++) {
        const char *k, *v;
        ra_safetensors_meta_at(f, i, &k, &v);
        if (!k || !v || ra_safetensors_meta(f, k) == NULL) abort();
    }
    ra_safetensors_close(f);
    return 0;
}
