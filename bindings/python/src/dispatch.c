/* dispatch.c - running asyncio Handles from the C loop's callbacks. */
#include "core.h"
#include "handle.h"

#include <limits.h>
#include <time.h>

/* The code of the binding's own bgl_loop_stop() requests: a service
 * manager's exit code is never negative. */
#define STOP_MINE INT_MIN

void bglpy_request_stop(bglpy_core *core)
{
    if (core->stop_mine || !core->loop)
        return;
    int code = 0;
    if (bgl_loop_take_stop(core->loop, &code) == 1) {
        core->foreign_pending = 1;
        core->foreign_code = code;
    }
    bgl_loop_stop(core->loop, STOP_MINE);
    core->stop_mine = 1;
}

void bglpy_settle_stop(bglpy_core *core)
{
    int code = 0;
    if (core->stop_mine && core->loop && bgl_loop_take_stop(core->loop, &code) == 1 &&
        code != STOP_MINE) {
        /* Another stop came after the binding's: it is the one that stands. */
        core->foreign_pending = 1;
        core->foreign_code = code;
    }
    core->stop_mine = 0;
    if (core->foreign_pending && core->loop)
        bgl_loop_stop(core->loop, core->foreign_code);
    core->foreign_pending = 0;
}

void bglpy_stash_exception(bglpy_core *core)
{
    if (core->exc_type) {
        /* Only the first one is re-raised; callbacks after it are re-queued,
         * so a second can only come from our own logging hooks. */
        PyErr_WriteUnraisable(core->owner ? core->owner : Py_None);
        return;
    }
    PyErr_Fetch(&core->exc_type, &core->exc_value, &core->exc_tb);
    bglpy_request_stop(core);
}

/* A queued Handle.  The core lists them so that the garbage collector sees
 * the references the C queue holds: an unclosed loop with callbacks still
 * queued is then collected (with asyncio's ResourceWarning) like a stock
 * one.  Nodes are recycled through the module state. */
typedef struct bglpy_pending {
    bglpy_core *core;
    PyObject *handle; /* NULL once the collector cleared it */
    bglpy_link link;  /* core->pending; st->pending_free when recycled */
} bglpy_pending;

#define PENDING_FREE_MAX 1024

static bglpy_pending *pending_new(bglpy_core *core, PyObject *handle)
{
    bglpy_state *st = core->st;
    bglpy_pending *p;
    bglpy_link *l = bglpy_list_first(&st->pending_free);
    if (l) {
        bglpy_list_unlink(l);
        st->pending_nfree--;
        p = bglpy_entry(l, bglpy_pending, link);
    } else if (!(p = PyMem_Malloc(sizeof *p))) {
        PyErr_NoMemory();
        return NULL;
    }
    p->core = core;
    p->link.prev = p->link.next = NULL;
    Py_INCREF(handle);
    p->handle = handle;
    bglpy_list_push(&core->pending, &p->link);
    return p;
}

/* Unlink and recycle; returns the Handle reference (or NULL if cleared). */
static PyObject *pending_take(bglpy_pending *p)
{
    bglpy_state *st = p->core->st;
    PyObject *handle = p->handle;
    bglpy_list_unlink(&p->link);
    if (st->pending_nfree < PENDING_FREE_MAX) {
        bglpy_list_push(&st->pending_free, &p->link);
        st->pending_nfree++;
    } else {
        PyMem_Free(p);
    }
    return handle;
}

void bglpy_pending_free_all(bglpy_state *st)
{
    bglpy_link *l;
    while ((l = bglpy_list_first(&st->pending_free))) {
        bglpy_list_unlink(l);
        PyMem_Free(bglpy_entry(l, bglpy_pending, link));
    }
    st->pending_nfree = 0;
}

int bglpy_pending_traverse(bglpy_core *core, visitproc visit, void *arg)
{
    bglpy_link *l;
    bglpy_list_each(l, &core->pending)
        Py_VISIT(bglpy_entry(l, bglpy_pending, link)->handle);
    return 0;
}

