#include "ra/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ra/json.h"
#include "ra/util.h"

ra_status ra_safetensors_write(const char *path, const ra_st_tensor *t, size_t n, const char *const *meta_keys,
                               const char *const *meta_vals, size_t n_meta)
{
    cJSON *h = cJSON_CreateObject();
    if (n_meta) {
        cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
        for (size_t i = 0; i < n_meta; i++) cJSON_AddStringToObject(meta, meta_keys[i], meta_vals[i]);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", t[i].dtype);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (uint32_t d = 0; d < t[i].n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t[i].nbytes)));
        off += t[i].nbytes;
    }
    char *json;
    ra_status s = ra_json_print(h, false, &json);
    cJSON_Delete(h);
    if (s != RA_OK) return s;
    size_t jlen = strlen(json), padded = (jlen + 7) / 8 * 8;

    /* A new file at a random name: nothing planted there is written through. */
    char prefix[4096], *tmp;
    int fd;
    snprintf(prefix, sizeof prefix, "%s.tmp-", path);
    s = ra_create_unique(prefix, false, &tmp, &fd);
    FILE *f = s == RA_OK ? fdopen(fd, "wb") : NULL;
    if (!f) {
        if (s == RA_OK) {
            s = ra_fail(RA_ERR_IO, "%s: cannot open: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        free(json);
        return s;
    }
    uint8_t len8[8];
    ra_put_le64(len8, padded);
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(json, 1, jlen, f) == jlen;
    for (size_t i = jlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < n; i++) ok = fwrite(t[i].data, 1, t[i].nbytes, f) == t[i].nbytes;
    free(json);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return ra_fail(RA_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return RA_OK;
}
