/* test_loop_dispatch.c - the order of one iteration, driven one
 * bgl_loop_run_once() at a time, and bgl_loop_run()'s exit conditions. */
#include "helpers.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

TestSuite(dispatch, .timeout = BGL_TEST_TIMEOUT);

/* ---- shared state of the mixed-order test --------------------------------- */

enum { ID_SOON1 = 1, ID_IO, ID_TIMER, ID_THREADSAFE, ID_SIGNAL, ID_SOON2, ID_TIMER2 };

static struct {
    bgl_loop *loop;
    recorder rec;
    bgl_timer *timer2;
    rec_item soon2, timer2_item;
    bgl_fd rfd;
} mix;

static void mix_soon1(void *ud)
{
    rec_cb(ud);
    /* Both are scheduled while dispatching: next iteration, soon first (it
     * is already queued), the timer when it is collected. */
    OK(bgl_loop_call_soon(mix.loop, rec_cb, &mix.soon2));
    OK(bgl_timer_start(mix.timer2, 0, 0));
}

static void mix_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io;
    cr_assert_eq(fd, mix.rfd);
    cr_assert(revents & BGL_IO_READ);
    drain(fd);
    rec_cb(ud);
}

static void mix_signal(bgl_signal *s, int signo, void *ud)
{
    (void)s;
    cr_assert_eq(signo, SIGUSR1);
    rec_cb(ud);
}

Test(dispatch, exact_order_soon_io_timers_threadsafe_signals_then_next_iteration)
{
    bgl_loop *loop = mix.loop = new_loop();
    recorder *r = &mix.rec;
    rec_item soon1 = {r, ID_SOON1}, io_it = {r, ID_IO}, tm_it = {r, ID_TIMER},
             ts_it = {r, ID_THREADSAFE}, sig_it = {r, ID_SIGNAL};
    mix.soon2 = (rec_item){r, ID_SOON2};
    mix.timer2_item = (rec_item){r, ID_TIMER2};
    bgl_fd p[2];
    make_pipe(p);
    mix.rfd = p[0];

    bgl_io *io;
    bgl_timer *timer;
    bgl_signal *sig;
    OK(bgl_signal_new(loop, SIGUSR1, mix_signal, &sig_it, &sig));
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, mix_io, &io_it, &io));
    OK(bgl_timer_new(loop, rec_timer_cb, &tm_it, &timer));
    OK(bgl_timer_new(loop, rec_timer_cb, &mix.timer2_item, &mix.timer2));

    /* Make everything ready before the iteration, in the "wrong" order. */
    cr_assert_eq(raise(SIGUSR1), 0);
    OK(bgl_loop_call_threadsafe(loop, rec_cb, &ts_it, NULL));
    OK(bgl_timer_start(timer, 0, 0));
    write_byte(p[1]);
    OK(bgl_loop_call_soon(loop, mix_soon1, &soon1));

    EXPECT_RC(bgl_loop_run_once(loop, 0), 5);
    EXPECT_SEQ(r, ID_SOON1, ID_IO, ID_TIMER, ID_THREADSAFE, ID_SIGNAL);

    EXPECT_RC(bgl_loop_run_once(loop, 0), 2);
    EXPECT_SEQ(r, ID_SOON1, ID_IO, ID_TIMER, ID_THREADSAFE, ID_SIGNAL, ID_SOON2, ID_TIMER2);

    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(r->n, 7);

    OK(bgl_signal_free(sig));
    OK(bgl_io_free(io));
    OK(bgl_timer_free(timer));
    OK(bgl_timer_free(mix.timer2));
    close_pair(p);
    free_loop(loop);
}

Test(dispatch, call_soon_runs_in_fifo_order_in_the_current_iteration)
{
    bgl_loop *loop = new_loop();
    recorder r = {0};
    rec_item it[5];
    for (int i = 0; i < 5; i++) {
        it[i] = (rec_item){&r, i + 1};
        OK(bgl_loop_call_soon(loop, rec_cb, &it[i]));
    }
    EXPECT_RC(bgl_loop_run_once(loop, 0), 5);
    EXPECT_SEQ(&r, 1, 2, 3, 4, 5);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    free_loop(loop);
}

