/* test_loop_threadsafe.c - bgl_loop_call_threadsafe() and bgl_loop_wakeup()
 * from other threads: nothing lost, per-thread order kept, blocked loops
 * woken, undelivered calls discarded on free, and at most
 * BGL_THREADSAFE_BATCH calls per iteration, so a flood of them cannot
 * starve timers and I/O. */
#include "helpers.h"

#ifdef _WIN32
#  define pthread_tryjoin_np _pthread_tryjoin /* winpthreads' name */
#endif

#include <pthread.h>
#include <stdatomic.h>

TestSuite(threadsafe, .timeout = BGL_TEST_TIMEOUT);

#define THREADS 8
#define CALLS_PER_THREAD 100000

static struct {
    bgl_loop *loop;
    pthread_t loop_thread;
    long next_seq[THREADS];
    long received;
    long out_of_order;
    long wrong_thread;
    atomic_int threads_done;
} ts;

/* userdata packs (thread << 32 | sequence number). */
static void receive(void *ud)
{
    uintptr_t v = (uintptr_t)ud;
    int thread = (int)(v >> 32);
    long seq = (long)(v & 0xffffffffu);
    if (seq != ts.next_seq[thread])
        ts.out_of_order++;
    ts.next_seq[thread] = seq + 1;
    if (!pthread_equal(pthread_self(), ts.loop_thread))
        ts.wrong_thread++;
    ts.received++;
}

static void *producer(void *arg)
{
    uintptr_t thread = (uintptr_t)arg;
    for (uintptr_t i = 0; i < CALLS_PER_THREAD; i++) {
        int rc = bgl_loop_call_threadsafe(ts.loop, receive, (void *)(thread << 32 | i), NULL);
        if (rc != 0)
            return (void *)(intptr_t)rc;
    }
    atomic_fetch_add(&ts.threads_done, 1);
    return NULL;
}

Test(threadsafe, eight_threads_times_100000_calls_none_lost_order_kept)
{
    bgl_loop *loop = ts.loop = new_loop();
    ts.loop_thread = pthread_self();
    pthread_t th[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, producer, (void *)i), 0);
    /* Run while they post.  A producer that failed never counts itself
     * done, so an idle iteration checks for one that exited with an error. */
    while (atomic_load(&ts.threads_done) < THREADS) {
        int rc = bgl_loop_run_once(loop, 100 * MS);
        cr_assert_geq(rc, 0, "run_once: %s", bgl_strerror(rc));
        for (int i = 0; rc == 0 && i < THREADS; i++) {
            void *ret = NULL;
            if (!pthread_equal(th[i], ts.loop_thread) && pthread_tryjoin_np(th[i], &ret) == 0) {
                cr_assert_null(ret, "producer %d: call_threadsafe failed: %s", i,
                               bgl_strerror((int)(intptr_t)ret));
                th[i] = ts.loop_thread; /* joined */
            }
        }
    }
    for (int i = 0; i < THREADS; i++) {
        if (pthread_equal(th[i], ts.loop_thread))
            continue;
        void *ret = NULL;
        pthread_join(th[i], &ret);
        cr_assert_null(ret, "producer %d: call_threadsafe failed: %s", i,
                       bgl_strerror((int)(intptr_t)ret));
    }
    /* Every call was made before the joins: they are all queued now. */
    int rc;
    while ((rc = bgl_loop_run_once(loop, 0)) > 0) {
    }
    cr_assert_eq(rc, 0, "run_once: %s", bgl_strerror(rc));
    cr_assert_eq(ts.received, (long)THREADS * CALLS_PER_THREAD, "received %ld of %ld calls",
                 ts.received, (long)THREADS * CALLS_PER_THREAD);
    cr_assert_eq(ts.out_of_order, 0, "%ld calls out of per-thread order", ts.out_of_order);
    cr_assert_eq(ts.wrong_thread, 0, "%ld calls ran off the loop thread", ts.wrong_thread);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(ts.next_seq[i], CALLS_PER_THREAD);
    free_loop(loop);
}

