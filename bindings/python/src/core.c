/* core.c - bgloop._bgloop.Core: one bgl_loop driven by a bgloop.Loop.
 *
 * Python API (private; bgloop.Loop is the public face):
 *   Core()                          a new C loop
 *   bind(owner)                     the Loop whose hooks the core calls
 *   call_soon(handle)               queue an asyncio Handle
 *   call_threadsafe(handle)         same, from any thread, waking the loop
 *   call_at(when, handle) -> Timer  arm a timer for a TimerHandle (timer.c)
 *   watch(fd, events, data)         an fd watcher (watcher.c)
 *   run_once(block)                 one iteration (asyncio's _run_once)
 *   kick(timeout, budget) -> int    bounded step, see bgloop.Loop.kick
 *   stop(), close(), clear_timers(), stats()
 */
#include "core.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <time.h>

PyTypeObject *bglpy_CoreType;
PyObject *bglpy_str_run, *bglpy_str_cancelled, *bglpy_str_run_debug, *bglpy_str_slow,
    *bglpy_str_remove_reader, *bglpy_str_remove_writer;
static PyObject *str_kick_enter, *str_kick_exit;

static int check_open(bglpy_core *self)
{
    if (!self->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

static int check_idle(bglpy_core *self, const char *what)
{
    if (check_open(self) < 0)
        return -1;
    if (self->busy) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s: the loop is already running (called from one of its callbacks, "
                     "or from another thread while it runs)",
                     what);
        return -1;
    }
    return 0;
}

/* Seconds (int or float, or None when allowed) to nanoseconds; None and
 * +inf become -1 ("no limit").  Errors name the argument. */
static int seconds_arg(PyObject *o, const char *name, int64_t *ns)
{
    if (o == Py_None) {
        *ns = -1;
        return 0;
    }
    if (PyBool_Check(o) || PyUnicode_Check(o) || PyBytes_Check(o) ||
        !(PyLong_Check(o) || PyFloat_Check(o) || PyObject_HasAttrString(o, "__float__"))) {
        /* tp_name is off limits under the limited API: ask the type. */
        PyObject *tname = PyObject_GetAttrString((PyObject *)Py_TYPE(o), "__name__");
        if (tname) {
            PyErr_Format(PyExc_TypeError, "%s must be a number of seconds or None, not %U",
                         name, tname);
            Py_DECREF(tname);
        }
        return -1;
    }
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(d)) {
        PyErr_Format(PyExc_ValueError, "%s must not be NaN", name);
        return -1;
    }
    if (d < 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative (got %R)", name, o);
        return -1;
    }
    if (d >= 9e9) /* ~285 years: as good as forever */
        *ns = -1;
    else
        *ns = (int64_t)(d * 1e9);
    return 0;
}

/* ---- waiting ------------------------------------------------------------- */

/* Anything for an iteration to do right now?  1 yes, 0 no (epoll backend:
 * queued calls, a due timer, or the loop's descriptor readable). */
