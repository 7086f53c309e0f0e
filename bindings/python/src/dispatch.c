/* dispatch.c - running asyncio Handles from the C loop's callbacks. */
#include "core.h"

void bglpy_stash_exception(bglpy_core *core)
{
    if (core->exc_type) {
        /* Only the first one is re-raised; callbacks after it are re-queued,
         * so a second can only come from our own logging hooks. */
        PyErr_WriteUnraisable(core->owner ? core->owner : Py_None);
        return;
    }
    PyErr_Fetch(&core->exc_type, &core->exc_value, &core->exc_tb);
}

/* A queued Handle.  The core lists them so that the garbage collector sees
 * the references the C queue holds: an unclosed loop with callbacks still
 * queued is then collected (with asyncio's ResourceWarning) like a stock
 * one.  Nodes are recycled; all of this runs with the GIL held. */
struct bglpy_pending {
    bglpy_core *core;
    PyObject *handle; /* NULL once the collector cleared it */
    bglpy_pending *prev, *next;
};

#define PENDING_FREE_MAX 1024
static bglpy_pending *pending_free;
static int pending_nfree;

static bglpy_pending *pending_new(bglpy_core *core, PyObject *handle)
{
    bglpy_pending *p = pending_free;
    if (p) {
        pending_free = p->next;
        pending_nfree--;
    } else if (!(p = PyMem_Malloc(sizeof *p))) {
        PyErr_NoMemory();
        return NULL;
    }
    p->core = core;
    Py_INCREF(handle);
    p->handle = handle;
    p->prev = NULL;
    p->next = core->pending;
    if (p->next)
        p->next->prev = p;
    core->pending = p;
    return p;
}

/* Unlink and recycle; returns the Handle reference (or NULL if cleared). */
static PyObject *pending_take(bglpy_pending *p)
{
    PyObject *handle = p->handle;
    if (p->prev)
        p->prev->next = p->next;
    else
        p->core->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (pending_nfree < PENDING_FREE_MAX) {
        p->next = pending_free;
        pending_free = p;
        pending_nfree++;
    } else {
        PyMem_Free(p);
    }
    return handle;
}

int bglpy_pending_traverse(bglpy_core *core, visitproc visit, void *arg)
{
    for (bglpy_pending *p = core->pending; p; p = p->next)
        Py_VISIT(p->handle);
    return 0;
}

void bglpy_pending_clear(bglpy_core *core)
{
    for (bglpy_pending *p = core->pending; p; p = p->next)
        Py_CLEAR(p->handle);
}

static void pending_discard(void *userdata)
{
    /* The loop is being freed (with the GIL held) and never ran it. */
    Py_XDECREF(pending_take(userdata));
}

static void soon_run(void *userdata);
static void threadsafe_run(void *userdata);

int bglpy_queue_handle(bglpy_core *core, PyObject *handle)
{
    /* asyncio keeps one FIFO for call_soon and call_soon_threadsafe, while
     * libbgloop collects thread-safe calls only when it polls.  While some
     * are outstanding, later call_soon()s take the same queue so that they
     * run after them, as in asyncio. */
    if (core->ts_queued)
        return bglpy_queue_threadsafe(core, handle);
    bglpy_pending *p = pending_new(core, handle);
    if (!p)
        return -1;
    int r = bgl_loop_call_soon_full(core->loop, soon_run, p, pending_discard);
    if (r < 0) {
        Py_XDECREF(pending_take(p));
        bglpy_raise_errno(r, "bgl_loop_call_soon");
        return -1;
    }
    core->queued++;
    return 0;
}

int bglpy_queue_threadsafe(bglpy_core *core, PyObject *handle)
{
    bglpy_pending *p = pending_new(core, handle);
    if (!p)
        return -1;
    core->queued++;
    core->ts_queued++;
    int r = bgl_loop_call_threadsafe(core->loop, threadsafe_run, p, pending_discard);
    if (r < 0) {
        core->queued--;
        core->ts_queued--;
        Py_XDECREF(pending_take(p));
        bglpy_raise_errno(r, "bgl_loop_call_threadsafe");
        return -1;
    }
    return 0;
}

/* The core whose loop is dispatching on this thread (set around
 * bgl_loop_run_once()).  Thread-local: each thread may run its own loop. */
_Thread_local bglpy_core *bglpy_current;

/* Run one queued Handle; `threadsafe` says which of the core's counters
 * accounted for it. */
static void run_pending(bglpy_pending *p, int threadsafe)
{
    bglpy_core *core = p->core;
    bglpy_enter(core);
    core->queued--;
    core->ts_queued -= threadsafe;
    PyObject *handle = pending_take(p);
    if (handle) {
        bglpy_run_handle(core, handle);
        Py_DECREF(handle);
    }
    bglpy_leave(core);
}

static void soon_run(void *userdata)
{
    run_pending(userdata, 0);
}

static void threadsafe_run(void *userdata)
{
    run_pending(userdata, 1);
}

void bglpy_run_handle(bglpy_core *core, PyObject *handle)
{
    if (core->exc_type) {
        /* An iteration is being cut short by a BaseException: keep the
         * Handle, in order, for the next one. */
        if (bglpy_queue_handle(core, handle) < 0)
            PyErr_WriteUnraisable(handle);
        return;
    }
    PyObject *c = PyObject_GetAttr(handle, bglpy_str_cancelled);
    if (!c) {
        bglpy_stash_exception(core);
        return;
    }
    int cancelled = PyObject_IsTrue(c);
    Py_DECREF(c);
    if (!cancelled)
        bglpy_call_handle(core, handle);
}

void bglpy_call_handle(bglpy_core *core, PyObject *handle)
{
    uint64_t t0 = bgl_monotonic_ns();
    PyObject *r;
    if (core->debug && core->owner)
        r = PyObject_CallMethodObjArgs(core->owner, bglpy_str_run_debug, handle, NULL);
    else
        r = PyObject_CallMethodObjArgs(handle, bglpy_str_run, NULL);
    uint64_t dt = bgl_monotonic_ns() - t0;
    core->callbacks++;
    if (dt > core->longest_ns)
        core->longest_ns = dt;
    if (!r) {
        /* Handle._run() reports ordinary exceptions to the loop's exception
         * handler itself; what escapes is SystemExit/KeyboardInterrupt. */
        bglpy_stash_exception(core);
        return;
    }
    Py_DECREF(r);
    if (dt >= core->slow_ns && !core->debug && core->owner) {
        /* Debug mode logs slow callbacks through asyncio's logger already. */
        PyObject *secs = PyFloat_FromDouble((double)dt / 1e9);
        PyObject *lr = secs ? PyObject_CallMethodObjArgs(core->owner, bglpy_str_slow, handle,
                                                         secs, NULL)
                            : NULL;
        Py_XDECREF(secs);
        if (lr)
            Py_DECREF(lr);
        else
            PyErr_WriteUnraisable(handle);
    }
}
