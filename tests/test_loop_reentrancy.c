/* test_loop_reentrancy.c - callbacks that create, modify and free sources
 * (their own and queued ones) during dispatch, and re-entrant calls into
 * the loop.  Run under ASan and valgrind these also prove no use-after-free. */
#include "helpers.h"

#include <signal.h>

TestSuite(reentrancy, .timeout = BGL_TEST_TIMEOUT);

#define T0 UINT64_C(1000000)

static bgl_loop *the_loop;

/* ---- freeing oneself ---------------------------------------------------------- */

static int self_calls;
static void io_frees_itself(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)fd, (void)revents, (void)ud;
    self_calls++;
    OK(bgl_io_free(io)); /* fd left unread: it would fire again if alive */
}

Test(reentrancy, io_callback_frees_its_own_watcher)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, io_frees_itself, NULL, &io));
    write_byte(p[1]);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(self_calls, 1);
    close_pair(p);
    free_loop(loop);
}

static void timer_frees_itself(bgl_timer *t, void *ud)
{
    (void)ud;
    self_calls++;
    OK(bgl_timer_free(t));
}

Test(reentrancy, repeating_timer_frees_itself_in_its_callback)
{
    bgl_loop *loop = new_loop();
    fake_clock clk;
    use_fake_clock(loop, &clk, T0);
    bgl_timer *t;
    OK(bgl_timer_new(loop, timer_frees_itself, NULL, &t));
    OK(bgl_timer_start(t, 10, 10));
    clk.now = T0 + 100;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    clk.now = T0 + 200;
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(self_calls, 1);
    free_loop(loop);
}

static void signal_frees_itself(bgl_signal *s, int signo, void *ud)
{
    (void)signo, (void)ud;
    self_calls++;
    OK(bgl_signal_free(s));
}

Test(reentrancy, signal_callback_frees_its_own_source)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGUSR1, signal_frees_itself, NULL, &s));
    cr_assert_eq(raise(SIGUSR1), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 1);
    cr_assert_eq(self_calls, 1);
    /* The signal is ours to handle again. */
#ifdef _WIN32
    void (*was)(int) = signal(SIGUSR1, SIG_DFL);
    cr_assert_eq((void *)was, (void *)SIG_DFL);
#else
    struct sigaction sa;
    cr_assert_eq(sigaction(SIGUSR1, NULL, &sa), 0);
    cr_assert_eq((void *)sa.sa_handler, (void *)SIG_DFL);
#endif
    free_loop(loop);
}

/* ---- freeing others that are already queued ---------------------------------- */

#define NW 16
static struct {
    bgl_io *io[NW];
    int calls[NW];
} many;

static void io_frees_all_others(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents;
    int me = (int)(intptr_t)ud;
    many.calls[me]++;
    drain(fd);
    for (int i = 0; i < NW; i++) {
        if (i != me && many.io[i]) {
            OK(bgl_io_free(many.io[i]));
            many.io[i] = NULL;
        }
    }
}

Test(reentrancy, first_io_callback_frees_all_other_queued_watchers)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[NW][2];
    for (int i = 0; i < NW; i++) {
        make_pipe(p[i]);
        OK(bgl_io_new(loop, p[i][0], BGL_IO_READ, io_frees_all_others, (void *)(intptr_t)i,
                      &many.io[i]));
        write_byte(p[i][1]);
    }
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    int total = 0, survivor = -1;
    for (int i = 0; i < NW; i++) {
        total += many.calls[i];
        if (many.io[i])
            survivor = i;
    }
    cr_assert_eq(total, 1, "%d callbacks ran; freed watchers were dispatched", total);
    cr_assert_geq(survivor, 0);
    OK(bgl_io_free(many.io[survivor]));
    for (int i = 0; i < NW; i++)
        close_pair(p[i]);
    free_loop(loop);
}

static struct {
    bgl_timer *timer;
    bgl_signal *sig;
    int timer_calls, signal_calls;
} mixed;

static void timer_frees_queued_signal(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    mixed.timer_calls++;
    OK(bgl_signal_free(mixed.sig));
    mixed.sig = NULL;
}

static void signal_never(bgl_signal *s, int signo, void *ud)
{
    (void)s, (void)signo, (void)ud;
    mixed.signal_calls++;
}

