/* timer.c - bgloop._bgloop.Timer: one bgl_timer per asyncio TimerHandle.
 *
 * Core.call_at(when, handle) arms a one-shot timer at `when` (seconds on
 * time.monotonic(), which is CLOCK_MONOTONIC like libbgloop's clock) and
 * returns the Timer; TimerHandle.cancel() reaches Timer.cancel() through
 * Loop._timer_handle_cancelled(), which really disarms the C timer.  While
 * armed, the core owns one reference to the Timer and the Timer owns the
 * TimerHandle; both are dropped when it fires or is cancelled.
 */
#include "core.h"

#include <math.h>

/* Disarm: free the C timer, unlink, drop the handle and the core's
 * reference (which may free the Timer: callers must not touch it after). */
static void timer_disarm(bglpy_timer *t)
{
    if (!t->timer)
        return;
    bglpy_core *core = t->core;
    bgl_timer_free(t->timer);
    t->timer = NULL;
    bglpy_list_unlink(&t->link);
    core->armed--;
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
    t->handle = NULL;
    timer_disarm(t);
    if (handle) {
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
     * core, so it is only collected after the core released it. */
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
