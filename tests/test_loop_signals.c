/* test_loop_signals.c - POSIX signals delivered as callbacks on the loop
 * thread: raise(), kill(getpid()) and SIGCHLD from a child process.
 *
 * raise() targets the calling thread, so it works in Criterion's
 * two-threaded worker.  A signal sent to the whole process could be taken by
 * Criterion's thread, which does not block it; those tests run in a
 * single-threaded fork()ed child (run_in_child), as the header asks. */
#include "helpers.h"

#include <signal.h>

TestSuite(signals, .timeout = BGL_TEST_TIMEOUT);

static struct {
    int calls;
    int signo;
    void *userdata;
    bgl_signal *source;
} got;

static void note_signal(bgl_signal *s, int signo, void *ud)
{
    got.calls++;
    got.signo = signo;
    got.userdata = ud;
    got.source = s;
}

static void never_ready_io(bgl_io *io, bgl_fd fd, unsigned revents, void *ud)
{
    (void)io, (void)fd, (void)revents, (void)ud;
}

Test(signals, raised_sigusr1_is_delivered_as_a_callback)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    int tag;
    OK(bgl_signal_new(loop, SIGUSR1, note_signal, &tag, &s));
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    cr_assert_eq(raise(SIGUSR1), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 1);
    cr_assert_eq(got.calls, 1);
    cr_assert_eq(got.signo, SIGUSR1);
    cr_assert_eq(got.userdata, &tag);
    cr_assert_eq(got.source, s);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_signal_free(s));
    free_loop(loop);
}

/* A watcher whose fd was closed behind its back (asyncio's "sock.close()
 * then remove_reader()") while the loop's signal descriptor took over the
 * fd number: changing or freeing the stale watcher must not touch the
 * loop's own descriptor (unregistered, signals would stop arriving). */
Test(signals, stale_watcher_leaves_alone_the_signal_fd_that_reused_its_number)
{
    bgl_loop *loop = new_loop();
    bgl_fd p[2];
    make_pipe(p);
    bgl_io *io;
    OK(bgl_io_new(loop, p[0], BGL_IO_READ, never_ready_io, NULL, &io));
    int stale = p[0];
    close(p[0]);
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGUSR1, note_signal, NULL, &s));
    if (!BGL_TEST_POLL) {
        char path[64], target[64] = "";
        snprintf(path, sizeof path, "/proc/self/fd/%d", stale);
        cr_assert_gt(readlink(path, target, sizeof target - 1), 0, "fd %d is not open", stale);
        cr_assert(strstr(target, "signalfd"), "fd %d is %s, not the signalfd", stale, target);
    }
    EXPECT_RC(bgl_io_set_events(io, BGL_IO_READ | BGL_IO_WRITE), -EBADF);
    OK(bgl_io_free(io));
    close(p[1]);
    cr_assert_eq(raise(SIGUSR1), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 5 * SEC), 1);
    cr_assert_eq(got.calls, 1);
    OK(bgl_signal_free(s));
    free_loop(loop);
}

Test(signals, repeated_deliveries_before_an_iteration_may_coalesce)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGUSR2, note_signal, NULL, &s));
    cr_assert_eq(raise(SIGUSR2), 0);
    cr_assert_eq(raise(SIGUSR2), 0);
    int n = bgl_loop_run_once(loop, 30 * SEC);
    cr_assert(n == 1 || n == 2, "run_once returned %d", n);
    bgl_loop_run_once(loop, 0);
    cr_assert(got.calls >= 1 && got.calls <= 2, "%d callbacks for two raises", got.calls);
    EXPECT_RC(bgl_loop_run_once(loop, 0), 0);
    OK(bgl_signal_free(s));
    free_loop(loop);
}

/* ---- process-directed signals, in a single-threaded child ----------------- */

