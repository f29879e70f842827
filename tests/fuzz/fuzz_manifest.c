/* libFuzzer target for bundle manifests: any manifest.json either opens into
 * a bundle whose trace paths stay inside it, or fails with a message; verify
 * on an opened bundle reports problems or refuses a path, and never crashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[200], path[240];
    if (!path[0]) { /* under $TMPDIR: a tmpfs there keeps the fuzzer off the disk */
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/ra-fuzz-bundle-XXXXXX", t && *t ? t : "/tmp"); /* mkdtemp fills in the Xs */
        if (!mkdtemp(dir)) abort();
        snprintf(path, sizeof path, "%s/manifest.json", dir);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    ra_bundle *b;
    if (ra_bundle_open(dir, &b) != RA_OK) return 0;
    size_t n = strlen(dir);
    for (uint32_t i = 0; i < b->n_traces; i++) {
        const char *p = b->traces[i].file;
        if (strncmp(p, dir, n) != 0 || p[n] != '/' || strstr(p + n, "/../")) abort();
    }
    uint32_t bad;
    /* a trace path that names no regular file (".", "manifest.json/x") is refused, not a problem */
    ra_status s = ra_bundle_verify(b, NULL, &bad);
    if (s != RA_OK && s != RA_ERR_IO && s != RA_ERR_UNSUPPORTED) abort();
    ra_bundle_close(b);
    return 0;
}