Test(reentrancy, timer_callback_frees_a_queued_signal_source)
{
    bgl_loop *loop = new_loop();
    OK(bgl_timer_new(loop, timer_frees_queued_signal, NULL, &mixed.timer));
    OK(bgl_signal_new(loop, SIGUSR2, signal_never, NULL, &mixed.sig));
    cr_assert_eq(raise(SIGUSR2), 0);
    OK(bgl_timer_start(mixed.timer, 0, 0));
    /* Timers are collected before signals: the signal is queued behind. */
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(mixed.timer_calls, 1);
    cr_assert_eq(mixed.signal_calls, 0, "freed signal source was dispatched");
    OK(bgl_timer_free(mixed.timer));
    free_loop(loop);
}

static struct {
    bgl_io *io;
    bgl_timer *timer;
    int io_calls, timer_calls;
} cross;

static void io_frees_queued_timer(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents, (void)ud;
    drain(fd);
    cross.io_calls++;
    OK(bgl_timer_free(cross.timer));
    cross.timer = NULL;
}

static void timer_never(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
    cross.timer_calls++;
}

Test(reentrancy, io_callback_frees_a_queued_timer)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, io_frees_queued_timer, NULL, &cross.io));
    OK(bgl_timer_new(loop, timer_never, NULL, &cross.timer));
    OK(bgl_timer_start(cross.timer, 0, 0));
    write_byte(p[1]);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(cross.io_calls, 1);
    cr_assert_eq(cross.timer_calls, 0, "freed timer fired");
    OK(bgl_io_free(cross.io));
    close_pair(p);
    free_loop(loop);
}

/* A soon callback (queued first) frees an io watcher that the same
 * iteration collected behind it. */
static bgl_io *doomed;
static void soon_frees_io(void *ud)
{
    (void)ud;
    OK(bgl_io_free(doomed));
    doomed = NULL;
}
static void io_never(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)fd, (void)revents, (void)ud;
    cr_assert_fail("freed watcher dispatched");
}

Test(reentrancy, call_soon_frees_an_io_watcher_queued_behind_it)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, io_never, NULL, &doomed));
    write_byte(p[1]);
    OK(bgl_loop_call_soon(loop, soon_frees_io, NULL));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    close_pair(p);
    free_loop(loop);
}

/* ---- creating during dispatch ---------------------------------------------- */

static struct {
    bgl_fd fd;
    bgl_io *io;
    int calls;
} late;

static void late_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents, (void)ud;
    drain(fd);
    late.calls++;
}

static void create_watcher(void *ud)
{
    (void)ud;
    OK(bgl_io_new(the_loop, late.fd, BGL_IO_READ, late_io, NULL, &late.io));
}

Test(reentrancy, watcher_created_in_a_callback_is_dispatched_next_iteration)
{
    bgl_loop *loop = the_loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    late.fd = p[0];
    write_byte(p[1]);
    OK(bgl_loop_call_soon(loop, create_watcher, NULL));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(late.calls, 0);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(late.calls, 1);
    OK(bgl_io_free(late.io));
    close_pair(p);
    free_loop(loop);
}

static void recreate_on_same_fd(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)revents, (void)ud;
    self_calls++;
    OK(bgl_io_free(io));
    OK(bgl_io_new(the_loop, fd, BGL_IO_READ, late_io, NULL, &late.io));
}

Test(reentrancy, callback_frees_its_watcher_and_watches_the_same_fd_again)
{
    bgl_loop *loop = the_loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, recreate_on_same_fd, NULL, &io));
    write_byte(p[1]);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(self_calls, 1);
    cr_assert_eq(late.calls, 0);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(late.calls, 1);
    OK(bgl_io_free(late.io));
    close_pair(p);
    free_loop(loop);
}

/* Modify the other's interest: of two ready watchers only the first runs. */
static struct {
    bgl_io *io[2];
    int calls[2];
} duo;

static void pause_the_other(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)fd, (void)revents;
    int me = (int)(intptr_t)ud;
    duo.calls[me]++;
    OK(bgl_io_set_events(duo.io[1 - me], 0));
}

Test(reentrancy, pausing_a_queued_watcher_in_a_callback_skips_it)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2][2];
    for (int i = 0; i < 2; i++) {
        make_pipe(p[i]);
        OK(bgl_io_new(loop, p[i][0], BGL_IO_READ, pause_the_other, (void *)(intptr_t)i,
                      &duo.io[i]));
        write_byte(p[i][1]);
    }
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(duo.calls[0] + duo.calls[1], 1, "a paused queued watcher still ran");
    for (int i = 0; i < 2; i++) {
        OK(bgl_io_free(duo.io[i]));
        close_pair(p[i]);
    }
    free_loop(loop);
}

