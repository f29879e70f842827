/* Elementwise and row-wise CPU ops. Sums run left to right in double where a
 * long reduction feeds a float result; transcendentals go through double. */
#include <math.h>

#include "ra/cpu.h"

float ra_cpu_exp(float x) { return (float)exp((double)x); }

void ra_cpu_rmsnorm(const float *x, const float *g, uint32_t dim, float eps, float *y)
{
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++) ss += (double)x[i] * (double)x[i];
    float scale = (float)(1.0 / sqrt(ss / dim + (double)eps));
    for (uint32_t i = 0; i < dim; i++) y[i] = (x[i] * scale) * g[i];
}

void ra_cpu_log_softmax(float *x, uint32_t n)
{
    float mx = -INFINITY;
    for (uint32_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += exp((double)x[i] - (double)mx);
    double lse = (double)mx + log(sum);
    for (uint32_t i = 0; i < n; i++) x[i] = (float)((double)x[i] - lse);
}

void ra_cpu_swiglu(float *gate, const float *up, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        double g = gate[i];
        gate[i] = (float)(g / (1.0 + exp(-g))) * up[i];
    }
}

int32_t ra_argmax(const float *v, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] > v[best] || (v[best] != v[best] && v[i] == v[i])) best = i; /* a NaN never stays best over a number */
    return (int32_t)best;
}
