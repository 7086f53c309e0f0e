/* test_loop_console.c - signal sources on Windows: console control events
 * and raise() of SIGINT, SIGBREAK and SIGTERM as loop callbacks; what
 * Windows cannot deliver is -ENOTSUP.  Built for Windows only (the POSIX
 * signals are test_loop_signals.c's). */
#include "helpers.h"

#include <bgloop/notify.h>

static int seen[NSIG];

static void note_signal(bgl_signal *s, int signo, void *ud)
{
    (void)s, (void)ud;
    if (signo > 0 && signo < NSIG)
        seen[signo]++;
}

Test(console, raised_sigint_is_a_loop_callback)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGINT, note_signal, NULL, &s));
    cr_assert_eq(raise(SIGINT), 0);
    cr_assert_eq(seen[SIGINT], 0, "delivered inside raise(), not by the loop");
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 1);
    cr_assert_eq(seen[SIGINT], 1);
    OK(bgl_signal_free(s));
    free_loop(loop);
}

Test(console, break_and_term_reach_their_own_sources)
{
    bgl_loop *loop = new_loop();
    bgl_signal *brk, *term;
    OK(bgl_signal_new(loop, SIGBREAK, note_signal, NULL, &brk));
    OK(bgl_signal_new(loop, SIGTERM, note_signal, NULL, &term));
    cr_assert_eq(raise(SIGTERM), 0);
    cr_assert_eq(raise(SIGBREAK), 0);
    cr_assert_eq(raise(SIGBREAK), 0); /* coalesced with the first */
    EXPECT_RC(bgl_loop_run_once(loop, 30 * SEC), 2);
    cr_assert_eq(seen[SIGBREAK], 1);
    cr_assert_eq(seen[SIGTERM], 1);
    OK(bgl_signal_free(brk));
    OK(bgl_signal_free(term));
    free_loop(loop);
}

Test(console, a_raise_from_another_thread_wakes_a_blocked_loop)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGBREAK, note_signal, NULL, &s));
    HANDLE th = CreateThread(NULL, 0, (LPTHREAD_START_ROUTINE)(void (*)(void))raise,
                             (LPVOID)(intptr_t)SIGBREAK, 0, NULL);
    cr_assert_not_null(th);
    /* No timer: only the signal can end this wait. */
    while (seen[SIGBREAK] == 0)
        cr_assert_geq(bgl_loop_run_once(loop, 30 * SEC), 0);
    WaitForSingleObject(th, INFINITE);
    CloseHandle(th);
    cr_assert_eq(seen[SIGBREAK], 1);
    OK(bgl_signal_free(s));
    free_loop(loop);
}

Test(console, a_console_ctrl_break_event_is_sigbreak)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGBREAK, note_signal, NULL, &s));
    /* To every process of this console: the test's own group only. */
    if (!GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, 0)) {
        DWORD err = GetLastError();
        OK(bgl_signal_free(s));
        free_loop(loop);
        cr_skip_test("no console to send Ctrl+Break to (error %lu)", (unsigned long)err);
    }
    while (seen[SIGBREAK] == 0)
        cr_assert_geq(bgl_loop_run_once(loop, 30 * SEC), 0);
    OK(bgl_signal_free(s));
    free_loop(loop);
}

Test(console, signals_windows_cannot_deliver_are_not_supported)
{
    bgl_loop *loop = new_loop();
    bgl_signal *s = NULL;
    EXPECT_RC(bgl_signal_new(loop, SIGSEGV, note_signal, NULL, &s), -ENOTSUP);
    EXPECT_RC(bgl_signal_new(loop, SIGFPE, note_signal, NULL, &s), -ENOTSUP);
    EXPECT_RC(bgl_signal_new(loop, SIGILL, note_signal, NULL, &s), -ENOTSUP);
    EXPECT_RC(bgl_signal_new(loop, SIGABRT, note_signal, NULL, &s), -ENOTSUP);
    EXPECT_RC(bgl_signal_new(loop, 1, note_signal, NULL, &s), -ENOTSUP);
    EXPECT_RC(bgl_signal_new(loop, NSIG, note_signal, NULL, &s), -EINVAL);
    EXPECT_RC(bgl_signal_new(loop, 0, note_signal, NULL, &s), -EINVAL);
    cr_assert_null(s);
    free_loop(loop);
}

Test(console, one_source_per_signal_per_process)
{
    bgl_loop *a = new_loop(), *b = new_loop();
    bgl_signal *s, *t = NULL;
    OK(bgl_signal_new(a, SIGINT, note_signal, NULL, &s));
    EXPECT_RC(bgl_signal_new(b, SIGINT, note_signal, NULL, &t), -EEXIST);
    OK(bgl_signal_free(s));
    OK(bgl_signal_new(b, SIGINT, note_signal, NULL, &t));
    OK(bgl_signal_free(t));
    free_loop(a);
    free_loop(b);
}

Test(console, freeing_gives_raise_back_to_the_previous_handler)
{
    static volatile int previous;
    void (*mine)(int) = signal(SIGBREAK, SIG_IGN);
    cr_assert_neq((void *)mine, (void *)SIG_ERR);
    bgl_loop *loop = new_loop();
    bgl_signal *s;
    OK(bgl_signal_new(loop, SIGBREAK, note_signal, NULL, &s));
    OK(bgl_signal_free(s));
    cr_assert_eq((void *)signal(SIGBREAK, mine), (void *)SIG_IGN);
    (void)previous;
    free_loop(loop);
}

Test(console, no_notification_socket_on_windows)
{
    bgl_loop *loop = new_loop();
    bgl_notify *n = NULL;
    EXPECT_RC(bgl_notify_new(loop, "/run/systemd/notify", &n), -ENOTSUP);
    char why[200];
    cr_assert_eq(_putenv("NOTIFY_SOCKET="), 0);
    EXPECT_RC(bgl_notify_new_from_env(loop, &n, why, sizeof why), -ENOENT);
    cr_assert_eq(_putenv("NOTIFY_SOCKET=/run/systemd/notify"), 0);
    EXPECT_RC(bgl_notify_new_from_env(loop, &n, why, sizeof why), -ENOTSUP);
    cr_assert(strstr(why, "Windows") != NULL, "why: %s", why);
    cr_assert_null(n);
    free_loop(loop);
}