static atomic_int woken_calls;
static void note_call(void *ud)
{
    (void)ud;
    atomic_fetch_add(&woken_calls, 1);
}

static void *post_after_20ms(void *arg)
{
    sleep_ns(20 * MS);
    if (arg)
        bgl_loop_call_threadsafe(arg, note_call, NULL, NULL);
    return NULL;
}

static void *wakeup_after_20ms(void *arg)
{
    sleep_ns(20 * MS);
    bgl_loop_wakeup(arg);
    return NULL;
}

Test(threadsafe, call_from_another_thread_wakes_a_blocked_loop_at_once)
{
    bgl_loop *loop = new_loop();
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, post_after_20ms, loop), 0);
    uint64_t start = bgl_monotonic_ns();
    int rc = bgl_loop_run_once(loop, 60 * SEC);
    uint64_t took = bgl_monotonic_ns() - start;
    pthread_join(th, NULL);
    cr_assert_eq(rc, 1, "run_once returned %d", rc);
    cr_assert_eq(atomic_load(&woken_calls), 1);
    cr_assert_lt(took, (uint64_t)(30 * SEC), "not woken: blocked for %llu ns",
                 (unsigned long long)took);
    free_loop(loop);
}

Test(threadsafe, call_from_another_thread_wakes_an_infinite_wait)
{
    bgl_loop *loop = new_loop();
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, post_after_20ms, loop), 0);
    EXPECT_RC(bgl_loop_run_once(loop, -1), 1); /* a lost wakeup hangs: test timeout */
    pthread_join(th, NULL);
    free_loop(loop);
}

Test(threadsafe, wakeup_returns_a_blocked_run_once_without_dispatching)
{
    bgl_loop *loop = new_loop();
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, wakeup_after_20ms, loop), 0);
    uint64_t start = bgl_monotonic_ns();
    int rc = bgl_loop_run_once(loop, 60 * SEC);
    uint64_t took = bgl_monotonic_ns() - start;
    pthread_join(th, NULL);
    cr_assert_eq(rc, 0);
    cr_assert_lt(took, (uint64_t)(30 * SEC), "not woken: blocked for %llu ns",
                 (unsigned long long)took);
    /* The wakeup is consumed: the next non-blocking iteration is idle. */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    free_loop(loop);
}

Test(threadsafe, wakeup_before_run_once_is_not_lost)
{
    bgl_loop *loop = new_loop();
    OK(bgl_loop_wakeup(loop));
    EXPECT_RC(bgl_loop_run_once(loop, -1), 0); /* returns instead of hanging */
    free_loop(loop);
}

static struct {
    int ran, discarded;
} fate;
static void ran_cb(void *ud)
{
    (void)ud;
    fate.ran++;
}
static void discard_cb(void *ud)
{
    cr_assert_eq(ud, &fate);
    fate.discarded++;
}

Test(threadsafe, calls_pending_at_free_are_discarded_not_run)
{
    bgl_loop *loop = new_loop();
    OK(bgl_loop_call_threadsafe(loop, ran_cb, &fate, discard_cb));
    OK(bgl_loop_call_threadsafe(loop, ran_cb, &fate, discard_cb));
    OK(bgl_loop_call_threadsafe(loop, ran_cb, &fate, NULL)); /* no discard: dropped */
    OK(bgl_loop_call_soon_full(loop, ran_cb, &fate, discard_cb));
    OK(bgl_loop_call_soon(loop, ran_cb, &fate));
    free_loop(loop);
    cr_assert_eq(fate.ran, 0);
    cr_assert_eq(fate.discarded, 3);
}

Test(threadsafe, discard_is_not_called_for_calls_that_ran)
{
    bgl_loop *loop = new_loop();
    OK(bgl_loop_call_threadsafe(loop, ran_cb, &fate, discard_cb));
    OK(bgl_loop_call_soon_full(loop, ran_cb, &fate, discard_cb));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 2);
    free_loop(loop);
    cr_assert_eq(fate.ran, 2);
    cr_assert_eq(fate.discarded, 0);
}

