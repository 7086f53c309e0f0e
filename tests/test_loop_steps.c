/* test_loop_steps.c - one iteration a step at a time: bgl_loop_prepare(),
 * bgl_loop_wait(), bgl_loop_dispatch(), bgl_loop_take_stop(), the entry
 * points made of them (-EINTR, stop and budget handling) and the host
 * recipes of loop.h.  Real time is only checked with wide margins: the
 * machine is shared. */
#include "helpers.h"

#include <pthread.h>
#include <signal.h>

TestSuite(steps, .timeout = BGL_TEST_TIMEOUT);

#define T0 UINT64_C(1000000)
#define STEP 10 /* fake ns each "costly" callback spends */

static int io_calls;
static void drain_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents, (void)ud;
    io_calls++;
    drain(fd);
}

/* A fake clock that other threads may advance too. */
static uint64_t shared_now;
static uint64_t shared_clock(void *ud)
{
    (void)ud;
    return __atomic_load_n(&shared_now, __ATOMIC_SEQ_CST);
}

static void advance(uint64_t ns)
{
    __atomic_fetch_add(&shared_now, ns, __ATOMIC_SEQ_CST);
}

static void use_shared_clock(bgl_loop *loop)
{
    shared_now = T0;
    OK(bgl_loop_set_clock(loop, shared_clock, NULL));
    OK(bgl_loop_update_time(loop));
}

/* Records its id and spends STEP on the clock. */
static void costly(void *ud)
{
    rec_cb(ud);
    advance(STEP);
}

static int64_t prepared(bgl_loop *loop, int want_rc)
{
    int64_t t = 12345;
    EXPECT_RC(bgl_loop_prepare(loop, &t), want_rc);
    return t;
}

/* ---- prepare ------------------------------------------------------------- */

Test(steps, prepare_is_minus_one_when_nothing_is_scheduled)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    cr_assert_eq(prepared(loop, 0), -1);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(steps, prepare_is_zero_and_returns_one_with_a_queued_call)
{
    bgl_loop *loop = new_loop();
    OK(bgl_loop_call_soon(loop, count_call, NULL));
    cr_assert_eq(prepared(loop, 1), 0);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 1);
    cr_assert_eq(prepared(loop, 0), -1);
    free_loop(loop);
}

Test(steps, prepare_gives_the_distance_to_the_earliest_timer_until_it_is_due)
{
    bgl_loop *loop = new_loop();
    use_shared_clock(loop);
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 500, 0));
    cr_assert_eq(prepared(loop, 0), 500);
    advance(200);
    cr_assert_eq(prepared(loop, 0), 300);
    advance(300);
    cr_assert_eq(prepared(loop, 1), 0);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 1);
    cr_assert_eq(prepared(loop, 0), -1);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

Test(steps, prepare_is_zero_while_io_collected_by_a_wait_is_not_dispatched)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    write_byte(p[1]);
    cr_assert_eq(prepared(loop, 0), -1); /* the fd is not looked at */
    EXPECT_RC(bgl_loop_wait(loop, 0), 1);
    cr_assert_eq(prepared(loop, 1), 0);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 1);
    cr_assert_eq(prepared(loop, 0), -1);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(steps, prepare_is_zero_once_a_wait_noticed_a_threadsafe_call)
{
    bgl_loop *loop = new_loop();
    OK(bgl_loop_call_threadsafe(loop, count_call, NULL, NULL));
    EXPECT_RC(bgl_loop_wait(loop, 0), 1);
    cr_assert_eq(counted, 0);
    cr_assert_eq(prepared(loop, 1), 0);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 1);
    cr_assert_eq(counted, 1);
    cr_assert_eq(prepared(loop, 0), -1);
    free_loop(loop);
}

/* ---- wait ---------------------------------------------------------------- */

