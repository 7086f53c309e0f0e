/* core.h - the C state behind one bgloop.Loop.
 *
 * A Core wraps one bgl_loop.  asyncio's Handles are queued in it directly
 * (call_soon, call_soon_threadsafe), TimerHandles arm one bgl_timer each, and
 * every watched fd has one bgl_io whose callback runs the reader/writer
 * Handles that asyncio's _add_reader/_add_writer stored as the selector key's
 * data.  The C loop dispatches them; Python only sees Handle._run() calls.
 *
 * The GIL is held while callbacks run, on every backend: it is dropped only
 * around the kernel wait (bgl_loop_wait()), never for a dispatch.
 */
#ifndef BGLPY_CORE_H
#define BGLPY_CORE_H

#include "bglpy.h"

#include "bgloop/loop.h"

typedef struct bglpy_core {
    PyObject_HEAD
    bglpy_state *st;            /* for the C callbacks (see bglpy.h) */
    bgl_loop *loop;             /* NULL once closed */
    bgl_loop *closing;          /* closed, but other sources (the service
                                 * manager's) still on it: freed later */
    PyObject *owner;            /* the bgloop.Loop (strong; GC-visible) */
    bglpy_link timers;          /* armed bglpy_timer; the core owns a reference to each */
    /* The armed timers by TimerHandle (identity, chained hashing): asyncio's
     * TimerHandle has __slots__ and no room for the C timer, and cancel()
     * only passes the handle to the loop. */
    struct bglpy_timer **by_handle;
    size_t by_handle_size;      /* buckets: 0 or a power of two */
    bglpy_link watchers;        /* live bglpy_watcher (borrowed; they keep the core alive) */
    bglpy_link signals;         /* open SignalWatchers (borrowed, likewise) */
    bglpy_link pending;         /* queued Handles (for the garbage collector) */
    int debug;                  /* run handles through owner._bgl_run_debug() */
    int busy;                   /* inside run_once()/kick(), waiting included */
    /* The thread the loop belongs to: the first to run or kick it.  Its
     * callbacks (service code, bpy calls) run on that thread only. */
    unsigned long thread;       /* 0: not claimed yet */
    PyObject *thread_name;      /* for messages */
    /* Stop requests: the binding's own (Python's loop.stop(), a
     * BaseException) end the current kick through bgl_loop_stop() and are
     * taken back right after it; a request of other code (the service
     * manager) that was pending meanwhile is kept for Core.take_stop(). */
    int stop_mine;
    int foreign_pending;
    int foreign_code;
    /* A BaseException (KeyboardInterrupt, SystemExit) escaped a callback: it
     * is re-raised when the iteration ends; meanwhile callbacks are re-queued
     * rather than run, so nothing is lost. */
    PyObject *exc_type, *exc_value, *exc_tb;
    uint64_t slow_ns;           /* threshold of bgloop's own slow-callback report
                                 * (BGLOOP_SLOW_CALLBACK); UINT64_MAX: off */
    uint64_t queued;            /* Handles queued (call_soon/threadsafe) not yet run */
    uint64_t ts_queued;         /* of which in libbgloop's thread-safe queue */
    uint64_t armed;             /* armed timers */
    /* statistics */
    uint64_t callbacks;         /* Python callbacks run */
    uint64_t longest_ns;        /* longest single callback */
    uint64_t lag_max_ns;        /* latest timer dispatch relative to its deadline */
    uint64_t lag_last_ns;
    uint64_t kicks;
    uint64_t idle_kicks;        /* kicks that dispatched nothing */
    uint64_t waits;             /* waits in the kernel that may block (GIL released) */
    /* Loop.kick()'s last answer "nothing left" (1/0; -1: not known), valid
     * while bglpy_core_dispatched() is still left_at and nothing is queued:
     * tasks and services change only when callbacks run. */
    int left;
    uint64_t left_at;
} bglpy_core;

typedef struct bglpy_timer {
    PyObject_HEAD
    bgl_timer *timer;           /* NULL when not armed */
    bglpy_core *core;           /* strong */
    PyObject *handle;           /* the TimerHandle while armed */
    uint64_t deadline_ns;
    bglpy_link link;            /* core->timers while armed */
    struct bglpy_timer *hnext;  /* next in its core->by_handle bucket */
} bglpy_timer;

typedef struct bglpy_watcher {
    PyObject_HEAD
    bgl_io *io;                 /* NULL once closed */
    bglpy_core *core;           /* strong */
    PyObject *data;             /* the selector key's data: (reader, writer) */
    bgl_fd fd;
    unsigned events;
    bglpy_link link;            /* core->watchers while open */
} bglpy_watcher;