static struct {
    bgl_loop *loop;
    recorder rec;
    rec_item inner;
} nested;

static void post_from_loop_thread(void *ud)
{
    rec_cb(ud);
    OK(bgl_loop_call_threadsafe(nested.loop, rec_cb, &nested.inner, NULL));
}

Test(threadsafe, call_made_on_the_loop_thread_while_dispatching_runs_next_iteration)
{
    bgl_loop *loop = nested.loop = new_loop();
    rec_item outer = {&nested.rec, 1};
    nested.inner = (rec_item){&nested.rec, 2};
    OK(bgl_loop_call_threadsafe(loop, post_from_loop_thread, &outer, NULL));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_SEQ(&nested.rec, 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_SEQ(&nested.rec, 1, 2);
    free_loop(loop);
}

Test(threadsafe, calls_from_one_thread_run_in_the_order_made)
{
    bgl_loop *loop = new_loop();
    recorder r = {0};
    rec_item it[10];
    for (int i = 0; i < 10; i++) {
        it[i] = (rec_item){&r, i};
        OK(bgl_loop_call_threadsafe(loop, rec_cb, &it[i], NULL));
    }
    EXPECT_RC(bgl_loop_run_once(loop, 0), 10);
    EXPECT_SEQ(&r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    free_loop(loop);
}

/* ---- the per-iteration batch --------------------------------------------- */

#define BATCH BGL_THREADSAFE_BATCH

/* Calls queued from the loop thread itself: the same queue, deterministic. */
static struct {
    bgl_loop *loop;
    fake_clock clk;
    long ran;            /* thread-safe calls run so far */
    long next;           /* next sequence number expected */
    long out_of_order;
    long ran_at_due;     /* calls run when the timer became due / data was written */
    long ran_at_fire;    /* calls run when the timer or the watcher ran */
    int fired;
    bgl_fd write_fd;
    long write_at;       /* the call that writes to write_fd */
} fl;

static void flood_call(void *ud)
{
    long seq = (long)(intptr_t)ud;
    if (seq != fl.next)
        fl.out_of_order++;
    fl.next = seq + 1;
    fl.ran++;
    fl.clk.now += 1000; /* each call takes 1 us of the loop's clock */
    if (fl.write_fd != BGL_TEST_NOFD && fl.ran == fl.write_at) {
        write_byte(fl.write_fd);
        fl.ran_at_due = fl.ran;
    }
}

static void queue_flood(bgl_loop *loop, long n)
{
    for (long i = 0; i < n; i++)
        OK(bgl_loop_call_threadsafe(loop, flood_call, (void *)(intptr_t)(fl.next + i), NULL));
}

static void reset_flood(void)
{
    memset(&fl, 0, sizeof fl);
    fl.write_fd = BGL_TEST_NOFD;
}

Test(threadsafe, one_iteration_collects_at_most_a_batch_in_order)
{
    reset_flood();
    bgl_loop *loop = new_loop();
    queue_flood(loop, 3 * BATCH + 5);
    EXPECT_RC(bgl_loop_run_once(loop, 0), BATCH);
    /* The rest is work ready now: nothing to wait for. */
    int64_t ns = -2;
    EXPECT_RC(bgl_loop_prepare(loop, &ns), 1);
    cr_assert_eq(ns, 0);
    EXPECT_RC(bgl_loop_run_once(loop, -1), BATCH); /* must not block */
    EXPECT_RC(bgl_loop_run_once(loop, -1), BATCH);
    EXPECT_RC(bgl_loop_run_once(loop, -1), 5);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(fl.ran, 3 * BATCH + 5);
    cr_assert_eq(fl.out_of_order, 0, "%ld calls out of order", fl.out_of_order);
    free_loop(loop);
}

static void queue_more(void *ud)
{
    /* Made while a batch runs: behind everything queued before. */
    long n = (long)(intptr_t)ud;
    for (long i = 0; i < n; i++)
        OK(bgl_loop_call_threadsafe(fl.loop, flood_call, (void *)(intptr_t)(BATCH + 10 + i),
                                    NULL));
}

Test(threadsafe, calls_made_during_a_batch_queue_behind_the_leftovers)
{
    reset_flood();
    bgl_loop *loop = fl.loop = new_loop();
    queue_flood(loop, BATCH + 10);
    /* The loop thread appends 7 more from a deferred call of the first
     * iteration: sequence numbers BATCH + 10 onwards, after the leftovers. */
    OK(bgl_loop_call_soon(loop, queue_more, (void *)(intptr_t)7));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1 + BATCH);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 10 + 7);
    cr_assert_eq(fl.ran, BATCH + 17);
    cr_assert_eq(fl.out_of_order, 0, "%ld calls out of order", fl.out_of_order);
    free_loop(loop);
}

