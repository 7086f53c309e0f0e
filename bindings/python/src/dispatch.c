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

static void soon_run(void *userdata);

static void soon_discard(void *userdata)
{
    /* The loop is being freed (with the GIL held) and never ran it. */
    Py_DECREF((PyObject *)userdata);
}

int bglpy_queue_handle(bglpy_core *core, PyObject *handle)
{
    /* asyncio keeps one FIFO for call_soon and call_soon_threadsafe, while
     * libbgloop collects thread-safe calls only when it polls.  While some
     * are outstanding, later call_soon()s take the same queue so that they
     * run after them, as in asyncio. */
    if (core->ts_queued)
        return bglpy_queue_threadsafe(core, handle);
    Py_INCREF(handle);
    int r = bgl_loop_call_soon_full(core->loop, soon_run, handle, soon_discard);
    if (r < 0) {
        Py_DECREF(handle);
        bglpy_raise_errno(r, "bgl_loop_call_soon");
        return -1;
    }
    core->queued++;
    return 0;
}

static void threadsafe_run(void *userdata);

static void threadsafe_discard(void *userdata)
{
    Py_DECREF((PyObject *)userdata);
}

int bglpy_queue_threadsafe(bglpy_core *core, PyObject *handle)
{
    Py_INCREF(handle);
    core->queued++;
    core->ts_queued++;
    int r = bgl_loop_call_threadsafe(core->loop, threadsafe_run, handle, threadsafe_discard);
    if (r < 0) {
        core->queued--;
        core->ts_queued--;
        Py_DECREF(handle);
        bglpy_raise_errno(r, "bgl_loop_call_threadsafe");
        return -1;
    }
    return 0;
}

/* The core whose loop is dispatching on this thread.  Set around
 * bgl_loop_run_once() so deferred calls need no per-call allocation to know
 * their core.  Thread-local: each thread may run its own loop. */
_Thread_local bglpy_core *bglpy_current;

static void soon_run(void *userdata)
{
    PyObject *handle = userdata;
    bglpy_core *core = bglpy_current;
    bglpy_enter(core);
    core->queued--;
    bglpy_run_handle(core, handle);
    Py_DECREF(handle);
    bglpy_leave(core);
}

static void threadsafe_run(void *userdata)
{
    PyObject *handle = userdata;
    bglpy_core *core = bglpy_current;
    bglpy_enter(core);
    core->queued--;
    core->ts_queued--;
    bglpy_run_handle(core, handle);
    Py_DECREF(handle);
    bglpy_leave(core);
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