static int child_kill_self(int signo)
{
    bgl_loop *loop;
    bgl_signal *s;
    if (bgl_loop_new(&loop) != 0)
        return 10;
    if (bgl_signal_new(loop, signo, note_signal, NULL, &s) != 0)
        return 11;
    if (kill(getpid(), signo) != 0)
        return 12;
    /* Default disposition would have killed us by now if it leaked. */
    int n = bgl_loop_run_once(loop, 30 * SEC);
    if (n != 1)
        return 13;
    if (got.calls != 1 || got.signo != signo)
        return 14;
    if (bgl_signal_free(s) != 0)
        return 15;
    if (bgl_loop_free(loop) != 0)
        return 16;
    return 0;
}

static int child_sigterm(void)
{
    return child_kill_self(SIGTERM);
}

static int child_sigusr1(void)
{
    return child_kill_self(SIGUSR1);
}

Test(signals, kill_getpid_sigterm_is_delivered_not_fatal)
{
    int status = run_in_child(child_sigterm);
    cr_assert_eq(status, 0, "child exit status %d (128+n: killed by signal n)", status);
}

Test(signals, kill_getpid_sigusr1_is_delivered)
{
    int status = run_in_child(child_sigusr1);
    cr_assert_eq(status, 0, "child exit status %d (128+n: killed by signal n)", status);
}

/* In the single-threaded child: a SIGUSR1 source on a loop, then fork();
 * the grandchild gives SIGUSR1 a source on a loop of its own (the parent's
 * belongs to the parent) and receives it there. */
static int grandchild_own_source(void)
{
    bgl_loop *loop;
    bgl_signal *s;
    if (bgl_loop_new(&loop) != 0)
        return 20;
    if (bgl_signal_new(loop, SIGUSR1, note_signal, NULL, &s) != 0)
        return 21; /* -EEXIST: the parent's source was still registered */
    got.calls = 0;
    if (raise(SIGUSR1) != 0)
        return 22;
    if (bgl_loop_run_once(loop, 30 * SEC) != 1 || got.calls != 1)
        return 23;
    if (bgl_signal_free(s) != 0 || bgl_loop_free(loop) != 0)
        return 24;
    return 0;
}

static int child_forks_with_a_source(void)
{
    bgl_loop *loop;
    bgl_signal *s;
    if (bgl_loop_new(&loop) != 0)
        return 10;
    if (bgl_signal_new(loop, SIGUSR1, note_signal, NULL, &s) != 0)
        return 11;
    int status = run_in_child(grandchild_own_source);
    if (status != 0)
        return status;
    /* The parent's source still works. */
    got.calls = 0;
    if (raise(SIGUSR1) != 0 || bgl_loop_run_once(loop, 30 * SEC) != 1 || got.calls != 1)
        return 12;
    if (bgl_signal_free(s) != 0 || bgl_loop_free(loop) != 0)
        return 13;
    return 0;
}

Test(signals, forked_child_can_give_a_signal_of_the_parent_a_source_of_its_own)
{
    int status = run_in_child(child_forks_with_a_source);
    cr_assert_eq(status, 0, "child exit status %d (128+n: killed by signal n)", status);
}

static int child_sigchld(void)
{
    bgl_loop *loop;
    bgl_signal *s;
    if (bgl_loop_new(&loop) != 0)
        return 20;
    if (bgl_signal_new(loop, SIGCHLD, note_signal, NULL, &s) != 0)
        return 21;
    pid_t pid = fork();
    if (pid < 0)
        return 22;
    if (pid == 0)
        _exit(3);
    for (int i = 0; i < 100 && got.calls == 0; i++)
        if (bgl_loop_run_once(loop, 30 * SEC) < 0)
            return 23;
    if (got.calls < 1 || got.signo != SIGCHLD)
        return 24;
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 3)
        return 25;
    if (bgl_signal_free(s) != 0)
        return 26;
    if (bgl_loop_free(loop) != 0)
        return 27;
    return 0;
}

Test(signals, sigchld_from_an_exiting_child_is_delivered)
{
    int status = run_in_child(child_sigchld);
    cr_assert_eq(status, 0, "child exit status %d", status);
}

/* ---- source management --------------------------------------------------- */

