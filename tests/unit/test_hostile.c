/* Issue 11 regressions at the API level, through functions that predate the
 * fixes (so this file also builds against the old tree and fails there):
 * writers facing a symlink planted at their old predictable temporary name
 * (row 2), and the greedy argmax facing NaN (row 9). The shell-level cases
 * are in tests/hostile/run.sh. */
#include "check.h"
#include "ra/cpu.h"
#include "ra/audit.h"
#include "ra/safetensors.h"
#include "ra/trace.h"
#include "ra/util.h"

#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/ra-hostile-XXXXXX"; /* a mkdtemp template */

/* Plants DIR/NAME.tmp.PID -> DIR/victim (the old writers' temporary name) and
 * checks, after the write, that the victim still holds what it held. */
static void plant(const char *path, char *victim, size_t n)
{
    snprintf(victim, n, "%s/victim", dir);
    FILE *f = fopen(victim, "w");
    CHECK(f && fputs("precious\n", f) >= 0 && fclose(f) == 0);
    char link[600];
    snprintf(link, sizeof link, "%s.tmp.%ld", path, (long)getpid());
    unlink(link);
    CHECK(symlink(victim, link) == 0);
}

static void victim_intact(int line, const char *victim)
{
    uint8_t *data;
    size_t len;
    CHECK_OK(ra_read_file(victim, &data, &len));
    CHECK_MSG(len == 9 && !memcmp(data, "precious\n", 9), "line %d: a writer wrote through a planted symlink", line);
    free(data);
}

static void test_planted_symlinks(void)
{
    char path[512], victim[512];

    snprintf(path, sizeof path, "%s/report.json", dir);
    plant(path, victim, sizeof victim);
    ra_write_file_atomic(path, "{}", 2);
    victim_intact(__LINE__, victim);

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    plant(path, victim, sizeof victim);
    static const float w[2] = {1, 2};
    ra_st_tensor t = {"w", "F32", 1, {2}, w, sizeof w};
    ra_safetensors_write(path, &t, 1, NULL, NULL, 0);
    victim_intact(__LINE__, victim);

    snprintf(path, sizeof path, "%s/t.ratrace", dir);
    plant(path, victim, sizeof victim);
    ra_trace_meta m = {.format = "f32", .kernel = "cpu", .mode = "generate", .n_vocab = 2, .top_k = 1};
    ra_trace_writer *tw;
    CHECK_OK(ra_trace_writer_open(path, &m, &tw));
    const int32_t prompt[1] = {0};
    const float lp[2] = {-0.5f, -1.0f};
    CHECK_OK(ra_trace_begin_seq(tw, 0, prompt, 1));
    CHECK_OK(ra_trace_add_step(tw, 0, lp, true));
    ra_trace_writer_finish(tw, NULL);
    victim_intact(__LINE__, victim);
}

static void test_argmax_nan(void)
{
    const float nan0[4] = {NAN, -0.5f, -1.0f, -INFINITY};
    CHECK(ra_argmax(nan0, 4) == 1); /* NaN ranks below every number, as in top-k */
    const float nan_last[3] = {-2.0f, -1.0f, NAN};
    CHECK(ra_argmax(nan_last, 3) == 1);
    const float inf_nan[3] = {NAN, -INFINITY, NAN};
    CHECK(ra_argmax(inf_nan, 3) == 1); /* -inf is still a number */
    const float all_nan[2] = {NAN, NAN};
    CHECK(ra_argmax(all_nan, 2) == 0);
    const float ties[3] = {-1.0f, -0.5f, -0.5f};
    CHECK(ra_argmax(ties, 3) == 1); /* ties to the lowest id */
    int32_t id;
    float val;
    ra_topk(nan0, 4, 1, &id, &val);
    CHECK(id == ra_argmax(nan0, 4)); /* the greedy token is the first top-k entry */
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_planted_symlinks();
    test_argmax_nan();
    ra_remove_tree(dir);
    CHECK_DONE();
}
