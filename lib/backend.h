/* backend.h - the internal I/O backend interface.
 *
 * Exactly one backend (backend-epoll.c or backend-poll.c) is compiled in,
 * chosen at build time by BGL_BACKEND_EPOLL / BGL_BACKEND_POLL.  A backend
 * only knows bgl_io objects: registered watchers and the loop's internal
 * descriptors (wakeup, signals) alike.  Interest 0 means "not registered".
 */
#ifndef BGL_BACKEND_H
#define BGL_BACKEND_H

#include <errno.h>
#include <stdint.h>

#include "bgloop/loop.h"

struct bgl_loop;
struct bgl_io;

int bgl_backend_init(struct bgl_loop *loop);
void bgl_backend_free(struct bgl_loop *loop);
/* Validate that fd can be watched at all (-EPERM for regular files with
 * epoll).  Called once at bgl_io_new(). */
int bgl_backend_check(struct bgl_loop *loop, int fd);
/* Set the kernel interest of io from old_events to new_events (BGL_IO_READ |
 * BGL_IO_WRITE; 0 = not registered).  0 or a negative errno. */
int bgl_backend_set(struct bgl_loop *loop, struct bgl_io *io, unsigned old_events,
                    unsigned new_events);
/* Forget io entirely (it is being freed). */
void bgl_backend_remove(struct bgl_loop *loop, struct bgl_io *io);
/* Wait up to timeout_ns (<0 forever) and report every ready watcher through
 * bgl_loop_io_ready().  Returns the number of ready descriptors (>= 0) or a
 * negative errno; never -EINTR. */
int bgl_backend_poll(struct bgl_loop *loop, int64_t timeout_ns);
/* The pollable descriptor, or -EOPNOTSUPP. */
int bgl_backend_fd(const struct bgl_loop *loop);

/* ---- helpers shared by the backends -------------------------------------- */

/* A timeout in nanoseconds (< 0: forever) as poll()/epoll_wait() milliseconds:
 * -1 for forever, rounded up (waking before a timer is due would only spin
 * until it is), capped at 2e9 ms (~23 days) so it fits an int. */
static inline int bgl_timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    if (timeout_ns > (int64_t)2000000000 * 1000000)
        return 2000000000;
    return (int)((timeout_ns + 999999) / 1000000);
}

/* Call wait(loop, timeout) until it does not fail with EINTR, waiting only
 * for what is left of the timeout after an interruption (a signal that has
 * a source also made its descriptor readable, so nothing is lost).  Returns
 * wait's result (>= 0) or -errno. */
static inline int bgl_backend_wait(struct bgl_loop *loop, int64_t timeout_ns,
                                   int (*wait)(struct bgl_loop *loop, int64_t timeout_ns))
{
    uint64_t deadline = timeout_ns > 0 ? bgl_monotonic_ns() + (uint64_t)timeout_ns : 0;
    for (;;) {
        int n = wait(loop, timeout_ns);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
        if (timeout_ns > 0) {
            uint64_t now = bgl_monotonic_ns();
            timeout_ns = now >= deadline ? 0 : (int64_t)(deadline - now);
        }
    }
}

#endif /* BGL_BACKEND_H */