static void note_timer(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    fl.fired++;
    fl.ran_at_fire = fl.ran;
}

Test(threadsafe, a_flood_delays_a_timer_that_falls_due_by_at_most_one_batch)
{
    reset_flood();
    bgl_loop *loop = new_loop();
    use_fake_clock(loop, &fl.clk, 1 * SEC);
    bgl_timer *t;
    OK(bgl_timer_new(loop, note_timer, NULL, &t));
    /* Due after the 100th call of the first batch. */
    OK(bgl_timer_start(t, 100 * 1000, 0));
    queue_flood(loop, 10 * BATCH);
    int iterations = 0;
    while (!fl.fired) {
        cr_assert_lt(iterations, 20, "timer not run after %d iterations", iterations);
        cr_assert_geq(bgl_loop_run_once(loop, 0), 0);
        iterations++;
    }
    /* It fell due in the first iteration and ran first in the second. */
    cr_assert_eq(iterations, 2, "timer ran in iteration %d", iterations);
    cr_assert_eq(fl.ran_at_fire, BATCH, "%ld thread-safe calls ran before the timer",
                 fl.ran_at_fire);
    while (bgl_loop_run_once(loop, 0) > 0) {
    }
    cr_assert_eq(fl.ran, 10 * BATCH);
    cr_assert_eq(fl.out_of_order, 0);
    bgl_timer_free(t);
    free_loop(loop);
}

static void note_readable(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents, (void)ud;
    drain(fd);
    fl.fired++;
    fl.ran_at_fire = fl.ran;
}

Test(threadsafe, a_flood_delays_ready_io_by_at_most_one_batch)
{
    reset_flood();
    bgl_loop *loop = new_loop();
    bgl_fd sp[2];
    make_socketpair(sp);
    bgl_io *io;
    OK(bgl_io_new(loop, sp[0], BGL_IO_READ, note_readable, NULL, &io));
    fl.write_fd = sp[1];
    fl.write_at = 100;
    queue_flood(loop, 10 * BATCH);
    int iterations = 0;
    while (!fl.fired) {
        cr_assert_lt(iterations, 20, "watcher not run after %d iterations", iterations);
        cr_assert_geq(bgl_loop_run_once(loop, 0), 0);
        iterations++;
    }
    cr_assert_eq(fl.ran_at_due, 100);
    cr_assert_eq(iterations, 2, "watcher ran in iteration %d", iterations);
    cr_assert_leq(fl.ran_at_fire - fl.ran_at_due, BATCH,
                  "%ld thread-safe calls ran between the write and the watcher",
                  fl.ran_at_fire - fl.ran_at_due);
    while (bgl_loop_run_once(loop, 0) > 0) {
    }
    cr_assert_eq(fl.ran, 10 * BATCH);
    cr_assert_eq(fl.out_of_order, 0);
    bgl_io_free(io);
    close(sp[0]);
    close(sp[1]);
    free_loop(loop);
}

static struct {
    bgl_loop *loop;
    atomic_int stop;
    atomic_long made;
    long ran;
    long next;
    long out_of_order;
    long max_per_iteration;
    int timer_ran;
} fth;

static void flood_thread_call(void *ud)
{
    long seq = (long)(intptr_t)ud;
    if (seq != fth.next)
        fth.out_of_order++;
    fth.next = seq + 1;
    fth.ran++;
}

