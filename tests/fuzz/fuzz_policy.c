/* libFuzzer target for ra_policy_parse (the gate's policy file): any input
 * either fails with a message or gives rules whose keys are unique and well
 * formed, and whose bounds are finite, in range and present exactly when the
 * expectation is "within". */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ra/check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ra_policy *p;
    if (ra_policy_parse("fuzz.json", (const char *)data, size, &p) != RA_OK) return 0;
    if (p->n > RA_POLICY_MAX_RULES) abort();
    for (uint32_t i = 0; i < p->n; i++) {
        const ra_policy_rule *r = &p->rules[i];
        if (!r->key[0] || (r->key[0] != '*' && !strchr(r->key, '@'))) abort();
        for (uint32_t j = i + 1; j < p->n; j++)
            if (!strcmp(r->key, p->rules[j].key)) abort();
        bool any = !isnan(r->kl_max) || !isnan(r->max_abs) || !isnan(r->top1_min);
        if (any != (r->expect == RA_POLICY_WITHIN)) abort();
        if (!isnan(r->kl_max) && !(r->kl_max >= 0 && isfinite(r->kl_max))) abort();
        if (!isnan(r->max_abs) && !(r->max_abs >= 0 && isfinite(r->max_abs))) abort();
        if (!isnan(r->top1_min) && !(r->top1_min >= 0 && r->top1_min <= 1)) abort();
    }
    ra_policy_free(p);
    return 0;
}
