/* bgloop/loop.h - the event loop.
 *
 * A bgl_loop multiplexes four kinds of event sources on one thread:
 *
 *   - I/O watchers (bgl_io):       readiness of a file descriptor;
 *   - timers (bgl_timer):          deadlines on the monotonic clock;
 *   - deferred calls:              "call soon", FIFO, run on the next iteration;
 *   - signals (bgl_signal):        POSIX signals turned into ordinary callbacks.
 *
 * plus a thread-safe entry point, bgl_loop_call_threadsafe(), that any thread
 * may use to run a function on the loop's thread.
 *
 * THE ITERATION
 *
 * One call to bgl_loop_run_once() is one iteration:
 *
 *   1. prepare: compute how long the backend may sleep: 0 if anything is
 *      already queued for dispatch, else until the earliest timer, bounded by
 *      the caller's timeout;
 *   2. poll: wait in the kernel (epoll_wait or poll) for I/O, a thread-safe
 *      wakeup or a signal;
 *   3. collect: refresh the cached time (bgl_loop_now()), then append to the
 *      dispatch queue, in this order: ready I/O watchers (in the order the
 *      kernel reported them), expired timers (by deadline, ties in the order
 *      they were armed), thread-safe calls (in the order they were made) and
 *      signals;
 *   4. dispatch: run the queue in FIFO order.  Deferred calls made with
 *      bgl_loop_call_soon() are part of the same queue, after whatever was
 *      queued before them.  Anything scheduled *while* dispatching - a call
 *      soon, a timer that is already due, ... - runs in the next iteration,
 *      never in this one (asyncio's rule, which keeps one busy callback from
 *      starving I/O).
 *
 * If a dispatch budget is set (bgl_loop_set_budget()), step 4 stops as soon as
 * the budget is spent; the rest stays queued, in order, and runs first in the
 * next iteration, which will not block.  Nothing that became ready is lost:
 * an I/O watcher that is queued but not yet dispatched is not queued twice;
 * its pending events are merged, and filtered by its interest at dispatch
 * time.
 *
 * REENTRANCY
 *
 * Any callback may create, modify or free any source - including the one
 * being dispatched - and may call bgl_loop_stop().  A freed source that was
 * queued is dropped from the queue; its callback is never called after
 * bgl_X_free() returned.  Calling bgl_loop_run_once()/bgl_loop_run() from
 * inside a callback of the same loop returns -EBUSY.
 *
 * THREADS
 *
 * A loop and its sources belong to the thread that runs the loop.  The only
 * functions that may be called from other threads are
 * bgl_loop_call_threadsafe() and bgl_loop_wakeup().  Of those only
 * bgl_loop_wakeup() is async-signal-safe (a write(), which may change
 * errno: a handler saves and restores it, as always); the thread-safe call
 * takes a mutex and may allocate, so a signal handler must not use it - use
 * a signal source (bgl_signal_new()) instead.
 *
 * FORK
 *
 * A loop does not survive fork(): the child shares the parent's descriptors
 * - with epoll the very epoll instance, so a watcher the child adds, changes
 * or frees changes the parent's loop too, and a thread-safe call or wakeup
 * from the child wakes the parent.  In a child, do not run, modify or free
 * a loop (or its sources) created before the fork; exec or _exit, or create
 * a new loop (and leave the old one unfreed).  The parent's signal sources
 * are forgotten in the child, so a loop of the child may give the same
 * signals sources of its own.  A child inherits the signal mask (kept across
 * exec) and, until exec, the handlers: signals that had a source stay
 * blocked (signalfd) or caught and dropped (self-pipe) until the child gives
 * them a source; see bgl_signal_new().
 *
 * ERRORS
 *
 * Functions return 0 (or a count) on success and a negative errno on failure;
 * bgl_strerror() turns it into text.  Common codes:
 *   -EINVAL   a NULL pointer, a NULL callback, an out-of-range value;
 *   -EBADF    a file descriptor that is negative or not open;
 *   -EEXIST   the fd already has a watcher on this loop;
 *   -EBUSY    the operation is not allowed while the loop is dispatching, or
 *             (bgl_loop_free) sources are still attached;
 *   -ENOMEM   out of memory.
 * bgl_loop_run() does not report a stop as an error: it returns the code
 * given to bgl_loop_stop().
 */