static struct {
    bgl_loop *loop;
    recorder rec;
    int depth;
} chain;

/* Each call schedules the next one: one link per iteration, never more. */
static void chain_cb(void *ud)
{
    (void)ud;
    rec_push(&chain.rec, chain.depth);
    if (++chain.depth < 4)
        OK(bgl_loop_call_soon(chain.loop, chain_cb, NULL));
}

Test(dispatch, call_soon_from_a_callback_runs_in_the_next_iteration)
{
    bgl_loop *loop = chain.loop = new_loop();
    OK(bgl_loop_call_soon(loop, chain_cb, NULL));
    for (int i = 1; i <= 4; i++) {
        EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
        cr_assert_eq(chain.rec.n, i, "iteration %d ran %d links", i, chain.rec.n);
    }
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    EXPECT_SEQ(&chain.rec, 0, 1, 2, 3);
    free_loop(loop);
}

Test(dispatch, run_returns_zero_at_once_without_work)
{
    bgl_loop *loop = new_loop();
    OK(bgl_loop_run(loop));
    int code = -1;
    OK(bgl_loop_get_exit_code(loop, &code));
    cr_assert_eq(code, 0);
    free_loop(loop);
}

static void never_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)fd, (void)revents, (void)ud;
    cr_assert_fail("a paused watcher was dispatched");
}

static void never_timer(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    cr_assert_fail("a disarmed timer fired");
}

Test(dispatch, paused_watchers_and_disarmed_timers_are_not_work)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    write_byte(p[1]);
    bgl_io *io;
    bgl_timer *t;
    OK(bgl_io_new(loop, p[0], 0, never_io, NULL, &io));
    OK(bgl_timer_new(loop, never_timer, NULL, &t));
    OK(bgl_loop_run(loop)); /* would block forever if they counted */
    OK(bgl_io_free(io));
    OK(bgl_timer_free(t));
    close_pair(p);
    free_loop(loop);
}

static struct {
    bgl_loop *loop;
    int fired;
} stopper;

static void stop_after_three(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    if (++stopper.fired == 3)
        OK(bgl_loop_stop(stopper.loop, 42));
}

Test(dispatch, run_returns_the_stop_code)
{
    bgl_loop *loop = stopper.loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, stop_after_three, NULL, &t));
    OK(bgl_timer_start(t, 1 * MS, 1 * MS)); /* repeating: work forever */
    EXPECT_RC(bgl_loop_run(loop), 42);
    cr_assert_eq(stopper.fired, 3);
    int code = 0;
    OK(bgl_loop_get_exit_code(loop, &code));
    cr_assert_eq(code, 42);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

static void stop_seven(void *ud)
{
    rec_cb(ud);
    OK(bgl_loop_stop(stopper.loop, 7));
}

Test(dispatch, stop_finishes_the_current_iteration_first)
{
    bgl_loop *loop = stopper.loop = new_loop();
    recorder r = {0};
    rec_item a = {&r, 1}, b = {&r, 2}, c = {&r, 3};
    OK(bgl_loop_call_soon(loop, stop_seven, &a));
    OK(bgl_loop_call_soon(loop, rec_cb, &b));
    OK(bgl_loop_call_soon(loop, rec_cb, &c));
    EXPECT_RC(bgl_loop_run(loop), 7);
    EXPECT_SEQ(&r, 1, 2, 3);
    free_loop(loop);
}

Test(dispatch, run_once_ignores_stop_and_run_consumes_it)
{
    bgl_loop *loop = new_loop();
    recorder r = {0};
    rec_item a = {&r, 1}, b = {&r, 2}, c = {&r, 3};
    OK(bgl_loop_stop(loop, 5));
    OK(bgl_loop_call_soon(loop, rec_cb, &a));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1); /* not affected by the stop */
    OK(bgl_loop_call_soon(loop, rec_cb, &b));
    EXPECT_RC(bgl_loop_run(loop), 5); /* the pending request... */
    EXPECT_SEQ(&r, 1, 2);               /* ...after one iteration */
    OK(bgl_loop_call_soon(loop, rec_cb, &c));
    OK(bgl_loop_run(loop)); /* consumed: runs out of work, returns 0 */
    EXPECT_SEQ(&r, 1, 2, 3);
    free_loop(loop);
}

