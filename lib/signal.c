/* signal.c - POSIX signals as loop callbacks.
 *
 * Linux epoll build: the signals are blocked in the creating thread and read
 * from one signalfd per loop.  Otherwise: a sigaction handler writes the
 * signal number to a per-loop self-pipe.  A process-wide table, under a
 * mutex, enforces one source per signal.
 */
#include "loop-internal.h"

#ifndef _WIN32 /* Windows: signal-win.c */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef BGL_USE_SIGNALFD
#  include <sys/signalfd.h>
#endif

static pthread_mutex_t g_sig_lock = PTHREAD_MUTEX_INITIALIZER;
static bgl_signal *g_sig[NSIG];
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

#ifndef BGL_USE_SIGNALFD
/* Write end of the self-pipe for each signal, plus one (0 = none), read by
 * the handler; int-sized stores are atomic on every platform we target. */
static volatile sig_atomic_t g_sig_wfd[NSIG];

static void on_signal(int signo)
{
    int saved = errno;
    if (signo > 0 && signo < NSIG) {
        int fd = (int)g_sig_wfd[signo] - 1;
        if (fd >= 0) {
            unsigned char b = (unsigned char)signo;
            /* A full pipe is fine: the loop is woken already and
             * deliveries may coalesce. */
            ssize_t r = write(fd, &b, 1);
            (void)r;
        }
    }
    errno = saved;
}
#endif

/* fork(): the parent's sources belong to the parent's loops, which the
 * child must not use (see loop.h, FORK).  Forget them in the child, so that
 * it can give the same signals sources on loops of its own, and - self-pipe
 * - so that its handler no longer writes into the pipe the parent reads.
 * The lock is taken around fork() so the table is copied consistently. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&g_sig_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&g_sig_lock);
}

static void atfork_child(void)
{
    memset(g_sig, 0, sizeof g_sig);
#ifndef BGL_USE_SIGNALFD
    for (int i = 0; i < NSIG; i++)
        g_sig_wfd[i] = 0;
#endif
    pthread_mutex_unlock(&g_sig_lock);
}

static void atfork_register(void)
{
    (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void bgli_signals_init(bgl_loop *loop)
{
    sigemptyset(&loop->sig_mask);
    loop->sig_rfd = loop->sig_wfd = -1;
    loop->sig_io.slot = (size_t)-1;
}

void bgli_signals_free(bgl_loop *loop)
{
    if (loop->sig_rfd < 0)
        return;
    bgli_io_internal_remove(loop, &loop->sig_io);
    close(loop->sig_rfd);
    if (loop->sig_wfd >= 0)
        close(loop->sig_wfd);
    loop->sig_rfd = loop->sig_wfd = -1;
    loop->sig_ready = 0;
    sigemptyset(&loop->sig_mask);
}

static int open_fd(bgl_loop *loop)
{
#ifdef BGL_USE_SIGNALFD
    sigset_t none;
    sigemptyset(&none);
    int fd = signalfd(-1, &none, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    loop->sig_rfd = fd;
    return 0;
#else
    int fds[2];
    int r = bgli_pipe_cloexec_nonblock(fds);
    if (r < 0)
        return r;
    loop->sig_rfd = fds[0];
    loop->sig_wfd = fds[1];
    return 0;
#endif
}

/* Create the loop's signal descriptor on first use. */
static int ensure_fd(bgl_loop *loop)
{
    if (loop->sig_rfd >= 0)
        return 0;
    int r = open_fd(loop);
    if (r < 0)
        return r;
    r = bgli_io_internal_add(loop, &loop->sig_io, loop->sig_rfd);
    if (r < 0) {
        close(loop->sig_rfd);
        if (loop->sig_wfd >= 0)
            close(loop->sig_wfd);
        loop->sig_rfd = loop->sig_wfd = -1;
        return r;
    }
    return 0;
}

static int valid_signo(int signo)
{
    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
        return 0;
#ifdef SIGRTMIN
    /* The C library keeps the first real-time signals for itself. */
    if (signo > 31 && signo < SIGRTMIN)
        return 0;
#endif
    return 1;
}

