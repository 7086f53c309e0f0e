/* test_loop_errors.c - bad input for every public function of loop.h and
 * common.h: a negative errno, never a crash, and the loop left usable. */
#include "helpers.h"

#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <signal.h>

TestSuite(errors, .timeout = BGL_TEST_TIMEOUT);

static void cb(void *ud)
{
    (void)ud;
}
static void io_cb(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)fd, (void)revents, (void)ud;
}
static void timer_cb(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
}
static void signal_cb(bgl_signal *s, int signo, void *ud)
{
    (void)s, (void)signo, (void)ud;
}
static uint64_t clock_fn(void *ud)
{
    (void)ud;
    return 1;
}

Test(errors, loop_functions_reject_a_null_loop)
{
    int code;
    int64_t timeout;
    uint64_t now;
    bgl_loop_stats st;
    EXPECT_RC(bgl_loop_new(NULL), -EINVAL);
    EXPECT_RC(bgl_loop_free(NULL), -EINVAL);
    EXPECT_RC(bgl_loop_run_once(NULL, 0), -EINVAL);
    EXPECT_RC(bgl_loop_kick(NULL, 0, -1), -EINVAL);
    EXPECT_RC(bgl_loop_run(NULL), -EINVAL);
    EXPECT_RC(bgl_loop_stop(NULL, 1), -EINVAL);
    EXPECT_RC(bgl_loop_get_exit_code(NULL, &code), -EINVAL);
    EXPECT_RC(bgl_loop_set_budget(NULL, -1), -EINVAL);
    EXPECT_RC(bgl_loop_hold(NULL), -EINVAL);
    EXPECT_RC(bgl_loop_release(NULL), -EINVAL);
    EXPECT_RC(bgl_loop_get_fd(NULL), -EINVAL);
    EXPECT_RC(bgl_loop_prepare(NULL, &timeout), -EINVAL);
    EXPECT_RC(bgl_loop_wait(NULL, 0), -EINVAL);
    EXPECT_RC(bgl_loop_dispatch(NULL, -1), -EINVAL);
    EXPECT_RC(bgl_loop_take_stop(NULL, &code), -EINVAL);
    EXPECT_RC(bgl_loop_now(NULL, &now), -EINVAL);
    EXPECT_RC(bgl_loop_update_time(NULL), -EINVAL);
    EXPECT_RC(bgl_loop_set_clock(NULL, clock_fn, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_set_clock(NULL, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_get_stats(NULL, &st), -EINVAL);
    EXPECT_RC(bgl_loop_call_soon(NULL, cb, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_call_soon_full(NULL, cb, NULL, cb), -EINVAL);
    EXPECT_RC(bgl_loop_call_threadsafe(NULL, cb, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_wakeup(NULL), -EINVAL);
}

Test(errors, loop_functions_reject_null_outputs_and_callbacks)
{
    bgl_loop *loop = new_loop();
    EXPECT_RC(bgl_loop_get_exit_code(loop, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_prepare(loop, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_now(loop, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_get_stats(loop, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_call_soon(loop, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_loop_call_soon_full(loop, NULL, NULL, cb), -EINVAL);
    EXPECT_RC(bgl_loop_call_threadsafe(loop, NULL, NULL, cb), -EINVAL);
    /* Nothing was queued by the refused calls. */
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    free_loop(loop);
}

Test(errors, out_of_range_values_are_einval)
{
    bgl_loop *loop = new_loop();
    EXPECT_RC(bgl_loop_set_budget(loop, 0), -EINVAL);
    EXPECT_RC(bgl_loop_kick(loop, 0, 0), -EINVAL);
    EXPECT_RC(bgl_loop_dispatch(loop, 0), -EINVAL);
    EXPECT_RC(bgl_loop_release(loop), -EALREADY);
    /* Valid extremes are accepted. */
    OK(bgl_loop_set_budget(loop, INT64_MAX));
    OK(bgl_loop_set_budget(loop, INT64_MIN));
    OK(bgl_loop_stop(loop, INT_MIN));
    int code = 0;
    OK(bgl_loop_get_exit_code(loop, &code));
    cr_assert_eq(code, INT_MIN);
    /* Extreme timeouts with work queued: no overflow, no wait. */
    OK(bgl_loop_call_soon(loop, cb, NULL));
    EXPECT_RC(bgl_loop_run_once(loop, INT64_MIN), 1);
    OK(bgl_loop_call_soon(loop, cb, NULL));
    EXPECT_RC(bgl_loop_run_once(loop, INT64_MAX), 1);
    OK(bgl_loop_call_soon(loop, cb, NULL));
    EXPECT_RC(bgl_loop_kick(loop, INT64_MAX, INT64_MAX), 1);
    OK(bgl_loop_call_soon(loop, cb, NULL));
    EXPECT_RC(bgl_loop_wait(loop, INT64_MAX), 1);
    EXPECT_RC(bgl_loop_dispatch(loop, INT64_MAX), 1);
    EXPECT_RC(bgl_loop_take_stop(loop, &code), 1); /* the INT_MIN stop above */
    free_loop(loop);
}

Test(errors, io_functions_reject_bad_input)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io = NULL;
    unsigned ev;
    EXPECT_RC(bgl_io_new(NULL, p[0], BGL_IO_READ, io_cb, NULL, &io), -EINVAL);
    EXPECT_RC(bgl_io_new(loop, p[0], BGL_IO_READ, NULL, NULL, &io), -EINVAL);
    EXPECT_RC(bgl_io_new(loop, p[0], BGL_IO_READ, io_cb, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_io_new(loop, p[0], 0x100, io_cb, NULL, &io), -EINVAL);
    EXPECT_RC(bgl_io_new(loop, -1, BGL_IO_READ, io_cb, NULL, &io), -EBADF);
    EXPECT_RC(bgl_io_new(loop, INT_MIN, BGL_IO_READ, io_cb, NULL, &io), -EBADF);
    EXPECT_RC(bgl_io_new(loop, INT_MAX, BGL_IO_READ, io_cb, NULL, &io), -EBADF);
    EXPECT_RC(bgl_io_set_events(NULL, BGL_IO_READ), -EINVAL);
    EXPECT_RC(bgl_io_get_events(NULL, &ev), -EINVAL);
    EXPECT_RC(bgl_io_get_fd(NULL), -EINVAL);
    EXPECT_RC(bgl_io_free(NULL), -EINVAL);

    OK(bgl_io_new(loop, p[0], BGL_IO_READ, io_cb, NULL, &io));
    EXPECT_RC(bgl_io_get_events(io, NULL), -EINVAL);
    EXPECT_RC(bgl_io_set_events(io, ~0u), -EINVAL);
    OK(bgl_io_get_events(io, &ev));
    cr_assert_eq(ev, BGL_IO_READ, "a refused set_events changed the interest");
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(errors, timer_functions_reject_bad_input)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t = NULL;
    uint64_t deadline;
    EXPECT_RC(bgl_timer_new(NULL, timer_cb, NULL, &t), -EINVAL);
    EXPECT_RC(bgl_timer_new(loop, NULL, NULL, &t), -EINVAL);
    EXPECT_RC(bgl_timer_new(loop, timer_cb, NULL, NULL), -EINVAL);
    EXPECT_RC(bgl_timer_start(NULL, 1, 0), -EINVAL);
    EXPECT_RC(bgl_timer_start_at(NULL, 1, 0), -EINVAL);
    EXPECT_RC(bgl_timer_stop(NULL), -EINVAL);
    EXPECT_RC(bgl_timer_is_active(NULL), -EINVAL);
    EXPECT_RC(bgl_timer_get_deadline(NULL, &deadline), -EINVAL);
    EXPECT_RC(bgl_timer_free(NULL), -EINVAL);

    OK(bgl_timer_new(loop, timer_cb, NULL, &t));
    EXPECT_RC(bgl_timer_get_deadline(t, NULL), -EINVAL);
    EXPECT_RC(bgl_timer_get_deadline(t, &deadline), -ENOENT);
    /* Huge delays must not wrap around into the past. */
    OK(bgl_timer_start(t, UINT64_MAX, 0));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_timer_start(t, UINT64_MAX - 1, UINT64_MAX));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(errors, signal_functions_reject_bad_input)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s = NULL;
    EXPECT_RC(bgl_signal_new(NULL, SIGUSR1, signal_cb, NULL, &s), -EINVAL);
    EXPECT_RC(bgl_signal_new(loop, SIGUSR1, NULL, NULL, &s), -EINVAL);
    EXPECT_RC(bgl_signal_new(loop, SIGUSR1, signal_cb, NULL, NULL), -EINVAL);
#ifdef _WIN32
    /* What Windows cannot deliver (see bgl_signal_new()). */
    EXPECT_RC(bgl_signal_new(loop, SIGSEGV, signal_cb, NULL, &s), -ENOTSUP);
    EXPECT_RC(bgl_signal_new(loop, SIGABRT, signal_cb, NULL, &s), -ENOTSUP);
#else
    EXPECT_RC(bgl_signal_new(loop, SIGKILL, signal_cb, NULL, &s), -EINVAL);
    EXPECT_RC(bgl_signal_new(loop, SIGSTOP, signal_cb, NULL, &s), -EINVAL);
#endif
    EXPECT_RC(bgl_signal_new(loop, 0, signal_cb, NULL, &s), -EINVAL);
    EXPECT_RC(bgl_signal_new(loop, -1, signal_cb, NULL, &s), -EINVAL);
    EXPECT_RC(bgl_signal_new(loop, 65, signal_cb, NULL, &s), -EINVAL);
    EXPECT_RC(bgl_signal_new(loop, INT_MAX, signal_cb, NULL, &s), -EINVAL);
    EXPECT_RC(bgl_signal_free(NULL), -EINVAL);
    free_loop(loop);
}

Test(errors, strerror_never_returns_null_and_accepts_both_signs)
{
    const int codes[] = {0, EINVAL, -EINVAL, -EBADF, -EEXIST, -EBUSY, -ENOMEM, -ECANCELED,
                         -EOPNOTSUPP, -EALREADY, -ENOENT, -EPERM, 12345, -12345, INT_MAX,
                         INT_MIN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = bgl_strerror(codes[i]);
        cr_assert_not_null(s, "bgl_strerror(%d) is NULL", codes[i]);
        cr_assert_gt(strlen(s), 0, "bgl_strerror(%d) is empty", codes[i]);
    }
    cr_assert_str_eq(bgl_strerror(-EINVAL), bgl_strerror(EINVAL));
    cr_assert_str_neq(bgl_strerror(-EINVAL), bgl_strerror(-EBADF));
}

/* Errors a loop, a service or a socket callback can meet: each has the C
 * library's own text, not a fallback. */
static const int named_errnos[] = {
    EPERM, ENOENT, EINTR, EIO, EBADF, EAGAIN, ENOMEM, EACCES, EBUSY, EEXIST,
    EINVAL, ENFILE, EMFILE, ENOSPC, EPIPE, ERANGE, EDEADLK, ENOSYS, ELOOP,
    ENOTSOCK, EADDRINUSE, EADDRNOTAVAIL, ENETUNREACH, ECONNABORTED, ECONNRESET,
    ENOBUFS, EISCONN, ENOTCONN, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH, EALREADY,
    EINPROGRESS, ECANCELED, EOPNOTSUPP, EOVERFLOW, ECHILD, ESRCH,
};

#ifdef _WIN32
Test(errors, strerror_names_every_errno_the_c_library_names)
{
    /* The C runtime's strerror() knows the classic codes only; the library
     * names the POSIX supplement itself. */
    for (int e = 1; e < 43; e++) {
        char want[128];
        /* A copy: strerror()'s buffer is rewritten by the next call. */
        snprintf(want, sizeof want, "%s", strerror(e));
        if (strncmp(want, "Unknown error", 13) != 0)
            cr_expect_str_eq(bgl_strerror(-e), want, "errno %d", e);
    }
    for (size_t i = 0; i < sizeof named_errnos / sizeof named_errnos[0]; i++)
        cr_expect_str_neq(bgl_strerror(-named_errnos[i]), "Unknown error", "errno %d",
                          named_errnos[i]);
}
#else
Test(errors, strerror_names_every_errno_the_c_library_names)
{
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    cr_assert_not_null(c);
    int named = 0;
    for (int e = 1; e < 4096; e++) {
        const char *want = strerror_l(e, c);
        if (strncmp(want, "Unknown error", 13) == 0) {
            cr_expect_str_eq(bgl_strerror(-e), "Unknown error", "errno %d", e);
            continue;
        }
        cr_expect_str_eq(bgl_strerror(-e), want, "errno %d", e);
        cr_expect_str_eq(bgl_strerror(e), want, "errno %d", e);
        named++;
    }
    freelocale(c);
    cr_assert_gt(named, 100, "the C library names only %d errno values", named);
    for (size_t i = 0; i < sizeof named_errnos / sizeof named_errnos[0]; i++)
        cr_expect_str_neq(bgl_strerror(-named_errnos[i]), "Unknown error", "errno %d",
                          named_errnos[i]);
}
#endif

static void *strerror_all(void *arg)
{
    const char **out = arg;
    for (int e = 0; e < 256; e++)
        out[e] = bgl_strerror(-e);
    return NULL;
}

Test(errors, strerror_from_many_threads_at_once_gives_one_static_text)
{
    enum { N = 8 };
    static const char *seen[N][256];
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, strerror_all, seen[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 1; i < N; i++)
        for (int e = 0; e < 256; e++)
            cr_assert_eq(seen[i][e], seen[0][e], "errno %d: thread %d got another string", e, i);
#ifdef _WIN32
    cr_assert_str_eq(seen[0][ETIMEDOUT], "Connection timed out"); /* not the C runtime's */
#else
    cr_assert_str_eq(seen[0][ETIMEDOUT], strerror(ETIMEDOUT));
#endif
}

Test(errors, version_is_major_minor_patch)
{
    const char *v = bgl_version();
    cr_assert_not_null(v);
    unsigned a, b, c;
    char extra;
    cr_assert_eq(sscanf(v, "%u.%u.%u%c", &a, &b, &c, &extra), 3, "version \"%s\"", v);
}

Test(errors, monotonic_clock_never_goes_back)
{
    uint64_t prev = bgl_monotonic_ns();
    cr_assert_gt(prev, 0);
    for (int i = 0; i < 1000; i++) {
        uint64_t now = bgl_monotonic_ns();
        cr_assert_geq(now, prev);
        prev = now;
    }
}

/* ---- bgl_loop_free with sources still attached ------------------------------ */

Test(errors, loop_free_is_ebusy_while_an_io_watcher_exists)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], 0, io_cb, NULL, &io)); /* even paused */
    EXPECT_RC(bgl_loop_free(loop), -EBUSY);
    /* Left untouched: still fully usable. */
    OK(bgl_io_set_events(io, BGL_IO_READ));
    write_byte(p[1]);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(errors, loop_free_is_ebusy_while_a_timer_exists)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, timer_cb, NULL, &t)); /* even disarmed */
    EXPECT_RC(bgl_loop_free(loop), -EBUSY);
    OK(bgl_timer_start(t, 0, 0));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_loop_free(loop), -EBUSY);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(errors, loop_free_is_ebusy_while_a_signal_source_exists)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGUSR1, signal_cb, NULL, &s));
    EXPECT_RC(bgl_loop_free(loop), -EBUSY);
    cr_assert_eq(raise(SIGUSR1), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 1);
    OK(bgl_signal_free(s));
    free_loop(loop);
}

Test(errors, loop_free_with_only_queued_calls_succeeds)
{
    bgl_loop *loop = new_loop();
    OK(bgl_loop_call_soon(loop, cb, NULL));
    OK(bgl_loop_call_threadsafe(loop, cb, NULL, NULL));
    OK(bgl_loop_hold(loop)); /* a hold is not a source either */
    free_loop(loop);
}
