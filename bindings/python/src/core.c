/* core.c - bgloop._bgloop.Core: one bgl_loop driven by a bgloop.Loop.
 *
 * Python API (private; bgloop.Loop is the public face):
 *   Core()                          a new C loop
 *   bind(owner)                     the Loop whose hooks the core calls
 *   call_soon(handle)               queue an asyncio Handle
 *   call_threadsafe(handle)         same, from any thread, waking the loop
 *   call_at(when, handle) -> Timer  arm a timer for a TimerHandle (timer.c)
 *   cancel_timer(handle) -> bool    disarm it (False: none armed for it)
 *   watch(fd, events, data)         an fd watcher (watcher.c)
 *   run_once(block)                 one iteration (asyncio's _run_once)
 *   kick(timeout, budget) -> int    bounded step, see bgloop.Loop.kick
 *   take_stop() -> int | None       a pending stop of other code, cleared
 *   thread                          ident of the thread it belongs to
 *                                   (the first to run it), or None
 *   stop(), close(), clear_timers(), stats()
 *
 * Both run_once() and kick() are the C steps (loop.h) and nothing more:
 * bgl_loop_wait() with the GIL released, then bgl_loop_dispatch() or
 * bgl_loop_kick().  An idle kick (nothing became ready) returns before any
 * Python code runs.
 */
#include "core.h"
#include "handle.h"

#include <errno.h>

/* The name of the calling thread (threading.current_thread().name), or
 * None. */
static PyObject *current_thread_name(void)
{
    PyObject *mod = PyImport_ImportModule("threading");
    PyObject *t = mod ? PyObject_CallMethod(mod, "current_thread", NULL) : NULL;
    PyObject *name = t ? PyObject_GetAttrString(t, "name") : NULL;
    Py_XDECREF(t);
    Py_XDECREF(mod);
    if (!name) {
        PyErr_Clear();
        Py_INCREF(Py_None);
        name = Py_None;
    }
    return name;
}

/* The loop belongs to the first thread that runs it: every driver (kick,
 * run_forever, run_until_complete, serve, Blender's timer) goes through
 * here, so callbacks never run on another thread. */
static int check_thread(bglpy_core *self, const char *what)
{
    unsigned long me = PyThread_get_thread_ident();
    if (self->thread == me)
        return 0;
    if (self->thread == 0) {
        self->thread = me;
        Py_XDECREF(self->thread_name);
        self->thread_name = current_thread_name();
        return 0;
    }
    PyErr_Format(PyExc_RuntimeError,
                 "%s: this loop belongs to thread %R (ident %lu), the first to run it; "
                 "drive it only there, and hand work to it from other threads with "
                 "loop.call_soon_threadsafe() or bgloop.run_on_main()",
                 what, self->thread_name ? self->thread_name : Py_None, self->thread);
    return -1;
}