static int has_ready(bglpy_core *self)
{
    int64_t t;
    if (bgl_loop_get_timeout(self->loop, &t) == 0 && t == 0)
        return 1;
    struct pollfd p = {.fd = self->fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* Block (GIL released) until the loop has something to do or timeout_ns
 * (negative: no limit) passes.  Returns 0, or -1 with an exception set (a
 * signal handler raised, e.g. KeyboardInterrupt). */
static int wait_ready(bglpy_core *self, int64_t timeout_ns)
{
    int64_t t;
    if (bgl_loop_get_timeout(self->loop, &t) < 0 || t == 0)
        return 0;
    if (t > 0 && (timeout_ns < 0 || t < timeout_ns))
        timeout_ns = t;
    struct pollfd p = {.fd = self->fd, .events = POLLIN};
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    int r, err;
    self->waits++;
    Py_BEGIN_ALLOW_THREADS
    r = ppoll(&p, 1, tsp, NULL);
    err = errno;
    Py_END_ALLOW_THREADS
    if (r < 0) {
        if (err == EINTR)
            /* Give Python signal handlers their turn; the wakeup fd (if
             * asyncio installed one) makes the self-pipe readable too. */
            return PyErr_CheckSignals();
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* One iteration; with the poll backend it may block for timeout_ns with the
 * GIL released, else it never blocks (wait_ready() did that). */
static int iterate(bglpy_core *self, int64_t timeout_ns)
{
    if (self->fd >= 0 || timeout_ns == 0)
        return bgl_loop_run_once(self->loop, 0);
    self->waits++;
    self->released = PyEval_SaveThread();
    int n = bgl_loop_run_once(self->loop, timeout_ns);
    PyEval_RestoreThread(self->released);
    self->released = NULL;
    return n;
}

/* Re-raise what a callback let escape, or turn a libbgloop error into
 * OSError.  Returns 0 when there was nothing to raise. */
static int finish(bglpy_core *self, int n, const char *what)
{
    if (self->exc_type) {
        PyErr_Restore(self->exc_type, self->exc_value, self->exc_tb);
        self->exc_type = self->exc_value = self->exc_tb = NULL;
        return -1;
    }
    if (n < 0) {
        bglpy_raise_errno(n, what);
        return -1;
    }
    return 0;
}

/* ---- methods ------------------------------------------------------------- */

static PyObject *core_bind(bglpy_core *self, PyObject *owner)
{
    PyObject *old = self->owner;
    Py_INCREF(owner);
    self->owner = owner;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyObject *core_call_soon(bglpy_core *self, PyObject *handle)
{
    if (check_open(self) < 0 || bglpy_queue_handle(self, handle) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_call_threadsafe(bglpy_core *self, PyObject *handle)
{
    /* Callers hold the GIL, and close() needs it too, so the loop cannot be
     * freed under us. */
    if (check_open(self) < 0 || bglpy_queue_threadsafe(self, handle) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_run_once(bglpy_core *self, PyObject *arg)
{
    int block = PyObject_IsTrue(arg);
    if (block < 0 || check_idle(self, "run_once()") < 0)
        return NULL;
    bglpy_core *prev = bglpy_current;
    bglpy_current = self;
    self->busy = 1;
    /* Under load something is nearly always ready: try without waiting
     * first, which costs one epoll_wait instead of a poll + epoll_wait.  An
     * iteration that dispatched nothing did nothing visible. */
    int n = iterate(self, 0);
    if (n == 0 && block && !self->exc_type) {
        if (self->fd >= 0) {
            if (wait_ready(self, -1) < 0) {
                self->busy = 0;
                bglpy_current = prev;
                return NULL;
            }
            n = iterate(self, 0);
        } else {
            n = iterate(self, -1);
        }
    }
    self->busy = 0;
    self->stop = 0;
    bglpy_current = prev;
    if (finish(self, n, "bgl_loop_run_once") < 0)
        return NULL;
    return PyLong_FromLong(n);
}

static PyObject *call_hook(bglpy_core *self, PyObject *name)
{
    return PyObject_CallMethodObjArgs(self->owner, name, NULL);
}

static PyObject *core_kick(bglpy_core *self, PyObject *args)
{
    PyObject *otimeout, *obudget;
    int64_t timeout_ns, budget_ns;
    if (!PyArg_ParseTuple(args, "OO:kick", &otimeout, &obudget) ||
        seconds_arg(otimeout, "timeout", &timeout_ns) < 0 ||
        seconds_arg(obudget, "budget", &budget_ns) < 0 || check_idle(self, "kick()") < 0)
        return NULL;
    if (!self->owner) {
        PyErr_SetString(PyExc_RuntimeError, "kick(): core is not bound to a loop");
        return NULL;
    }
    if (budget_ns == 0)
        budget_ns = 1; /* "no time at all" still runs one callback */
    self->kicks++;
    /* Busy from here on, waiting included: another thread's kick() or
     * close() must not start while this one sleeps without the GIL. */
    self->busy = 1;
    if (self->fd >= 0) {
        if (timeout_ns != 0 && wait_ready(self, timeout_ns) < 0) {
            self->busy = 0;
            return NULL;
        }
        /* The common idle case stays this cheap: no Python state changes. */
        if (!has_ready(self)) {
            self->busy = 0;
            self->idle_kicks++;
            return PyLong_FromLong(0);
        }
        timeout_ns = 0;
    }

    PyObject *r = call_hook(self, str_kick_enter);
    if (!r) {
        self->busy = 0;
        return NULL;
    }
    Py_DECREF(r);

    bglpy_core *prev = bglpy_current;
    bglpy_current = self;
    uint64_t start = bgl_monotonic_ns();
    long total = 0;
    int n = 0;
    for (int64_t b = budget_ns;;) {
        /* The kick's remaining budget bounds each iteration too (the first
         * one always runs, dispatching at least one callback). */
        bgl_loop_set_budget(self->loop, b);
        n = iterate(self, timeout_ns);
        timeout_ns = 0;
        if (n <= 0)
            break;
        total += n;
        if (self->exc_type || self->stop)
            break;
        if (budget_ns > 0) {
            b = budget_ns - (int64_t)(bgl_monotonic_ns() - start);
            if (b <= 0)
                break;
        }
    }
    bgl_loop_set_budget(self->loop, -1);
    self->busy = 0;
    self->stop = 0;
    bglpy_current = prev;
    if (total == 0)
        self->idle_kicks++;

    r = call_hook(self, str_kick_exit);
    if (r)
        Py_DECREF(r);
    else if (self->exc_type)
        PyErr_WriteUnraisable(self->owner);
    else
        return NULL;
    if (finish(self, n < 0 ? n : 0, "bgl_loop_run_once") < 0)
        return NULL;
    return PyLong_FromLong(total);
}

static PyObject *core_stop(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    self->stop = 1;
    Py_RETURN_NONE;
}

static PyObject *core_clear_timers(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    bglpy_timers_release_all(self);
    Py_RETURN_NONE;
}

static void core_release(bglpy_core *self)
{
    if (!self->loop)
        return;
    bglpy_timers_release_all(self);
    bglpy_watchers_release_all(self);
    /* Drops queued Handles through their discard functions.  Sources other
     * parts of the extension made on this loop (the service manager holds a
     * reference to the core) may still exist: then the loop is freed when
     * the core is, after them. */
    if (bgl_loop_free(self->loop) < 0)
        self->closing = self->loop;
    self->loop = NULL;
    self->queued = self->ts_queued = 0;
}

static PyObject *core_close(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
        return NULL;
    }
    core_release(self);
    Py_RETURN_NONE;
}

static int put_u64(PyObject *d, const char *key, uint64_t v)
{
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    int r = o ? PyDict_SetItemString(d, key, o) : -1;
    Py_XDECREF(o);
    return r;
}

static int put_secs(PyObject *d, const char *key, uint64_t ns)
{
    PyObject *o = PyFloat_FromDouble((double)ns / 1e9);
    int r = o ? PyDict_SetItemString(d, key, o) : -1;
    Py_XDECREF(o);
    return r;
}

static PyObject *core_stats(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    bgl_loop_stats st = {0};
    if (self->loop)
        bgl_loop_get_stats(self->loop, &st);
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (put_u64(d, "iterations", st.iterations) < 0 ||
        put_u64(d, "callbacks", self->callbacks) < 0 ||
        put_secs(d, "longest_callback", self->longest_ns) < 0 ||
        put_secs(d, "loop_lag", self->lag_last_ns) < 0 ||
        put_secs(d, "loop_lag_max", self->lag_max_ns) < 0 ||
        put_u64(d, "dispatched", st.dispatched) < 0 ||
        put_u64(d, "budget_exhausted", st.budget_exhausted) < 0 ||
        put_u64(d, "kicks", self->kicks) < 0 || put_u64(d, "idle_kicks", self->idle_kicks) < 0 ||
        put_u64(d, "waits", self->waits) < 0 || put_u64(d, "io_watchers", st.io_watchers) < 0 ||
        put_u64(d, "timers", self->armed) < 0 || put_u64(d, "queued", self->queued) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyMethodDef core_methods[] = {
    {"bind", (PyCFunction)core_bind, METH_O, NULL},
    {"call_soon", (PyCFunction)core_call_soon, METH_O, NULL},
    {"call_threadsafe", (PyCFunction)core_call_threadsafe, METH_O, NULL},
    {"call_at", (PyCFunction)bglpy_core_call_at, METH_VARARGS, NULL},
    {"watch", (PyCFunction)bglpy_core_watch, METH_VARARGS, NULL},
    {"run_once", (PyCFunction)core_run_once, METH_O, NULL},
    {"kick", (PyCFunction)core_kick, METH_VARARGS, NULL},
    {"stop", (PyCFunction)core_stop, METH_NOARGS, NULL},
    {"clear_timers", (PyCFunction)core_clear_timers, METH_NOARGS, NULL},
    {"close", (PyCFunction)core_close, METH_NOARGS, NULL},
    {"stats", (PyCFunction)core_stats, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* ---- attributes ------------------------------------------------------------ */

static PyObject *get_debug(bglpy_core *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->debug);
}

static int set_debug(bglpy_core *self, PyObject *v, void *c)
{
    (void)c;
    int b = v ? PyObject_IsTrue(v) : 0;
    if (b < 0)
        return -1;
    self->debug = b;
    return 0;
}

static PyObject *get_slow(bglpy_core *self, void *c)
{
    (void)c;
    return PyFloat_FromDouble((double)self->slow_ns / 1e9);
}

static int set_slow(bglpy_core *self, PyObject *v, void *c)
{
    (void)c;
    int64_t ns;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete slow_callback_duration");
        return -1;
    }
    if (seconds_arg(v, "slow_callback_duration", &ns) < 0)
        return -1;
    self->slow_ns = ns < 0 ? UINT64_MAX : (uint64_t)ns;
    return 0;
}

static PyObject *get_queued(bglpy_core *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(self->queued);
}

static PyObject *get_armed(bglpy_core *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(self->armed);
}

static PyObject *get_callbacks(bglpy_core *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(self->callbacks);
}

static PyObject *get_dispatched(bglpy_core *self, void *c)
{
    (void)c;
    bgl_loop_stats st = {0};
    if (self->loop)
        bgl_loop_get_stats(self->loop, &st);
    return PyLong_FromUnsignedLongLong(st.dispatched + self->callbacks);
}

static PyObject *get_busy(bglpy_core *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->busy);
}

static PyObject *get_closed(bglpy_core *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->loop == NULL);
}

static PyGetSetDef core_getset[] = {
    {"debug", (getter)get_debug, (setter)set_debug, NULL, NULL},
    {"slow_callback_duration", (getter)get_slow, (setter)set_slow, NULL, NULL},
    {"queued", (getter)get_queued, NULL, "Handles queued and not yet run", NULL},
    {"armed", (getter)get_armed, NULL, "armed timers", NULL},
    {"callbacks", (getter)get_callbacks, NULL, "Python callbacks run so far", NULL},
    {"dispatched", (getter)get_dispatched, NULL,
     "grows whenever any callback ran (Python or C: service manager, ...)", NULL},
    {"closed", (getter)get_closed, NULL, NULL, NULL},
    {"busy", (getter)get_busy, NULL, "inside run_once() or kick(), waiting included", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- type ------------------------------------------------------------------ */

static PyObject *core_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (!PyArg_ParseTuple(args, ":Core") || (kwds && PyDict_Size(kwds))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Core() takes no arguments");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    bglpy_core *self = (bglpy_core *)alloc(type, 0);
    if (!self)
        return NULL;
    self->fd = -1;
    self->slow_ns = 100000000; /* asyncio's default slow_callback_duration */
    int r = bgl_loop_new(&self->loop);
    if (r < 0) {
        self->loop = NULL;
        Py_DECREF(self);
        return bglpy_raise_errno(r, "bgl_loop_new");
    }
    int fd = bgl_loop_get_fd(self->loop);
    self->fd = fd >= 0 ? fd : -1;
    return (PyObject *)self;
}

static int core_traverse(bglpy_core *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->owner);
    if (bglpy_pending_traverse(self, visit, arg))
        return -1;
    return bglpy_timers_traverse(self, visit, arg);
}

static int core_clear(bglpy_core *self)
{
    Py_CLEAR(self->owner);
    bglpy_pending_clear(self);
    if (!self->busy)
        bglpy_timers_release_all(self);
    return 0;
}

static void core_dealloc(bglpy_core *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    core_clear(self);
    core_release(self);
    if (self->closing && bgl_loop_free(self->closing) == 0)
        self->closing = NULL;
    Py_CLEAR(self->exc_type);
    Py_CLEAR(self->exc_value);
    Py_CLEAR(self->exc_tb);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot core_slots[] = {
    {Py_tp_new, core_new},
    {Py_tp_dealloc, core_dealloc},
    {Py_tp_traverse, core_traverse},
    {Py_tp_clear, core_clear},
    {Py_tp_methods, core_methods},
    {Py_tp_getset, core_getset},
    {Py_tp_doc, "The C loop (libbgloop) behind a bgloop.Loop."},
    {0, NULL},
};

static PyType_Spec core_spec = {
    "bgloop._bgloop.Core",
    sizeof(bglpy_core),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    core_slots,
};

static PyObject *intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

int bglpy_core_init(PyObject *module)
{
    if (!(bglpy_str_run = intern("_run")) || !(bglpy_str_cancelled = intern("_cancelled")) ||
        !(bglpy_str_run_debug = intern("_bgl_run_debug")) ||
        !(bglpy_str_slow = intern("_bgl_slow")) ||
        !(bglpy_str_remove_reader = intern("_remove_reader")) ||
        !(bglpy_str_remove_writer = intern("_remove_writer")) ||
        !(str_kick_enter = intern("_bgl_kick_enter")) ||
        !(str_kick_exit = intern("_bgl_kick_exit")))
        return -1;
    bglpy_CoreType = (PyTypeObject *)PyType_FromSpec(&core_spec);
    if (!bglpy_CoreType)
        return -1;
    Py_INCREF(bglpy_CoreType);
    if (PyModule_AddObject(module, "Core", (PyObject *)bglpy_CoreType) < 0) {
        Py_DECREF(bglpy_CoreType);
        return -1;
    }
    if (bglpy_timer_init(module) < 0 || bglpy_watcher_init(module) < 0)
        return -1;
    return 0;
}
