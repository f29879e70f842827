/* locate: where two runs of a bundle first part, down to the op. The first
 * divergent sequence is re-run for each, prompt then its tokens one step at a
 * time (teacher-forced on run A's tokens), with the engine's activation probe
 * (include/ra/engine.h) hashing every op's output; the first (step, layer,
 * op) whose hashes differ is where the difference enters. CPU kernels only. */
#ifndef RA_LOCATE_H
#define RA_LOCATE_H

#include <stdbool.h>
#include <stdint.h>

#include "ra/status.h"

typedef struct {
    const char *bundle;
    const char *a, *b;        /* "FORMAT@KERNEL" (its first repeat) or "FORMAT@KERNEL:SCENARIO" ("q4_1@cpu:control-ulp") */
    const char *model_path;   /* NULL: the manifest's model.path */
    const char *cache_dir;    /* derived formats' cache (NULL: the default) */
    uint32_t threads;         /* 0: all CPUs */
    bool progress;
} ra_locate_opts;

typedef struct {
    bool identical;           /* the two traces are bit-identical: nothing to locate */
    int64_t seq, step;        /* the traces' first divergence */
    bool found;               /* the re-runs part at an op */
    uint32_t pass;            /* that op's forward pass: 0 the prompt (predicting step 0), k the k-th token */
    int32_t layer;            /* -1: before the first layer or after the last */
    char op[48];
    uint64_t ops_equal;       /* op outputs equal before it */
    bool reproduced_a, reproduced_b; /* each re-run gave its trace's step hashes up to the divergence */
    char run_a[96], run_b[96];       /* the runs, and what was applied to their weights */
} ra_locate_result;

ra_status ra_locate(const ra_locate_opts *o, ra_locate_result *r);

#endif