#ifndef BGLOOP_LOOP_H
#define BGLOOP_LOOP_H

#include <stdint.h>
#include "bgloop/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bgl_loop bgl_loop;
typedef struct bgl_io bgl_io;
typedef struct bgl_timer bgl_timer;
typedef struct bgl_signal bgl_signal;

/* I/O interest and readiness bits.  BGL_IO_ERROR and BGL_IO_HUP are only ever
 * reported (they are delivered whatever the interest, as the kernel does);
 * passing them as interest is allowed and ignored. */
enum {
    BGL_IO_READ = 1u << 0,
    BGL_IO_WRITE = 1u << 1,
    BGL_IO_ERROR = 1u << 2,
    BGL_IO_HUP = 1u << 3,
};

/* A plain callback: deferred and thread-safe calls. */
typedef void (*bgl_callback)(void *userdata);
/* `revents` holds the ready bits (BGL_IO_*). */
typedef void (*bgl_io_cb)(bgl_io *io, int fd, unsigned revents, void *userdata);
typedef void (*bgl_timer_cb)(bgl_timer *timer, void *userdata);
typedef void (*bgl_signal_cb)(bgl_signal *sig, int signo, void *userdata);
/* A clock: returns monotonic nanoseconds.  See bgl_loop_set_clock(). */
typedef uint64_t (*bgl_clock_fn)(void *userdata);

/* ------------------------------------------------------------------------ */
/* Loop                                                                      */
/* ------------------------------------------------------------------------ */

/* Create a loop.  On success stores it in *out and returns 0.
 * -EINVAL if out is NULL; -ENOMEM; -EMFILE/-ENFILE if the backend or wakeup
 * descriptors cannot be created.  All descriptors are close-on-exec. */
BGL_EXPORT int bgl_loop_new(bgl_loop **out);

/* Destroy a loop.  Deferred and thread-safe calls that never ran are dropped;
 * their `discard` function (see bgl_loop_call_soon_full()) is called.
 * While those discard functions run, the loop is being freed: calling
 * bgl_loop_free() again, running it (bgl_loop_run_once(), bgl_loop_kick(),
 * bgl_loop_run()), queueing calls (bgl_loop_call_soon*(),
 * bgl_loop_call_threadsafe()) or creating sources on it returns -EBUSY.
 * Returns 0; -EINVAL if loop is NULL; -EBUSY if called from a callback of
 * this loop or from a discard function, or while I/O watchers, timers or
 * signal sources created on it still exist (free them first; the loop is
 * then left untouched). */
BGL_EXPORT int bgl_loop_free(bgl_loop *loop);

/* One iteration (see THE ITERATION).  timeout_ns: 0 = do not block;
 * negative = block until something happens; positive = block at most that
 * long, returning as soon as I/O, a timer, a thread-safe call or a signal is
 * due.  Returns the number of callbacks dispatched (>= 0), -EINVAL, -EBUSY if
 * called re-entrantly, or a negative errno from the backend (-EINTR is
 * handled internally and never returned).  -EBUSY also from a discard
 * function run by bgl_loop_free(). */
BGL_EXPORT int bgl_loop_run_once(bgl_loop *loop, int64_t timeout_ns);

/* "Kick": one iteration waiting at most timeout_ns (same meaning as above),
 * then further non-blocking iterations for as long as work keeps becoming
 * ready, until nothing is ready or budget_ns is spent (budget_ns < 0: no
 * limit; 0 is not allowed: -EINVAL).  The remaining kick budget also bounds
 * the dispatch of each iteration (together with bgl_loop_set_budget(), the
 * smaller wins), so one busy iteration cannot overrun the slice; only
 * dispatch time counts, not the initial wait.  This is how a host that owns
 * the process (a GUI toolkit, Blender) gives the loop a bounded slice: a
 * request that is read, handled and answered completes within one kick.
 * Returns the total number of callbacks dispatched, or a negative errno
 * (-EBUSY from a callback or a discard function, as bgl_loop_run_once()). */
BGL_EXPORT int bgl_loop_kick(bgl_loop *loop, int64_t timeout_ns, int64_t budget_ns);

