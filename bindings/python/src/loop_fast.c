/* loop_fast.c - bgloop.Loop's kick() and call_soon(), in C.
 *
 * These two run once per host frame (kick) and once per task wake-up or
 * callback (call_soon, which asyncio's C Futures and Tasks call by name), so
 * a Python frame around them is most of their cost.  bgloop.Loop binds
 * them as instance attributes in place of its own methods: kick() always
 * (Loop.kick is a one-line call of loop_kick), call_soon() while debug mode
 * is off and the Loop hands out C Handles (debug mode's checks and
 * tracebacks stay asyncio's).  A subclass that overrides either keeps its
 * own.
 */
#include "core.h"
#include "handle.h"

/* Keyword arguments of a METH_FASTCALL | METH_KEYWORDS call, by interned
 * name: vals[i] gets the value of names[i].  0, or -1 with TypeError for a
 * name not in names or given twice. */
static int take_keywords(const char *fn, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames, PyObject *const *names, PyObject **vals, int n)
{
    Py_ssize_t nkw = kwnames ? PyTuple_Size(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GetItem(kwnames, k);
        int i = 0;
        while (i < n && PyUnicode_Compare(key, names[i]) != 0)
            i++;
        if (i == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fn,
                         key);
            return -1;
        }
        if (vals[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%U'", fn, key);
            return -1;
        }
        vals[i] = args[nargs + k];
    }
    return 0;
}

PyObject *bglpy_loop_kick(bglpy_core *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
    bglpy_state *st = self->st;
    PyObject *vals[2] = {NULL, NULL};
    PyObject *names[2] = {st->strtimeout, st->strbudget};
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "kick() takes at most 2 arguments (%zd given)", nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        vals[i] = args[i];
    if (take_keywords("kick", args, nargs, kwnames, names, vals, 2) < 0)
        return NULL;
    int64_t timeout_ns = 0, budget_ns = -1;
    if ((vals[0] && bglpy_seconds(vals[0], "timeout", 1, &timeout_ns) < 0) ||
        (vals[1] && bglpy_seconds(vals[1], "budget", 1, &budget_ns) < 0))
        return NULL;
    if (!self->owner) {
        PyErr_SetString(PyExc_RuntimeError, "kick(): core is not bound to a loop");
        return NULL;
    }
    /* asyncio's own drivers (run_forever) mark the loop as running. */
    PyObject *tid = PyObject_GetAttr(self->owner, st->str_thread_id);
    if (!tid)
        return NULL;
    Py_DECREF(tid);
    if (tid != Py_None) {
        PyErr_SetString(PyExc_RuntimeError,
                        "kick(): this loop is already running (kick() was called from one of "
                        "its callbacks or while run_forever()/run_until_complete() drives it)");
        return NULL;
    }
    if (bglpy_core_kick(self, timeout_ns, budget_ns) < 0)
        return NULL;
    uint64_t ran = bglpy_core_dispatched(self);
    if (self->left < 0 || ran != self->left_at || self->queued) {
        PyObject *r = PyObject_CallMethodObjArgs(self->owner, st->str_nothing_left, NULL);
        int left = r ? PyObject_IsTrue(r) : -1;
        Py_XDECREF(r);
        if (left < 0)
            return NULL;
        self->left = left;
        self->left_at = ran;
    }
    return PyBool_FromLong(self->left);
}

PyObject *bglpy_loop_forget_left(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    self->left = -1;
    Py_RETURN_NONE;
}

/* Debug mode is on (for a caller that kept the bound method from before
 * set_debug()): asyncio's own call_soon(), with its thread and callback
 * checks, through the Loop's class. */
static PyObject *call_soon_debug(bglpy_core *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *context)
{
    PyObject *meth = PyObject_GetAttr((PyObject *)Py_TYPE(self->owner), self->st->strcall_soon);
    PyObject *tuple = meth ? PyTuple_New(nargs + 1) : NULL;
    PyObject *kw = tuple && context ? PyDict_New() : NULL;
    PyObject *r = NULL;
    if (tuple && (!context || kw)) {
        Py_INCREF(self->owner);
        PyTuple_SetItem(tuple, 0, self->owner);
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SetItem(tuple, i + 1, args[i]);
        }
        if (!kw || PyDict_SetItem(kw, self->st->strcontext, context) == 0)
            r = PyObject_Call(meth, tuple, kw);
    }
    Py_XDECREF(kw);
    Py_XDECREF(tuple);
    Py_XDECREF(meth);
    return r;
}

/* asyncio's call_soon() with debug mode off: the loop's _check_closed(),
 * then a queued Handle. */
PyObject *bglpy_loop_call_soon(bglpy_core *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    bglpy_state *st = self->st;
    PyObject *context = NULL;
    PyObject *names[1] = {st->strcontext};
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "call_soon() missing 1 required positional argument: 'callback'");
        return NULL;
    }
    if (take_keywords("call_soon", args, nargs, kwnames, names, &context, 1) < 0)
        return NULL;
    if (!self->owner) {
        PyErr_SetString(PyExc_RuntimeError, "call_soon(): core is not bound to a loop");
        return NULL;
    }
    if (self->debug)
        return call_soon_debug(self, args, nargs, context);
    PyObject *closed = PyObject_GetAttr(self->owner, st->str_closed);
    int is_closed = closed ? PyObject_IsTrue(closed) : -1;
    Py_XDECREF(closed);
    if (is_closed < 0)
        return NULL;
    if (is_closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    PyObject *cargs = PyTuple_New(nargs - 1);
    if (!cargs)
        return NULL;
    for (Py_ssize_t i = 1; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SetItem(cargs, i - 1, args[i]);
    }
    PyObject *soon[3] = {args[0], cargs, context ? context : Py_None};
    PyObject *h = bglpy_core_soon(self, soon, 3);
    Py_DECREF(cargs);
    return h;
}

/* asyncio's create_future(): Future(loop=loop). */
PyObject *bglpy_loop_create_future(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    bglpy_state *st = self->st;
    if (!self->owner) {
        PyErr_SetString(PyExc_RuntimeError, "create_future(): core is not bound to a loop");
        return NULL;
    }
    if (!st->future_type) {
        PyObject *mod = PyImport_ImportModule("asyncio.futures");
        st->future_type = mod ? PyObject_GetAttrString(mod, "Future") : NULL;
        Py_XDECREF(mod);
        if (!st->future_type)
            return NULL;
    }
    PyObject *args = PyTuple_New(0);
    PyObject *kw = args ? PyDict_New() : NULL;
    PyObject *fut = NULL;
    if (kw && PyDict_SetItem(kw, st->strloop, self->owner) == 0)
        fut = PyObject_Call(st->future_type, args, kw);
    Py_XDECREF(kw);
    Py_XDECREF(args);
    return fut;
}

/* asyncio's get_debug(): the debug flag set_debug() gave the core. */
PyObject *bglpy_loop_get_debug(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->debug);
}
