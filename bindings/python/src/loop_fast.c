/* loop_fast.c - bgloop.Loop's hottest methods, in C.
 *
 * kick() runs once per host frame, _run_once() once per iteration,
 * call_soon() once per task wake-up or callback (asyncio's C Futures and
 * Tasks call it by name) and call_later()/call_at() once per timer, so a
 * Python frame around them is most of their cost.  bgloop.Loop binds them
 * as instance attributes in place of its own methods: kick(), _run_once(),
 * create_future() and get_debug() always; call_soon(), call_later() and
 * call_at() while debug mode is off and the Loop hands out C Handles (debug
 * mode's checks and tracebacks stay asyncio's).  A subclass that overrides
 * one keeps its own.
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

static int check_bound(bglpy_core *self, const char *fn)
{
    if (self->owner)
        return 0;
    PyErr_Format(PyExc_RuntimeError, "%s(): core is not bound to a loop", fn);
    return -1;
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
    if (check_bound(self, "kick") < 0)
        return NULL;
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
 * set_debug()): asyncio's own method `name`, with its thread and callback
 * checks, through the Loop's class. */
static PyObject *call_class_method(bglpy_core *self, PyObject *name, PyObject *const *args,
                                   Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *meth = PyObject_GetAttr((PyObject *)Py_TYPE(self->owner), name);
    PyObject *tuple = meth ? PyTuple_New(nargs + 1) : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_Size(kwnames) : 0;
    PyObject *kw = tuple && nkw ? PyDict_New() : NULL;
    PyObject *r = NULL;
    if (tuple && (!nkw || kw)) {
        Py_INCREF(self->owner);
        PyTuple_SetItem(tuple, 0, self->owner);
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SetItem(tuple, i + 1, args[i]);
        }
        Py_ssize_t k = 0;
        while (k < nkw && PyDict_SetItem(kw, PyTuple_GetItem(kwnames, k), args[nargs + k]) == 0)
            k++;
        if (k == nkw)
            r = PyObject_Call(meth, tuple, kw);
    }
    Py_XDECREF(kw);
    Py_XDECREF(tuple);
    Py_XDECREF(meth);
    return r;
}

/* The arguments of asyncio's call_soon(callback, *args, context=None),
 * call_later(delay, callback, ...) and call_at(when, callback, ...): the
 * nlead leading parameters named in names (by position or keyword) into
 * vals, the context keyword into vals[nlead], and the other positionals
 * as the callback's arguments, a new tuple in *cargs.  0, or -1 with the
 * TypeError Python would raise. */
static int take_schedule_args(const char *fn, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames, PyObject *const *names, int nlead,
                              PyObject **vals, PyObject **cargs)
{
    for (int i = 0; i < nlead && i < nargs; i++)
        vals[i] = args[i];
    if (take_keywords(fn, args, nargs, kwnames, names, vals, nlead + 1) < 0)
        return -1;
    PyObject *missing[2];
    int nmissing = 0;
    for (int i = 0; i < nlead; i++)
        if (!vals[i])
            missing[nmissing++] = names[i];
    if (nmissing == 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing 1 required positional argument: '%U'", fn,
                     missing[0]);
        return -1;
    }
    if (nmissing == 2) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing 2 required positional arguments: '%U' and '%U'", fn,
                     missing[0], missing[1]);
        return -1;
    }
    Py_ssize_t n = nargs > nlead ? nargs - nlead : 0;
    *cargs = PyTuple_New(n);
    if (!*cargs)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(args[nlead + i]);
        PyTuple_SetItem(*cargs, i, args[nlead + i]);
    }
    return 0;
}

/* asyncio's _check_closed(), from the Loop's own flag (close() sets it
 * before the core is closed). */
static int check_closed(bglpy_core *self)
{
    PyObject *closed = PyObject_GetAttr(self->owner, self->st->str_closed);
    int is_closed = closed ? PyObject_IsTrue(closed) : -1;
    Py_XDECREF(closed);
    if (is_closed > 0) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return is_closed;
}