/* RuntimeError("Event loop is closed") unless the core's loop is open.
 * 0 or -1. */
static inline int bglpy_check_open(bglpy_core *core)
{
    if (!core->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

/* Run one asyncio Handle from a C callback: skip it if cancelled, time it,
 * log it if slow, keep a BaseException for the end of the iteration. */
void bglpy_run_handle(bglpy_core *core, PyObject *handle);
/* The same for a Handle known not to be cancelled (no pending exception). */
void bglpy_call_handle(bglpy_core *core, PyObject *handle);
/* Queue a Handle (new reference taken) to run in the next iteration.
 * 0, or -1 with an exception set. */
int bglpy_queue_handle(bglpy_core *core, PyObject *handle);
/* Queue a Handle through libbgloop's thread-safe queue (any thread; the GIL
 * held).  0, or -1 with an exception set. */
int bglpy_queue_threadsafe(bglpy_core *core, PyObject *handle);
/* loop.call_soon_threadsafe(): bglpy_queue_threadsafe(), after letting the
 * loop thread run while a flood of calls waits (back-pressure). */
int bglpy_call_threadsafe(bglpy_core *core, PyObject *handle);
/* Remember the current exception to re-raise after the iteration, and end
 * the iteration. */
void bglpy_stash_exception(bglpy_core *core);
/* End the current kick after this iteration (the binding's own request). */
void bglpy_request_stop(bglpy_core *core);
/* After a kick or run_once: take the binding's own stop request back and
 * leave any other one pending. */
void bglpy_settle_stop(bglpy_core *core);

/* One bounded step from outside the loop (bgloop.Loop.kick()): wait up to
 * timeout_ns (-1: no limit), then dispatch within budget_ns (-1: no limit).
 * The number of callbacks dispatched, or -1 with an exception set. */
int bglpy_core_kick(bglpy_core *core, int64_t timeout_ns, int64_t budget_ns);
/* Grows whenever any callback ran, Python or C. */
uint64_t bglpy_core_dispatched(bglpy_core *core);
/* One iteration (asyncio's _run_once): wait (without limit if block),
 * then dispatch.  The number of callbacks run, or NULL with an exception. */
PyObject *bglpy_core_run_once(bglpy_core *core, int block);
/* Methods of Core that are bgloop.Loop's own kick(), _run_once(),
 * call_soon(), call_later(), call_at(), create_future() and get_debug()
 * (loop_fast.c). */
PyObject *bglpy_loop_kick(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames);
PyObject *bglpy_loop_run_once(bglpy_core *core, PyObject *unused);
PyObject *bglpy_loop_call_soon(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames);
PyObject *bglpy_loop_call_later(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames);
PyObject *bglpy_loop_call_at(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames);
PyObject *bglpy_loop_forget_left(bglpy_core *core, PyObject *unused);
PyObject *bglpy_loop_create_future(bglpy_core *core, PyObject *unused);
PyObject *bglpy_loop_get_debug(bglpy_core *core, PyObject *unused);

/* Core.cancel_timer(handle): disarm the timer armed for that TimerHandle.
 * True if there was one. */
PyObject *bglpy_core_cancel_timer(bglpy_core *core, PyObject *handle);
/* Free the table of core->by_handle (empty by then). */
void bglpy_timers_free_index(bglpy_core *core);

/* Free the C side of every timer / watcher of a closing core. */
void bglpy_timers_release_all(bglpy_core *core);
void bglpy_watchers_release_all(bglpy_core *core);
void bglpy_signal_watchers_release_all(bglpy_core *core);
int bglpy_timers_traverse(bglpy_core *core, visitproc visit, void *arg);
int bglpy_pending_traverse(bglpy_core *core, visitproc visit, void *arg);
/* Drop the queued Handles' references (GC); the calls stay queued, empty. */
void bglpy_pending_clear(bglpy_core *core);

/* Methods of Core implemented in timer.c / watcher.c. */
PyObject *bglpy_core_call_at(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs);
PyObject *bglpy_core_watch(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs);
PyObject *bglpy_core_watch_signal(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs);

int bglpy_timer_init(PyObject *module, bglpy_state *st);
int bglpy_watcher_init(PyObject *module, bglpy_state *st);
int bglpy_signal_watcher_init(PyObject *module, bglpy_state *st);

#endif /* BGLPY_CORE_H */
