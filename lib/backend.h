/* backend.h - the internal I/O backend interface.
 *
 * Exactly one backend (backend-epoll.c, backend-poll.c or, on Windows,
 * backend-afd.c) is compiled in, chosen at build time by BGL_BACKEND_EPOLL /
 * BGL_BACKEND_POLL / BGL_BACKEND_AFD.  A backend
 * only knows bgl_io objects: registered watchers and the loop's internal
 * descriptors (wakeup, signals) alike.  Interest 0 means "not registered".
 */
#ifndef BGL_BACKEND_H
#define BGL_BACKEND_H

#include <stdint.h>

#include "bgloop/loop.h"
#include "internal.h"

struct bgl_loop;
struct bgl_io;

BGL_INTERNAL int bgli_backend_init(struct bgl_loop *loop);
BGL_INTERNAL void bgli_backend_free(struct bgl_loop *loop);
/* Validate that fd can be watched at all (-EPERM for regular files with
 * epoll).  Called once at bgl_io_new(). */
BGL_INTERNAL int bgli_backend_check(struct bgl_loop *loop, bgl_fd fd);
/* Set the kernel interest of io from old_events to new_events (BGL_IO_READ |
 * BGL_IO_WRITE; 0 = not registered).  0 or a negative errno. */
BGL_INTERNAL int bgli_backend_set(struct bgl_loop *loop, struct bgl_io *io,
                                  unsigned old_events, unsigned new_events);
/* Forget io entirely (it is being freed). */
BGL_INTERNAL void bgli_backend_remove(struct bgl_loop *loop, struct bgl_io *io);
/* Wait up to timeout_ns (<0 forever) and report every ready watcher through
 * bgli_loop_io_ready().  Returns the number of ready descriptors (>= 0) or a
 * negative errno: -EINTR when a signal handler interrupted the wait, so that
 * a host blocked in it gets to act on the signal (the caller retries). */
BGL_INTERNAL int bgli_backend_poll(struct bgl_loop *loop, int64_t timeout_ns);
/* The pollable descriptor, or -EOPNOTSUPP. */
BGL_INTERNAL int bgli_backend_fd(const struct bgl_loop *loop);
#ifdef BGL_BACKEND_AFD
/* From any thread: end a wait (a packet to the completion port), after
 * which loop->wake_ready is set.  The AFD backend has no wakeup descriptor. */
BGL_INTERNAL void bgli_backend_wake(struct bgl_loop *loop);
#endif

/* A timeout in nanoseconds (< 0: forever) as poll()/epoll_wait() milliseconds:
 * -1 for forever, rounded up (waking before a timer is due would only spin
 * until it is), capped at 2e9 ms (~23 days) so it fits an int. */
static inline int bgli_timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    if (timeout_ns > (int64_t)2000000000 * 1000000)
        return 2000000000;
    return (int)((timeout_ns + 999999) / 1000000);
}

#endif /* BGL_BACKEND_H */
