/* test_loop_embed.c - driving the loop from a foreign one: the pollable fd
 * (epoll build only), bgl_loop_prepare()'s timeout, and the run-once timeout that
 * returns as soon as something is due.  Time is only checked with wide
 * margins (returns well before a 60 s timeout): the machine is shared. */
#include "helpers.h"

#include <pthread.h>
#include <signal.h>

TestSuite(embed, .timeout = BGL_TEST_TIMEOUT);

#define T0 UINT64_C(1000000)

/* The loop's fd, or skip the test in the poll build (which has none). */
static int loop_fd_or_skip(bgl_loop *loop)
{
    int fd = bgl_loop_get_fd(loop);
#ifdef _WIN32
    cr_assert_eq(fd, -EOPNOTSUPP, "Windows: get_fd returned %d", fd);
    free_loop(loop);
    cr_skip_test("not on Windows: a completion port cannot be polled by a host");
#endif
    if (BGL_TEST_POLL) {
        cr_assert_eq(fd, -EOPNOTSUPP, "poll build: get_fd returned %d", fd);
        free_loop(loop);
        cr_skip_test("the poll backend has no pollable fd");
    }
    cr_assert_geq(fd, 0, "get_fd: %s", bgl_strerror(fd));
    return fd;
}

static int io_calls;
static void drain_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents, (void)ud;
    io_calls++;
    drain(fd);
}


Test(embed, get_fd_is_stable_and_owned_by_the_loop)
{
    bgl_loop *loop = new_loop();
    int fd = loop_fd_or_skip(loop);
    EXPECT_RC(bgl_loop_get_fd(loop), fd);
#ifndef _WIN32
    int flags = fcntl(fd, F_GETFD);
    cr_assert(flags >= 0 && (flags & FD_CLOEXEC), "loop fd is not close-on-exec");
#endif
    free_loop(loop);
}

Test(embed, get_fd_becomes_readable_when_io_is_ready)
{
    bgl_loop *loop = new_loop();
    int lfd = loop_fd_or_skip(loop);
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    cr_assert_eq(fd_readable(lfd, 0), 0, "readable with nothing to do");
    write_byte(p[1]);
    cr_assert_eq(fd_readable(lfd, 30000), 1, "not readable with a ready watcher");
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(io_calls, 1);
    cr_assert_eq(fd_readable(lfd, 0), 0, "still readable once the work was done");
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

static void *post_call(void *arg)
{
    sleep_ns(10 * MS);
    bgl_loop_call_threadsafe(arg, count_call, NULL, NULL);
    return NULL;
}

Test(embed, get_fd_becomes_readable_after_a_threadsafe_call)
{
    bgl_loop *loop = new_loop();
    int lfd = loop_fd_or_skip(loop);
    cr_assert_eq(fd_readable(lfd, 0), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, post_call, loop), 0);
    cr_assert_eq(fd_readable(lfd, 60000), 1, "not readable after a threadsafe call");
    pthread_join(th, NULL);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(fd_readable(lfd, 0), 0, "still readable once the call ran");
    free_loop(loop);
}

Test(embed, get_fd_becomes_readable_after_a_signal)
{
    bgl_loop *loop = new_loop();
    int lfd = loop_fd_or_skip(loop);
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGUSR1, count_signal, NULL, &s));
    cr_assert_eq(fd_readable(lfd, 0), 0);
    cr_assert_eq(raise(SIGUSR1), 0);
    cr_assert_eq(fd_readable(lfd, 30000), 1, "not readable after a signal");
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(fd_readable(lfd, 0), 0);
    OK(bgl_signal_free(s));
    free_loop(loop);
}

Test(embed, get_fd_becomes_readable_after_wakeup)
{
    bgl_loop *loop = new_loop();
    int lfd = loop_fd_or_skip(loop);
    OK(bgl_loop_wakeup(loop));
    cr_assert_eq(fd_readable(lfd, 30000), 1, "not readable after bgl_loop_wakeup");
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(fd_readable(lfd, 0), 0);
    free_loop(loop);
}

/* prepare's timeout; its return value must say whether that is 0. */
static int64_t timeout_of(bgl_loop *loop)
{
    int64_t t = 12345;
    int rc = bgl_loop_prepare(loop, &t);
    cr_assert_eq(rc, t == 0, "prepare returned %d with timeout %lld", rc, (long long)t);
    return t;
}

Test(embed, prepare_timeout_is_minus_one_when_nothing_is_scheduled)
{
    bgl_loop *loop = new_loop();
    cr_assert_eq(timeout_of(loop), -1);
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    bgl_timer *t;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io)); /* only the fd wakes */
    OK(bgl_timer_new(loop, count_timer, NULL, &t));                /* disarmed */
    cr_assert_eq(timeout_of(loop), -1);
    OK(bgl_io_free(io));
    OK(bgl_timer_free(t));
    close_pair(p);
    free_loop(loop);
}

