/* handle.h - bgloop._bgloop.Handle and TimerHandle: asyncio's Handle API in C.
 *
 * Loop.call_soon/call_at/call_later/call_soon_threadsafe hand these out
 * (asyncio's own classes with BGLOOP_PY_HANDLES=1).  They behave as
 * asyncio.Handle and asyncio.TimerHandle (cancel, cancelled, when,
 * get_context, _run, repr, the private attributes asyncio's base loop
 * reads), but are not subclasses of them, as uvloop's are not: asyncio's
 * classes are Python classes with __slots__, whose layout a stable-ABI C
 * type cannot extend.
 *
 * The dispatcher (dispatch.c) recognises them by type and skips both
 * attribute look-ups of a Python Handle: it reads `cancelled` and calls
 * bglpy_handle_run() directly.
 */
#ifndef BGLPY_HANDLE_H
#define BGLPY_HANDLE_H

#include "core.h"

typedef struct bglpy_handle {
    PyObject_HEAD
    /* NULL once cancelled (asyncio drops callback and args on cancel). */
    PyObject *callback;
    PyObject *args;             /* a tuple (the caller's) */
    PyObject *context;
    PyObject *loop;             /* the bgloop.Loop */
    bglpy_core *core;           /* its core (strong) */
    PyObject *source_traceback; /* list of FrameSummary (debug mode) or NULL */
    PyObject *repr;             /* repr kept at cancel() in debug mode, or NULL */
    PyObject *when;             /* TimerHandle: the deadline as given */
    PyObject *weakrefs;
    /* A call_soon_threadsafe() handle where asyncio has _ThreadSafeHandle:
     * held while the callback runs and by cancel() and cancelled(), so
     * that other threads wait for a running callback; NULL otherwise.
     * lock_owner: the thread holding it (reentrant for that thread). */
    PyThread_type_lock lock;
    unsigned long lock_owner;
    char cancelled;
    char scheduled;             /* TimerHandle: armed in the core */
} bglpy_handle;

static inline int bglpy_is_handle(bglpy_state *st, PyObject *o)
{
    return Py_TYPE(o) == st->Handle || Py_TYPE(o) == st->TimerHandle;
}

/* Run the callback in its context (a C Handle known not to be cancelled).
 * Exceptions go to loop.call_exception_handler() as in asyncio; 0, or -1
 * with SystemExit/KeyboardInterrupt (or a failing handler) set. */
int bglpy_handle_run(bglpy_handle *h);

/* A TimerHandle's timer fired (a C one or asyncio's): it is no longer
 * scheduled. */
void bglpy_handle_fired(bglpy_state *st, PyObject *handle);

/* Methods of Core:
 *   soon(callback, args, context) -> Handle              queued
 *   soon_threadsafe(callback, args, context) -> Handle   from any thread
 *   at(when, callback, args, context) -> TimerHandle     armed
 * In debug mode the handle's source traceback starts at the calling Python
 * frame (the caller drops its own frame, as asyncio's methods do). */
PyObject *bglpy_core_soon(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs);
PyObject *bglpy_core_soon_threadsafe(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs);
PyObject *bglpy_core_at(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs);

#endif /* BGLPY_HANDLE_H */
