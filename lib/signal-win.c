/* signal-win.c - console events as loop callbacks (Windows).
 *
 * Windows has no POSIX signals.  What a console program gets instead are
 * console control events, handed to a handler on a thread of their own:
 * Ctrl+C (SIGINT), Ctrl+Break (SIGBREAK) and the console's close, the
 * user's logoff or the system's shutdown (SIGTERM).  The handler marks the
 * signal pending on the loop that has a source for it and wakes that loop,
 * as a thread-safe call would; the loop delivers it at its next dispatch.
 * raise() of those three signals in the process is delivered the same way,
 * through a C runtime handler.
 *
 * Windows ends the process as soon as the handler returns from a close,
 * logoff or shutdown event, so for those the handler waits - at most
 * BGL_SIGNAL_CLOSE_WAIT_MS - until the SIGTERM source is freed, which is
 * what a program that stops on SIGTERM does once it has stopped.
 */
#include "loop-internal.h"

#ifdef _WIN32

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

static bgli_mutex g_sig_lock = BGLI_MUTEX_INIT;
static bgl_signal *g_sig[NSIG];
static int g_console_handler;
/* Set when the SIGTERM source is freed: ends the close handler's wait. */
static HANDLE g_term_released;

void bgli_signals_init(bgl_loop *loop)
{
    loop->sig_pending = 0;
    loop->sig_io.slot = (size_t)-1;
}

void bgli_signals_free(bgl_loop *loop)
{
    InterlockedExchange(&loop->sig_pending, 0);
    loop->sig_ready = 0;
}

/* Mark signo pending on its loop and wake that loop.  Any thread. */
static int post(int signo)
{
    bgli_mutex_lock(&g_sig_lock);
    bgl_signal *s = g_sig[signo];
    if (s) {
        InterlockedOr(&s->loop->sig_pending, (LONG)1 << signo);
        bgl_loop_wakeup(s->loop);
        if (signo == SIGTERM && g_term_released)
            ResetEvent(g_term_released);
    }
    bgli_mutex_unlock(&g_sig_lock);
    return s != NULL;
}

static BOOL WINAPI on_console(DWORD event)
{
    int signo;
    switch (event) {
    case CTRL_C_EVENT:
        signo = SIGINT;
        break;
    case CTRL_BREAK_EVENT:
        signo = SIGBREAK;
        break;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
        signo = SIGTERM;
        break;
    default:
        return FALSE;
    }
    /* No source: the next handler (in the end Windows' own) decides. */
    if (!post(signo))
        return FALSE;
    if (signo == SIGTERM)
        WaitForSingleObject(g_term_released, BGL_SIGNAL_CLOSE_WAIT_MS);
    return TRUE;
}

/* raise(): the C runtime resets the handler before calling it. */
static void on_crt_signal(int signo)
{
    signal(signo, on_crt_signal);
    if (signo > 0 && signo < NSIG)
        post(signo);
}

int bgl_signal_new(bgl_loop *loop, int signo, bgl_signal_cb cb, void *userdata,
                   bgl_signal **out)
{
    if (!loop || !cb || !out || signo <= 0 || signo >= NSIG)
        return -EINVAL;
    if (signo != SIGINT && signo != SIGBREAK && signo != SIGTERM)
        return -ENOTSUP;
    if (loop->freeing)
        return -EBUSY;
    bgl_signal *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->node.kind = BGL_NODE_SIGNAL;
    s->loop = loop;
    s->signo = signo;
    s->cb = cb;
    s->userdata = userdata;

    int r = -EEXIST;
    bgli_mutex_lock(&g_sig_lock);
    if (g_sig[signo])
        goto fail;
    if (signo == SIGTERM && !g_term_released &&
        !(g_term_released = CreateEventW(NULL, TRUE, FALSE, NULL))) {
        r = -ENOMEM;
        goto fail;
    }
    if (!g_console_handler) {
        /* Installed once and kept: it passes events on while no source
         * exists, and a handler may still be running on its thread. */
        if (!SetConsoleCtrlHandler(on_console, TRUE)) {
            r = -bgli_wsa_errno((int)GetLastError());
            goto fail;
        }
        g_console_handler = 1;
    }
    s->old_handler = signal(signo, on_crt_signal);
    if (s->old_handler == SIG_ERR) {
        r = -EINVAL;
        goto fail;
    }
    g_sig[signo] = s;
    bgli_mutex_unlock(&g_sig_lock);
    loop->sigsrc[signo] = s;
    loop->signal_count++;
    *out = s;
    return 0;

fail:
    bgli_mutex_unlock(&g_sig_lock);
    free(s);
    return r;
}

int bgl_signal_free(bgl_signal *sig)
{
    if (!sig)
        return -EINVAL;
    bgl_loop *loop = sig->loop;
    int signo = sig->signo;

    bgli_mutex_lock(&g_sig_lock);
    signal(signo, sig->old_handler);
    g_sig[signo] = NULL;
    if (signo == SIGTERM)
        SetEvent(g_term_released);
    bgli_mutex_unlock(&g_sig_lock);

    if (sig->node.queued)
        bgli_loop_dequeue(loop, &sig->node);
    loop->sigsrc[signo] = NULL;
    if (--loop->signal_count == 0)
        bgli_signals_free(loop);
    free(sig);
    return 0;
}

void bgli_signals_collect(bgl_loop *loop)
{
    loop->sig_ready = 0;
    LONG bits = InterlockedExchange(&loop->sig_pending, 0);
    for (int signo = 1; signo < NSIG; signo++) {
        bgl_signal *s = loop->sigsrc[signo];
        if ((bits & ((LONG)1 << signo)) && s && !s->node.queued)
            bgli_loop_enqueue(loop, &s->node);
    }
}

#endif /* _WIN32 */