Test(steps, wait_queues_a_readable_fd_without_running_its_callback)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    write_byte(p[1]);
    EXPECT_RC(wait_resumed(loop, 60 * SEC), 1);
    cr_assert_eq(io_calls, 0, "wait ran a callback");
    EXPECT_RC(wait_resumed(loop, 60 * SEC), 1); /* ready: no block, queued once */
    bgl_loop_stats st;
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.queued, 1);
    cr_assert_eq(st.wakeups, 1);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 1);
    cr_assert_eq(io_calls, 1);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(steps, wait_returns_zero_when_its_timeout_passes_with_nothing_ready)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    uint64_t start = bgl_monotonic_ns();
    EXPECT_RC(wait_resumed(loop, 5 * MS), 0);
    EXPECT_RC(bgl_loop_wait(loop, 0), 0);
    uint64_t took = bgl_monotonic_ns() - start;
    cr_assert_geq(took, (uint64_t)(5 * MS), "returned early (%llu ns)", (unsigned long long)took);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 0);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
}

Test(steps, wait_does_not_block_while_work_is_queued)
{
    bgl_loop *loop = new_loop();
    OK(bgl_loop_call_soon(loop, count_call, NULL));
    EXPECT_RC(bgl_loop_wait(loop, -1), 1); /* would hang if it blocked */
    cr_assert_eq(counted, 0);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 1);
    free_loop(loop);
}

Test(steps, wait_does_not_sleep_past_the_earliest_timer)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 20 * MS, 0));
    uint64_t start = bgl_monotonic_ns();
    EXPECT_RC(wait_resumed(loop, 60 * SEC), 1);
    uint64_t took = bgl_monotonic_ns() - start;
    cr_assert_lt(took, (uint64_t)(30 * SEC), "slept %llu ns for a 20 ms timer",
                 (unsigned long long)took);
    cr_assert_eq(counted, 0, "wait ran the timer");
    cr_assert_eq(prepared(loop, 1), 0);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 1);
    cr_assert_eq(counted, 1);
    OK(bgl_timer_free(t));
    free_loop(loop);
}

static void *post_count_call(void *arg)
{
    OK(bgl_loop_call_threadsafe(arg, count_call, NULL, NULL));
    return NULL;
}

Test(steps, wait_returns_for_a_threadsafe_call_and_dispatch_runs_it)
{
    bgl_loop *loop = new_loop();
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, post_count_call, loop), 0);
    EXPECT_RC(wait_resumed(loop, 60 * SEC), 1);
    pthread_join(th, NULL);
    cr_assert_eq(counted, 0);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 1);
    cr_assert_eq(counted, 1);
    free_loop(loop);
}

/* ---- dispatch and the budget --------------------------------------------- */

Test(steps, dispatch_runs_queued_work_in_order_and_counts_an_iteration)
{
    bgl_loop *loop = new_loop();
    recorder r = {0};
    rec_item a = {&r, 1}, b = {&r, 2};
    OK(bgl_loop_call_soon(loop, rec_cb, &a));
    OK(bgl_loop_call_soon(loop, rec_cb, &b));
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 2);
    EXPECT_SEQ(&r, 1, 2);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 0);
    bgl_loop_stats st;
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.iterations, 2);
    cr_assert_eq(st.dispatched, 2);
    free_loop(loop);
}

Test(steps, dispatch_budget_stops_after_the_callback_that_spends_it)
{
    bgl_loop *loop = new_loop();
    use_shared_clock(loop);
    recorder r = {0};
    rec_item it[5];
    for (int i = 0; i < 5; i++) {
        it[i] = (rec_item){&r, i + 1};
        OK(bgl_loop_call_soon(loop, costly, &it[i]));
    }
    /* 10, 20 are under 25; the third reaches 30 and ends the dispatch. */
    EXPECT_RC(bgl_loop_dispatch(loop, 2 * STEP + STEP / 2), 3);
    EXPECT_SEQ(&r, 1, 2, 3);
    bgl_loop_stats st;
    OK(bgl_loop_get_stats(loop, &st));
    cr_assert_eq(st.budget_exhausted, 1);
    cr_assert_eq(st.queued, 2);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 2);
    EXPECT_SEQ(&r, 1, 2, 3, 4, 5);
    free_loop(loop);
}