/* ---- re-entering the loop ------------------------------------------------------ */

static int reentry_checked;
static void try_reentry(void *ud)
{
    (void)ud;
    EXPECT_RC(bgl_loop_run_once(the_loop, 0), -EBUSY);
    EXPECT_RC(bgl_loop_run(the_loop), -EBUSY);
    EXPECT_RC(bgl_loop_kick(the_loop, 0, -1), -EBUSY);
    int64_t timeout;
    EXPECT_RC(bgl_loop_prepare(the_loop, &timeout), -EBUSY);
    EXPECT_RC(bgl_loop_wait(the_loop, 0), -EBUSY);
    EXPECT_RC(bgl_loop_dispatch(the_loop, -1), -EBUSY);
    EXPECT_RC(bgl_loop_take_stop(the_loop, NULL), 0); /* allowed, none pending */
    EXPECT_RC(bgl_loop_free(the_loop), -EBUSY);
    reentry_checked = 1;
}

Test(reentrancy, running_or_freeing_the_loop_from_its_callback_is_ebusy)
{
    bgl_loop *loop = the_loop = new_loop();
    OK(bgl_loop_call_soon(loop, try_reentry, NULL));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    cr_assert_eq(reentry_checked, 1);
    /* Still usable afterwards. */
    OK(bgl_loop_call_soon(loop, try_reentry, NULL));
    OK(bgl_loop_run(loop));
    free_loop(loop);
}

static void nested_other_loop(void *ud)
{
    /* A different loop may be run from a callback. */
    bgl_loop *inner = ud;
    EXPECT_RC(bgl_loop_run_once(inner, 0), 1);
    self_calls++;
}
static void inner_cb(void *ud)
{
    (void)ud;
    self_calls++;
}

Test(reentrancy, a_callback_may_run_another_loop)
{
    bgl_loop *outer = new_loop(), *inner = new_loop();
    OK(bgl_loop_call_soon(inner, inner_cb, NULL));
    OK(bgl_loop_call_soon(outer, nested_other_loop, inner));
    EXPECT_RC(bgl_loop_run_once(outer, 0), 1);
    cr_assert_eq(self_calls, 2);
    free_loop(inner);
    free_loop(outer);
}

static void discard_note(void *ud)
{
    (*(int *)ud)++;
}

Test(reentrancy, discard_runs_for_calls_queued_by_callbacks_at_free)
{
    /* A call queued during the last iteration never ran: discarded at free. */
    bgl_loop *loop = new_loop();
    static int discarded;
    OK(bgl_loop_call_soon_full(loop, inner_cb, &discarded, discard_note));
    OK(bgl_loop_call_soon_full(loop, inner_cb, &discarded, discard_note));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 2);
    OK(bgl_loop_call_soon_full(loop, inner_cb, &discarded, discard_note));
    free_loop(loop);
    cr_assert_eq(discarded, 1);
    cr_assert_eq(self_calls, 2);
}

/* A discard function run by bgl_loop_free() (the Python binding drops a
 * reference there, which runs arbitrary code) must not be able to attach
 * anything to the dying loop or free it a second time. */
typedef struct dying {
    bgl_loop *loop;
    int calls, soon_rc, ts_rc, timer_rc, io_rc, free_rc, run_rc, kick_rc;
    int prepare_rc, wait_rc, dispatch_rc;
} dying;

static void never_runs(void *ud)
{
    (void)ud;
    cr_assert_fail("a call on a loop being freed ran");
}

static void never_fires(bgl_timer *t, void *ud)
{
    (void)t, (void)ud;
}

static void never_ready(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)fd, (void)revents, (void)ud;
}