Test(signals, second_source_for_the_same_signal_is_eexist)
{
    bgl_loop *a = new_loop(), *b = new_loop();
    bgl_signal *s, *s2 = NULL;
    OK(bgl_signal_new(a, SIGUSR1, note_signal, NULL, &s));
    EXPECT_RC(bgl_signal_new(a, SIGUSR1, note_signal, NULL, &s2), -EEXIST);
    EXPECT_RC(bgl_signal_new(b, SIGUSR1, note_signal, NULL, &s2), -EEXIST); /* per process */
    OK(bgl_signal_free(s));
    OK(bgl_signal_new(b, SIGUSR1, note_signal, NULL, &s2)); /* free again */
    OK(bgl_signal_free(s2));
    free_loop(a);
    free_loop(b);
}

static volatile sig_atomic_t own_handler_ran;
static void own_handler(int signo)
{
    (void)signo;
    own_handler_ran = 1;
}

Test(signals, free_restores_the_previous_disposition_and_mask)
{
    struct sigaction sa = {0}, now;
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    sigset_t mask_before, mask_after;
    pthread_sigmask(SIG_SETMASK, NULL, &mask_before);
    cr_assert_eq(sigismember(&mask_before, SIGUSR2), 0);

    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGUSR2, note_signal, NULL, &s));
    cr_assert_eq(raise(SIGUSR2), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 1);
    cr_assert_eq(own_handler_ran, 0, "the previous handler ran while the source existed");
    OK(bgl_signal_free(s));

    cr_assert_eq(sigaction(SIGUSR2, NULL, &now), 0);
    cr_assert_eq((void *)now.sa_handler, (void *)own_handler, "disposition not restored");
    pthread_sigmask(SIG_SETMASK, NULL, &mask_after);
    cr_assert_eq(sigismember(&mask_after, SIGUSR2), 0, "SIGUSR2 left blocked");
    cr_assert_eq(raise(SIGUSR2), 0);
    cr_assert_eq(own_handler_ran, 1, "the previous handler does not run again");
    free_loop(loop);
}

Test(signals, free_restores_a_blocked_mask_as_blocked)
{
    sigset_t set, after;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGHUP, note_signal, NULL, &s));
    OK(bgl_signal_free(s));
    pthread_sigmask(SIG_SETMASK, NULL, &after);
    cr_assert_eq(sigismember(&after, SIGHUP), 1, "a mask blocked before was unblocked");
    free_loop(loop);
}

static bgl_loop *run_loop;
static void free_own_source(bgl_signal *s, int signo, void *ud)
{
    (void)signo, (void)ud;
    got.calls++;
    OK(bgl_signal_free(s));
}

Test(signals, signal_source_keeps_run_alive_until_freed)
{
    bgl_loop *loop = run_loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGUSR1, free_own_source, NULL, &s));
    cr_assert_eq(raise(SIGUSR1), 0);
    OK(bgl_loop_run(loop)); /* returns once the only source freed itself */
    cr_assert_eq(got.calls, 1);
    free_loop(loop);
}

Test(signals, two_signals_two_sources_each_get_their_own)
{
    bgl_loop *loop = new_loop();
    bgl_signal *a, *b;
    static int seen_usr1, seen_usr2;
    OK(bgl_signal_new(loop, SIGUSR1, note_signal, &seen_usr1, &a));
    OK(bgl_signal_new(loop, SIGUSR2, note_signal, &seen_usr2, &b));
    cr_assert_eq(raise(SIGUSR2), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 1);
    cr_assert_eq(got.signo, SIGUSR2);
    cr_assert_eq(got.source, b);
    cr_assert_eq(got.userdata, &seen_usr2);
    cr_assert_eq(raise(SIGUSR1), 0);
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 1);
    cr_assert_eq(got.signo, SIGUSR1);
    cr_assert_eq(got.source, a);
    OK(bgl_signal_free(a));
    OK(bgl_signal_free(b));
    free_loop(loop);
}