Test(steps, dispatch_budget_and_the_loop_budget_the_smaller_wins)
{
    bgl_loop *loop = new_loop();
    use_shared_clock(loop);
    recorder r = {0};
    rec_item it[6];
    for (int i = 0; i < 6; i++) {
        it[i] = (rec_item){&r, i + 1};
        OK(bgl_loop_call_soon(loop, costly, &it[i]));
    }
    OK(bgl_loop_set_budget(loop, STEP));
    EXPECT_RC(bgl_loop_dispatch(loop, 100 * STEP), 1);
    OK(bgl_loop_set_budget(loop, 100 * STEP));
    EXPECT_RC(bgl_loop_dispatch(loop, 2 * STEP), 2);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 3);
    EXPECT_SEQ(&r, 1, 2, 3, 4, 5, 6);
    free_loop(loop);
}

Test(steps, dispatch_budget_ignores_time_that_passed_during_the_wait)
{
    bgl_loop *loop = new_loop();
    use_shared_clock(loop);
    recorder r = {0};
    rec_item it[5];
    for (int i = 0; i < 5; i++) {
        it[i] = (rec_item){&r, i + 1};
        OK(bgl_loop_call_soon(loop, costly, &it[i]));
    }
    EXPECT_RC(bgl_loop_wait(loop, 0), 1);
    advance(3600 * SEC); /* the clock jumped while the host slept */
    EXPECT_RC(bgl_loop_dispatch(loop, 2 * STEP + STEP / 2), 3);
    EXPECT_SEQ(&r, 1, 2, 3);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 2);
    free_loop(loop);
}

#ifndef _WIN32
/* The scheduler state of thread tid of this process: 'S' while it sleeps
 * in the kernel ('?' if unknown). */
static char thread_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : '?';
}

/* Spin (politely) until tid sleeps in the kernel or *give_up is set, so that
 * what is sent next reaches it inside its wait, not before it. */
static void wait_until_sleeping(pid_t tid, const int *give_up)
{
    while (!__atomic_load_n(give_up, __ATOMIC_SEQ_CST) && thread_state(tid) != 'S')
        sleep_ns(100 * 1000);
}

static struct {
    bgl_loop *loop;
    pid_t tid;
    int done;
} jumper;

static void fan_out(void *ud)
{
    costly(ud);
    rec_item *it = ud;
    for (int i = 1; i <= 4; i++)
        OK(bgl_loop_call_soon(jumper.loop, costly, it + i));
}

static void *jump_then_post(void *ud)
{
    wait_until_sleeping(jumper.tid, &jumper.done);
    advance(3600 * SEC);
    OK(bgl_loop_call_threadsafe(jumper.loop, fan_out, ud, NULL));
    return NULL;
}

Test(steps, kick_budget_ignores_a_clock_jump_during_its_wait)
{
    bgl_loop *loop = jumper.loop = new_loop();
    use_shared_clock(loop);
    jumper.tid = gettid();
    recorder r = {0};
    rec_item it[5];
    for (int i = 0; i < 5; i++)
        it[i] = (rec_item){&r, i + 1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, jump_then_post, it), 0);
    /* fan_out spends 10 of 25, then two of its four calls spend the rest. */
    int n = bgl_loop_kick(loop, 60 * SEC, 2 * STEP + STEP / 2);
    __atomic_store_n(&jumper.done, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    cr_assert_eq(n, 3, "kick ran %d callbacks", n);
    EXPECT_SEQ(&r, 1, 2, 3);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 2);
    free_loop(loop);
}
#else
Test(steps, kick_budget_ignores_a_clock_jump_during_its_wait)
{
    cr_skip_test("not on Windows: needs to see another thread asleep (/proc)");
}
#endif


