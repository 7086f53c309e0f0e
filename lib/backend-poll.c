/* backend-poll.c - portable poll(2) backend; WSAPoll() on Windows.
 *
 * A dense pollfd array plus the watcher of each slot; each watcher keeps its
 * slot index so removal is O(1) (the last slot moves into the hole).  A
 * paused watcher keeps its slot with fd -1, which poll() skips.
 *
 * WSAPoll() only takes sockets, and before Windows 10 2004 it did not report
 * a failed connect(); the AFD backend is the default on Windows.
 */
#include "loop-internal.h"

#ifdef BGL_BACKEND_POLL

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#ifndef _WIN32
#  include <poll.h>
#endif

#include "backend.h"

int bgli_backend_init(bgl_loop *loop)
{
    loop->pfds = NULL;
    loop->pios = NULL;
    loop->npfds = loop->cap_pfds = 0;
    return 0;
}

void bgli_backend_free(bgl_loop *loop)
{
    free(loop->pfds);
    free(loop->pios);
    loop->pfds = NULL;
    loop->pios = NULL;
    loop->npfds = loop->cap_pfds = 0;
}

int bgli_backend_check(bgl_loop *loop, bgl_fd fd)
{
    (void)loop;
    (void)fd;
    return 0;
}

static short to_poll(unsigned ev)
{
    return (short)((ev & BGL_IO_READ ? POLLIN : 0) | (ev & BGL_IO_WRITE ? POLLOUT : 0));
}

static int add_slot(bgl_loop *loop, bgl_io *io)
{
    if (loop->npfds == loop->cap_pfds) {
        size_t cap = loop->cap_pfds ? loop->cap_pfds * 2 : 16;
        struct pollfd *p = realloc(loop->pfds, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        loop->pfds = p;
        bgl_io **w = realloc(loop->pios, cap * sizeof(*w));
        if (!w)
            return -ENOMEM;
        loop->pios = w;
        loop->cap_pfds = cap;
    }
    io->slot = loop->npfds++;
    loop->pios[io->slot] = io;
    return 0;
}

int bgli_backend_set(bgl_loop *loop, bgl_io *io, unsigned old_events, unsigned new_events)
{
    (void)old_events;
    if (io->slot == (size_t)-1) {
        int r = add_slot(loop, io);
        if (r < 0)
            return r;
    } else if (new_events && !bgli_fd_valid(io->fd)) {
        return -EBADF; /* as epoll_ctl would say */
    }
    struct pollfd *p = &((struct pollfd *)loop->pfds)[io->slot];
    p->fd = new_events ? io->fd : (bgl_fd)-1;
    p->events = to_poll(new_events);
    p->revents = 0;
    return 0;
}

void bgli_backend_remove(bgl_loop *loop, bgl_io *io)
{
    if (io->slot == (size_t)-1)
        return;
    struct pollfd *pfds = loop->pfds;
    size_t last = --loop->npfds;
    if (io->slot != last) {
        pfds[io->slot] = pfds[last];
        loop->pios[io->slot] = loop->pios[last];
        loop->pios[io->slot]->slot = io->slot;
    }
    io->slot = (size_t)-1;
}

static unsigned from_poll(short e)
{
    return (e & (POLLIN | POLLPRI) ? BGL_IO_READ : 0) | (e & POLLOUT ? BGL_IO_WRITE : 0) |
           (e & (POLLERR | POLLNVAL) ? BGL_IO_ERROR : 0) | (e & POLLHUP ? BGL_IO_HUP : 0);
}

static int wait_once(bgl_loop *loop, int64_t timeout_ns)
{
#if defined(_WIN32)
    /* The loop's wakeup socket is always in the set: never empty. */
    int n = WSAPoll(loop->pfds, (ULONG)loop->npfds, bgli_timeout_ms(timeout_ns));
    if (n == SOCKET_ERROR)
        errno = bgli_wsa_errno(WSAGetLastError());
    return n;
#elif defined(BGL_HAVE_PPOLL)
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    return ppoll(loop->pfds, (nfds_t)loop->npfds, tp, NULL);
#else
    return poll(loop->pfds, (nfds_t)loop->npfds, bgli_timeout_ms(timeout_ns));
#endif
}

int bgli_backend_poll(bgl_loop *loop, int64_t timeout_ns)
{
    int n = wait_once(loop, timeout_ns);
    if (n < 0)
        return -errno;
    struct pollfd *pfds = loop->pfds;
    int left = n;
    for (size_t i = 0; i < loop->npfds && left > 0; i++) {
        if (!pfds[i].revents)
            continue;
        left--;
        unsigned rev = from_poll(pfds[i].revents);
        pfds[i].revents = 0;
        bgli_loop_io_ready(loop, loop->pios[i], rev);
    }
    return n;
}

int bgli_backend_fd(const bgl_loop *loop)
{
    (void)loop;
    return -EOPNOTSUPP;
}

#endif /* BGL_BACKEND_POLL */
