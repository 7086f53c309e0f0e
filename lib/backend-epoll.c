/* backend-epoll.c - Linux epoll backend (level-triggered). */
#include "loop-internal.h"

#ifdef BGL_BACKEND_EPOLL

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

#define MAX_EVENTS 64
#define MAX_EVENTS_CAP 4096

int bgli_backend_init(bgl_loop *loop)
{
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return -errno;
    loop->be_events = malloc(MAX_EVENTS * sizeof(struct epoll_event));
    if (!loop->be_events) {
        close(loop->epfd);
        loop->epfd = -1;
        return -ENOMEM;
    }
    loop->be_nevents = MAX_EVENTS;
    return 0;
}

void bgli_backend_free(bgl_loop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->epfd = -1;
    free(loop->be_events);
    loop->be_events = NULL;
}

int bgli_backend_check(bgl_loop *loop, int fd)
{
    (void)loop;
    /* epoll refuses regular files and directories; say so at creation even
     * for a watcher created paused. */
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM;
    return 0;
}

static uint32_t to_epoll(unsigned ev)
{
    return (ev & BGL_IO_READ ? EPOLLIN : 0) | (ev & BGL_IO_WRITE ? EPOLLOUT : 0);
}

int bgli_backend_set(bgl_loop *loop, bgl_io *io, unsigned old_events, unsigned new_events)
{
    /* fd + generation rather than a pointer: an entry that outlives its
     * watcher (fd closed while a dup keeps the file open) then maps to
     * nothing instead of freed memory. */
    struct epoll_event ev = {.events = to_epoll(new_events),
                             .data.u64 = (uint64_t)io->gen << 32 | (uint32_t)io->fd};
    int op;
    /* Interest 0 leaves the set entirely: epoll would still report
     * ERR/HUP for it, and a paused watcher must not spin the loop. */
    if (!old_events && !new_events)
        return 0;
    if (!old_events)
        op = EPOLL_CTL_ADD;
    else if (!new_events)
        op = EPOLL_CTL_DEL;
    else
        op = EPOLL_CTL_MOD;
    if (epoll_ctl(loop->epfd, op, io->fd, &ev) < 0) {
        /* The fd was closed and maybe reused behind our back: the old
         * registration is gone with it, so there is nothing left to drop. */
        if (op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT))
            return 0;
        return -errno;
    }
    return 0;
}

void bgli_backend_remove(bgl_loop *loop, bgl_io *io)
{
    /* A watcher whose fd was closed behind its back lost its registration
     * with the file; if the loop's signal descriptor has taken over the fd
     * number since, EPOLL_CTL_DEL would unregister that one instead. */
    if (io->events && loop->fdtab[io->fd] == io)
        (void)bgli_backend_set(loop, io, io->events, 0);
}

static unsigned from_epoll(uint32_t e)
{
    return (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP) ? BGL_IO_READ : 0) |
           (e & EPOLLOUT ? BGL_IO_WRITE : 0) | (e & EPOLLERR ? BGL_IO_ERROR : 0) |
           (e & EPOLLHUP ? BGL_IO_HUP : 0);
}

/* epoll_wait counts in milliseconds (epoll_pwait2 would take a timespec, but
 * valgrind 3.19 and pre-5.11 kernels lack it): see bgli_timeout_ms(). */
static int wait_once(bgl_loop *loop, int64_t timeout_ns)
{
    return epoll_wait(loop->epfd, loop->be_events, loop->be_nevents, bgli_timeout_ms(timeout_ns));
}

int bgli_backend_poll(bgl_loop *loop, int64_t timeout_ns)
{
    int n = wait_once(loop, timeout_ns);
    if (n < 0)
        return -errno;
    struct epoll_event *evs = loop->be_events;
    for (int i = 0; i < n; i++) {
        uint64_t key = evs[i].data.u64;
        bgl_io *io = bgli_io_lookup(loop, (int)(uint32_t)key, (uint32_t)(key >> 32));
        if (io)
            bgli_loop_io_ready(loop, io, from_epoll(evs[i].events));
    }
    /* A full array means more may be ready: take more next time (the rest
     * is level-triggered and reported again, nothing is lost meanwhile). */
    if (n == loop->be_nevents && n < MAX_EVENTS_CAP) {
        void *bigger = realloc(loop->be_events, (size_t)n * 2 * sizeof(*evs));
        if (bigger) {
            loop->be_events = bigger;
            loop->be_nevents = n * 2;
        }
    }
    return n;
}

int bgli_backend_fd(const bgl_loop *loop)
{
    return loop->epfd;
}

#endif /* BGL_BACKEND_EPOLL */
