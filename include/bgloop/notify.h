/* bgloop/notify.h - telling a service manager (systemd) how the process is.
 *
 * A notifier speaks systemd's notification protocol (sd_notify(3)): text
 * datagrams of KEY=VALUE lines sent to the AF_UNIX datagram socket named by
 * $NOTIFY_SOCKET - a path ("/run/systemd/notify") or, on Linux, an abstract
 * name ("@name").  libsystemd is not needed.  Sending never blocks the loop:
 * a datagram the receiver cannot take now is dropped and counted.
 *
 * ATTACHED TO A SERVICE MANAGER (bgl_notify_attach()) it reports on its own
 * what the manager decides:
 *
 *   READY=1             once every wanted service is running;
 *   STATUS=...          a one-line summary whenever it changes: "3/3
 *                       services running", ", 1 failed", ", stopping";
 *   RELOADING=1 and     after READY=1, when a wanted service leaves RUNNING
 *   MONOTONIC_USEC=     (a restart, an owner started again); READY=1 follows
 *                       once every wanted service runs again;
 *   STOPPING=1          when a stop of every service begins
 *                       (bgl_services_stop_full() with owner NULL);
 *   EXTEND_TIMEOUT_USEC= with STOPPING=1 and then every second while that
 *                       stop is still in progress and within the manager's
 *                       bound of it (bgl_services_stop_bound()): the time
 *                       left until that bound; never beyond it.
 *
 * The summary is computed from the loop shortly after each change (a
 * zero-delay timer), never from inside the manager's own pass.
 *
 * WATCHDOG: with an interval (bgl_notify_set_watchdog(), or WATCHDOG_USEC
 * from the environment) a repeating timer of the loop sends WATCHDOG=1
 * every interval/2.  The pings come from the loop itself, so a callback
 * that blocks the loop stops them and systemd's WatchdogSec= notices.  The
 * timer is work for bgl_loop_run() (see loop.h): under a keep-alive
 * (bgl_services_set_keepalive()) the manager ends the run as usual.
 *
 * LIFETIME: the notifier's timers live on its loop: free the notifier
 * before the loop.  A manager freed while a notifier is attached detaches
 * it.
 *
 * ERRORS: -EINVAL (NULL, an address that is neither "/path" nor "@name", a
 * malformed or zero WATCHDOG_USEC or WATCHDOG_PID), -ENAMETOOLONG (the
 * address does not fit a sockaddr_un), -ERANGE (a WATCHDOG_USEC beyond
 * what the loop's clock can count), -EAFNOSUPPORT (an address family other
 * than AF_UNIX, e.g. "vsock:"), -ENOENT (no $NOTIFY_SOCKET), -EBUSY
 * (another notifier is attached to that manager), -ENOMEM, or the errno of
 * socket(2).
 */
#ifndef BGLOOP_NOTIFY_H
#define BGLOOP_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include "bgloop/common.h"
#include "bgloop/loop.h"
#include "bgloop/service.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bgl_notify bgl_notify;

/* Largest watchdog interval accepted, in microseconds (~292 years in ns). */
#define BGL_NOTIFY_WATCHDOG_MAX_USEC (UINT64_MAX / 2000u)

/* A notifier sending to `address` ("/path" or "@abstract"), on `loop`.
 * 0 and *out; see ERRORS. */
BGL_EXPORT int bgl_notify_new(bgl_loop *loop, const char *address, bgl_notify **out);

/* A notifier for this process's environment: $NOTIFY_SOCKET, and the
 * watchdog from $WATCHDOG_USEC - only if $WATCHDOG_PID is unset or names
 * this process (systemd's rule: another process's watchdog is not ours).
 * The environment is only read.  On a refusal `why` (if not NULL) gets a
 * text naming the variable and its value, e.g. "NOTIFY_SOCKET='x': not an
 * absolute path or @name"; on success it gets a note ("" if none), e.g.
 * that WATCHDOG_PID names another process so there are no pings.  0 and
 * *out; -ENOENT without $NOTIFY_SOCKET; see ERRORS. */
BGL_EXPORT int bgl_notify_new_from_env(bgl_loop *loop, bgl_notify **out, char *why,
                                       size_t why_size);

/* Detach, stop the timers, close the socket, free.  0 or -EINVAL. */
BGL_EXPORT int bgl_notify_free(bgl_notify *n);

/* Send one datagram: `message` is one or more KEY=VALUE lines.  0;
 * -EINVAL (NULL or empty); the errno of sendto(2), e.g. -ECONNREFUSED when
 * nobody listens, -EAGAIN when the receiver's queue is full. */
BGL_EXPORT int bgl_notify_send(bgl_notify *n, const char *message);

/* Ping WATCHDOG=1 every usec/2 from the loop; 0 turns the pings off.  The
 * first ping goes out usec/2 from now.  0; -EINVAL (NULL, usec 1: no
 * half-interval); -ERANGE above BGL_NOTIFY_WATCHDOG_MAX_USEC. */
BGL_EXPORT int bgl_notify_set_watchdog(bgl_notify *n, uint64_t usec);

/* Follow `mgr` (see ATTACHED TO A SERVICE MANAGER); NULL detaches.  A
 * notifier follows one manager, a manager has one notifier.  0; -EINVAL;
 * -EBUSY (mgr has another notifier). */
BGL_EXPORT int bgl_notify_attach(bgl_notify *n, bgl_services *mgr);

typedef struct bgl_notify_stats {
    uint64_t sent;            /* datagrams delivered */
    uint64_t failed;          /* datagrams refused by sendto(2) */
    int last_error;           /* negative errno of the last refusal, or 0 */
    uint64_t watchdog_usec;   /* the interval, 0 if off */
    uint64_t pings;           /* WATCHDOG=1 delivered */
    int ready;                /* 1 while the last of READY=1/RELOADING=1 was READY=1 */
    int stopping;             /* 1 after STOPPING=1 until services are wanted again */
} bgl_notify_stats;

/* Fill *stats.  0 or -EINVAL. */
BGL_EXPORT int bgl_notify_get_stats(const bgl_notify *n, bgl_notify_stats *stats);

/* The address as given ("/path" or "@name"); NULL if n is NULL. */
BGL_EXPORT const char *bgl_notify_address(const bgl_notify *n);

#ifdef __cplusplus
}
#endif

#endif /* BGLOOP_NOTIFY_H */
