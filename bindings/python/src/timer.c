/* timer.c - bgloop._bgloop.Timer: one bgl_timer per asyncio TimerHandle.
 *
 * Core.call_at(when, handle) arms a one-shot timer at `when` (seconds on
 * time.monotonic(), which is CLOCK_MONOTONIC like libbgloop's clock) and
 * returns the Timer.  The loop hands out asyncio's own TimerHandle, which
 * cannot carry the Timer, so the core indexes its armed timers by handle
 * (identity: TimerHandle's __eq__ and __hash__ compare values);
 * TimerHandle.cancel() reaches Core.cancel_timer(handle) through
 * Loop._timer_handle_cancelled(), which really disarms the C timer.  While
 * armed, the core owns one reference to the Timer and the Timer owns the
 * TimerHandle; both are dropped when it fires or is cancelled.
 */
#include "core.h"
#include "handle.h"

#include <math.h>

#define INDEX_MIN 64
/* Shrinking stops here (32 KiB of buckets), so that a burst of timers armed
 * and fired again and again does not rehash every time. */
#define INDEX_KEEP 4096

static size_t index_slot(size_t size, PyObject *handle)
{
    /* Object addresses are aligned: mix the bits (murmur3's finalizer). */
    uint64_t x = (uint64_t)(uintptr_t)handle;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (size - 1);
}

/* Rehash into `size` buckets.  0, or -1 (out of memory; table unchanged). */
static int index_resize(bglpy_core *core, size_t size)
{
    bglpy_timer **b = PyMem_Calloc(size, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < core->by_handle_size; i++) {
        bglpy_timer *t = core->by_handle[i], *next;
        for (; t; t = next) {
            next = t->hnext;
            size_t j = index_slot(size, t->handle);
            t->hnext = b[j];
            b[j] = t;
        }
    }
    PyMem_Free(core->by_handle);
    core->by_handle = b;
    core->by_handle_size = size;
    return 0;
}

static bglpy_timer **index_find(bglpy_core *core, PyObject *handle)
{
    if (!core->by_handle_size)
        return NULL;
    bglpy_timer **pp = &core->by_handle[index_slot(core->by_handle_size, handle)];
    for (; *pp; pp = &(*pp)->hnext)
        if ((*pp)->handle == handle)
            return pp;
    return NULL;
}

void bglpy_timers_free_index(bglpy_core *core)
{
    PyMem_Free(core->by_handle);
    core->by_handle = NULL;
    core->by_handle_size = 0;
}

/* Disarm: free the C timer, unlink and unindex, drop the handle and the
 * core's reference (which may free the Timer: callers must not touch it
 * after). */
static void timer_disarm(bglpy_timer *t)
{
    if (!t->timer)
        return;
    bglpy_core *core = t->core;
    bgl_timer_free(t->timer);
    t->timer = NULL;
    bglpy_list_unlink(&t->link);
    bglpy_timer **pp = index_find(core, t->handle);
    if (pp)
        *pp = t->hnext;
    t->hnext = NULL;
    core->armed--;
    /* Shrink after a burst (a failed shrink just keeps the larger table). */
    if (core->by_handle_size > INDEX_KEEP && core->armed < core->by_handle_size / 8)
        (void)index_resize(core, core->by_handle_size / 2);
    Py_CLEAR(t->handle);
    Py_DECREF(t);
}

static void timer_fire(bgl_timer *timer, void *userdata)
{
    (void)timer;
    bglpy_timer *t = userdata;
    bglpy_core *core = t->core;
    uint64_t now = 0;
    bgl_loop_now(core->loop, &now);
    uint64_t lag = now > t->deadline_ns ? now - t->deadline_ns : 0;
    core->lag_last_ns = lag;
    if (lag > core->lag_max_ns)
        core->lag_max_ns = lag;
    /* Keep the core and handle alive past the disarm. */
    Py_INCREF(core);
    PyObject *handle = t->handle;
    Py_XINCREF(handle);
    timer_disarm(t);
    if (handle) {
        bglpy_handle_fired(core->st, handle);
        bglpy_run_handle(core, handle);
        Py_DECREF(handle);
    }
    Py_DECREF(core);
}