/* asyncio's call_soon() with debug mode off: the loop's _check_closed(),
 * then a queued Handle. */
PyObject *bglpy_loop_call_soon(bglpy_core *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    bglpy_state *st = self->st;
    PyObject *names[2] = {st->strcallback, st->strcontext};
    PyObject *vals[2] = {NULL, NULL};
    PyObject *cargs;
    if (check_bound(self, "call_soon") < 0)
        return NULL;
    if (self->debug)
        return call_class_method(self, st->strcall_soon, args, nargs, kwnames);
    if (take_schedule_args("call_soon", args, nargs, kwnames, names, 1, vals, &cargs) < 0)
        return NULL;
    PyObject *h = NULL;
    if (check_closed(self) == 0) {
        PyObject *soon[3] = {vals[0], cargs, vals[1] ? vals[1] : Py_None};
        h = bglpy_core_soon(self, soon, 3);
    }
    Py_DECREF(cargs);
    return h;
}

/* call_later() and call_at() with debug mode off: a TimerHandle armed for
 * `when`, or for time.monotonic() + `delay` (the Loop binds call_later only
 * while its time() is asyncio's, which is that clock). */
static PyObject *schedule_timer(bglpy_core *self, int later, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames)
{
    bglpy_state *st = self->st;
    const char *fn = later ? "call_later" : "call_at";
    PyObject *names[3] = {later ? st->strdelay : st->strwhen, st->strcallback, st->strcontext};
    PyObject *vals[3] = {NULL, NULL, NULL};
    PyObject *cargs;
    if (check_bound(self, fn) < 0)
        return NULL;
    if (self->debug)
        return call_class_method(self, later ? st->strcall_later : st->strcall_at, args, nargs,
                                 kwnames);
    if (take_schedule_args(fn, args, nargs, kwnames, names, 2, vals, &cargs) < 0)
        return NULL;
    PyObject *when = NULL, *h = NULL;
    if (vals[0] == Py_None)
        PyErr_SetString(PyExc_TypeError,
                        later ? "delay must not be None" : "when cannot be None");
    else if (check_closed(self) == 0) {
        if (!later) {
            Py_INCREF(vals[0]);
            when = vals[0];
        } else {
            if (!st->monotonic) {
                PyObject *mod = PyImport_ImportModule("time");
                st->monotonic = mod ? PyObject_GetAttrString(mod, "monotonic") : NULL;
                Py_XDECREF(mod);
            }
            PyObject *now = st->monotonic ? PyObject_CallObject(st->monotonic, NULL) : NULL;
            when = now ? PyNumber_Add(now, vals[0]) : NULL;
            Py_XDECREF(now);
        }
    }
    if (when) {
        PyObject *at[4] = {when, vals[1], cargs, vals[2] ? vals[2] : Py_None};
        h = bglpy_core_at(self, at, 4);
        Py_DECREF(when);
    }
    Py_DECREF(cargs);
    return h;
}

PyObject *bglpy_loop_call_later(bglpy_core *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    return schedule_timer(self, 1, args, nargs, kwnames);
}

PyObject *bglpy_loop_call_at(bglpy_core *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    return schedule_timer(self, 0, args, nargs, kwnames);
}

/* asyncio's _run_once(): blocking unless stop() was called. */
PyObject *bglpy_loop_run_once(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    if (check_bound(self, "_run_once") < 0)
        return NULL;
    PyObject *stopping = PyObject_GetAttr(self->owner, self->st->str_stopping);
    int stop = stopping ? PyObject_IsTrue(stopping) : -1;
    Py_XDECREF(stopping);
    return stop < 0 ? NULL : bglpy_core_run_once(self, !stop);
}

/* asyncio's create_future(): Future(loop=loop). */
PyObject *bglpy_loop_create_future(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    bglpy_state *st = self->st;
    if (check_bound(self, "create_future") < 0)
        return NULL;
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