/* Run iterations until bgl_loop_stop() is called or no work is left.  Work is:
 * a queued callback, an armed timer, an I/O watcher with non-zero interest, a
 * signal source, or a hold (bgl_loop_hold()).  Returns the exit code passed to
 * bgl_loop_stop() (0 when the loop ran out of work), or a negative errno
 * (-EBUSY from a callback or a discard function, as bgl_loop_run_once()). */
BGL_EXPORT int bgl_loop_run(bgl_loop *loop);

/* Ask bgl_loop_run() to return `code` after the current iteration.  Use a
 * code >= 0: bgl_loop_run() returns it as is, so a negative code reads as an
 * error from the loop.  May be called from a callback or between
 * iterations; in the latter case the next bgl_loop_run() runs one
 * non-blocking iteration and returns `code` (as asyncio's stop() before
 * run_forever()).  The stop request is consumed by
 * bgl_loop_run(); bgl_loop_run_once() and bgl_loop_kick() ignore it.
 * Returns 0 or -EINVAL. */
BGL_EXPORT int bgl_loop_stop(bgl_loop *loop, int code);

/* The code of the last bgl_loop_stop() (0 if never stopped).  Returns 0 and
 * stores it in *code, or -EINVAL. */
BGL_EXPORT int bgl_loop_get_exit_code(const bgl_loop *loop, int *code);

/* Dispatch budget of each iteration in nanoseconds, for bgl_loop_run_once()
 * and bgl_loop_run(); negative = unlimited (the default).  0 is -EINVAL.  The
 * budget is checked after each callback, so at least one callback runs per
 * iteration.  It is measured with the loop's clock (see bgl_loop_set_clock()),
 * so a test clock makes budget cuts deterministic. */
BGL_EXPORT int bgl_loop_set_budget(bgl_loop *loop, int64_t budget_ns);

/* Keep bgl_loop_run() from returning for lack of work while a hold is taken,
 * e.g. while another thread will still post a thread-safe call.  Holds nest.
 * bgl_loop_release() without a hold returns -EALREADY. */
BGL_EXPORT int bgl_loop_hold(bgl_loop *loop);
BGL_EXPORT int bgl_loop_release(bgl_loop *loop);

/* ---- embedding in a foreign loop ---------------------------------------- */

/* A descriptor that becomes readable whenever bgl_loop_run_once(loop, 0)
 * would have something to do because of I/O, a thread-safe call or a signal.
 * A host polls it together with its own descriptors and calls
 * bgl_loop_run_once(loop, 0) when it is readable or when the timeout of
 * bgl_loop_get_timeout() expires.  Owned by the loop: do not close it.
 * Returns the fd, -EINVAL, or -EOPNOTSUPP with the poll backend (which has no
 * single pollable descriptor). */
BGL_EXPORT int bgl_loop_get_fd(const bgl_loop *loop);

/* How long the host may sleep before it must run an iteration: 0 if
 * callbacks are queued, -1 if nothing is scheduled at all (no armed timer;
 * only the fd can wake the loop), else the nanoseconds until the earliest
 * timer, by the current clock (at most INT64_MAX: a timer more than ~292
 * years away is reported as INT64_MAX, never as a negative value).  Returns
 * 0 and stores the value, or -EINVAL. */
BGL_EXPORT int bgl_loop_get_timeout(bgl_loop *loop, int64_t *timeout_ns);

/* ---- time ---------------------------------------------------------------- */

/* The loop's time in monotonic nanoseconds, cached once per iteration (right
 * after polling) so that all callbacks of one iteration see the same "now".
 * Returns 0 and stores it, or -EINVAL. */
BGL_EXPORT int bgl_loop_now(const bgl_loop *loop, uint64_t *now_ns);

/* Refresh the cached time from the clock now (a callback that ran long and
 * is about to arm relative timers may want this).  0 or -EINVAL. */
BGL_EXPORT int bgl_loop_update_time(bgl_loop *loop);

/* Replace the loop's clock (default: CLOCK_MONOTONIC) - for tests and
 * simulations that need deterministic time.  With a custom clock the
 * backend still sleeps in real time: drive such a loop with timeout 0.
 * clock NULL restores the default.  0, or -EINVAL; -EBUSY while timers are
 * armed (their deadlines would be meaningless on the new clock). */