void bglpy_pending_clear(bglpy_core *core)
{
    bglpy_link *l;
    bglpy_list_each(l, &core->pending)
        Py_CLEAR(bglpy_entry(l, bglpy_pending, link)->handle);
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

/* Back-pressure: while the loop runs and more calls wait than it collects
 * in one iteration (BGL_THREADSAFE_BATCH), a call from another thread first
 * lets go of the GIL for a moment, so that the loop thread gets to run them
 * instead of waiting behind a flood of new ones. */
static void yield_to_loop(bglpy_core *core)
{
    /* A busy loop runs on its own thread (the threading rule): that thread
     * is the one to catch up, never to wait. */
    if (!core->busy || core->ts_queued <= BGL_THREADSAFE_BATCH ||
        PyThread_get_thread_ident() == core->thread)
        return;
    struct timespec pause = {0, 50000};
    Py_BEGIN_ALLOW_THREADS
    nanosleep(&pause, NULL);
    Py_END_ALLOW_THREADS
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

int bglpy_call_threadsafe(bglpy_core *core, PyObject *handle)
{
    yield_to_loop(core);
    /* Another thread may have closed the loop while the GIL was released. */
    if (bglpy_check_open(core) < 0)
        return -1;
    return bglpy_queue_threadsafe(core, handle);
}

/* Run one queued Handle; `threadsafe` says which of the core's counters
 * accounted for it. */
static void run_pending(bglpy_pending *p, int threadsafe)
{
    bglpy_core *core = p->core;
    core->queued--;
    core->ts_queued -= threadsafe;
    PyObject *handle = pending_take(p);
    if (handle) {
        bglpy_run_handle(core, handle);
        Py_DECREF(handle);
    }
}

static void soon_run(void *userdata)
{
    run_pending(userdata, 0);
}

static void threadsafe_run(void *userdata)
{
    run_pending(userdata, 1);
}

/* Run a Handle that is not cancelled; `c_handle`: it is one of bgloop's C
 * handles (bglpy_is_handle), run without attribute look-ups. */
static void call_handle(bglpy_core *core, PyObject *handle, int c_handle);

void bglpy_run_handle(bglpy_core *core, PyObject *handle)
{
    if (core->exc_type) {
        /* An iteration is being cut short by a BaseException: keep the
         * Handle, in order, for the next one. */
        if (bglpy_queue_handle(core, handle) < 0)
            PyErr_WriteUnraisable(handle);
        return;
    }
    if (bglpy_is_handle(core->st, handle)) {
        if (!((bglpy_handle *)handle)->cancelled)
            call_handle(core, handle, 1);
        return;
    }
    PyObject *c = PyObject_GetAttr(handle, core->st->str_cancelled);
    if (!c) {
        bglpy_stash_exception(core);
        return;
    }
    int cancelled = PyObject_IsTrue(c);
    Py_DECREF(c);
    if (cancelled < 0)
        bglpy_stash_exception(core);
    else if (!cancelled)
        call_handle(core, handle, 0);
}

void bglpy_call_handle(bglpy_core *core, PyObject *handle)
{
    call_handle(core, handle, bglpy_is_handle(core->st, handle));
}

static void call_handle(bglpy_core *core, PyObject *handle, int c_handle)
{
    bglpy_state *st = core->st;
    uint64_t t0 = bgl_monotonic_ns();
    PyObject *r;
    if (core->debug && core->owner)
        r = PyObject_CallMethodObjArgs(core->owner, st->str_bgl_run_debug, handle, NULL);
    else if (c_handle)
        r = bglpy_handle_run((bglpy_handle *)handle) < 0 ? NULL : (Py_INCREF(Py_None), Py_None);
    else
        r = PyObject_CallMethodObjArgs(handle, st->str_run, NULL);
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
        /* bgloop's own report (BGLOOP_SLOW_CALLBACK; off by default): in
         * debug mode asyncio's report, through its logger, is the only one. */
        PyObject *secs = PyFloat_FromDouble((double)dt / 1e9);
        PyObject *lr = secs ? PyObject_CallMethodObjArgs(core->owner, st->str_bgl_slow, handle,
                                                         secs, NULL)
                            : NULL;
        Py_XDECREF(secs);
        if (lr)
            Py_DECREF(lr);
        else
            PyErr_WriteUnraisable(handle);
    }
}