int bgl_signal_new(bgl_loop *loop, int signo, bgl_signal_cb cb, void *userdata,
                   bgl_signal **out)
{
    if (!loop || !cb || !out || !valid_signo(signo))
        return -EINVAL;
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

    pthread_once(&g_atfork_once, atfork_register);
    pthread_mutex_lock(&g_sig_lock);
    int r = -EEXIST;
    if (g_sig[signo])
        goto fail;
    r = ensure_fd(loop);
    if (r < 0)
        goto fail;

    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, signo);
#ifdef BGL_USE_SIGNALFD
    r = -pthread_sigmask(SIG_BLOCK, &one, &old);
    if (r < 0)
        goto fail;
    s->was_blocked = sigismember(&old, signo) == 1;
    sigaddset(&loop->sig_mask, signo);
    if (signalfd(loop->sig_rfd, &loop->sig_mask, 0) < 0) {
        r = -errno;
        sigdelset(&loop->sig_mask, signo);
        if (!s->was_blocked)
            pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        goto fail;
    }
#else
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    g_sig_wfd[signo] = loop->sig_wfd + 1;
    if (sigaction(signo, &sa, &s->old_act) < 0) {
        r = -errno;
        g_sig_wfd[signo] = 0;
        goto fail;
    }
    /* The handler must be able to run in this thread. */
    pthread_sigmask(SIG_UNBLOCK, &one, &old);
    s->was_blocked = sigismember(&old, signo) == 1;
#endif
    g_sig[signo] = s;
    pthread_mutex_unlock(&g_sig_lock);
    loop->sigsrc[signo] = s;
    loop->signal_count++;
    *out = s;
    return 0;

fail:
    pthread_mutex_unlock(&g_sig_lock);
    free(s);
    return r;
}

int bgl_signal_free(bgl_signal *sig)
{
    if (!sig)
        return -EINVAL;
    bgl_loop *loop = sig->loop;
    int signo = sig->signo;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);

    pthread_mutex_lock(&g_sig_lock);
#ifdef BGL_USE_SIGNALFD
    sigdelset(&loop->sig_mask, signo);
    (void)signalfd(loop->sig_rfd, &loop->sig_mask, 0);
    if (!sig->was_blocked) {
        /* Consume an instance still pending for us, or unblocking would
         * hand it to the default action (often: terminate). */
        sigset_t pend;
        struct timespec zero = {0, 0};
        while (sigpending(&pend) == 0 && sigismember(&pend, signo) == 1 &&
               sigtimedwait(&one, NULL, &zero) == signo)
            ;
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
#else
    sigaction(signo, &sig->old_act, NULL);
    g_sig_wfd[signo] = 0;
    if (sig->was_blocked)
        pthread_sigmask(SIG_BLOCK, &one, NULL);
#endif
    g_sig[signo] = NULL;
    pthread_mutex_unlock(&g_sig_lock);

    if (sig->node.queued)
        bgli_loop_dequeue(loop, &sig->node);
    loop->sigsrc[signo] = NULL;
    /* The last source takes the descriptor with it: a loop that stopped
     * handling signals holds no signal fd. */
    if (--loop->signal_count == 0)
        bgli_signals_free(loop);
    free(sig);
    return 0;
}

static void deliver(bgl_loop *loop, int signo)
{
    if (signo <= 0 || signo >= NSIG)
        return;
    bgl_signal *s = loop->sigsrc[signo];
    if (s && !s->node.queued)
        bgli_loop_enqueue(loop, &s->node);
}

void bgli_signals_collect(bgl_loop *loop)
{
    loop->sig_ready = 0;
    if (loop->sig_rfd < 0)
        return;
#ifdef BGL_USE_SIGNALFD
    struct signalfd_siginfo si[16];
    for (;;) {
        ssize_t n = read(loop->sig_rfd, si, sizeof(si));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++)
            deliver(loop, (int)si[i].ssi_signo);
        if ((size_t)n < sizeof(si))
            break;
    }
#else
    unsigned char buf[64];
    for (;;) {
        ssize_t n = read(loop->sig_rfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            deliver(loop, buf[i]);
        if ((size_t)n < sizeof(buf))
            break;
    }
#endif
}

#endif /* !_WIN32 */