BGL_EXPORT int bgl_loop_set_clock(bgl_loop *loop, bgl_clock_fn clock, void *userdata);

/* CLOCK_MONOTONIC in nanoseconds, uncached. */
BGL_EXPORT uint64_t bgl_monotonic_ns(void);

/* ---- statistics ---------------------------------------------------------- */

typedef struct bgl_loop_stats {
    uint64_t iterations;      /* completed bgl_loop_run_once() iterations */
    uint64_t dispatched;      /* callbacks run, all kinds */
    uint64_t budget_exhausted;/* iterations cut short by the budget */
    uint64_t wakeups;         /* polls that returned before their timeout */
    uint64_t io_watchers;     /* live bgl_io */
    uint64_t timers_armed;    /* armed bgl_timer */
    uint64_t queued;          /* callbacks waiting in the dispatch queue */
} bgl_loop_stats;

/* Fill *stats.  0 or -EINVAL. */
BGL_EXPORT int bgl_loop_get_stats(const bgl_loop *loop, bgl_loop_stats *stats);

/* ------------------------------------------------------------------------ */
/* Deferred calls ("call soon")                                              */
/* ------------------------------------------------------------------------ */

/* Queue cb(userdata) to run in FIFO order: in the current iteration if called
 * between iterations, in the next one if called from a callback.  Fire and
 * forget: the call cannot be cancelled (let cb check a flag, as asyncio's
 * Handle does).  0, -EINVAL (NULL loop or cb), -EBUSY (the loop is being
 * freed, see bgl_loop_free()) or -ENOMEM. */
BGL_EXPORT int bgl_loop_call_soon(bgl_loop *loop, bgl_callback cb, void *userdata);

/* As bgl_loop_call_soon(); if the loop is freed before cb ran, discard
 * (which may be NULL) is called with userdata instead, so owners of userdata
 * can release it. */
BGL_EXPORT int bgl_loop_call_soon_full(bgl_loop *loop, bgl_callback cb, void *userdata,
                                       bgl_callback discard);

/* From any thread: queue cb(userdata) to run on the loop's thread and wake
 * the loop at once if it is blocked in the kernel.  Calls are never lost and
 * run in the order they were made (per calling thread, and globally in the
 * order they took the queue's lock).  discard may be NULL; see
 * bgl_loop_call_soon_full().  0, -EINVAL, -EBUSY (the loop is being freed)
 * or -ENOMEM. */
BGL_EXPORT int bgl_loop_call_threadsafe(bgl_loop *loop, bgl_callback cb, void *userdata,
                                        bgl_callback discard);

/* From any thread: make a blocked bgl_loop_run_once() return.  0 or -EINVAL. */
BGL_EXPORT int bgl_loop_wakeup(bgl_loop *loop);

/* ------------------------------------------------------------------------ */
/* I/O watchers                                                              */
/* ------------------------------------------------------------------------ */

/* Watch fd for `events` (BGL_IO_READ | BGL_IO_WRITE, or 0 to create it
 * paused).  Level-triggered: the callback is called in every iteration in
 * which the fd is ready for one of the interests.  A paused watcher is taken
 * out of the kernel's set and gets no events at all, not even errors, so it
 * cannot spin the loop.  The watcher does not own
 * fd: free the watcher before closing the fd.  Returns 0 and stores the
 * watcher in *out; -EINVAL (NULL loop, out or cb; unknown bits); -EBADF (fd
 * negative or not open); -EEXIST (fd already watched on this loop); -EPERM
 * (the epoll backend refuses regular files and directories); -EBUSY (the
 * loop is being freed); -ENOMEM. */
BGL_EXPORT int bgl_io_new(bgl_loop *loop, int fd, unsigned events, bgl_io_cb cb,
                          void *userdata, bgl_io **out);

/* Change the interest; 0 pauses the watcher.  0, -EINVAL, or a negative errno
 * from the backend (-EBADF if fd was closed behind the watcher's back). */
BGL_EXPORT int bgl_io_set_events(bgl_io *io, unsigned events);

