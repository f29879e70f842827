/* A fixed pool of worker threads. ra_pool_for hands out task indices through
 * an atomic counter; the calling thread works too. Which thread runs a task
 * never changes its result: tasks write disjoint outputs.
 *
 * A forward pass calls ra_pool_for hundreds of times per token, so waking
 * sleeping threads (a futex round trip each time) would cost more than the
 * work at batch 1: workers and the caller spin on atomics for a while
 * (SPIN_ITERS, a few tens of microseconds) before they sleep on a condition
 * variable. Sleepers are woken by the Dekker pattern: each side publishes
 * its own atomic, then reads the other's (sequentially consistent). */
#include "ra/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "ra/util.h"

#define SPIN_ITERS 20000

struct ra_pool {
    uint32_t n_threads;          /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    atomic_uint_fast64_t generation; /* bumped for each ra_pool_for */
    atomic_bool stop;
    atomic_uint sleepers;        /* workers waiting on work_cv */
    atomic_bool caller_waits;    /* the caller waits on done_cv */
    ra_task_fn fn;
    void *ctx;
    uint32_t n_tasks;
    atomic_uint next;
    atomic_uint busy;            /* workers still inside the current generation */
};

/* One spin step; every 64th yields the core, so a spinning thread does not
 * hold it while the thread it waits for (or another program) is runnable. */
static inline void cpu_relax(int i)
{
    if ((i & 63) == 63) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_tasks(ra_pool *p)
{
    for (;;) {
        uint32_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_tasks) return;
        p->fn(p->ctx, i);
    }
}

/* Waits until the generation differs from seen (or stop); returns false on stop. */
static bool wait_work(ra_pool *p, uint64_t seen)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load(&p->stop)) return false;
        if (atomic_load(&p->generation) != seen) return true;
        cpu_relax(i);
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (!atomic_load(&p->stop) && atomic_load(&p->generation) == seen) pthread_cond_wait(&p->work_cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return !atomic_load(&p->stop);
}

static void *worker(void *arg)
{
    ra_pool *p = arg;
    uint64_t seen = 0;
    while (wait_work(p, seen)) {
        seen = atomic_load(&p->generation);
        run_tasks(p);
        if (atomic_fetch_sub(&p->busy, 1) == 1 && atomic_load(&p->caller_waits)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
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
    atomic_store(&p->stop, true);
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
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->busy, p->n_threads - 1);
    atomic_fetch_add(&p->generation, 1); /* publishes the fields above */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p);
    for (int i = 0; i < SPIN_ITERS && atomic_load(&p->busy) > 0; i++) cpu_relax(i);
    if (atomic_load(&p->busy) > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_waits, true);
        while (atomic_load(&p->busy) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        atomic_store(&p->caller_waits, false);
        pthread_mutex_unlock(&p->mu);
    }
}
