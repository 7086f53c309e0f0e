/* threadsafe.c - calls from other threads and the wakeup descriptor.
 *
 * Callers append to a mutex-protected list; each iteration takes at most
 * BGL_THREADSAFE_BATCH calls from its head, so a flood of calls cannot
 * starve timers and I/O (see loop.h).  Only the caller that finds no wakeup
 * pending writes to the descriptor, so a storm of calls costs one syscall
 * per iteration, not one per call.  eventfd on Linux, a loopback socket pair
 * with WSAPoll on Windows, a pipe elsewhere (or if eventfd is unavailable);
 * the AFD backend posts a packet to its completion port instead.
 */
#include <errno.h>
#include <stdlib.h>
#ifdef __linux__
#  include <sys/eventfd.h>
#endif

#include "backend.h"
#include "loop-internal.h"

/* Nodes kept for other threads to reuse; beyond that they are freed. */
#define TS_FREE_MAX 4096

int bgli_threadsafe_init(bgl_loop *loop)
{
    int r = bgli_mutex_init(&loop->ts_lock);
    if (r < 0)
        return r;
#ifdef BGL_BACKEND_AFD
    return 0;
#endif
#ifdef __linux__
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd >= 0) {
        loop->wake_rfd = loop->wake_wfd = efd;
    } else
#endif
    {
        bgl_fd fds[2];
        r = bgli_pipe_cloexec_nonblock(fds);
        if (r < 0) {
            bgli_mutex_destroy(&loop->ts_lock);
            return r;
        }
        loop->wake_rfd = fds[0];
        loop->wake_wfd = fds[1];
    }
    r = bgli_io_internal_add(loop, &loop->wake_io, loop->wake_rfd);
    if (r < 0) {
        bgli_threadsafe_free(loop);
        return r;
    }
    return 0;
}

static void free_list(bgl_call *c, int discard)
{
    while (c) {
        bgl_call *next = c->next_free;
        if (discard && c->discard)
            c->discard(c->userdata);
        free(c);
        c = next;
    }
}

void bgli_threadsafe_free(bgl_loop *loop)
{
#ifndef BGL_BACKEND_AFD
    bgli_io_internal_remove(loop, &loop->wake_io);
    if (loop->wake_wfd != (bgl_fd)-1 && loop->wake_wfd != loop->wake_rfd)
        bgli_fd_close(loop->wake_wfd);
    if (loop->wake_rfd != (bgl_fd)-1)
        bgli_fd_close(loop->wake_rfd);
    loop->wake_rfd = loop->wake_wfd = (bgl_fd)-1;
#endif
    free_list(loop->ts_head, 1);
    free_list(loop->ts_free, 0);
    free_list(loop->ts_recycle, 0);
    loop->ts_head = loop->ts_tail = loop->ts_free = loop->ts_recycle = NULL;
    bgli_mutex_destroy(&loop->ts_lock);
}

static void wake(bgl_loop *loop)
{
#ifdef BGL_BACKEND_AFD
    bgli_backend_wake(loop);
#else
    if (loop->wake_wfd == loop->wake_rfd) {
        uint64_t one = 1;
        /* EAGAIN means the counter is saturated: the loop is woken anyway. */
        while (bgli_fd_write(loop->wake_wfd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    } else {
        char c = 0;
        while (bgli_fd_write(loop->wake_wfd, &c, 1) < 0 && errno == EINTR)
            ;
    }
#endif
}

int bgl_loop_wakeup(bgl_loop *loop)
{
    if (!loop)
        return -EINVAL;
    wake(loop);
    return 0;
}

int bgl_loop_call_threadsafe(bgl_loop *loop, bgl_callback cb, void *userdata,
                             bgl_callback discard)
{
    if (!loop || !cb)
        return -EINVAL;
    bgli_mutex_lock(&loop->ts_lock);
    if (loop->freeing) {
        bgli_mutex_unlock(&loop->ts_lock);
        return -EBUSY;
    }
    bgl_call *c = loop->ts_free;
    if (c) {
        loop->ts_free = c->next_free;
        loop->ts_free_n--;
    } else {
        bgli_mutex_unlock(&loop->ts_lock);
        c = malloc(sizeof(*c));
        if (!c)
            return -ENOMEM;
        bgli_mutex_lock(&loop->ts_lock);
        if (loop->freeing) {
            bgli_mutex_unlock(&loop->ts_lock);
            free(c);
            return -EBUSY;
        }
    }
    c->node.kind = BGL_NODE_TSCALL;
    c->node.queued = 0;
    c->cb = cb;
    c->discard = discard;
    c->userdata = userdata;
    c->next_free = NULL;
    if (loop->ts_tail)
        loop->ts_tail->next_free = c;
    else
        loop->ts_head = c;
    loop->ts_tail = c;
    int need_wake = !loop->ts_signaled;
    loop->ts_signaled = 1;
    bgli_mutex_unlock(&loop->ts_lock);
    if (need_wake)
        wake(loop);
    return 0;
}

static void drain(bgl_loop *loop)
{
#ifdef BGL_BACKEND_AFD
    (void)loop; /* the packet was consumed by the wait that saw it */
#else
    if (loop->wake_wfd == loop->wake_rfd) {
        uint64_t v;
        while (bgli_fd_read(loop->wake_rfd, &v, sizeof(v)) < 0 && errno == EINTR)
            ;
    } else {
        char buf[64];
        ptrdiff_t n;
        do
            n = bgli_fd_read(loop->wake_rfd, buf, sizeof(buf));
        while (n == (ptrdiff_t)sizeof(buf) || (n < 0 && errno == EINTR));
    }
#endif
}

void bgli_threadsafe_collect(bgl_loop *loop)
{
    loop->wake_ready = 0;
    /* Drain before taking the list: a call made after the drain either is
     * in the list we take, or finds ts_signaled clear and writes again. */
    drain(loop);

    bgl_call *give = loop->ts_recycle;
    size_t give_n = loop->ts_recycle_n;
    loop->ts_recycle = NULL;
    loop->ts_recycle_n = 0;
    bgl_call *last = give;
    while (last && last->next_free)
        last = last->next_free;

    bgli_mutex_lock(&loop->ts_lock);
    bgl_call *c = loop->ts_head;
    /* Cut the batch off the head; what follows stays shared, in order. */
    bgl_call *end = c;
    for (size_t n = 1; end && n < BGL_THREADSAFE_BATCH; n++)
        end = end->next_free;
    if (end && end->next_free) {
        loop->ts_head = end->next_free;
        end->next_free = NULL;
        /* ts_signaled stays set: the loop owes itself the next collect,
         * and callers need not write the descriptor for it. */
        loop->wake_ready = 1;
    } else {
        loop->ts_head = loop->ts_tail = NULL;
        loop->ts_signaled = 0;
    }
    if (give && loop->ts_free_n < TS_FREE_MAX) {
        /* Splice the recycled nodes in front of the shared freelist. */
        last->next_free = loop->ts_free;
        loop->ts_free = give;
        loop->ts_free_n += give_n;
        give = NULL;
    }
    bgli_mutex_unlock(&loop->ts_lock);
    free_list(give, 0);

    while (c) {
        bgl_call *next = c->next_free;
        bgli_loop_enqueue(loop, &c->node);
        c = next;
    }
}