/* Current interest.  0 and stores it, or -EINVAL. */
BGL_EXPORT int bgl_io_get_events(const bgl_io *io, unsigned *events);

/* The watched descriptor, or -EINVAL. */
BGL_EXPORT int bgl_io_get_fd(const bgl_io *io);

/* Stop watching and free the watcher (the fd stays open).  Safe from any
 * callback, including the watcher's own.  0, or -EINVAL if io is NULL. */
BGL_EXPORT int bgl_io_free(bgl_io *io);

/* ------------------------------------------------------------------------ */
/* Timers                                                                    */
/* ------------------------------------------------------------------------ */

/* Create a disarmed timer.  0 and *out, -EINVAL, -EBUSY (the loop is being
 * freed) or -ENOMEM. */
BGL_EXPORT int bgl_timer_new(bgl_loop *loop, bgl_timer_cb cb, void *userdata, bgl_timer **out);

/* Arm (or re-arm) the timer to fire `after_ns` from the loop's cached time
 * (bgl_loop_now()); re-arming a timer that expired but was not dispatched
 * yet cancels that expiry.  If repeat_ns > 0 it then fires every repeat_ns, each
 * deadline computed from the previous deadline (no drift); a repeating timer
 * that falls behind fires once per iteration and skips the missed periods.
 * Timers with equal deadlines fire in the order they were armed.  A timer
 * never fires before its deadline; the epoll backend waits in whole
 * milliseconds, so it may fire up to ~1 ms after it.  0, -EINVAL or -ENOMEM. */
BGL_EXPORT int bgl_timer_start(bgl_timer *timer, uint64_t after_ns, uint64_t repeat_ns);

/* As bgl_timer_start() with an absolute deadline on the loop's clock. */
BGL_EXPORT int bgl_timer_start_at(bgl_timer *timer, uint64_t deadline_ns, uint64_t repeat_ns);

/* Disarm; a timer that expired but was not yet dispatched will not fire.
 * Idempotent.  0 or -EINVAL. */
BGL_EXPORT int bgl_timer_stop(bgl_timer *timer);

/* 1 if armed (or expired and queued), 0 if not, -EINVAL. */
BGL_EXPORT int bgl_timer_is_active(const bgl_timer *timer);

/* The absolute deadline of an armed timer.  0 and *deadline_ns, -EINVAL, or
 * -ENOENT if not armed. */
BGL_EXPORT int bgl_timer_get_deadline(const bgl_timer *timer, uint64_t *deadline_ns);

/* Disarm and free.  Safe from any callback, including the timer's own.
 * 0 or -EINVAL. */
BGL_EXPORT int bgl_timer_free(bgl_timer *timer);

/* ------------------------------------------------------------------------ */
/* Signals                                                                   */
/* ------------------------------------------------------------------------ */

/* Deliver `signo` (SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGUSR1, ...) as a
 * callback on the loop's thread.  Linux: a signalfd; the signal is blocked in
 * the calling thread, so create signal sources before starting threads, or
 * block the signal in them too.  Elsewhere (and in the poll build) a
 * sigaction handler writes to a self-pipe (the signal is unblocked in the
 * calling thread so the handler can run).  With signalfd, processes forked
 * from the blocking thread inherit the blocked mask across exec: reset it in
 * the child (e.g. posix_spawnattr_setsigmask) if it must see the signal.  Several deliveries between two
 * iterations may be coalesced into one callback.  At most one source per
 * signal per process.  The previous disposition and mask are restored by
 * bgl_signal_free().  0 and *out; -EINVAL (NULL, SIGKILL, SIGSTOP, out of
 * range, or one the C library reserves); -EEXIST (signal already has a
 * source); -EBUSY (the loop is being freed); -ENOMEM. */
BGL_EXPORT int bgl_signal_new(bgl_loop *loop, int signo, bgl_signal_cb cb, void *userdata,
                              bgl_signal **out);

/* Stop delivering and free.  Safe from any callback.  With signalfd, an
 * instance still pending for the process is consumed before the signal is
 * unblocked again (it was meant for this source).  0 or -EINVAL. */
BGL_EXPORT int bgl_signal_free(bgl_signal *sig);

#ifdef __cplusplus
}
#endif

#endif /* BGLOOP_LOOP_H */
