/* lag.c - bgloop._bgloop.LagProbe: libbgloop's lag probe (bgloop/lag.h) on
 * a Core's loop.
 *
 * LagProbe(core, period) arms the probe; stats() reads it in seconds;
 * close() (or losing the last reference) frees it, so the loop no longer
 * wakes up for it.
 */
#include "bglpy.h"
#include "core.h"

#include <errno.h>

#include "bgloop/lag.h"

typedef struct {
    PyObject_HEAD
    bgl_lag *lag;       /* NULL once closed */
    PyObject *core;     /* keeps the loop (and its timers) alive */
} bglpy_lag;

static PyObject *lag_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    bglpy_state *st = bglpy_type_state(type);
    PyObject *core, *period;
    static char *kwlist[] = {"core", "period", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:LagProbe", kwlist, &core, &period))
        return NULL;
    if (Py_TYPE(core) != st->Core) {
        bglpy_wrong_type(core, "LagProbe(): core", "a Core");
        return NULL;
    }
    int64_t period_ns;
    if (bglpy_seconds(period, "period", 0, &period_ns) < 0 ||
        bglpy_check_open((bglpy_core *)core) < 0)
        return NULL;
    if (period_ns <= 0) {
        PyErr_Format(PyExc_ValueError, "period must be > 0 seconds, got %R", period);
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_lag *self = (bglpy_lag *)alloc(type, 0);
    if (!self)
        return NULL;
    Py_INCREF(core);
    self->core = core;
    int r = bgl_lag_new(((bglpy_core *)core)->loop, (uint64_t)period_ns, &self->lag);
    if (r == -ERANGE) {
        Py_DECREF(self);
        PyErr_Format(PyExc_ValueError, "period %R is too long", period);
        return NULL;
    }
    if (r < 0) {
        Py_DECREF(self);
        return bglpy_raise_errno(r, "LagProbe()");
    }
    return (PyObject *)self;
}

static void lag_free_c(bglpy_lag *self)
{
    if (self->lag) {
        bgl_lag_free(self->lag);
        self->lag = NULL;
    }
}

static void lag_dealloc(bglpy_lag *self)
{
    lag_free_c(self);   /* before the core: its loop may go with it */
    Py_CLEAR(self->core);
    PyTypeObject *tp = Py_TYPE(self);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(self);
    Py_DECREF(tp);
}

static PyObject *lag_close(bglpy_lag *self, PyObject *unused)
{
    (void)unused;
    lag_free_c(self);
    Py_RETURN_NONE;
}

static PyObject *lag_stats(bglpy_lag *self, PyObject *unused)
{
    (void)unused;
    if (!self->lag) {
        PyErr_SetString(PyExc_RuntimeError, "the lag probe is closed");
        return NULL;
    }
    bgl_lag_stats s;
    bgl_lag_get_stats(self->lag, &s);
    return Py_BuildValue("{sdsKsdsdsdsd}", "period", (double)s.period_ns / 1e9, "samples",
                         (unsigned long long)s.samples, "last", (double)s.last_ns / 1e9, "max",
                         (double)s.max_ns / 1e9, "overdue", (double)s.overdue_ns / 1e9,
                         "since_tick", (double)s.since_tick_ns / 1e9);
}

static PyObject *lag_get_closed(bglpy_lag *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->lag == NULL);
}

static PyMethodDef lag_methods[] = {
    {"close", (PyCFunction)lag_close, METH_NOARGS,
     "close(): disarm and free the probe; the loop no longer wakes up for it."},
    {"stats", (PyCFunction)lag_stats, METH_NOARGS,
     "stats() -> dict (seconds): period, samples, last and max (how late its runs were), "
     "overdue (how far past its next run the loop is now), since_tick (since its last run)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef lag_getset[] = {
    {"closed", (getter)lag_get_closed, NULL, "True after close().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot lag_slots[] = {
    {Py_tp_new, lag_new},
    {Py_tp_dealloc, lag_dealloc},
    {Py_tp_methods, lag_methods},
    {Py_tp_getset, lag_getset},
    {Py_tp_doc, "LagProbe(core, period): how late a timer firing every `period` seconds "
                "runs on the core's loop."},
    {0, NULL},
};

static PyType_Spec lag_spec = {
    .name = "bgloop._bgloop.LagProbe",
    .basicsize = sizeof(bglpy_lag),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = lag_slots,
};

int bglpy_lag_init(PyObject *module, bglpy_state *st)
{
    return bglpy_add_type(module, &lag_spec, &st->LagProbe, 1);
}