Test(embed, prepare_timeout_is_zero_when_callbacks_are_queued)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 3600 * SEC, 0));
    OK(bgl_loop_call_soon(loop, count_call, NULL));
    cr_assert_eq(timeout_of(loop), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_gt(timeout_of(loop), 0);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(embed, prepare_timeout_counts_down_to_the_earliest_timer_by_the_current_clock)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    bgl_timer *a, *b;
    OK(bgl_timer_new(loop, count_timer, NULL, &a));
    OK(bgl_timer_new(loop, count_timer, NULL, &b));
    OK(bgl_timer_start(a, 500, 0));
    OK(bgl_timer_start(b, 300, 0));
    cr_assert_eq(timeout_of(loop), 300);
    clk.now = T0 + 100; /* no iteration: the clock is read, not the cache */
    cr_assert_eq(timeout_of(loop), 200);
    clk.now = T0 + 300;
    cr_assert_eq(timeout_of(loop), 0);
    clk.now = T0 + 400; /* overdue is still 0, never negative */
    cr_assert_eq(timeout_of(loop), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(timeout_of(loop), 100);
    OK(bgl_timer_stop(a));
    cr_assert_eq(timeout_of(loop), -1);
    OK(bgl_timer_free(a));
    OK(bgl_timer_free(b));
    free_loop(loop);
}

Test(embed, run_once_returns_when_a_timer_is_due_not_after_the_timeout)
{
    uint64_t start = bgl_monotonic_ns(); /* <= the loop's cached time */
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 20 * MS, 0));
    int n = 0;
    /* A timer never fires early, so an iteration may end just before it;
     * bound the retries rather than the clock. */
    for (int i = 0; i < 10 && n == 0; i++)
        n = bgl_loop_run_once(loop, 60 * SEC);
    uint64_t took = bgl_monotonic_ns() - start;
    cr_assert_eq(n, 1);
    cr_assert_eq(counted, 1);
    cr_assert_lt(took, (uint64_t)(30 * SEC), "took %llu ns for a 20 ms timer",
                 (unsigned long long)took);
    cr_assert_geq(took, (uint64_t)(20 * MS), "the timer fired early (%llu ns)",
                  (unsigned long long)took);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

static void *write_later(void *arg)
{
    sleep_ns(20 * MS);
    write_byte(*(int *)arg);
    return NULL;
}

Test(embed, run_once_returns_when_io_is_ready_not_after_the_timeout)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, write_later, &p[1]), 0);
    uint64_t start = bgl_monotonic_ns();
    int n = bgl_loop_run_once(loop, 60 * SEC);
    uint64_t took = bgl_monotonic_ns() - start;
    pthread_join(th, NULL);
    cr_assert_eq(n, 1);
    cr_assert_eq(io_calls, 1);
    cr_assert_lt(took, (uint64_t)(30 * SEC));
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(embed, run_once_with_negative_timeout_waits_for_the_timer)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 5 * MS, 0));
    int n = 0;
    for (int i = 0; i < 10 && n == 0; i++)
        n = bgl_loop_run_once(loop, -1);
    cr_assert_eq(n, 1);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(embed, run_once_with_zero_timeout_does_not_wait_for_a_far_timer)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 3600 * SEC, 0));
    uint64_t start = bgl_monotonic_ns();
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 1 * MS), 0);
    cr_assert_lt(bgl_monotonic_ns() - start, (uint64_t)(30 * SEC));
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(embed, prepare_timeout_saturates_for_a_timer_beyond_int64_ns)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, UINT64_MAX, 0)); /* "never": parked at UINT64_MAX */
    cr_assert_eq(timeout_of(loop), INT64_MAX);
    OK(bgl_timer_start_at(t, (uint64_t)INT64_MAX + T0 + 1, 0));
    cr_assert_eq(timeout_of(loop), INT64_MAX);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

/* Without saturation the wait until such a timer wraps to a negative value,
 * "block forever", and the caller's 1 ms is ignored: the test would hang
 * until Criterion's timeout. */
Test(embed, run_once_honours_its_timeout_with_a_timer_beyond_int64_ns)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, UINT64_MAX, 0));
    EXPECT_RC(bgl_loop_run_once(loop, 1 * MS), 0);
    EXPECT_RC(bgl_loop_kick(loop, 1 * MS, -1), 0);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

/* A host's own poll loop: sleep on the loop fd for prepare's timeout, then
 * run one non-blocking iteration - the way Blender or a GUI toolkit embeds it. */
static void *write_after_30ms(void *arg)
{
    sleep_ns(30 * MS);
    write_byte(*(int *)arg);
    return NULL;
}

Test(embed, host_loop_driven_by_fd_and_timeout_runs_timers_and_io)
{
    bgl_loop *loop = new_loop();
    int lfd = loop_fd_or_skip(loop);
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    bgl_timer *t;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 10 * MS, 0));
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, write_after_30ms, &p[1]), 0);
    for (int round = 0; round < 10000 && (counted < 1 || io_calls < 1); round++) {
        int64_t ns = timeout_of(loop);
        int ms = ns < 0 ? 60000 : (int)((ns + MS - 1) / MS);
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        cr_assert_geq(poll_resumed(&pfd, 1, ms), 0);
        cr_assert_geq(bgl_loop_run_once(loop, 0), 0);
    }
    pthread_join(th, NULL);
    cr_assert_eq(counted, 1, "timer fired %d times", counted);
    cr_assert_eq(io_calls, 1, "io dispatched %d times", io_calls);
    OK(bgl_io_free(io));
    OK(bgl_timer_free(t));
    close_pair(p);
    free_loop(loop);
}
