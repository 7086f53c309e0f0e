/* bench.h - workloads shared by the libbgloop and libuv benchmark sides.
 *
 * Each workload exists twice, once per library (bench_bgloop.c,
 * bench_libuv.c), doing the same operations in the same order.  A workload
 * function performs `n` operations, checks that they all happened (a
 * benchmark that silently does less work would flatter its library) and
 * returns the elapsed CPU nanoseconds (see bench_now_ns()), or a negative
 * errno.
 */
#ifndef BGLOOP_BENCH_H
#define BGLOOP_BENCH_H

#include <stdint.h>
#include <time.h>

/* One callback schedules the next: n loop iterations, one callback each. */
int64_t bgl_bench_chain(long n);
int64_t uv_bench_chain(long n);

/* Batches of BENCH_BATCH callbacks queued together, run in one iteration. */
#define BENCH_BATCH 1000
int64_t bgl_bench_batch(long n);
int64_t uv_bench_batch(long n);

/* Rounds of BENCH_TIMERS timers: arm all (half due now, half far in the
 * future with distinct deadlines), cancel the far half, run the loop until
 * the due half fired.  n counts armed timers (fired or cancelled). */
#define BENCH_TIMERS 10000
int64_t bgl_bench_timers(long n);
int64_t uv_bench_timers(long n);

/* One byte bounced between the two ends of a socketpair, each end with its
 * own read watcher.  n counts one-way messages. */
int64_t bgl_bench_pingpong(long n);
int64_t uv_bench_pingpong(long n);

/* libbgloop only (libuv has no service manager): register
 * BENCH_SVC_LAYERS x BENCH_SVC_WIDTH services, each depending on every
 * service of the layer below, start them all (the start hooks report ready
 * at once), then stop them all (the stop hooks report the end at once).
 * Returns the CPU nanoseconds of the whole, or a negative errno. */
#define BENCH_SVC_LAYERS 20
#define BENCH_SVC_WIDTH 50
int64_t bgl_bench_services(void);

/* The benchmarks' clock: CPU time of the process (all workloads run on one
 * thread, and neither library starts threads for them).  On a shared
 * machine, time spent waiting for a CPU is not charged to the library that
 * happened to run then, which wall-clock time would do. */
static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The order in which the far timers are armed: a fixed permutation (7919 is
 * odd and coprime with BENCH_TIMERS, so odd slots map to odd slots), so the
 * heap sees inserts all over it rather than in sorted order. */
static inline long bench_far_key(long i)
{
    return (i * 7919) % BENCH_TIMERS;
}

#endif /* BGLOOP_BENCH_H */
