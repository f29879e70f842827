/* A fixed pool of worker threads. ra_pool_for hands out task indices through
 * an atomic counter; the calling thread works too. Which thread runs a task
 * never changes its result: tasks write disjoint outputs. */
#include "ra/cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "ra/util.h"

struct ra_pool {
    uint32_t n_threads;          /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    uint64_t generation;         /* bumped for each ra_pool_for */
    bool stop;
    ra_task_fn fn;
    void *ctx;
    uint32_t n_tasks;
    atomic_uint next;
    uint32_t busy;               /* workers still inside the current generation */
};

static void run_tasks(ra_pool *p)
{
    for (;;) {
        uint32_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_tasks) return;
        p->fn(p->ctx, i);
    }
}

static void *worker(void *arg)
{
    ra_pool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ra_status ra_pool_new(uint32_t n_threads, ra_pool **out)
{
    if (n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (uint32_t)n : 1;
    }
    if (n_threads > 256) n_threads = 256;
    ra_pool *p;
    RA_TRY(ra_calloc(&p, 1, sizeof *p));
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (n_threads > 1) {
        ra_status s = ra_calloc(&p->threads, n_threads - 1, sizeof *p->threads);
        if (s != RA_OK) { free(p); return s; }
        for (uint32_t i = 0; i + 1 < n_threads; i++) {
            if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
                p->n_threads = i + 1;
                ra_pool_free(p);
                return ra_fail(RA_ERR_INTERNAL, "cannot start worker thread %u", i);
            }
        }
    }
    *out = p;
    return RA_OK;
}

void ra_pool_free(ra_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (uint32_t i = 0; i + 1 < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p);
}

uint32_t ra_pool_threads(const ra_pool *p) { return p ? p->n_threads : 1; }

void ra_pool_for(ra_pool *p, uint32_t n_tasks, ra_task_fn fn, void *ctx)
{
    if (!p || p->n_threads == 1 || n_tasks <= 1) {
        for (uint32_t i = 0; i < n_tasks; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
