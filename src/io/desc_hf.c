/* HF checkpoint directories (next commit). */
#include "desc_internal.h"

ra_status ra_desc_open_hf(const char *dir, unsigned flags, ra_model_desc **out)
{
    (void)flags;
    *out = NULL;
    return ra_fail(RA_ERR_UNSUPPORTED, "%s: HF checkpoint directories are not supported yet", dir);
}
