/* core.h - the C state behind one bgloop.Loop.
 *
 * A Core wraps one bgl_loop.  asyncio's Handles are queued in it directly
 * (call_soon, call_soon_threadsafe), TimerHandles arm one bgl_timer each, and
 * every watched fd has one bgl_io whose callback runs the reader/writer
 * Handles that asyncio's _add_reader/_add_writer stored as the selector key's
 * data.  The C loop dispatches them; Python only sees Handle._run() calls.
 *
 * The GIL is held while callbacks run.  With the epoll backend it is dropped
 * only while waiting: the binding polls the loop's descriptor itself and then
 * runs a non-blocking iteration, so a busy Python thread elsewhere cannot
 * slow down every single callback.  The poll backend has no such descriptor;
 * there the blocking iteration runs without the GIL and each callback takes
 * it back (see bglpy_enter()).
 */
#ifndef BGLPY_CORE_H
#define BGLPY_CORE_H

#include "bglpy.h"

#include "bgloop/loop.h"

typedef struct bglpy_timer bglpy_timer;
typedef struct bglpy_watcher bglpy_watcher;
typedef struct bglpy_pending bglpy_pending;

typedef struct bglpy_core {
    PyObject_HEAD
    bgl_loop *loop;             /* NULL once closed */
    bgl_loop *closing;          /* closed, but other sources (the service
                                 * manager's) still on it: freed later */
    int fd;                     /* bgl_loop_get_fd(), -1 with the poll backend */
    PyObject *owner;            /* the bgloop.Loop (strong; GC-visible) */
    bglpy_timer *timers;        /* armed timers; each holds a reference owned by the core */
    bglpy_watcher *watchers;    /* live watchers (borrowed; they keep the core alive) */
    bglpy_pending *pending;     /* queued Handles (for the garbage collector) */
    int debug;                  /* run handles through owner._bgl_run_debug() */
    int busy;                   /* inside run_once()/kick(): no re-entry */
    int stop;                   /* stop requested: ends a kick after this iteration */
    PyThreadState *released;    /* poll backend: GIL dropped for a blocking iteration */
    /* A BaseException (KeyboardInterrupt, SystemExit) escaped a callback: it
     * is re-raised when the iteration ends; meanwhile callbacks are re-queued
     * rather than run, so nothing is lost. */
    PyObject *exc_type, *exc_value, *exc_tb;
    uint64_t slow_ns;           /* slow-callback threshold */
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
    uint64_t waits;             /* waits in the kernel */
} bglpy_core;

struct bglpy_timer {
    PyObject_HEAD
    bgl_timer *timer;           /* NULL when not armed */
    bglpy_core *core;           /* strong */
    PyObject *handle;           /* the TimerHandle while armed */
    uint64_t deadline_ns;
    bglpy_timer *prev, *next;   /* core->timers */
};

struct bglpy_watcher {
    PyObject_HEAD
    bgl_io *io;                 /* NULL once closed */
    bglpy_core *core;           /* strong */
    PyObject *data;             /* the selector key's data: (reader, writer) */
    int fd;
    unsigned events;
    bglpy_watcher *prev, *next; /* core->watchers */
};

extern PyTypeObject *bglpy_CoreType;
extern PyTypeObject *bglpy_TimerType;
extern PyTypeObject *bglpy_WatcherType;

/* Interned attribute names used on the hot paths. */
extern PyObject *bglpy_str_run, *bglpy_str_cancelled, *bglpy_str_run_debug,
    *bglpy_str_slow, *bglpy_str_remove_reader, *bglpy_str_remove_writer;

/* Take the GIL back inside a callback when the iteration runs without it
 * (poll backend), and give it up again afterwards. */
static inline void bglpy_enter(bglpy_core *core)
{
    if (core->released)
        PyEval_RestoreThread(core->released);
}
static inline void bglpy_leave(bglpy_core *core)
{
    if (core->released)
        core->released = PyEval_SaveThread();
}

/* The core dispatching on this thread (set around bgl_loop_run_once()). */
extern _Thread_local bglpy_core *bglpy_current;

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
/* Remember the current exception to re-raise after the iteration. */
void bglpy_stash_exception(bglpy_core *core);

/* Free the C side of every timer / watcher of a closing core. */
void bglpy_timers_release_all(bglpy_core *core);
void bglpy_watchers_release_all(bglpy_core *core);
int bglpy_timers_traverse(bglpy_core *core, visitproc visit, void *arg);
int bglpy_pending_traverse(bglpy_core *core, visitproc visit, void *arg);
/* Drop the queued Handles' references (GC); the calls stay queued, empty. */
void bglpy_pending_clear(bglpy_core *core);

/* Methods of Core implemented in timer.c / watcher.c. */
PyObject *bglpy_core_call_at(bglpy_core *core, PyObject *args);
PyObject *bglpy_core_watch(bglpy_core *core, PyObject *args);

int bglpy_timer_init(PyObject *module);
int bglpy_watcher_init(PyObject *module);

#endif /* BGLPY_CORE_H */
