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
 * An iteration is three steps.  bgl_loop_run_once(), bgl_loop_kick() and
 * bgl_loop_run() are made of them, and a host that must interleave its own
 * work calls them one at a time (see DRIVING THE LOOP FROM A HOST):
 *
 *   1. prepare (bgl_loop_prepare()): how long the loop may sleep - 0 if
 *      anything is ready now, else until the earliest timer, or -1 (no
 *      limit) if no timer is armed;
 *   2. wait (bgl_loop_wait()): wait in the kernel (epoll_wait or poll) for
 *      I/O, a thread-safe call or wakeup, or a signal - never past the
 *      earliest timer, not at all if work is ready.  Ready I/O watchers are
 *      appended to the dispatch queue, in the order the kernel reported
 *      them; no callback runs;
 *   3. dispatch (bgl_loop_dispatch()): refresh the cached time
 *      (bgl_loop_now()), append to the queue the expired timers (by
 *      deadline, ties in the order they were armed), then the thread-safe
 *      calls (in the order they were made; at most BGL_THREADSAFE_BATCH,
 *      see THE THREAD-SAFE QUEUE), then the signals; then run the queue in
 *      FIFO order.  Deferred calls made with bgl_loop_call_soon()
 *      are part of the same queue, after whatever was queued before them.
 *      Anything scheduled *while* dispatching - a call soon, a timer that
 *      is already due, ... - runs in the next iteration, never in this one
 *      (asyncio's rule, which keeps one busy callback from starving I/O).
 *
 * THE BUDGET RULE.  A dispatch may be given a budget in nanoseconds
 * (bgl_loop_set_budget() for every dispatch, a budget_ns argument for one
 * dispatch or one kick; the smallest applies).  Only time spent running
 * callbacks counts, measured with the loop's clock (bgl_loop_set_clock();
 * CLOCK_MONOTONIC by default) - never the time spent waiting in the
 * kernel.  The budget is checked after each callback, so at least one
 * callback runs per dispatch.  Once it is spent the dispatch stops; the
 * rest stays queued, in order, and runs first in the next iteration, whose
 * wait will not block.  Nothing that became ready is lost: an I/O watcher
 * that is queued but not yet dispatched is not queued twice; its pending
 * events are merged, and filtered by its interest at dispatch time.
 *
 * THE THREAD-SAFE QUEUE.  Calls made with bgl_loop_call_threadsafe() wait
 * in a queue of their own until a dispatch collects them.  One dispatch
 * collects only calls already queued when it began, and at most
 * BGL_THREADSAFE_BATCH of them, oldest first; the rest stay queued, in
 * order, for the next iteration, whose wait will not block.  So threads
 * that flood the loop with calls delay a timer that is due, ready I/O or a
 * signal by at most one iteration, that iteration runs at most
 * BGL_THREADSAFE_BATCH thread-safe calls, and the calls still run in the
 * order they were made.  The queue itself is not bounded: callers are never
 * refused or blocked for its length (only -ENOMEM stops them).
 *
 * DRIVING THE LOOP FROM A HOST
 *
 * (a) A host that polls its own descriptors (epoll build only: the poll
 * backend has no single descriptor) adds bgl_loop_get_fd() to its set:
 *
 *     for (;;) {
 *         int64_t ns;
 *         bgl_loop_prepare(loop, &ns);         // 0: ready, -1: no limit
 *         poll(host fds + loop fd, ns rounded up to ms);
 *         ...handle the host's own descriptors...
 *         bgl_loop_wait(loop, 0);              // collect, never blocks
 *         bgl_loop_dispatch(loop, -1);
 *     }
 *
 * The loop's fd only says that the loop has something to collect; the
 * wait with timeout 0 collects it (ready I/O) without sleeping.
 *
 * (b) A host that holds a global lock while it runs code (Python's GIL)
 * releases it around the wait only, so that other threads run while the
 * loop sleeps and every callback runs with the lock held.  The wait bounds
 * itself by the timers, so no prepare is needed here:
 *
 *     for (;;) {
 *         release the lock;
 *         int r = bgl_loop_wait(loop, timeout);  // -EINTR: a signal
 *         take the lock;
 *         if (r == -EINTR) { run the host's signal handlers; continue; }
 *         bgl_loop_dispatch(loop, -1);
 *         if (bgl_loop_take_stop(loop, &code) == 1) break;
 *     }
 *
 * bgl_loop_wait() returns -EINTR whenever a signal handler interrupts it,
 * so a host whose handlers only set a flag (as Python's do) gets to act on
 * Ctrl+C at once.  Only the loop's own thread calls these functions; other
 * threads use bgl_loop_call_threadsafe() or bgl_loop_wakeup().
 *
 * REENTRANCY
 *
 * Any callback may create, modify or free any source - including the one
 * being dispatched - and may call bgl_loop_stop().  A freed source that was
 * queued is dropped from the queue; its callback is never called after
 * bgl_X_free() returned.  Calling bgl_loop_prepare(), bgl_loop_wait(),
 * bgl_loop_dispatch(), bgl_loop_run_once(), bgl_loop_kick() or
 * bgl_loop_run() from inside a callback of the same loop returns -EBUSY.
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
 *   -ENOMEM   out of memory;
 *   -EINTR    (bgl_loop_wait() only) a signal handler interrupted the wait.
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

/* What an I/O watcher watches.  POSIX: a file descriptor (int) - a socket,
 * pipe, FIFO, terminal, eventfd, ...  Windows: a SOCKET (an unsigned,
 * pointer-sized handle, as winsock2.h defines it), and nothing else: pipes,
 * files and console handles cannot be watched there (bgl_io_new() says
 * -EBADF).  Existing POSIX code that passes an int is unchanged. */
#ifdef _WIN32
typedef uintptr_t bgl_fd;
#else
typedef int bgl_fd;
#endif
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
typedef void (*bgl_io_cb)(bgl_io *io, bgl_fd fd, unsigned revents, void *userdata);
typedef void (*bgl_timer_cb)(bgl_timer *timer, void *userdata);
typedef void (*bgl_signal_cb)(bgl_signal *sig, int signo, void *userdata);
/* A clock: returns monotonic nanoseconds.  See bgl_loop_set_clock(). */
typedef uint64_t (*bgl_clock_fn)(void *userdata);

/* ------------------------------------------------------------------------ */
/* Loop                                                                      */
/* ------------------------------------------------------------------------ */

/* Create a loop.  On success stores it in *out and returns 0.
 * -EINVAL if out is NULL; -ENOMEM; -EMFILE/-ENFILE if the backend or wakeup
 * descriptors cannot be created.  All descriptors are close-on-exec.
 * Windows: the loop starts Winsock (WSAStartup) and bgl_loop_free() stops
 * it again, so a program may use sockets while it has a loop; one that
 * needs them before or after calls WSAStartup itself.  The backend is the
 * AFD driver's socket poll through an I/O completion port (WSAPoll with
 * the build option io_backend=poll); no handle is inherited by children. */
BGL_EXPORT int bgl_loop_new(bgl_loop **out);

/* Destroy a loop.  Deferred and thread-safe calls that never ran are dropped;
 * their `discard` function (see bgl_loop_call_soon_full()) is called.
 * While those discard functions run, the loop is being freed: calling
 * bgl_loop_free() again, running it (bgl_loop_prepare(), bgl_loop_wait(),
 * bgl_loop_dispatch(), bgl_loop_run_once(), bgl_loop_kick(),
 * bgl_loop_run()), queueing calls (bgl_loop_call_soon*(),
 * bgl_loop_call_threadsafe()) or creating sources on it returns -EBUSY.
 * Returns 0; -EINVAL if loop is NULL; -EBUSY if called from a callback of
 * this loop or from a discard function, or while I/O watchers, timers or
 * signal sources created on it still exist (free them first; the loop is
 * then left untouched). */
BGL_EXPORT int bgl_loop_free(bgl_loop *loop);

/* ---- one step at a time (see THE ITERATION) ------------------------------ */

/* Step 1: how long the host may sleep before the next dispatch.  Stores in
 * *timeout_ns 0 when work is ready now (callbacks queued, I/O collected by a
 * wait but not dispatched yet, a timer due, a thread-safe call, wakeup or
 * signal already noticed by a wait), -1 when nothing is scheduled (no armed
 * timer: only I/O, a thread-safe call or a signal can wake the loop), else
 * the nanoseconds until the earliest timer by the clock's current time
 * (saturating at INT64_MAX for a timer more than ~292 years away).  Returns
 * 1 when work is ready, 0 when not, -EINVAL (NULL loop or timeout_ns), or
 * -EBUSY from a callback of this loop or while it is being freed. */
BGL_EXPORT int bgl_loop_prepare(bgl_loop *loop, int64_t *timeout_ns);

/* Step 2: the kernel wait only.  Waits at most timeout_ns (< 0: no limit;
 * 0: just poll), never past the earliest timer (the epoll backend rounds
 * up to whole milliseconds), and not at all if bgl_loop_prepare() would
 * store 0.  Ready I/O watchers are queued and a readable wakeup or signal
 * descriptor is noticed, but no callback runs.  Counts stats.wakeups.
 * Returns 1 if a dispatch now has something to do, 0 if not (the timeout
 * passed with nothing ready), -EINTR when a signal handler interrupted the
 * wait (nothing is lost: wait again, or dispatch), another negative errno
 * from the backend, -EINVAL, or -EBUSY (from a callback of this loop or
 * while it is being freed). */
BGL_EXPORT int bgl_loop_wait(bgl_loop *loop, int64_t timeout_ns);

/* Step 3: collect and dispatch one iteration: refresh the cached time,
 * queue the expired timers, thread-safe calls and signals, then run the
 * queue in FIFO order (what the callbacks schedule runs next iteration).
 * Stops once budget_ns is spent (< 0: no limit; 0: -EINVAL; see THE BUDGET
 * RULE - bgl_loop_set_budget()'s budget applies too, the smaller wins).
 * Counts stats.iterations and stats.budget_exhausted.  Returns the number of
 * callbacks run (>= 0), -EINVAL, or -EBUSY (from a callback of this loop or
 * while it is being freed). */
BGL_EXPORT int bgl_loop_dispatch(bgl_loop *loop, int64_t budget_ns);

/* Consume a pending bgl_loop_stop() request: returns 1 and stores its code
 * in *code (code may be NULL), the request being cleared; 0 when none is
 * pending; -EINVAL if loop is NULL.  Also allowed from a callback. */
BGL_EXPORT int bgl_loop_take_stop(bgl_loop *loop, int *code);

/* ---- whole iterations ----------------------------------------------------- */

/* One iteration: bgl_loop_wait(timeout_ns), then bgl_loop_dispatch() with
 * bgl_loop_set_budget()'s budget.  timeout_ns: 0 = do not block; negative =
 * block until something happens; positive = block at most that long,
 * returning as soon as I/O, a timer, a thread-safe call or a signal is due.
 * A wait interrupted by a signal is resumed for what is left of the timeout
 * (-EINTR is never returned).  A pending stop request is left alone.
 * Returns the number of callbacks dispatched (>= 0), -EINVAL, -EBUSY if
 * called re-entrantly or from a discard function run by bgl_loop_free(), or
 * a negative errno from the backend. */
BGL_EXPORT int bgl_loop_run_once(bgl_loop *loop, int64_t timeout_ns);

/* "Kick": one bgl_loop_wait(timeout_ns) (same meaning and -EINTR handling
 * as bgl_loop_run_once()), then dispatches, with non-blocking waits between
 * them, for as long as work keeps becoming ready, until a dispatch runs
 * nothing, budget_ns is spent (< 0: no limit; 0 is not allowed: -EINVAL),
 * or a dispatch during which bgl_loop_stop() was called.  That stop request
 * stays pending for bgl_loop_take_stop() or bgl_loop_run(): this is how a
 * callback ends a kick early.  The remaining kick budget also bounds each
 * dispatch (with bgl_loop_set_budget(), the smaller wins), so one busy
 * iteration cannot overrun the slice; see THE BUDGET RULE.  This is how a
 * host that owns the process (a GUI toolkit, Blender) gives the loop a
 * bounded slice: a request that is read, handled and answered completes
 * within one kick.  Example: callbacks of 20 ms each, the first one due
 * after a 100 ms wait, budget_ns 50 ms: the wait does not count, and the
 * kick runs 3 callbacks (20, 40, then 60 >= 50 ms) and leaves the rest
 * queued.  Returns the total number of callbacks dispatched, or a
 * negative errno (-EBUSY from a callback or a discard function, as
 * bgl_loop_run_once()). */
BGL_EXPORT int bgl_loop_kick(bgl_loop *loop, int64_t timeout_ns, int64_t budget_ns);

/* Run iterations until bgl_loop_stop() is called or no work is left.  Work is:
 * a queued callback, an armed timer, an I/O watcher with non-zero interest, a
 * signal source, or a hold (bgl_loop_hold()).  Consumes the stop request
 * (as bgl_loop_take_stop()).  Returns the exit code passed to
 * bgl_loop_stop() (0 when the loop ran out of work), or a negative errno
 * (-EBUSY from a callback or a discard function, as bgl_loop_run_once()). */
BGL_EXPORT int bgl_loop_run(bgl_loop *loop);

/* Ask bgl_loop_run() to return `code` after the current iteration.  Use a
 * code >= 0: bgl_loop_run() returns it as is, so a negative code reads as an
 * error from the loop.  May be called from a callback or between
 * iterations; in the latter case the next bgl_loop_run() runs one
 * non-blocking iteration and returns `code` (as asyncio's stop() before
 * run_forever()).  The request stays pending until bgl_loop_run() or
 * bgl_loop_take_stop() consumes it; bgl_loop_run_once() ignores it and
 * bgl_loop_kick() returns after the iteration that made it.
 * Returns 0 or -EINVAL. */
BGL_EXPORT int bgl_loop_stop(bgl_loop *loop, int code);

/* The code of the last bgl_loop_stop() (0 if never stopped).  Returns 0 and
 * stores it in *code, or -EINVAL. */
BGL_EXPORT int bgl_loop_get_exit_code(const bgl_loop *loop, int *code);

/* Dispatch budget of every dispatch in nanoseconds (bgl_loop_dispatch() and
 * the iterations of bgl_loop_run_once(), bgl_loop_kick() and bgl_loop_run());
 * negative = unlimited (the default).  0 is -EINVAL.  See THE BUDGET RULE:
 * a test clock makes budget cuts deterministic. */
BGL_EXPORT int bgl_loop_set_budget(bgl_loop *loop, int64_t budget_ns);

/* Keep bgl_loop_run() from returning for lack of work while a hold is taken,
 * e.g. while another thread will still post a thread-safe call.  Holds nest.
 * bgl_loop_release() without a hold returns -EALREADY. */
BGL_EXPORT int bgl_loop_hold(bgl_loop *loop);
BGL_EXPORT int bgl_loop_release(bgl_loop *loop);

/* ---- embedding in a foreign loop ---------------------------------------- */

/* A descriptor that becomes readable whenever bgl_loop_wait(loop, 0) would
 * find something to collect: I/O, a thread-safe call or wakeup, or a
 * signal.  A host polls it together with its own descriptors, for the
 * timeout of bgl_loop_prepare(); see DRIVING THE LOOP FROM A HOST (a).
 * Owned by the loop: do not close it.  Returns the fd, -EINVAL, or
 * -EOPNOTSUPP with the poll backend (which has no single pollable
 * descriptor) and on Windows (a completion port cannot be polled: a host
 * there runs the loop's wait on a thread of its own, or with timeout 0). */
BGL_EXPORT int bgl_loop_get_fd(const bgl_loop *loop);

/* ---- time ---------------------------------------------------------------- */

/* The loop's time in monotonic nanoseconds, cached once per iteration (at
 * the start of its dispatch) so that all callbacks of one iteration see the
 * same "now".
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
    uint64_t iterations;      /* dispatches (bgl_loop_dispatch(), and one per
                                 iteration of run_once, kick and run) */
    uint64_t dispatched;      /* callbacks run, all kinds */
    uint64_t budget_exhausted;/* dispatches cut short by the budget */
    uint64_t wakeups;         /* waits that returned before their timeout */
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

/* The most thread-safe calls one dispatch collects (THE THREAD-SAFE QUEUE). */
#define BGL_THREADSAFE_BATCH 1024

/* From any thread: queue cb(userdata) to run on the loop's thread and wake
 * the loop at once if it is blocked in the kernel.  Calls are never lost and
 * run in the order they were made (per calling thread, and globally in the
 * order they took the queue's lock), at most BGL_THREADSAFE_BATCH per
 * iteration (THE THREAD-SAFE QUEUE).  discard may be NULL; see
 * bgl_loop_call_soon_full().  0, -EINVAL, -EBUSY (the loop is being freed)
 * or -ENOMEM. */
BGL_EXPORT int bgl_loop_call_threadsafe(bgl_loop *loop, bgl_callback cb, void *userdata,
                                        bgl_callback discard);

/* From any thread: make a blocked bgl_loop_wait() (and so
 * bgl_loop_run_once(), ...) return.  0 or -EINVAL. */
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
BGL_EXPORT int bgl_io_new(bgl_loop *loop, bgl_fd fd, unsigned events, bgl_io_cb cb,
                          void *userdata, bgl_io **out);

/* Change the interest; 0 pauses the watcher.  0, -EINVAL, or a negative errno
 * from the backend (-EBADF if fd was closed behind the watcher's back). */
BGL_EXPORT int bgl_io_set_events(bgl_io *io, unsigned events);

/* Current interest.  0 and stores it, or -EINVAL. */
BGL_EXPORT int bgl_io_get_events(const bgl_io *io, unsigned *events);

/* The watched descriptor, or -EINVAL.  Windows: the SOCKET as an intptr_t
 * (socket handles are positive, so a negative value is an error). */
#ifdef _WIN32
BGL_EXPORT intptr_t bgl_io_get_fd(const bgl_io *io);
#else
BGL_EXPORT int bgl_io_get_fd(const bgl_io *io);
#endif

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
 * source); -EBUSY (the loop is being freed); -ENOMEM.
 *
 * Windows has no POSIX signals; three console control events stand in for
 * them, read by a console control handler (SetConsoleCtrlHandler) that
 * passes them to the loop as a thread-safe call would:
 *   SIGINT   <- Ctrl+C (CTRL_C_EVENT);
 *   SIGBREAK <- Ctrl+Break (CTRL_BREAK_EVENT);
 *   SIGTERM  <- the console window closing, the user logging off, the
 *               system shutting down (CTRL_CLOSE/LOGOFF/SHUTDOWN_EVENT;
 *               the last two reach only processes without windows).
 * raise() of these three in the process is delivered too.  Any other
 * signal number below NSIG is -ENOTSUP.  Windows ends the process as soon
 * as the handler returns from a close, logoff or shutdown event, so the
 * handler holds it until the SIGTERM source is freed - what a program does
 * once the stop that SIGTERM began is over - for at most
 * BGL_SIGNAL_CLOSE_WAIT_MS (Windows itself may end the process sooner: by
 * default 5 s after a console close).  An event for which no source exists
 * goes on to the next handler (by default: the process ends). */
BGL_EXPORT int bgl_signal_new(bgl_loop *loop, int signo, bgl_signal_cb cb, void *userdata,
                              bgl_signal **out);

/* Windows: the longest a console close, logoff or shutdown event is held
 * for the SIGTERM source's program (see bgl_signal_new()). */
#define BGL_SIGNAL_CLOSE_WAIT_MS 20000

/* Stop delivering and free.  Safe from any callback.  With signalfd, an
 * instance still pending for the process is consumed before the signal is
 * unblocked again (it was meant for this source).  0 or -EINVAL. */
BGL_EXPORT int bgl_signal_free(bgl_signal *sig);

#ifdef __cplusplus
}
#endif

#endif /* BGLOOP_LOOP_H */