static void *flood_thread(void *arg)
{
    (void)arg;
    long i = 0;
    while (!atomic_load(&fth.stop)) {
        int rc = bgl_loop_call_threadsafe(fth.loop, flood_thread_call, (void *)(intptr_t)i, NULL);
        if (rc != 0)
            return (void *)(intptr_t)rc;
        atomic_store(&fth.made, ++i);
    }
    return NULL;
}

static void flood_tick(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    fth.timer_ran++;
}

Test(threadsafe, a_flooding_thread_gets_one_batch_per_iteration_and_due_timers_still_run)
{
    memset(&fth, 0, sizeof fth);
    bgl_loop *loop = fth.loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, flood_tick, NULL, &t));
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, flood_thread, NULL), 0);
    /* Let the thread build a backlog of several batches before the loop runs. */
    while (atomic_load(&fth.made) < 4 * BATCH)
        sleep_ns(MS / 10);
    int iterations = 0, over_batch = 0;
    uint64_t end = bgl_monotonic_ns() + 200 * MS;
    while (bgl_monotonic_ns() < end) {
        /* Due at once: the flood must not keep it from this iteration. */
        OK(bgl_timer_start(t, 0, 0));
        int n = bgl_loop_run_once(loop, 100 * MS);
        cr_assert_geq(n, 0, "run_once: %s", bgl_strerror(n));
        /* One batch of thread-safe calls plus the timer. */
        if (n > BATCH + 1)
            over_batch++;
        iterations++;
    }
    atomic_store(&fth.stop, 1);
    void *ret;
    pthread_join(th, &ret);
    cr_assert_null(ret, "call_threadsafe failed: %s", bgl_strerror((int)(intptr_t)ret));
    cr_assert_eq(over_batch, 0, "%d of %d iterations ran more than a batch", over_batch,
                 iterations);
    cr_assert_eq(fth.timer_ran, iterations, "the timer ran in %d of %d iterations",
                 fth.timer_ran, iterations);
    while (bgl_loop_run_once(loop, 0) > 0) {
    }
    cr_assert_eq(fth.ran, atomic_load(&fth.made), "ran %ld of %ld calls", fth.ran,
                 atomic_load(&fth.made));
    cr_assert_eq(fth.out_of_order, 0);
    bgl_timer_free(t);
    free_loop(loop);
}

static void stop_at_100(void *ud)
{
    flood_call(ud);
    if (fl.ran == 100)
        bgl_loop_stop(fl.loop, 7);
}

Test(threadsafe, a_stop_inside_a_batch_loses_nothing)
{
    reset_flood();
    bgl_loop *loop = fl.loop = new_loop();
    for (long i = 0; i < 3 * BATCH; i++)
        OK(bgl_loop_call_threadsafe(loop, stop_at_100, (void *)(intptr_t)i, NULL));
    /* The stop ends bgl_loop_run() after the iteration: the first batch. */
    OK(bgl_loop_hold(loop));
    EXPECT_RC(bgl_loop_run(loop), 7);
    OK(bgl_loop_release(loop));
    cr_assert_eq(fl.ran, BATCH);
    EXPECT_RC(bgl_loop_run(loop), 0); /* the rest, then no work left */
    cr_assert_eq(fl.ran, 3 * BATCH);
    cr_assert_eq(fl.out_of_order, 0);
    free_loop(loop);
}

static long leftover_discarded;
static void count_discard(void *ud)
{
    (void)ud;
    leftover_discarded++;
}

Test(threadsafe, calls_left_beyond_the_batch_are_discarded_at_free)
{
    reset_flood();
    leftover_discarded = 0;
    bgl_loop *loop = new_loop();
    for (long i = 0; i < 2 * BATCH + 3; i++)
        OK(bgl_loop_call_threadsafe(loop, flood_call, (void *)(intptr_t)i, count_discard));
    EXPECT_RC(bgl_loop_run_once(loop, 0), BATCH);
    free_loop(loop);
    cr_assert_eq(fl.ran, BATCH);
    cr_assert_eq(leftover_discarded, BATCH + 3);
}