/* ---- stop ---------------------------------------------------------------- */

static struct {
    bgl_loop *loop;
    int links, limit, stop_at;
} chain;

static void chain_link(void *ud)
{
    (void)ud;
    if (++chain.links == chain.stop_at)
        OK(bgl_loop_stop(chain.loop, 42));
    if (chain.links < chain.limit)
        OK(bgl_loop_call_soon(chain.loop, chain_link, NULL));
}

Test(steps, kick_ends_after_the_iteration_that_called_stop_leaving_it_pending)
{
    bgl_loop *loop = chain.loop = new_loop();
    chain.limit = 5;
    chain.stop_at = 2;
    OK(bgl_loop_call_soon(loop, chain_link, NULL));
    EXPECT_RC(bgl_loop_kick(loop, 0, -1), 2);
    int code = 0;
    EXPECT_RC(bgl_loop_take_stop(loop, &code), 1);
    cr_assert_eq(code, 42);
    EXPECT_RC(bgl_loop_kick(loop, 0, -1), 3); /* the rest of the chain */
    cr_assert_eq(chain.links, 5);
    EXPECT_RC(bgl_loop_take_stop(loop, &code), 0);
    free_loop(loop);
}

Test(steps, take_stop_returns_the_code_once)
{
    bgl_loop *loop = new_loop();
    int code = -1;
    EXPECT_RC(bgl_loop_take_stop(loop, &code), 0);
    cr_assert_eq(code, -1, "no request, yet the code was written");
    OK(bgl_loop_stop(loop, 7));
    EXPECT_RC(bgl_loop_take_stop(loop, &code), 1);
    cr_assert_eq(code, 7);
    EXPECT_RC(bgl_loop_take_stop(loop, &code), 0);
    OK(bgl_loop_stop(loop, 8));
    EXPECT_RC(bgl_loop_take_stop(loop, NULL), 1);
    EXPECT_RC(bgl_loop_run(loop), 0); /* consumed: nothing left to stop run */
    free_loop(loop);
}

#ifndef _WIN32
/* ---- signals interrupting the wait --------------------------------------- */

static volatile sig_atomic_t handled;
static void on_usr1(int signo)
{
    (void)signo;
    handled++;
}

/* An ordinary handler, as a host (Python) installs it: no SA_RESTART. */
static struct sigaction install_usr1(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    cr_assert_eq(pthread_sigmask(SIG_UNBLOCK, &one, NULL), 0);
    return old;
}

/* Signals the waiting thread whenever it sleeps, `times` times (0: until
 * done), then writes to `wfd` (if >= 0).  Signals that land before the
 * wait only run the handler; the next one lands inside it. */
static struct {
    pthread_t target;
    pid_t tid;
    int times;
    bgl_fd wfd;
    int done;
} pester;

static void *pester_thread(void *arg)
{
    (void)arg;
    uint64_t give_up = bgl_monotonic_ns() + 20 * SEC; /* fail, do not hang */
    for (int sent = 0; pester.times == 0 || sent < pester.times; sent++) {
        wait_until_sleeping(pester.tid, &pester.done);
        if (__atomic_load_n(&pester.done, __ATOMIC_SEQ_CST) || bgl_monotonic_ns() > give_up)
            break;
        sig_atomic_t before = handled;
        pthread_kill(pester.target, SIGUSR1);
        while (handled == before && !__atomic_load_n(&pester.done, __ATOMIC_SEQ_CST))
            sleep_ns(100 * 1000);
    }
    if (pester.wfd >= 0)
        write_byte(pester.wfd);
    return NULL;
}

static pthread_t start_pester(int times, int wfd)
{
    pester.target = pthread_self();
    pester.tid = gettid();
    pester.times = times;
    pester.wfd = wfd;
    pester.done = 0;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, pester_thread, NULL), 0);
    return th;
}