/* ---- holds ------------------------------------------------------------------ */

static struct {
    bgl_loop *loop;
    atomic_int released;
} holder;

static void release_hold(void *ud)
{
    (void)ud;
    OK(bgl_loop_release(holder.loop));
    atomic_store(&holder.released, 1);
}

static void *post_release_later(void *arg)
{
    (void)arg;
    sleep_ns(20 * MS);
    bgl_loop_call_threadsafe(holder.loop, release_hold, NULL, NULL);
    return NULL;
}

Test(dispatch, hold_keeps_run_alive_until_released)
{
    bgl_loop *loop = holder.loop = new_loop();
    OK(bgl_loop_hold(loop));
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, post_release_later, NULL), 0);
    OK(bgl_loop_run(loop)); /* returns only after the thread's call ran */
    cr_assert_eq(atomic_load(&holder.released), 1);
    pthread_join(th, NULL);
    free_loop(loop);
}

Test(dispatch, holds_nest_and_release_without_hold_is_ealready)
{
    bgl_loop *loop = new_loop();
    EXPECT_RC(bgl_loop_release(loop), -EALREADY);
    OK(bgl_loop_hold(loop));
    OK(bgl_loop_hold(loop));
    OK(bgl_loop_release(loop));
    OK(bgl_loop_release(loop));
    EXPECT_RC(bgl_loop_release(loop), -EALREADY);
    OK(bgl_loop_run(loop));
    free_loop(loop);
}

/* ---- cached time -------------------------------------------------------------- */

static struct {
    bgl_loop *loop;
    uint64_t seen[2];
    int n;
} clockwatch;

static void note_now_then_sleep(void *ud)
{
    (void)ud;
    clockwatch.seen[clockwatch.n++] = loop_now(clockwatch.loop);
    sleep_ns(2 * MS);
}

Test(dispatch, now_is_cached_for_the_whole_iteration)
{
    bgl_loop *loop = clockwatch.loop = new_loop();
    OK(bgl_loop_call_soon(loop, note_now_then_sleep, NULL));
    OK(bgl_loop_call_soon(loop, note_now_then_sleep, NULL));
    uint64_t before = bgl_monotonic_ns();
    EXPECT_RC(bgl_loop_run_once(loop, 0), 2);
    cr_assert_eq(clockwatch.seen[0], clockwatch.seen[1], "now changed within an iteration");
    cr_assert_geq(clockwatch.seen[0], before, "now is not refreshed after polling");
    uint64_t cached = loop_now(loop);
    cr_assert_eq(cached, clockwatch.seen[0]);
    OK(bgl_loop_update_time(loop));
    cr_assert_gt(loop_now(loop), cached, "update_time did not move past a 4 ms sleep");
    cr_assert_leq(loop_now(loop), bgl_monotonic_ns());
    free_loop(loop);
}

Test(dispatch, stats_count_iterations_dispatches_and_sources)
{
    bgl_loop *loop = new_loop();
    recorder r = {0};
    rec_item a = {&r, 1};
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    bgl_timer *t;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, never_io, NULL, &io));
    OK(bgl_timer_new(loop, never_timer, NULL, &t));
    OK(bgl_timer_start(t, 3600 * SEC, 0));
    OK(bgl_loop_call_soon(loop, rec_cb, &a));
    OK(bgl_loop_call_soon(loop, rec_cb, &a));

    bgl_loop_stats st;
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.iterations, 0);
    cr_assert_eq(st.dispatched, 0);
    cr_assert_eq(st.io_watchers, 1);
    cr_assert_eq(st.timers_armed, 1);
    cr_assert_eq(st.queued, 2);

    EXPECT_RC(bgl_loop_run_once(loop, 0), 2);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.iterations, 2);
    cr_assert_eq(st.dispatched, 2);
    cr_assert_eq(st.queued, 0);
    cr_assert_eq(st.budget_exhausted, 0);

    OK(bgl_timer_stop(t));
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.timers_armed, 0);
    OK(bgl_io_free(io));
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.io_watchers, 0);
    OK(bgl_timer_free(t));
    close_pair(p);
    free_loop(loop);
}