static void discard_reenters(void *ud)
{
    dying *d = ud;
    d->calls++;
    d->soon_rc = bgl_loop_call_soon_full(d->loop, never_runs, d, discard_reenters);
    d->ts_rc = bgl_loop_call_threadsafe(d->loop, never_runs, d, discard_reenters);
    bgl_timer *t = NULL;
    d->timer_rc = bgl_timer_new(d->loop, never_fires, NULL, &t);
    bgl_io *io = NULL;
    d->io_rc = bgl_io_new(d->loop, 0, 0, never_ready, NULL, &io);
    d->free_rc = bgl_loop_free(d->loop);
    d->run_rc = bgl_loop_run_once(d->loop, 0);
    d->kick_rc = bgl_loop_kick(d->loop, 0, -1);
    int64_t timeout;
    d->prepare_rc = bgl_loop_prepare(d->loop, &timeout);
    d->wait_rc = bgl_loop_wait(d->loop, 0);
    d->dispatch_rc = bgl_loop_dispatch(d->loop, -1);
}

Test(reentrancy, discard_run_by_free_cannot_queue_create_run_or_free_again)
{
    dying soon = {0}, ts = {0};
    soon.loop = ts.loop = new_loop();
    OK(bgl_loop_call_soon_full(soon.loop, never_runs, &soon, discard_reenters));
    OK(bgl_loop_call_threadsafe(ts.loop, never_runs, &ts, discard_reenters));
    OK(bgl_loop_free(soon.loop));
    dying *all[] = {&soon, &ts};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(all[i]->calls, 1, "discard %d ran %d times", i, all[i]->calls);
        EXPECT_RC(all[i]->soon_rc, -EBUSY);
        EXPECT_RC(all[i]->ts_rc, -EBUSY);
        EXPECT_RC(all[i]->timer_rc, -EBUSY);
        EXPECT_RC(all[i]->io_rc, -EBUSY);
        EXPECT_RC(all[i]->free_rc, -EBUSY);
        EXPECT_RC(all[i]->run_rc, -EBUSY);
        EXPECT_RC(all[i]->kick_rc, -EBUSY);
        EXPECT_RC(all[i]->prepare_rc, -EBUSY);
        EXPECT_RC(all[i]->wait_rc, -EBUSY);
        EXPECT_RC(all[i]->dispatch_rc, -EBUSY);
    }
}

/* Two ready watchers; whichever runs first frees the other, closes its pipe
 * and watches a fresh, empty pipe that most likely reuses the same fd
 * numbers.  The kernel's event for the old fd must not reach the new
 * watcher (it was created during dispatch, and its pipe is empty). */
static struct {
    bgl_loop *loop;
    bgl_io *io[2];
    bgl_fd p[2][2];
    int calls[2];
    bgl_io *fresh;
    bgl_fd fresh_p[2];
    int fresh_calls;
} reuse;

static void fresh_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)fd, (void)revents, (void)ud;
    reuse.fresh_calls++;
}

static void replace_the_other(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)revents;
    int me = (int)(intptr_t)ud, other = 1 - me;
    reuse.calls[me]++;
    drain(fd);
    if (!reuse.io[other])
        return;
    bgl_fd old_fd = reuse.p[other][0];
    OK(bgl_io_free(reuse.io[other]));
    reuse.io[other] = NULL;
    close_pair(reuse.p[other]);
    make_pipe(reuse.fresh_p);
    OK(bgl_io_new(reuse.loop, reuse.fresh_p[0], BGL_IO_READ, fresh_io, NULL, &reuse.fresh));
    cr_log_info("old fd %lld, fresh fd %lld", (long long)old_fd, (long long)reuse.fresh_p[0]);
}

Test(reentrancy, fd_number_reused_during_dispatch_gets_no_stale_event)
{
    bgl_loop *loop = reuse.loop = new_loop();
    for (int i = 0; i < 2; i++) {
        make_pipe(reuse.p[i]);
        OK(bgl_io_new(loop, reuse.p[i][0], BGL_IO_READ, replace_the_other, (void *)(intptr_t)i,
                      &reuse.io[i]));
        write_byte(reuse.p[i][1]);
    }
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(reuse.calls[0] + reuse.calls[1], 1);
    cr_assert_eq(reuse.fresh_calls, 0, "the new watcher got the old fd's event");
    write_byte(reuse.fresh_p[1]);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 1); /* and works normally */
    cr_assert_eq(reuse.fresh_calls, 1);
    for (int i = 0; i < 2; i++) {
        if (reuse.io[i]) {
            OK(bgl_io_free(reuse.io[i]));
            close_pair(reuse.p[i]);
        }
    }
    OK(bgl_io_free(reuse.fresh));
    close_pair(reuse.fresh_p);
    free_loop(loop);
}