static void stop_pester(pthread_t th)
{
    __atomic_store_n(&pester.done, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
}

Test(steps, wait_returns_eintr_when_a_signal_handler_interrupts_it)
{
    struct sigaction old = install_usr1();
    bgl_loop *loop = new_loop();
    pthread_t th = start_pester(0, -1);
    int r;
    do   /* other signals (an EINTR storm) may come first */
        r = bgl_loop_wait(loop, 10 * SEC);
    while (r == -EINTR && !handled);
    stop_pester(th);
    EXPECT_RC(r, -EINTR);
    cr_assert_geq(handled, 1);
    EXPECT_RC(bgl_loop_dispatch(loop, -1), 0); /* nothing was lost or made up */
    free_loop(loop);
    sigaction(SIGUSR1, &old, NULL);
}

Test(steps, run_once_resumes_a_wait_interrupted_by_signals)
{
    struct sigaction old = install_usr1();
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    pthread_t th = start_pester(3, p[1]);
    int r = bgl_loop_run_once(loop, 60 * SEC);
    stop_pester(th);
    EXPECT_RC(r, 1);
    cr_assert_eq(io_calls, 1);
    cr_assert_geq(handled, 3);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
    sigaction(SIGUSR1, &old, NULL);
}

Test(steps, kick_resumes_a_wait_interrupted_by_signals)
{
    struct sigaction old = install_usr1();
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, drain_io, NULL, &io));
    pthread_t th = start_pester(3, p[1]);
    int r = bgl_loop_kick(loop, 60 * SEC, -1);
    stop_pester(th);
    EXPECT_RC(r, 1);
    cr_assert_eq(io_calls, 1);
    cr_assert_geq(handled, 3);
    OK(bgl_io_free(io));
    close_pair(p);
    free_loop(loop);
    sigaction(SIGUSR1, &old, NULL);
}

/* Resumed for what is left, not the whole timeout again: signals that keep
 * coming would otherwise keep it waiting for ever. */
Test(steps, run_once_interrupted_by_signals_still_ends_at_its_timeout)
{
    struct sigaction old = install_usr1();
    bgl_loop *loop = new_loop();
    pthread_t th = start_pester(0, -1);
    uint64_t start = bgl_monotonic_ns();
    int r = bgl_loop_run_once(loop, 200 * MS);
    uint64_t took = bgl_monotonic_ns() - start;
    stop_pester(th);
    EXPECT_RC(r, 0);
    cr_assert_lt(took, (uint64_t)(30 * SEC), "took %llu ns", (unsigned long long)took);
    free_loop(loop);
    sigaction(SIGUSR1, &old, NULL);
}
#else
Test(steps, wait_returns_eintr_when_a_signal_handler_interrupts_it)
{
    cr_skip_test("not on Windows: no signal handlers that interrupt a wait (EINTR)");
}
Test(steps, run_once_resumes_a_wait_interrupted_by_signals)
{
    cr_skip_test("not on Windows: no signal handlers that interrupt a wait (EINTR)");
}
Test(steps, kick_resumes_a_wait_interrupted_by_signals)
{
    cr_skip_test("not on Windows: no signal handlers that interrupt a wait (EINTR)");
}
Test(steps, run_once_interrupted_by_signals_still_ends_at_its_timeout)
{
    cr_skip_test("not on Windows: no signal handlers that interrupt a wait (EINTR)");
}
#endif

/* ---- a host that polls the loop's fd (loop.h, recipe a) ------------------ */

static struct {
    bgl_fd loop_pipe[2]; /* watched by the loop */
    bgl_fd host_pipe[2]; /* the host's own descriptor */
} plumbing;

/* Timer -> loop I/O -> host I/O: each hop must wake the next party. */
static void timer_writes_loop_pipe(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    counted++;
    write_byte(plumbing.loop_pipe[1]);
}

