/* test_loop_threadsafe.c - bgl_loop_call_threadsafe() and bgl_loop_wakeup()
 * from other threads: nothing lost, per-thread order kept, blocked loops
 * woken, undelivered calls discarded on free. */
#include "helpers.h"

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