static int check_idle(bglpy_core *self, const char *what)
{
    if (bglpy_check_open(self) < 0 || check_thread(self, what) < 0)
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

/* ---- the steps ------------------------------------------------------------ */

/* bgl_loop_wait() for at most timeout_ns (negative: no limit), the GIL
 * released unless it cannot block.  1 something to dispatch, 0 nothing, -1
 * with an exception set (a Python signal handler raised, e.g.
 * KeyboardInterrupt, or the backend failed). */
static int wait_step(bglpy_core *self, int64_t timeout_ns)
{
    int64_t due;
    if (timeout_ns != 0 && bgl_loop_prepare(self->loop, &due) == 1)
        timeout_ns = 0;
    int r;
    if (timeout_ns == 0) {
        r = bgl_loop_wait(self->loop, 0);
    } else {
        self->waits++;
        Py_BEGIN_ALLOW_THREADS
        r = bgl_loop_wait(self->loop, timeout_ns);
        Py_END_ALLOW_THREADS
    }
    while (r == -EINTR) {
        /* Python's handlers run now; if none raised, the signal was just a
         * wakeup (asyncio's wakeup fd, if any, is readable by now). */
        if (PyErr_CheckSignals() < 0)
            return -1;
        r = bgl_loop_wait(self->loop, 0);
    }
    if (r < 0) {
        bglpy_raise_errno(r, "bgl_loop_wait");
        return -1;
    }
    return r > 0;
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
    if (bglpy_check_open(self) < 0 || bglpy_queue_handle(self, handle) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_call_threadsafe(bglpy_core *self, PyObject *handle)
{
    /* Callers hold the GIL, and close() needs it too, so the loop cannot be
     * freed under us. */
    if (bglpy_check_open(self) < 0 || bglpy_call_threadsafe(self, handle) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyObject *bglpy_core_run_once(bglpy_core *self, int block)
{
    if (check_idle(self, "run_once()") < 0)
        return NULL;
    /* Busy from here on, waiting included: another thread's kick() or
     * close() must not start while this one sleeps without the GIL. */
    self->busy = 1;
    if (wait_step(self, block ? -1 : 0) < 0) {
        self->busy = 0;
        return NULL;
    }
    int n = bgl_loop_dispatch(self->loop, -1);
    self->busy = 0;
    bglpy_settle_stop(self);
    if (finish(self, n, "bgl_loop_dispatch") < 0)
        return NULL;
    return PyLong_FromLong(n);
}

static PyObject *core_run_once(bglpy_core *self, PyObject *arg)
{
    int block = PyObject_IsTrue(arg);
    return block < 0 ? NULL : bglpy_core_run_once(self, block);
}

static PyObject *call_hook(bglpy_core *self, PyObject *name)
{
    return PyObject_CallMethodObjArgs(self->owner, name, NULL);
}

int bglpy_core_kick(bglpy_core *self, int64_t timeout_ns, int64_t budget_ns)
{
    if (check_idle(self, "kick()") < 0)
        return -1;
    if (!self->owner) {
        PyErr_SetString(PyExc_RuntimeError, "kick(): core is not bound to a loop");
        return -1;
    }
    if (budget_ns == 0)
        budget_ns = 1; /* "no time at all" still runs one callback */
    self->kicks++;
    self->busy = 1;
    int ready = wait_step(self, timeout_ns);
    if (ready <= 0) {
        /* Idle: no Python code runs and no Python state changes. */
        self->busy = 0;
        if (ready < 0)
            return -1;
        self->idle_kicks++;
        return 0;
    }

    PyObject *r = call_hook(self, self->st->str_bgl_kick_enter);
    if (!r) {
        self->busy = 0;
        return -1;
    }
    Py_DECREF(r);
    /* libbgloop composes the iterations and owns the budget. */
    int n = bgl_loop_kick(self->loop, 0, budget_ns);
    self->busy = 0;
    bglpy_settle_stop(self);
    if (n == 0)
        self->idle_kicks++;

    r = call_hook(self, self->st->str_bgl_kick_exit);
    if (r)
        Py_DECREF(r);
    else if (self->exc_type)
        PyErr_WriteUnraisable(self->owner);
    else
        return -1;
    if (finish(self, n < 0 ? n : 0, "bgl_loop_kick") < 0)
        return -1;
    return n;
}

static PyObject *core_kick(bglpy_core *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t timeout_ns, budget_ns;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "kick() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (bglpy_seconds(args[0], "timeout", 1, &timeout_ns) < 0 ||
        bglpy_seconds(args[1], "budget", 1, &budget_ns) < 0)
        return NULL;
    int n = bglpy_core_kick(self, timeout_ns, budget_ns);
    return n < 0 ? NULL : PyLong_FromLong(n);
}

static PyObject *core_take_stop(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    int code;
    if (bglpy_check_open(self) < 0)
        return NULL;
    if (bgl_loop_take_stop(self->loop, &code) != 1)
        Py_RETURN_NONE;
    return PyLong_FromLong(code);
}

static PyObject *core_stop(bglpy_core *self, PyObject *unused)
{
    (void)unused;
    /* Between kicks there is nothing to end: asyncio's own _stopping flag
     * ends run_forever(). */
    if (self->busy)
        bglpy_request_stop(self);
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
    bglpy_signal_watchers_release_all(self);
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
    {"call_at", (PyCFunction)(void (*)(void))bglpy_core_call_at, METH_FASTCALL, NULL},
    {"soon", (PyCFunction)(void (*)(void))bglpy_core_soon, METH_FASTCALL,
     "soon(callback, args, context) -> Handle: a C Handle, queued."},
    {"soon_threadsafe", (PyCFunction)(void (*)(void))bglpy_core_soon_threadsafe, METH_FASTCALL,
     "soon_threadsafe(callback, args, context) -> Handle: the same from any thread."},
    {"at", (PyCFunction)(void (*)(void))bglpy_core_at, METH_FASTCALL,
     "at(when, callback, args, context) -> TimerHandle: a C TimerHandle, armed."},
    {"cancel_timer", (PyCFunction)bglpy_core_cancel_timer, METH_O, NULL},
    {"watch", (PyCFunction)(void (*)(void))bglpy_core_watch, METH_FASTCALL, NULL},
    {"watch_signal", (PyCFunction)(void (*)(void))bglpy_core_watch_signal, METH_FASTCALL,
     "watch_signal(signo, handle) -> SignalWatcher: run the asyncio Handle whenever libbgloop "
     "delivers signo (on Windows: SIGINT, SIGBREAK, SIGTERM from the console)."},
    {"run_once", (PyCFunction)core_run_once, METH_O, NULL},
    {"kick", (PyCFunction)(void (*)(void))core_kick, METH_FASTCALL, NULL},
    {"loop_kick", (PyCFunction)(void (*)(void))bglpy_loop_kick, METH_FASTCALL | METH_KEYWORDS,
     "loop_kick($self, /, timeout=0.0, budget=None)\n--\n\n"
     "bgloop.Loop.kick() itself; the Loop binds it in its own place (see Loop.kick)."},
    {"loop_call_soon", (PyCFunction)(void (*)(void))bglpy_loop_call_soon,
     METH_FASTCALL | METH_KEYWORDS,
     "loop_call_soon($self, callback, /, *args, context=None)\n--\n\n"
     "asyncio's call_soon() outside debug mode, making a C Handle; the Loop binds it in "
     "its own place."},
    {"loop_run_once", (PyCFunction)bglpy_loop_run_once, METH_NOARGS,
     "loop_run_once($self, /)\n--\n\n"
     "asyncio's _run_once(): one iteration, blocking unless stop() was called; the Loop "
     "binds it in its own place."},
    {"loop_call_later", (PyCFunction)(void (*)(void))bglpy_loop_call_later,
     METH_FASTCALL | METH_KEYWORDS,
     "loop_call_later($self, delay, callback, /, *args, context=None)\n--\n\n"
     "asyncio's call_later() outside debug mode, making a C TimerHandle; the Loop binds it "
     "in its own place."},
    {"loop_call_at", (PyCFunction)(void (*)(void))bglpy_loop_call_at,
     METH_FASTCALL | METH_KEYWORDS,
     "loop_call_at($self, when, callback, /, *args, context=None)\n--\n\n"
     "asyncio's call_at() outside debug mode, making a C TimerHandle; the Loop binds it in "
     "its own place."},
    {"loop_create_future", (PyCFunction)bglpy_loop_create_future, METH_NOARGS,
     "loop_create_future($self, /)\n--\n\nasyncio's create_future(): Future(loop=loop)."},
    {"loop_get_debug", (PyCFunction)bglpy_loop_get_debug, METH_NOARGS,
     "loop_get_debug($self, /)\n--\n\nasyncio's get_debug(), from the core's flag."},
    {"forget_left", (PyCFunction)bglpy_loop_forget_left, METH_NOARGS,
     "Forget loop_kick()'s last answer (a busy check was added or removed)."},
    {"stop", (PyCFunction)core_stop, METH_NOARGS, NULL},
    {"take_stop", (PyCFunction)core_take_stop, METH_NOARGS,
     "take_stop() -> int | None: the code of a pending bgl_loop_stop() of other code (the "
     "service manager), cleared; None if there is none."},
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
    if (self->slow_ns == UINT64_MAX)
        Py_RETURN_NONE;
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
    if (bglpy_seconds(v, "slow_callback_duration", 1, &ns) < 0)
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

uint64_t bglpy_core_dispatched(bglpy_core *self)
{
    bgl_loop_stats st = {0};
    if (self->loop)
        bgl_loop_get_stats(self->loop, &st);
    return st.dispatched + self->callbacks;
}

static PyObject *get_dispatched(bglpy_core *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(bglpy_core_dispatched(self));
}

static PyObject *get_busy(bglpy_core *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->busy);
}

static PyObject *get_thread(bglpy_core *self, void *c)
{
    (void)c;
    if (!self->thread)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->thread);
}

static PyObject *get_closed(bglpy_core *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->loop == NULL);
}

static PyGetSetDef core_getset[] = {
    {"debug", (getter)get_debug, (setter)set_debug, NULL, NULL},
    {"slow_callback_duration", (getter)get_slow, (setter)set_slow,
     "threshold of bgloop's own slow-callback report (debug mode off); None: no report",
     NULL},
    {"queued", (getter)get_queued, NULL, "Handles queued and not yet run", NULL},
    {"armed", (getter)get_armed, NULL, "armed timers", NULL},
    {"callbacks", (getter)get_callbacks, NULL, "Python callbacks run so far", NULL},
    {"dispatched", (getter)get_dispatched, NULL,
     "grows whenever any callback ran (Python or C: service manager, ...)", NULL},
    {"closed", (getter)get_closed, NULL, NULL, NULL},
    {"thread", (getter)get_thread, NULL,
     "ident of the thread the loop belongs to (the first to run it), or None", NULL},
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
    self->st = bglpy_type_state(type);
    bglpy_list_init(&self->timers);
    bglpy_list_init(&self->watchers);
    bglpy_list_init(&self->signals);
    bglpy_list_init(&self->pending);
    self->slow_ns = UINT64_MAX; /* asyncio reports slow callbacks only in debug mode */
    self->left = -1;
    int r = bgl_loop_new(&self->loop);
    if (r < 0) {
        self->loop = NULL;
        Py_DECREF(self);
        return bglpy_raise_errno(r, "bgl_loop_new");
    }
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
    bglpy_timers_free_index(self);
    if (self->closing && bgl_loop_free(self->closing) == 0)
        self->closing = NULL;
    Py_CLEAR(self->thread_name);
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

int bglpy_core_init(PyObject *module, bglpy_state *st)
{
    if (bglpy_add_type(module, &core_spec, &st->Core, 1) < 0)
        return -1;
    return bglpy_timer_init(module, st) < 0 || bglpy_watcher_init(module, st) < 0 ||
                   bglpy_signal_watcher_init(module, st) < 0
               ? -1
               : 0;
}
