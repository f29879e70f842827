/* A quantized linear layer on the device, in its checkpoint's own packing
 * (kernels.h, ra_qweight), for ra_k_qgemm. Private to src/backend/cuda/ and
 * tests/gpu/. */
#ifndef RA_CUDA_QLINEAR_H
#define RA_CUDA_QLINEAR_H

#include "kernels.h"
#include "ra/qformat.h"

typedef struct {
    ra_qweight w;      /* device pointers */
    void *buf[5];
    size_t bytes;      /* what one product reads: packed weights, scales, zeros, g_idx */
} ra_cuda_qlayer;

/* Packs q as its checkpoint stores it (ra_qformat_pack) and uploads the
 * tensors; Marlin's repacked layer as it is in memory (kernels/marlin.cu). */
ra_status ra_cuda_qlayer_upload(const ra_qformat *f, const ra_qlayer *q, ra_cuda_qlayer *out);
void ra_cuda_qlayer_free(ra_cuda_qlayer *d);

#endif
