/* io.c - I/O watchers and descriptor helpers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#  include <fcntl.h>
#  include <unistd.h>
#endif

#include "backend.h"
#include "loop-internal.h"

#define IO_INTEREST (BGL_IO_READ | BGL_IO_WRITE)
#define IO_ALL (BGL_IO_READ | BGL_IO_WRITE | BGL_IO_ERROR | BGL_IO_HUP)

#ifdef _WIN32
int bgli_fd_valid(bgl_fd fd)
{
    /* Only sockets can be watched on Windows. */
    int type, len = sizeof type;
    return fd != INVALID_SOCKET &&
           getsockopt(fd, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0;
}
#else
int bgli_fd_valid(bgl_fd fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}
#endif

#if !defined(BGL_HAVE_PIPE2) && !defined(_WIN32)
static int cloexec_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -errno;
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}
#endif

int bgli_pipe_cloexec_nonblock(bgl_fd fds[2])
{
#if defined(_WIN32)
    return bgli_socketpair_nonblock(fds);
#elif defined(BGL_HAVE_PIPE2)
    /* Atomic: no window in which a fork+exec elsewhere inherits the pipe. */
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0 ? 0 : -errno;
#else
    if (pipe(fds) < 0)
        return -errno;
    int r = cloexec_nonblock(fds[0]);
    if (r == 0)
        r = cloexec_nonblock(fds[1]);
    if (r < 0) {
        close(fds[0]);
        close(fds[1]);
    }
    return r;
#endif
}

static int fdtab_reserve(bgl_loop *loop, bgl_fd fd)
{
    size_t need = bgli_fd_index(fd) + 1;
    if (need <= loop->fdtab_cap)
        return 0;
    size_t cap = loop->fdtab_cap ? loop->fdtab_cap : 64;
    while (cap < need)
        cap *= 2;
    bgl_io **t = realloc(loop->fdtab, cap * sizeof(*t));
    if (!t)
        return -ENOMEM;
    memset(t + loop->fdtab_cap, 0, (cap - loop->fdtab_cap) * sizeof(*t));
    loop->fdtab = t;
    loop->fdtab_cap = cap;
    return 0;
}

int bgl_io_new(bgl_loop *loop, bgl_fd fd, unsigned events, bgl_io_cb cb, void *userdata,
               bgl_io **out)
{
    if (!loop || !cb || !out || (events & ~IO_ALL))
        return -EINVAL;
    if (loop->freeing)
        return -EBUSY;
    if (!bgli_fd_valid(fd))
        return -EBADF;
    if (bgli_fd_index(fd) < loop->fdtab_cap && loop->fdtab[bgli_fd_index(fd)])
        return -EEXIST;
    int r = bgli_backend_check(loop, fd);
    if (r < 0)
        return r;
    r = fdtab_reserve(loop, fd);
    if (r < 0)
        return r;
    bgl_io *io = calloc(1, sizeof(*io));
    if (!io)
        return -ENOMEM;
    io->node.kind = BGL_NODE_IO;
    io->loop = loop;
    io->fd = fd;
    io->cb = cb;
    io->userdata = userdata;
    io->slot = (size_t)-1;
    io->gen = ++loop->io_gen;
    events &= IO_INTEREST;
    r = bgli_backend_set(loop, io, 0, events);
    if (r < 0) {
        free(io);
        return r;
    }
    io->events = events;
    loop->fdtab[bgli_fd_index(fd)] = io;
    loop->io_count++;
    if (events)
        loop->io_active++;
    *out = io;
    return 0;
}

int bgli_io_internal_add(bgl_loop *loop, bgl_io *io, bgl_fd fd)
{
    int r = fdtab_reserve(loop, fd);
    if (r < 0)
        return r;
    io->loop = loop;
    io->fd = fd;
    io->internal = 1;
    io->slot = (size_t)-1;
    io->gen = ++loop->io_gen;
    io->events = 0;
    r = bgli_backend_set(loop, io, 0, BGL_IO_READ);
    if (r < 0)
        return r;
    io->events = BGL_IO_READ;
    loop->fdtab[bgli_fd_index(fd)] = io;
    return 0;
}

void bgli_io_internal_remove(bgl_loop *loop, bgl_io *io)
{
    if (!io->internal)
        return;
    bgli_backend_remove(loop, io);
    io->events = 0;
    if (bgli_fd_index(io->fd) < loop->fdtab_cap && loop->fdtab[bgli_fd_index(io->fd)] == io)
        loop->fdtab[bgli_fd_index(io->fd)] = NULL;
    io->internal = 0;
}

int bgl_io_set_events(bgl_io *io, unsigned events)
{
    if (!io || (events & ~IO_ALL))
        return -EINVAL;
    events &= IO_INTEREST;
    if (events == io->events)
        return 0;
    bgl_loop *loop = io->loop;
    /* The fd was closed behind the watcher's back and the loop's own
     * descriptor (signals) now has its number: hands off. */
    if (loop->fdtab[bgli_fd_index(io->fd)] != io)
        return -EBADF;
    int r = bgli_backend_set(loop, io, io->events, events);
    if (r < 0)
        return r;
    if (!io->events && events)
        loop->io_active++;
    else if (io->events && !events)
        loop->io_active--;
    io->events = events;
    return 0;
}

int bgl_io_get_events(const bgl_io *io, unsigned *events)
{
    if (!io || !events)
        return -EINVAL;
    *events = io->events;
    return 0;
}

#ifdef _WIN32
intptr_t bgl_io_get_fd(const bgl_io *io)
{
    if (!io)
        return -EINVAL;
    return (intptr_t)io->fd;
}
#else
int bgl_io_get_fd(const bgl_io *io)
{
    if (!io)
        return -EINVAL;
    return io->fd;
}
#endif

int bgl_io_free(bgl_io *io)
{
    if (!io)
        return -EINVAL;
    bgl_loop *loop = io->loop;
    bgli_backend_remove(loop, io);
    if (io->node.queued)
        bgli_loop_dequeue(loop, &io->node);
    if (loop->fdtab[bgli_fd_index(io->fd)] == io)   /* see bgli_backend_remove() */
        loop->fdtab[bgli_fd_index(io->fd)] = NULL;
    loop->io_count--;
    if (io->events)
        loop->io_active--;
    free(io);
    return 0;
}