PyObject *bglpy_core_call_at(bglpy_core *core, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "call_at() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    double when = PyFloat_AsDouble(args[0]);
    PyObject *handle = args[1];
    if (when == -1.0 && PyErr_Occurred() && PyLong_Check(args[0]) &&
        PyErr_ExceptionMatches(PyExc_OverflowError)) {
        /* An int beyond a double: long past (run now) or never. */
        PyErr_Clear();
        PyObject *zero = PyLong_FromLong(0);
        int neg = zero ? PyObject_RichCompareBool(args[0], zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (neg < 0)
            return NULL;
        when = neg ? -HUGE_VAL : HUGE_VAL;
    }
    if ((when == -1.0 && PyErr_Occurred()) || bglpy_check_open(core) < 0)
        return NULL;
    if (isnan(when)) {
        PyErr_SetString(PyExc_ValueError, "call_at(): when is NaN");
        return NULL;
    }
    uint64_t deadline;
    if (when <= 0)
        deadline = 0;
    else if (when >= 1.8e10) /* beyond ~570 years of uptime: never */
        deadline = UINT64_MAX;
    else
        deadline = (uint64_t)ceil(when * 1e9);
    if (index_find(core, handle)) {
        PyErr_SetString(PyExc_RuntimeError, "call_at(): this handle is already scheduled");
        return NULL;
    }
    if (core->armed >= core->by_handle_size &&
        index_resize(core, core->by_handle_size ? core->by_handle_size * 2 : INDEX_MIN) < 0)
        return PyErr_NoMemory();

    PyTypeObject *type = core->st->Timer;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_timer *t = (bglpy_timer *)alloc(type, 0);
    if (!t)
        return NULL;
    Py_INCREF(core);
    t->core = core;
    int r = bgl_timer_new(core->loop, timer_fire, t, &t->timer);
    if (r < 0) {
        t->timer = NULL;
        Py_DECREF(t);
        return bglpy_raise_errno(r, "bgl_timer_new");
    }
    r = bgl_timer_start_at(t->timer, deadline, 0);
    if (r < 0) {
        bgl_timer_free(t->timer);
        t->timer = NULL;
        Py_DECREF(t);
        return bglpy_raise_errno(r, "bgl_timer_start_at");
    }
    t->deadline_ns = deadline;
    Py_INCREF(handle);
    t->handle = handle;
    size_t slot = index_slot(core->by_handle_size, handle);
    t->hnext = core->by_handle[slot];
    core->by_handle[slot] = t;
    bglpy_list_push(&core->timers, &t->link);
    core->armed++;
    Py_INCREF(t); /* the core's reference while armed */
    return (PyObject *)t;
}

void bglpy_timers_release_all(bglpy_core *core)
{
    bglpy_link *l;
    while ((l = bglpy_list_first(&core->timers)))
        timer_disarm(bglpy_entry(l, bglpy_timer, link));
}

int bglpy_timers_traverse(bglpy_core *core, visitproc visit, void *arg)
{
    bglpy_link *l;
    bglpy_list_each(l, &core->timers)
        Py_VISIT((PyObject *)bglpy_entry(l, bglpy_timer, link));
    return 0;
}

PyObject *bglpy_core_cancel_timer(bglpy_core *core, PyObject *handle)
{
    bglpy_timer **pp = index_find(core, handle);
    if (!pp)
        Py_RETURN_FALSE;
    timer_disarm(*pp);
    Py_RETURN_TRUE;
}

static PyObject *timer_cancel(bglpy_timer *self, PyObject *unused)
{
    (void)unused;
    timer_disarm(self);
    Py_RETURN_NONE;
}

static PyObject *timer_active(bglpy_timer *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->timer != NULL);
}

static PyObject *timer_when(bglpy_timer *self, void *c)
{
    (void)c;
    return PyFloat_FromDouble((double)self->deadline_ns / 1e9);
}

static PyMethodDef timer_methods[] = {
    {"cancel", (PyCFunction)timer_cancel, METH_NOARGS, "Disarm the C timer (idempotent)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef timer_getset[] = {
    {"active", (getter)timer_active, NULL, "armed and not yet fired", NULL},
    {"when", (getter)timer_when, NULL, "deadline in seconds (monotonic clock)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static int timer_traverse(bglpy_timer *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->handle);
    Py_VISIT((PyObject *)self->core);
    return 0;
}

static int timer_clear(bglpy_timer *self)
{
    /* Breaks TimerHandle <-> Timer cycles; an armed timer is owned by its
     * core, so it is only collected after the core released it (disarm
     * anyway: the index must never keep a handle it no longer owns). */
    timer_disarm(self);
    Py_CLEAR(self->handle);
    return 0;
}

static void timer_dealloc(bglpy_timer *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->timer) {
        /* Not reachable while armed (the core holds a reference), but be
         * safe rather than leave a dangling userdata in the C loop. */
        bgl_timer_free(self->timer);
        self->timer = NULL;
    }
    Py_CLEAR(self->handle);
    Py_CLEAR(self->core);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyObject *timer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    (void)args;
    (void)kwds;
    PyErr_SetString(PyExc_TypeError, "Timer objects are created by Core.call_at()");
    return NULL;
}

static PyType_Slot timer_slots[] = {
    {Py_tp_new, timer_new},
    {Py_tp_dealloc, timer_dealloc},
    {Py_tp_traverse, timer_traverse},
    {Py_tp_clear, timer_clear},
    {Py_tp_methods, timer_methods},
    {Py_tp_getset, timer_getset},
    {0, NULL},
};

static PyType_Spec timer_spec = {
    "bgloop._bgloop.Timer",
    sizeof(bglpy_timer),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    timer_slots,
};

int bglpy_timer_init(PyObject *module, bglpy_state *st)
{
    return bglpy_add_type(module, &timer_spec, &st->Timer, 1);
}