static void io_writes_host_pipe(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents, (void)ud;
    io_calls++;
    drain(fd);
    write_byte(plumbing.host_pipe[1]);
}

Test(steps, host_polls_the_loop_fd_with_its_own_descriptors)
{
    bgl_loop *loop = new_loop();
    int lfd = bgl_loop_get_fd(loop);
#ifdef _WIN32
    EXPECT_RC(lfd, -EOPNOTSUPP);
    free_loop(loop);
    cr_skip_test("not on Windows: a completion port cannot be polled by a host");
#endif
    if (BGL_TEST_POLL) {
        EXPECT_RC(lfd, -EOPNOTSUPP);
        free_loop(loop);
        cr_skip_test("the poll backend has no pollable fd for a host to poll");
    }
    cr_assert_geq(lfd, 0);
    make_pipe(plumbing.loop_pipe);
    make_pipe(plumbing.host_pipe);
    bgl_io *io;
    bgl_timer *t;
    OK(bgl_io_new(loop, plumbing.loop_pipe[0], BGL_IO_READ, io_writes_host_pipe, NULL, &io));
    OK(bgl_timer_new(loop, timer_writes_loop_pipe, NULL, &t));
    OK(bgl_timer_start(t, 10 * MS, 0));
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, post_count_call, loop), 0);
    int host_seen = 0, rounds = 0;
    while (!host_seen || counted < 2) {
        cr_assert_lt(++rounds, 1000, "the host loop spins");
        int64_t ns;
        cr_assert_geq(bgl_loop_prepare(loop, &ns), 0);
        int ms = ns < 0 ? 60000 : (int)((ns + MS - 1) / MS);
        struct pollfd pfd[2] = {{.fd = plumbing.host_pipe[0], .events = POLLIN},
                                {.fd = lfd, .events = POLLIN}};
        cr_assert_geq(poll_resumed(pfd, 2, ms), 0);
        if (pfd[0].revents & POLLIN)
            host_seen += drain(plumbing.host_pipe[0]);
        cr_assert_geq(bgl_loop_wait(loop, 0), 0);
        cr_assert_geq(bgl_loop_dispatch(loop, -1), 0);
    }
    pthread_join(th, NULL);
    cr_assert_eq(host_seen, 1);
    cr_assert_eq(io_calls, 1);
    cr_assert_eq(counted, 2, "timer + thread-safe call: %d", counted);
    cr_assert_eq(fd_readable(lfd, 0), 0, "loop fd readable once all work was done");
    OK(bgl_io_free(io));
    OK(bgl_timer_free(t));
    close_pair(plumbing.loop_pipe);
    close_pair(plumbing.host_pipe);
    free_loop(loop);
}

/* Recipe b: the wait alone (a host lock would be released around it), the
 * dispatch and the stop check with it held. */
static void stop_with_5(void *ud)
{
    counted++;
    OK(bgl_loop_stop(ud, 5));
}

Test(steps, host_drives_wait_dispatch_take_stop_until_a_callback_stops)
{
    bgl_loop *loop = new_loop();
    bgl_timer *t;
    OK(bgl_timer_new(loop, count_timer, NULL, &t));
    OK(bgl_timer_start(t, 3600 * SEC, 0)); /* bounds the wait, never fires */
    OK(bgl_loop_call_threadsafe(loop, stop_with_5, loop, NULL));
    int code = -1, rounds = 0;
    while (bgl_loop_take_stop(loop, &code) == 0) {
        cr_assert_lt(++rounds, 1000);
        int r = bgl_loop_wait(loop, -1);
        cr_assert(r >= 0 || r == -EINTR, "wait: %s", bgl_strerror(r));
        cr_assert_geq(bgl_loop_dispatch(loop, -1), 0);
    }
    cr_assert_eq(code, 5);
    cr_assert_eq(counted, 1, "stopped before the timer: %d", counted);
    OK(bgl_timer_free(t));
    free_loop(loop);
}
